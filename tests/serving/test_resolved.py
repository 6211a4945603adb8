"""One record of "a resolved version": what serving, packaging and images build on.

``ame.registry.ResolvedVersion`` is resolved once, by the registry; the served
model (``LoadedModel``), the prefetched version, a package's ``ModelFiles`` and
a serving image's ``ModelFiles`` hold or extend it instead of keeping their own
name, version and URI. Run in this process against the serving session's store.
"""

from __future__ import annotations

from pathlib import Path

from ame.registry.records import ResolvedVersion
from ame.registry.store import resolve_store
from tests.serving.helpers import Store


def test_a_served_model_holds_the_registry_record(store: Store) -> None:
    from ame.serving.sources import load_source, resolve_reference

    loaded = load_source(f"{store.lr}/1", tracking_uri=store.uri)
    assert isinstance(loaded.resolved, ResolvedVersion)
    assert (loaded.name, loaded.version, loaded.source) == (store.lr, "1", f"models:/{store.lr}/1")
    assert loaded.resolved.run_id and loaded.follows is None
    assert Path(loaded.extra["local_path"], "MLmodel").is_file()

    followed = resolve_reference(f"{store.pyf}@champion", store.uri)
    assert followed.follows == "champion" and followed.version and followed.version.isdigit()
    assert followed.uri == f"models:/{store.pyf}/{followed.version}"


def test_the_old_keyword_form_builds_the_record() -> None:
    from ame.serving.sources import LoadedModel

    model = LoadedModel(object(), name="tens", version="3", source="/tmp/tens")  # type: ignore[arg-type]
    assert model.resolved == ResolvedVersion(uri="/tmp/tens", name="tens", version="3")
    assert (model.name, model.version, model.source, model.follows) == (
        "tens",
        "3",
        "/tmp/tens",
        None,
    )


def test_package_and_image_files_extend_the_record(store: Store, tmp_path: Path) -> None:
    from ame.backends.kubernetes.image import model_files as image_files
    from ame.backends.kubernetes.image import serving_context
    from ame.packaging.source import model_files
    from ame.registry.facade import Registry
    from ame.serving.prefetch import PrefetchedVersion

    with model_files(f"{store.lr}/1", tracking_uri=store.uri, project_root=store.root) as files:
        assert isinstance(files, ResolvedVersion)
        assert (files.name, files.version) == (store.lr, "1")
        assert files.source == files.uri == f"models:/{store.lr}/1"
        assert files.run_id and (files.directory / "MLmodel").is_file()

    image = image_files(Registry(resolve_store(store.uri, store.root)), f"{store.lr}/1")
    assert isinstance(image, ResolvedVersion)
    assert (image.uri, image.name, image.version) == (f"models:/{store.lr}/1", store.lr, "1")
    assert image.run_id == files.run_id and "scikit-learn" in image.requirements
    dockerfile = serving_context(image, "proj", tmp_path).dockerfile.read_text()
    assert f'"ame", "serve", "{store.lr}/1"' in dockerfile

    assert issubclass(PrefetchedVersion, ResolvedVersion)
