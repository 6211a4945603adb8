"""Round trips in every format, directory and glob inputs, ids and row order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ame.batch.errors import InputError
from ame.batch.scorer import ScoreOptions, score
from tests.batch.conftest import FEATURES, SavedModel, frame, read, write


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("in.csv", "out.parquet"),
        ("in.parquet", "out.csv"),
        ("in.jsonl", "out.jsonl"),
        ("in.csv", "out.jsonl"),
    ],
)
def test_round_trip_each_format(
    tmp_path: Path, sk_model: SavedModel, source: str, target: str
) -> None:
    data = frame(2500, seed=3)
    write(data, tmp_path / source)
    summary = score(
        str(sk_model.path),
        str(tmp_path / source),
        tmp_path / target,
        ScoreOptions(chunk_rows=700, id_columns=("id",)),
    )
    out = read(tmp_path / target)
    assert list(out.columns) == ["id", "prediction"]
    assert out["id"].tolist() == data["id"].tolist()  # input order, across 4 chunks
    expected = sk_model.model.predict(data[FEATURES])
    assert np.array_equal(out["prediction"].to_numpy(), expected)
    assert (summary.rows, summary.input_rows, summary.errors, summary.chunks) == (2500, 2500, 0, 4)
    # No parts, lock or temporary file is left beside the output.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({source, target})


def test_directory_input_in_sorted_order_skipping_hidden_files(
    tmp_path: Path, sk_model: SavedModel
) -> None:
    parts = [frame(333, seed=s, start_id=s * 1000) for s in range(3)]
    for i, part in enumerate(parts):
        write(part, tmp_path / "in" / f"day={i}" / f"part-{i}.parquet")
    write(frame(5, seed=9), tmp_path / "in" / ".hidden.parquet")
    (tmp_path / "in" / "_SUCCESS").write_text("")
    summary = score(
        str(sk_model.path),
        str(tmp_path / "in"),
        tmp_path / "out.parquet",
        ScoreOptions(chunk_rows=250),  # chunks straddle the files
    )
    out = pd.read_parquet(tmp_path / "out.parquet")
    whole = pd.concat(parts, ignore_index=True)
    assert out["row"].tolist() == list(range(999))
    assert np.array_equal(out["prediction"], sk_model.model.predict(whole[FEATURES]))
    assert summary.chunks == 4 and len(summary.files) == 3


def test_glob_input_of_csv_files(tmp_path: Path, sk_model: SavedModel) -> None:
    a, b = frame(40, seed=4, start_id=0), frame(60, seed=5, start_id=40)
    write(a, tmp_path / "x-1.csv")
    write(b, tmp_path / "x-2.csv")
    write(frame(10, seed=6), tmp_path / "other.csv")
    score(
        str(sk_model.path),
        str(tmp_path / "x-*.csv"),
        tmp_path / "out.csv",
        ScoreOptions(id_columns=("id",)),
    )
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["id"].tolist() == list(range(100))


def test_tensor_signature_takes_every_non_id_column(
    tmp_path: Path, tensor_model: SavedModel
) -> None:
    data = frame(500, seed=7)
    write(data, tmp_path / "in.csv")
    score(
        str(tensor_model.path),
        str(tmp_path / "in.csv"),
        tmp_path / "out.parquet",
        ScoreOptions(chunk_rows=128, id_columns=("id",)),
    )
    out = pd.read_parquet(tmp_path / "out.parquet")
    expected = tensor_model.model.predict(data[FEATURES].to_numpy())
    assert np.array_equal(out["prediction"], expected)


def test_empty_input_gives_an_empty_output(tmp_path: Path, sk_model: SavedModel) -> None:
    write(frame(0), tmp_path / "in.parquet")
    summary = score(str(sk_model.path), str(tmp_path / "in.parquet"), tmp_path / "out.parquet")
    assert summary.rows == 0
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 0


def test_missing_input_and_mixed_formats_are_refused(tmp_path: Path, sk_model: SavedModel) -> None:
    with pytest.raises(InputError, match="does not exist"):
        score(str(sk_model.path), str(tmp_path / "nope.csv"), tmp_path / "o.parquet")
    write(frame(3), tmp_path / "mixed" / "a.csv")
    write(frame(3), tmp_path / "mixed" / "b.parquet")
    with pytest.raises(InputError, match="mixes formats"):
        score(str(sk_model.path), str(tmp_path / "mixed"), tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


def test_model_without_signature_gets_every_non_id_column(
    tmp_path: Path, sk_model: SavedModel
) -> None:
    import mlflow.sklearn

    bare = tmp_path / "bare-model"
    mlflow.sklearn.save_model(sk_model.model, str(bare), pip_requirements=["scikit-learn"])
    data = frame(300, seed=8)
    write(data, tmp_path / "in.csv")
    score(str(bare), str(tmp_path / "in.csv"), tmp_path / "out.parquet",
          ScoreOptions(id_columns=("id",)))  # fmt: skip
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert np.array_equal(out["prediction"], sk_model.model.predict(data[FEATURES]))


def test_a_row_longer_than_a_read_block_is_read(tmp_path: Path, sk_model: SavedModel) -> None:
    from ame.batch.inputs import BLOCK_BYTES

    data = frame(50, seed=21)
    data["note"] = "short"
    data.loc[30, "note"] = "x" * (3 * BLOCK_BYTES)  # three blocks long
    for suffix in (".csv", ".jsonl"):
        source = write(data, tmp_path / f"long{suffix}")
        out = tmp_path / f"out{suffix}.parquet"
        summary = score(str(sk_model.path), str(source), out,
                        ScoreOptions(id_columns=("id", "note")))  # fmt: skip
        scored = read(out)
        assert summary.rows == 50
        assert scored["note"].str.len().tolist() == data["note"].str.len().tolist()
        assert np.array_equal(scored["prediction"], sk_model.model.predict(data[FEATURES]))


def test_quoted_values_spanning_lines_across_read_blocks(
    tmp_path: Path, sk_model: SavedModel
) -> None:
    """Prompts of several lines, as chat exports have, in a CSV many read blocks long."""
    from ame.batch.inputs import BLOCK_BYTES

    data = frame(6000, seed=22)
    data["note"] = [f"first line {i}\nsecond line\n\n" + "y" * (i % 90) for i in range(6000)]
    source = write(data, tmp_path / "notes.csv")
    assert source.stat().st_size > 3 * BLOCK_BYTES
    out = tmp_path / "out.parquet"
    summary = score(str(sk_model.path), str(source), out,
                    ScoreOptions(chunk_rows=1000, id_columns=("id", "note")))  # fmt: skip
    scored = read(out)
    assert summary.rows == 6000
    assert scored["note"].tolist() == data["note"].tolist()
    assert np.array_equal(scored["prediction"], sk_model.model.predict(data[FEATURES]))
