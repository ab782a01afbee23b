"""`synthreg schema infer | check | hash` (CliRunner, no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthreg.cli import schema_cmd
from synthreg.data import load_dataset
from synthreg.data.schema import Schema

runner = CliRunner()


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "registry.csv"
    load_dataset("colon").head(300).to_csv(path, index=False)
    return path


def test_infer_prints_yaml_that_loads_and_checks(data_csv: Path, tmp_path: Path) -> None:
    res = runner.invoke(schema_cmd.app, ["infer", str(data_csv), "--margin", "0.2", "--name", "colon-draft"])
    assert res.exit_code == 0, res.output
    schema = Schema.loads(res.stdout)
    assert schema.name == "colon-draft" and schema.column("nodes").nullable
    assert res.stdout.startswith("# Review before")
    path = tmp_path / "s.yaml"
    path.write_text(res.stdout)
    ok = runner.invoke(schema_cmd.app, ["check", str(data_csv), "--schema", str(path)])
    assert ok.exit_code == 0 and "ok:" in ok.stderr and "300 rows" in ok.stderr
    hashed = runner.invoke(schema_cmd.app, ["hash", str(path)])
    assert hashed.exit_code == 0 and hashed.stdout.strip() == schema.hash()
    as_json = json.loads(runner.invoke(schema_cmd.app, ["hash", str(path), "--json"]).stdout)
    assert as_json["sha256"] == schema.hash() and as_json["name"] == "colon-draft"


def test_infer_json_and_out_file(data_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "draft.yaml"
    res = runner.invoke(schema_cmd.app, ["infer", str(data_csv), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert Schema.load(out).hash() == data["sha256"] and data["rows"] == 300


def test_infer_refusal_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("pid,age\n" + "".join(f"P{i},{i}\n" for i in range(80)))
    res = runner.invoke(schema_cmd.app, ["infer", str(path)])
    assert res.exit_code == 1 and "'pid'" in res.stderr and "Traceback" not in res.output
    assert res.stdout == ""


def test_check_lists_every_problem_with_line_and_column(data_csv: Path, tmp_path: Path) -> None:
    lines = data_csv.read_text().splitlines()
    cells = lines[4].split(",")
    cells[2] = "abc"  # age, file line 5
    lines[4] = ",".join(cells)
    cells = lines[9].split(",")
    cells[0] = '"Placebo"'  # rx, file line 10
    lines[9] = ",".join(cells)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    res = runner.invoke(schema_cmd.app, ["check", str(bad), "--schema", _bundled("colon", tmp_path)])
    assert res.exit_code == 1
    assert "line 5 (header is line 1), column 'age'" in res.stderr
    assert "line 10 (header is line 1), column 'rx'" in res.stderr
    data = json.loads(runner.invoke(schema_cmd.app, ["check", str(bad), "--schema", _bundled("colon", tmp_path),
                                                     "--json"]).stdout)
    assert data["ok"] is False
    assert [(e["column"], e["line"], e["type"]) for e in data["errors"]] == [
        ("rx", 10, "UnknownCategoryError"), ("age", 5, "WrongTypeError")]


def test_check_refuses_small_and_malformed_files(tmp_path: Path) -> None:
    schema = _bundled("colon", tmp_path)
    small = tmp_path / "small.csv"
    load_dataset("colon").head(3).to_csv(small, index=False)
    res = runner.invoke(schema_cmd.app, ["check", str(small), "--schema", schema])
    assert res.exit_code == 1 and "3 data rows; at least 10 needed" in res.stderr
    assert runner.invoke(schema_cmd.app, ["check", str(small), "--schema", schema, "--min-rows", "3"]).exit_code == 0
    bad_schema = tmp_path / "bad.yaml"
    bad_schema.write_text("name: x\nversion: 1\ncolumns: [{name: a, type: float}]\n")
    res = runner.invoke(schema_cmd.app, ["check", str(small), "--schema", str(bad_schema)])
    assert res.exit_code == 2 and "unknown type 'float'" in res.stderr and "Traceback" not in res.output


def _bundled(name: str, tmp_path: Path) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(Schema.bundled(name).dump())
    return str(path)
