"""The signature per chunk: missing columns, bad values, --on-error skip, --max-errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ame.batch.errors import SchemaMismatchError, TooManyErrorsError
from ame.batch.parts import parts_dir
from ame.batch.scorer import ScoreOptions, score
from tests.batch.conftest import FEATURES, SavedModel, ame, frame, write


def _with_bad_values(tmp_path: Path, rows: int = 1000) -> tuple[pd.DataFrame, Path]:
    """A CSV whose column b holds text at rows 612, 613 and 800."""
    data = frame(rows, seed=11)
    text = data.astype({"b": object})
    text.loc[612, "b"] = "abc"
    text.loc[613, "b"] = "12,5"
    text.loc[800, "b"] = "--"
    path = tmp_path / "in.csv"
    text.to_csv(path, index=False)
    return data, path


def test_bad_value_names_the_column_and_the_first_bad_row(
    tmp_path: Path, sk_model: SavedModel
) -> None:
    _, path = _with_bad_values(tmp_path)
    out = tmp_path / "out.parquet"
    with pytest.raises(SchemaMismatchError) as caught:
        score(str(sk_model.path), str(path), out, ScoreOptions(chunk_rows=300, id_columns=("id",)))
    message = str(caught.value)
    assert message.startswith("row 612 (id=1612): column 'b': 'abc' is not a valid double")
    assert not out.exists() and not parts_dir(out).exists()


def test_missing_value_in_a_double_column_is_nan_not_an_error(
    tmp_path: Path, sk_model: SavedModel
) -> None:
    data = frame(10, seed=12)
    data.loc[4, "c"] = np.nan
    write(data, tmp_path / "in.parquet")
    # LogisticRegression refuses NaN: the model's error, reported with the rows (exit 1).
    from ame.batch.errors import PredictionFailedError

    with pytest.raises(PredictionFailedError, match=r"rows 0\.\.9"):
        score(str(sk_model.path), str(tmp_path / "in.parquet"), tmp_path / "o.parquet")


def test_skip_writes_bad_rows_with_reasons_and_scores_the_rest(
    tmp_path: Path, sk_model: SavedModel
) -> None:
    data, path = _with_bad_values(tmp_path)
    out = tmp_path / "out.csv"
    summary = score(
        str(sk_model.path),
        str(path),
        out,
        ScoreOptions(chunk_rows=300, id_columns=("id",), on_error="skip"),
    )
    assert summary.errors == 3 and summary.rows == 997
    scored = pd.read_csv(out)
    good = data.drop(index=[612, 613, 800])
    assert scored["id"].tolist() == good["id"].tolist()
    assert np.array_equal(scored["prediction"], sk_model.model.predict(good[FEATURES]))
    errors = [json.loads(line) for line in Path(summary.errors_file or "").read_text().splitlines()]
    assert [(e["row"], e["id"], e["column"]) for e in errors] == [
        (612, 1612, "b"),
        (613, 1613, "b"),
        (800, 1800, "b"),
    ]
    assert "'abc' is not a valid double" in errors[0]["reason"]
    assert "'--' is not a valid double" in errors[2]["reason"]


def test_max_errors_turns_too_many_skipped_rows_into_a_failure(
    tmp_path: Path, sk_model: SavedModel
) -> None:
    _, path = _with_bad_values(tmp_path)
    out = tmp_path / "out.parquet"
    with pytest.raises(TooManyErrorsError) as caught:
        score(
            str(sk_model.path), str(path), out,
            ScoreOptions(chunk_rows=300, on_error="skip", max_errors=2),
        )  # fmt: skip
    assert caught.value.exit_code == 1 and "more than --max-errors 2" in str(caught.value)
    assert not out.exists()


def test_cli_exit_codes_and_one_line_errors(tmp_path: Path, sk_model: SavedModel) -> None:
    write(frame(20, seed=13).drop(columns=["c"]), tmp_path / "no_c.parquet")
    done = ame("predict", str(sk_model.path), "-i", "no_c.parquet", "-o", "o.parquet",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith("error: column 'c' is missing from the input (first bad row: 0)")

    _, bad = _with_bad_values(tmp_path)
    done = ame(
        "predict", str(sk_model.path), "-i", str(bad), "-o", "o.csv", "--on-error", "skip",
        "--max-errors", "5", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["errors"], summary["rows"], summary["input_rows"]) == (3, 997, 1000)
    assert summary["errors_file"] == str(tmp_path / "o.csv.errors.jsonl")


def _late_bad_value(
    tmp_path: Path, rows: int = 20_000, bad_row: int = 15_000
) -> tuple[pd.DataFrame, Path]:
    """A CSV whose column b is numbers, some padded with spaces, and 'oops' at ``bad_row``.

    The bad value is blocks past the start, so the first chunks are read with b
    parsed as a double and only then does reading go back to text.
    """
    data = frame(rows, seed=14)
    text = data.astype({"b": object})
    for i in (10, 9_000, 18_000):
        text.loc[i, "b"] = f"  {float(data.loc[i, 'b'])!r} "
    text.loc[bad_row, "b"] = "oops"
    path = tmp_path / "late.csv"
    text.to_csv(path, index=False)
    return data, path


def test_a_bad_value_far_into_a_csv_is_found_with_its_row(
    tmp_path: Path, sk_model: SavedModel
) -> None:
    data, path = _late_bad_value(tmp_path)
    out = tmp_path / "out.parquet"
    with pytest.raises(SchemaMismatchError) as caught:
        score(str(sk_model.path), str(path), out, ScoreOptions(chunk_rows=2000, id_columns=("id",)))
    assert str(caught.value).startswith(
        "row 15000 (id=16000): column 'b': 'oops' is not a valid double"
    )

    summary = score(
        str(sk_model.path), str(path), out,
        ScoreOptions(chunk_rows=2000, id_columns=("id",), on_error="skip"),
    )  # fmt: skip
    good = data.drop(index=[15_000])
    scored = pd.read_parquet(out)
    assert (summary.errors, summary.rows, summary.input_rows) == (1, 19_999, 20_000)
    assert scored["id"].tolist() == good["id"].tolist()  # no chunk read twice or lost
    assert np.array_equal(scored["prediction"], sk_model.model.predict(good[FEATURES]))


def test_numbers_padded_with_spaces_score_the_same_either_way_a_csv_is_read(
    tmp_path: Path, sk_model: SavedModel
) -> None:
    data, path = _late_bad_value(tmp_path)
    clean = tmp_path / "clean.csv"
    lines = path.read_text().splitlines()
    lines[1 + 15_000] = lines[1 + 15_000].replace("oops", "0.5")  # now every value parses
    clean.write_text("\n".join(lines) + "\n")
    data.loc[15_000, "b"] = 0.5
    options = ScoreOptions(chunk_rows=2000, id_columns=("id",), on_error="skip")
    typed = pd.read_parquet(score(str(sk_model.path), str(clean), tmp_path / "a.parquet",
                                  options).output)  # fmt: skip
    assert np.array_equal(typed["prediction"], sk_model.model.predict(data[FEATURES]))
    mixed = pd.read_parquet(score(str(sk_model.path), str(path), tmp_path / "b.parquet",
                                  options).output)  # fmt: skip
    # Rows 10, 9000 and 18000 (padded) are scored in both, read as numbers or as text.
    assert mixed.set_index("id").loc[[1010, 10_000, 19_000], "prediction"].tolist() == (
        typed.set_index("id").loc[[1010, 10_000, 19_000], "prediction"].tolist()
    )
    assert len(mixed) == 19_999
