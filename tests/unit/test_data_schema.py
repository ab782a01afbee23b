"""Schema format, canonical hashing and validation errors (one test per bad-input kind)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthreg.data.schema import (
    MalformedCSVError,
    MissingColumnError,
    MissingValueError,
    OutOfRangeError,
    Schema,
    SchemaFormatError,
    SchemaValidationError,
    UnexpectedColumnError,
    UnknownCategoryError,
    WrongTypeError,
    load_registry_csv,
    validate,
)

SCHEMA_YAML = """
name: mini
version: 2
partition: year
columns:
  - {name: year, type: integer, min: 2000, max: 2010}
  - {name: dose, type: continuous, min: 0.0, max: 5.0, nullable: true}
  - {name: stage, type: categorical, categories: [I, II, III]}
  - {name: grade, type: categorical, categories: [1, 2]}
  - {name: dead, type: binary}
"""


@pytest.fixture()
def schema() -> Schema:
    return Schema.loads(SCHEMA_YAML)


def good_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "year": [2001, 2005, 2010],
            "dose": [0.5, np.nan, 4.0],
            "stage": ["I", "III", "II"],
            "grade": [1, 2, 2],
            "dead": [0, 1, 0],
        }
    )


def test_valid_frame_passes_with_schema_dtypes(schema: Schema) -> None:
    out = validate(good_frame(), schema)
    assert list(out.columns) == schema.column_names
    assert out["year"].dtype == np.int64
    assert out["dose"].dtype == np.float64 and np.isnan(out["dose"].iloc[1])
    assert out["grade"].tolist() == [1, 2, 2]


def test_dump_load_roundtrip_keeps_hash(schema: Schema) -> None:
    again = Schema.loads(schema.dump())
    assert again == schema
    assert again.hash() == schema.hash()
    assert len(schema.hash()) == 64


def test_hash_changes_with_semantics(schema: Schema) -> None:
    changed = Schema.loads(SCHEMA_YAML.replace("max: 2010", "max: 2011"))
    assert changed.hash() != schema.hash()


def test_bundled_rotterdam_schema_loads() -> None:
    s = Schema.bundled("rotterdam")
    assert s.partition == "year"
    assert len(s.columns) == 14
    assert s.column("size").categories == ("<=20", "20-50", ">50")


@pytest.mark.parametrize(
    "bad",
    [
        "name: x\nversion: 1\ncolumns: [{name: a, type: float}]",
        "name: x\nversion: 1\ncolumns: [{name: a, type: integer, min: 5, max: 1}]",
        "name: x\nversion: 1\ncolumns: [{name: a, type: categorical}]",
        "name: x\nversion: 1\ncolumns: [{name: a, type: binary}, {name: a, type: binary}]",
        "name: x\ncolumns: []",
        "name: [unclosed",
    ],
)
def test_malformed_schema_is_rejected(bad: str) -> None:
    with pytest.raises(SchemaFormatError):
        Schema.loads(bad)


def _expect(schema: Schema, df: pd.DataFrame, exc: type[SchemaValidationError],
            column: str, row: object) -> SchemaValidationError:
    with pytest.raises(exc) as info:
        validate(df, schema)
    err = info.value
    assert isinstance(err, SchemaValidationError)
    assert err.column == column
    assert err.row == row
    assert repr(column) in str(err)
    if row is not None:
        assert f"row {row}" in str(err)
    return err


def test_missing_column(schema: Schema) -> None:
    _expect(schema, good_frame().drop(columns=["stage"]), MissingColumnError, "stage", None)


def test_unexpected_column(schema: Schema) -> None:
    df = good_frame().assign(patient_id=[1, 2, 3])
    _expect(schema, df, UnexpectedColumnError, "patient_id", None)
    assert "patient_id" not in validate(df, schema, allow_extra=True).columns


def test_nan_where_not_nullable(schema: Schema) -> None:
    df = good_frame()
    df.loc[2, "year"] = np.nan
    _expect(schema, df, MissingValueError, "year", 2)


def test_inf_is_rejected_even_in_nullable_column(schema: Schema) -> None:
    df = good_frame()
    df.loc[0, "dose"] = np.inf
    _expect(schema, df, MissingValueError, "dose", 0)


def test_wrong_type_text_in_integer(schema: Schema) -> None:
    df = good_frame().astype({"year": object})
    df.loc[1, "year"] = "two thousand"
    err = _expect(schema, df, WrongTypeError, "year", 1)
    assert err.value == "two thousand"


def test_wrong_type_fraction_in_integer(schema: Schema) -> None:
    df = good_frame().astype({"year": float})
    df.loc[2, "year"] = 2003.5
    _expect(schema, df, WrongTypeError, "year", 2)


def test_unknown_category(schema: Schema) -> None:
    df = good_frame()
    df.loc[1, "stage"] = "IV"
    _expect(schema, df, UnknownCategoryError, "stage", 1)


def test_unknown_integer_category_and_binary(schema: Schema) -> None:
    df = good_frame()
    df.loc[0, "grade"] = 3
    _expect(schema, df, UnknownCategoryError, "grade", 0)
    df = good_frame()
    df.loc[2, "dead"] = 2
    _expect(schema, df, UnknownCategoryError, "dead", 2)


def test_out_of_range_counts_rows(schema: Schema) -> None:
    df = good_frame()
    df.loc[[1, 2], "year"] = [1999, 2042]
    err = _expect(schema, df, OutOfRangeError, "year", 1)
    assert err.n_bad == 2


def test_csv_roundtrip_and_errors_name_row(schema: Schema, tmp_path: Path) -> None:
    path = tmp_path / "registry.csv"
    good_frame().to_csv(path, index=False)
    pd.testing.assert_frame_equal(load_registry_csv(path, schema, min_rows=0), validate(good_frame(), schema))

    path.write_text("year,dose,stage,grade,dead\n2001,1.0,I,1,0\n2002,x,II,2,1\n")
    with pytest.raises(WrongTypeError) as info:
        load_registry_csv(path, schema, min_rows=0)
    assert (info.value.row, info.value.column) == (1, "dose")


def test_malformed_csv(schema: Schema, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("year,dose,stage,grade,dead\n2001,1.0,I,1,0,extra,fields\n")
    with pytest.raises(MalformedCSVError):
        load_registry_csv(path, schema, min_rows=0)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(MalformedCSVError):
        load_registry_csv(empty, schema, min_rows=0)
