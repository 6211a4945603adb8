"""Inputs named by URI: ``file://`` (pyarrow's local filesystem) and ``s3://`` on a real
S3 server on loopback (moto's, S3 being a paid service), scored as their local copies are."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ame.batch.errors import InputError
from ame.batch.inputs import resolve_inputs
from ame.batch.remote import public, shown
from ame.batch.scorer import ScoreOptions, score
from tests.batch.conftest import FEATURES, SavedModel, ame, frame, read, write
from tests.helpers import free_port

BUCKET = "ame-batch"


def _directory(root: Path) -> pd.DataFrame:
    """Three Parquet parts, a writer's marker and a hidden file; the parts' rows in order."""
    parts = [frame(400, seed=s, start_id=1000 * s) for s in (1, 2, 3)]
    for i, part in enumerate(parts):
        write(part, root / f"part-{i}.parquet")
    (root / "_SUCCESS").write_text("")
    (root / ".part-9.parquet.crc").write_text("x")
    return pd.concat(parts, ignore_index=True)


def test_file_uris_score_as_their_paths(tmp_path: Path, sk_model: SavedModel) -> None:
    data = _directory(tmp_path / "parts")
    write(data, tmp_path / "all.csv")
    options = ScoreOptions(chunk_rows=500, id_columns=("id",))
    for name, uri in [
        ("dir", (tmp_path / "parts").as_uri()),
        ("glob", (tmp_path / "parts").as_uri() + "/part-*.parquet"),
        ("csv", (tmp_path / "all.csv").as_uri()),
    ]:
        summary = score(str(sk_model.path), uri, tmp_path / f"{name}.parquet", options)
        scored = read(tmp_path / f"{name}.parquet")
        assert scored["id"].tolist() == data["id"].tolist(), name
        assert np.array_equal(scored["prediction"], sk_model.model.predict(data[FEATURES]))
        assert all(f.startswith("file://") for f in summary.files), summary.files
    local = score(str(sk_model.path), str(tmp_path / "parts"), tmp_path / "local.parquet", options)
    assert (tmp_path / "local.parquet").read_bytes() == (tmp_path / "dir.parquet").read_bytes()
    assert local.files == [str(tmp_path / "parts" / f"part-{i}.parquet") for i in range(3)]


def test_uris_are_shown_without_credentials_or_query() -> None:
    uri = "s3://KEY:SECRET@bucket/exports/a.csv?endpoint_override=h:9000&scheme=http"
    assert public(uri) == "s3://bucket/exports/a.csv"
    assert shown(uri) == "s3://bucket/exports/a.csv"
    assert shown("data/a.csv?x") == "data/a.csv?x"  # a path is a path


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 server (moto) on 127.0.0.1 with a bucket; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,  # pyarrow's S3 filesystem and ame's children read it
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            env.setenv(key, value)
        _s3fs(endpoint).create_dir(BUCKET)
        try:
            yield endpoint
        finally:
            server.stop()


def _s3fs(endpoint: str) -> Any:
    """The test's own client of the server (ame finds it through AWS_ENDPOINT_URL)."""
    from pyarrow import fs

    return fs.S3FileSystem(
        endpoint_override=endpoint, scheme="http", region="us-east-1", allow_bucket_creation=True
    )


def _upload(endpoint: str, local: Path, key: str) -> None:
    s3fs = _s3fs(endpoint)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        target = f"{BUCKET}/{key}/{path.relative_to(local).as_posix()}"
        with s3fs.open_output_stream(target) as out:
            out.write(path.read_bytes())


def test_s3_directory_scores_as_its_local_copy(
    s3: str, tmp_path: Path, sk_model: SavedModel
) -> None:
    data = _directory(tmp_path / "parts")
    _upload(s3, tmp_path / "parts", "exports/day1")
    options = ScoreOptions(chunk_rows=500, id_columns=("id",))
    remote = score(str(sk_model.path), f"s3://{BUCKET}/exports/day1/", tmp_path / "s3.parquet",
                   options)  # fmt: skip
    score(str(sk_model.path), str(tmp_path / "parts"), tmp_path / "local.parquet", options)
    assert (tmp_path / "s3.parquet").read_bytes() == (tmp_path / "local.parquet").read_bytes()
    assert remote.files == [f"s3://{BUCKET}/exports/day1/part-{i}.parquet" for i in range(3)]
    assert remote.rows == len(data)
    globbed = resolve_inputs(f"s3://{BUCKET}/exports/*/part-[02].parquet")
    assert [f.name for f in globbed] == [
        f"s3://{BUCKET}/exports/day1/part-0.parquet",
        f"s3://{BUCKET}/exports/day1/part-2.parquet",
    ]


def test_s3_csv_through_the_cli_and_a_changed_object_is_another_input(
    s3: str, tmp_path: Path, sk_model: SavedModel
) -> None:
    data = frame(3000, seed=7)
    write(data, tmp_path / "in" / "scores.csv")
    _upload(s3, tmp_path / "in", "csv")
    uri = f"s3://{BUCKET}/csv/scores.csv"
    done = ame("predict", str(sk_model.path), "-i", uri, "-o", "out.csv", "--id-col", "id",
               "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["rows"] == 3000 and summary["files"] == [uri]
    scored = pd.read_csv(tmp_path / "out.csv")
    assert np.array_equal(scored["prediction"], sk_model.model.predict(data[FEATURES]))

    # --resume matches inputs by size, mtime and both ends' hash: a rewritten object differs.
    before = resolve_inputs(uri)[0].fingerprint()
    changed = data.copy()
    changed.loc[0, "a"] = 99.0
    shutil.rmtree(tmp_path / "in")
    write(changed, tmp_path / "in" / "scores.csv")
    _upload(s3, tmp_path / "in", "csv")
    after = resolve_inputs(uri)[0].fingerprint()
    assert before["path"] == after["path"] == uri
    assert before["sha256_ends"] != after["sha256_ends"]


def test_s3_errors_are_one_line(s3: str, tmp_path: Path, sk_model: SavedModel) -> None:
    with pytest.raises(InputError, match=rf"input s3://{BUCKET}/nothing/here.csv does not exist"):
        resolve_inputs(f"s3://{BUCKET}/nothing/here.csv")
    done = ame("predict", str(sk_model.path), "-i", f"s3://{BUCKET}/missing/", "-o", "o.parquet",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0] == f"error: input s3://{BUCKET}/missing/ does not exist", lines
