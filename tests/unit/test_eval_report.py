"""Unit tests of synthreg.eval.report.write_report and the `synthreg report` command."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from synthreg.cli.main import app
from synthreg.data import dataset_schema, load_dataset
from synthreg.eval.errors import HistoryFormatError, HoldoutOverlapError, SchemaMismatchError
from synthreg.eval.inputs import without_rows
from synthreg.eval.report import METRICS_NAME, REPORT_NAME, write_report
from synthreg.eval.table import TableSpec
from synthreg.eval.utility import column_task, holdout_split

# A 6-column sub-schema (15 column pairs) keeps SDMetrics fast; utility then
# predicts `death` from the other five columns.
_COLS = ("age", "meno", "size", "nodes", "er", "death")


@pytest.fixture(scope="module")
def data() -> tuple[TableSpec, pd.DataFrame, pd.DataFrame]:
    full = TableSpec.from_schema(dataset_schema("rotterdam"))
    spec = TableSpec(columns=_COLS, categorical=full.categorical & set(_COLS))
    real = load_dataset("rotterdam").sample(600, random_state=0)[list(_COLS)]
    train, hold = holdout_split(real, 0.3, seed=0)
    return spec, train, hold


def _history() -> list[dict[str, float | int]]:
    return [{"round": r, "registry": k, "g_loss": 1.0 / (r + 1), "d_loss": -0.1 * r}
            for r in range(4) for k in range(3)]


def test_write_report_writes_markdown_pngs_and_metrics(tmp_path: Path, data) -> None:
    spec, train, hold = data
    synthetic = train.sample(frac=1.0, random_state=1).assign(age=lambda f: f.age.to_numpy()[::-1])
    path = write_report(train, synthetic, spec, tmp_path / "out", history=_history(), holdout=hold,
                        task=column_task("death", spec))
    out = tmp_path / "out"
    assert path == out / REPORT_NAME
    assert {p.name for p in out.iterdir()} == {
        REPORT_NAME, METRICS_NAME, "marginals.png", "association_diff.png", "loss_curves.png"}
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / METRICS_NAME).read_text())
    assert 0.0 < metrics["quality"]["score"] <= 1.0
    assert metrics["utility"]["task"] == "death"
    assert metrics["privacy"]["n_holdout"] == len(hold)
    text = path.read_text()
    assert text.startswith("# Synthetic data evaluation\n\n## Summary")
    assert "3 registries, 4 rounds" in text and "![loss curves](loss_curves.png)" in text


def test_report_without_holdout_says_so_and_flags_copies(tmp_path: Path, data) -> None:
    spec, train, _ = data
    path = write_report(train, train, spec, tmp_path, task=column_task("death", spec))
    metrics = json.loads((tmp_path / METRICS_NAME).read_text())
    assert metrics["privacy"] is None and metrics["synthetic_exact_copy_rate"] == 1.0
    assert "disclosure risk" in path.read_text() and metrics["notes"]
    assert not (tmp_path / "loss_curves.png").exists()


def test_schema_mismatch_raises_before_writing(tmp_path: Path, data) -> None:
    spec, train, hold = data
    with pytest.raises(SchemaMismatchError) as info:
        write_report(train, train.drop(columns=["age"]), spec, tmp_path / "out", holdout=hold)
    assert info.value.missing == ("age",)
    assert not (tmp_path / "out").exists()


def test_bad_history_raises_before_writing(tmp_path: Path, data) -> None:
    spec, train, _ = data
    with pytest.raises(HistoryFormatError):
        write_report(train, train, spec, tmp_path / "out", history=[{"round": 0}])
    assert not (tmp_path / "out").exists()


def test_cli_missing_synthetic_file_is_a_readable_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "--synthetic", str(tmp_path / "nope.csv"),
                                      "--out", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "InputFileError" and "nope.csv" in error["message"]
    assert "Traceback" not in result.output


def test_cli_schema_mismatch_names_the_column(tmp_path: Path) -> None:
    csv = tmp_path / "synthetic.csv"
    load_dataset("rotterdam").head(30).drop(columns=["nodes"]).to_csv(csv, index=False)
    result = CliRunner().invoke(app, ["report", "--synthetic", str(csv), "--out", str(tmp_path / "r"),
                                      "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "MissingColumnError" and "nodes" in error["message"]
    assert not (tmp_path / "r").exists()


def test_cli_unknown_dataset_is_a_readable_error(tmp_path: Path) -> None:
    csv = tmp_path / "synthetic.csv"
    load_dataset("rotterdam").head(30).to_csv(csv, index=False)
    result = CliRunner().invoke(app, ["report", "--synthetic", str(csv), "--real", "nosuch",
                                      "--out", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["type"] == "InputFileError"


@pytest.mark.slow
def test_cli_end_to_end_on_bundled_dataset(tmp_path: Path) -> None:
    real = load_dataset("rotterdam")
    train, hold = holdout_split(real, 0.2, seed=0)
    synthetic, holdout = tmp_path / "synthetic.csv", tmp_path / "holdout.csv"
    train.sample(500, random_state=0).to_csv(synthetic, index=False)
    hold.to_csv(holdout, index=False)
    history = tmp_path / "history.json"
    history.write_text(json.dumps(_history()))
    result = CliRunner().invoke(app, ["report", "--synthetic", str(synthetic), "--holdout", str(holdout),
                                      "--history", str(history), "--out", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["utility"]["task"] == "death_5y"
    # the "synthetic" rows are copies of real rows, which the report must see
    assert metrics["privacy"]["exact_copy_rate"] == 1.0
    assert (tmp_path / "r" / "loss_curves.png").exists()


def test_holdout_that_is_in_real_is_rejected(tmp_path: Path, data) -> None:
    spec, train, _ = data
    with pytest.raises(HoldoutOverlapError) as info:
        write_report(train, train, spec, tmp_path / "out", holdout=train.head(50))
    assert info.value.overlapping == 50
    assert not (tmp_path / "out").exists()


def test_without_rows_is_a_multiset_difference() -> None:
    frame = pd.DataFrame({"a": [1, 1, 2, 3], "b": ["x", "x", "y", "z"]})
    kept, removed = without_rows(frame, pd.DataFrame({"a": [1, 3, 9], "b": ["x", "z", "q"]}))
    assert removed == 2
    assert kept.to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}
