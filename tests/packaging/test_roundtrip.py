"""Round trips: build from the registry, open, predict the same as the plain model.

Every key method (generated key, existing key file, passphrase) and the
unencrypted form, for a scikit-learn model and for a files-based pyfunc.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ame.packaging
from ame.packaging.keys import generate_key_file, write_key_file


def _build(reg: Any, out: Path, **kwargs: object) -> ame.packaging.BuildResult:
    return ame.packaging.build_package(
        reg.ref, out, tracking_uri=reg.tracking_uri, project_root=reg.project, **kwargs
    )


@pytest.fixture(params=["sklearn", "files"])
def registered(request: pytest.FixtureRequest, sklearn_model: Any, files_model: Any) -> Any:
    return sklearn_model if request.param == "sklearn" else files_model


@pytest.mark.parametrize("method", ["generated", "key_file", "passphrase", "plain"])
def test_round_trip(registered: Any, method: str, tmp_path: Path) -> None:
    out = tmp_path / "model.amepkg"
    key_path = tmp_path / "model.key"
    open_kwargs: dict[str, object] = {}
    if method == "generated":
        key = generate_key_file(key_path)
        result = _build(registered, out, key=key)
        open_kwargs = {"key_file": key_path}
    elif method == "key_file":
        key = bytes(range(32))
        write_key_file(key_path, key)
        result = _build(registered, out, key=ame.packaging.read_key_file(key_path))
        open_kwargs = {"key": key}
    elif method == "passphrase":
        result = _build(registered, out, passphrase="correct horse battery staple")
        open_kwargs = {"passphrase": "correct horse battery staple"}
    else:
        result = _build(registered, out)

    manifest = ame.packaging.inspect_package(out)
    assert manifest["model"]["name"] == registered.name
    assert manifest["model"]["version"] == registered.version
    assert manifest["format_version"] == 1
    paths = [f["path"] for f in manifest["files"]]
    assert "models/MLmodel" in paths and all(p.startswith("models/") for p in paths)
    if method == "plain":
        assert manifest["encryption"] is None and result.key_id is None
    else:
        enc = manifest["encryption"]
        assert enc["algorithm"] == "AES-256-GCM" and len(enc["key_id"]) == 16
        assert enc["kdf"]["name"] == ("scrypt" if method == "passphrase" else "none")
        # The ciphertext does not contain the plaintext of any file.
        assert b"loader_module" not in out.read_bytes()

    with ame.packaging.open(out, **open_kwargs) as model:  # type: ignore[arg-type]
        got = model.predict(registered.inputs)
        assert model.metadata.get_input_schema() is not None
        assert model.name == registered.name and model.version == registered.version
    np.testing.assert_allclose(
        np.asarray(got, dtype=float), np.asarray(registered.expected, dtype=float)
    )
    checks = ame.packaging.verify_package(out, **open_kwargs)  # type: ignore[arg-type]
    assert [c.path for c in checks] == paths and all(c.ok for c in checks)


def test_params_reach_the_model(files_model: Any, tmp_path: Path) -> None:
    out = tmp_path / "p.amepkg"
    _build(files_model, out, passphrase="pw")
    with ame.packaging.open(out, passphrase="pw") as model:
        got = model.predict(files_model.inputs, params={"scale": 2.0})
    np.testing.assert_allclose(got, files_model.expected * 2.0)


def test_generated_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    key = generate_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == key.hex() and len(key) == 32
    with pytest.raises(ame.errors.PackageError, match="already exists"):
        generate_key_file(path)
    assert path.read_text().strip() == key.hex()
