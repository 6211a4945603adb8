"""The one merge of serving options: flags, then ame.yml's deployment section, then defaults.

Pure functions on a real ame.yml in ``tmp_path``; no server is started.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ame.backends.ray.serve import serve_settings
from ame.errors import SpecError
from ame.serving.options import (
    DEFAULT,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_PORT,
    FLAG,
    PROJECT,
    ServingOptions,
    merge_options,
    options_for,
    project_deployment,
)

AME_YML = """\
project: opts
models:
  - name: iris
    deployment:
      replicas: 3
      port: 9100
      resources: {cpu: 1, memory: 2Gi}
      batching: {maxBatchSize: 16, maxLatencyMs: 2}
  - name: bare
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "ame.yml").write_text(AME_YML)
    return tmp_path


def test_a_flag_beats_ame_yml_which_beats_the_default(project: Path) -> None:
    options = options_for("iris", project, {"workers": 5, "max_latency_ms": 0.0, "port": None})
    assert options.workers == 5 and options.source("workers") == FLAG
    # 0 is a given value, not "absent": only None falls through
    assert options.max_latency_ms == 0.0 and options.source("max_latency_ms") == FLAG
    assert options.max_batch_size == 16 and options.source("max_batch_size") == PROJECT
    assert options.port == 9100 and options.source("port") == PROJECT
    assert options.max_memory == 2 * 1024**3 and options.source("max_memory") == PROJECT
    assert options.resources is not None and options.resources.cpu == 1
    assert options.poll_interval == 5.0 and options.source("poll_interval") == DEFAULT
    assert options.grpc_port is None and not options.given("grpc_port")
    # the memory flag wins over resources.memory
    capped = options_for("iris", project, {"max_memory": 512})
    assert capped.max_memory == 512 and capped.source("max_memory") == FLAG


def test_no_section_no_project_or_no_model_gives_the_defaults(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("noproject")
    for options in (
        options_for("bare", project),
        options_for("unknown", project),
        options_for("iris", elsewhere),
        options_for(None, project),
    ):
        assert options == ServingOptions()
        assert not any(options.given(f.name) for f in dataclasses.fields(options))
    assert (ServingOptions().port, ServingOptions().max_batch_size) == (
        DEFAULT_PORT,
        DEFAULT_MAX_BATCH_SIZE,
    )


def test_written_defaults_count_as_ame_yml_and_options_are_frozen(tmp_path: Path) -> None:
    (tmp_path / "ame.yml").write_text(
        "project: opts\nmodels:\n  - name: m\n    deployment: {replicas: 1}\n"
    )
    options = options_for("m", tmp_path)
    assert options.workers == 1 and options.source("workers") == PROJECT
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.workers = 2  # type: ignore[misc]
    assert options.with_values(port=1234).port == 1234 and options.port == DEFAULT_PORT


def test_an_unknown_option_name_is_an_error_not_dropped() -> None:
    with pytest.raises(TypeError, match="replica"):
        merge_options({"replica": 2})


def test_an_invalid_ame_yml_is_its_error_not_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "ame.yml").write_text(
        "project: opts\nmodels:\n  - name: m\n    deployment: {replica: 2}\n"
    )
    with pytest.raises(SpecError, match="replica"):
        project_deployment("m", tmp_path)


def test_ray_serve_takes_replicas_and_batching_from_the_merged_options(project: Path) -> None:
    deployment = project_deployment("iris", project)
    merged = options_for("iris", project, {"workers": 4, "max_batch_size": 8})
    settings = serve_settings("iris", deployment, merged)
    assert settings.deployment["num_replicas"] == 4
    assert (settings.max_batch_size, settings.max_latency_ms) == (8, 2.0)
    # without flags, ame.yml's
    plain = serve_settings("iris", deployment)
    assert plain.deployment["num_replicas"] == 3
    assert (plain.max_batch_size, plain.max_latency_ms) == (16, 2.0)
