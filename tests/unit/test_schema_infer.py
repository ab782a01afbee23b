"""Drafting a schema from data: the draft loads with the Schema loader and validates its data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from synthreg.data import load_dataset
from synthreg.data.csvload import MinimumRowsError, load_csv
from synthreg.data.infer import SchemaInferenceError, infer_schema, infer_schema_csv, render_schema_yaml
from synthreg.data.schema import Schema


@pytest.mark.parametrize("dataset", ["rotterdam", "colon"])
def test_round_trip_infer_load_validate(tmp_path: Path, dataset: str) -> None:
    real = load_dataset(dataset)
    path = tmp_path / f"{dataset}.csv"
    real.to_csv(path, index=False)
    draft = infer_schema_csv(path, margin=0.1)
    text = draft.yaml("drafted in a test")
    assert text.startswith("# drafted in a test\n")
    schema = Schema.loads(text)  # the loader every registry uses
    assert schema.hash() == draft.schema.hash() and schema.name == dataset
    loaded = load_csv(path, schema)
    assert len(loaded) == len(real)
    assert list(loaded.columns) == list(real.columns)
    # the draft finds the agreed (bundled) schema's type, categories and nullability for every column
    bundled = Schema.bundled(dataset)
    for spec in schema.columns:
        agreed = bundled.column(spec.name)
        assert (spec.type, set(spec.categories), spec.nullable) == (
            agreed.type, set(agreed.categories), agreed.nullable), spec.name
        if spec.is_numeric:
            assert spec.min is not None and spec.max is not None
            assert spec.min <= real[spec.name].min() and spec.max >= real[spec.name].max()


def frame(**cols: list[object]) -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in cols.items()})


def test_type_rules() -> None:
    n = 20
    df = frame(
        flag=[str(i % 2) for i in range(n)],
        grade=[str(1 + i % 3) for i in range(n)],
        age=[str(30 + i) for i in range(n)],
        dose=[f"{0.25 * i:.2f}" for i in range(n)],
        arm=["A" if i % 2 else "B" for i in range(n)],
        nodes=[str(v) for v in [0] * 15 + [1, 2, 3, 40, 120]],
        missing=[("" if i % 4 == 0 else str(i)) for i in range(n)],
    )
    cols = {c.name: c for c in infer_schema(df, name="t", margin=0.1).schema.columns}
    assert cols["flag"].type == "binary"
    assert cols["grade"].type == "categorical" and cols["grade"].categories == (1, 2, 3)
    assert cols["age"].type == "integer" and (cols["age"].min, cols["age"].max) == (28, 51)
    assert cols["dose"].type == "continuous" and cols["dose"].min == 0 and cols["dose"].max == 5.23
    assert cols["arm"].type == "categorical" and cols["arm"].categories == ("A", "B")
    assert cols["nodes"].transform == "log1p" and cols["nodes"].min == 0
    assert cols["missing"].nullable and not cols["age"].nullable
    assert cols["age"].transform == "none"


def test_margin_and_constant_columns() -> None:
    df = frame(x=["-10", "10"], c=["5", "5"], f=["0.5", "0.5"])
    zero = {c.name: c for c in infer_schema(df, name="t", margin=0.0, max_int_categories=0).schema.columns}
    assert (zero["x"].min, zero["x"].max) == (-10, 10)
    assert zero["c"].min == 5 and zero["c"].max == 6  # min < max always
    assert zero["f"].min == 0.5 and zero["f"].max is not None and zero["f"].max > 0.5
    wide = {c.name: c for c in infer_schema(df, name="t", margin=0.5, max_int_categories=0).schema.columns}
    assert (wide["x"].min, wide["x"].max) == (-20, 20)
    with pytest.raises(ValueError):
        infer_schema(df, name="t", margin=-0.1)


def test_mostly_numeric_column_with_a_typo_gets_a_note_naming_the_line(tmp_path: Path) -> None:
    lines = ["age,arm"] + [f"{30 + i},A" for i in range(30)]
    lines[7] = "abc,A"
    path = tmp_path / "typo.csv"
    path.write_text("\n".join(lines) + "\n")
    draft = infer_schema_csv(path, max_categories=100)
    assert draft.schema.column("age").type == "categorical"
    assert len(draft.notes) == 1 and "'abc' (line 8)" in draft.notes[0]


def test_identifier_and_empty_columns_are_refused(tmp_path: Path) -> None:
    ids = frame(pid=[f"P{i:04d}" for i in range(60)], age=[str(i) for i in range(60)])
    with pytest.raises(SchemaInferenceError) as info:
        infer_schema(ids, name="t")
    assert info.value.column == "pid" and "identifier" in str(info.value)
    assert infer_schema(ids, name="t", max_categories=60).schema.column("pid").type == "categorical"
    empty = frame(x=["", "NA"], y=["1", "2"])
    with pytest.raises(SchemaInferenceError) as info2:
        infer_schema(empty, name="t")
    assert info2.value.column == "x"
    header_only = tmp_path / "h.csv"
    header_only.write_text("a,b\n")
    with pytest.raises(MinimumRowsError):
        infer_schema_csv(header_only)


def test_typed_frames_are_drafted_too() -> None:
    df = pd.DataFrame({"b": [True, False, True], "n": [1.5, np.nan, 3.0], "i": pd.array([1, 7, None], "Int64")})
    cols = {c.name: c for c in infer_schema(df, name="t", max_int_categories=0).schema.columns}
    assert cols["b"].type == "binary"
    assert cols["n"].type == "continuous" and cols["n"].nullable
    assert cols["i"].type == "integer" and cols["i"].nullable


def test_rendered_yaml_is_the_bundled_layout_and_round_trips() -> None:
    bundled = Schema.bundled("rotterdam")
    text = render_schema_yaml(bundled, "a comment")
    assert Schema.loads(text).hash() == bundled.hash()
    column_lines = [ln for ln in text.splitlines() if ln.startswith("  - {")]
    assert len(column_lines) == len(bundled.columns)
    assert yaml.safe_load(text)["partition"] == "year"
    odd = Schema.from_dict({"name": "yes", "version": 1, "columns": [
        {"name": "on", "type": "categorical", "categories": ["1", "no", "a: b", "é"]}]})
    assert Schema.loads(render_schema_yaml(odd)).hash() == odd.hash()
