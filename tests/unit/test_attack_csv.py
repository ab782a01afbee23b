"""Issue 10, item 8: a registry's CSV edge cases, one test per attack.

Each attack is a file a registry could plausibly produce (a spreadsheet export,
a tool that adds a byte-order mark, a typo) that used to be accepted or refused
with a misleading error. After the fix each is refused (or read) at load, with
a typed error naming the file, the line (header = line 1) and the column.
The loaders attacked are the ones the apps and the CLI use:
:func:`load_registry_csv` (``run approve``, discriminator, merger),
:func:`load_csv` (``train-local --data``) and :func:`infer_schema_csv`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from synthreg.data.csvload import DEFAULT_MIN_ROWS, MinimumRowsError, load_csv, read_raw_csv
from synthreg.data.infer import SchemaInferenceError, infer_schema_csv
from synthreg.data.schema import MalformedCSVError, OutOfRangeError, Schema, load_registry_csv

SCHEMA = Schema.loads("""
name: mini
version: 1
columns:
  - {name: year, type: integer, min: 2000, max: 2010}
  - {name: stage, type: categorical, categories: [I, II, III]}
  - {name: dead, type: binary}
""")
ROWS = [f"{2000 + i % 11},{['I', 'II', 'III'][i % 3]},{i % 2}" for i in range(12)]


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def plain(tmp_path: Path) -> pd.DataFrame:
    return load_csv(write(tmp_path, "plain.csv", "\n".join(["year,stage,dead", *ROWS]) + "\n"), SCHEMA)


@pytest.mark.parametrize(("prefix", "header"), [
    ("\ufeff", "year,stage,dead"),            # Excel's "CSV UTF-8"
    ("\ufeff", '"year","stage","dead"'),      # ... with quoted names
    ("\ufeff\ufeff", "year,stage,dead"),      # a BOM added to a file that had one (PowerShell, editors)
])
def test_attack_csv_utf8_bom_header(tmp_path: Path, prefix: str, header: str) -> None:
    """A byte-order mark is not part of the first column's name: no MissingColumnError('year')."""
    path = write(tmp_path, "bom.csv", prefix + "\n".join([header, *ROWS]) + "\n")
    assert read_raw_csv(path).header == ("year", "stage", "dead")
    pd.testing.assert_frame_equal(load_registry_csv(path, SCHEMA), plain(tmp_path))
    utf16 = write(tmp_path, "utf16.csv", "\n".join(["year,stage,dead", *ROWS]) + "\n", encoding="utf-16")
    with pytest.raises(MalformedCSVError, match=r"UTF-16 text.*save the file as UTF-8") as info:
        load_registry_csv(utf16, SCHEMA)
    assert info.value.path == str(utf16) and info.value.line == 1


def test_attack_csv_semicolon_delimiter(tmp_path: Path) -> None:
    """A semicolon file is read as such; one with a ragged record is refused at that
    record's line naming the delimiter found, not with MissingColumnError('year')
    (a one-column header "year;stage;dead" read with commas)."""
    semi = [r.replace(",", ";") for r in ROWS]
    good = write(tmp_path, "semi.csv", "\n".join(["year;stage;dead", *semi]) + "\n")
    pd.testing.assert_frame_equal(load_registry_csv(good, SCHEMA), plain(tmp_path))
    ragged = write(tmp_path, "ragged.csv", "\n".join(["year;stage;dead", *semi[:3], "2004;I;0;", *semi[3:]]) + "\n")
    with pytest.raises(MalformedCSVError) as info:
        load_registry_csv(ragged, SCHEMA)
    assert info.value.line == 5 and info.value.path == str(ragged)
    assert "4 fields, but the header (line 1) has 3 (semicolon-delimited)" in str(info.value)


@pytest.mark.parametrize("rows", [0, 1, DEFAULT_MIN_ROWS - 1])
def test_attack_csv_header_only_or_one_row(tmp_path: Path, rows: int) -> None:
    """The apps' loader (``run approve`` checks the registry's file with it) refuses a
    file too small to train on, instead of approving it and failing in the discriminator."""
    path = write(tmp_path, "small.csv", "\n".join(["year,stage,dead", *ROWS[:rows]]) + "\n")
    for load in (load_registry_csv, load_csv):
        with pytest.raises(MinimumRowsError) as info:
            load(path, SCHEMA)
        assert (info.value.rows, info.value.min_rows, info.value.path) == (rows, DEFAULT_MIN_ROWS, str(path))
        assert f"registry CSV {path} is too small" in str(info.value)
    assert len(load_registry_csv(path, SCHEMA, min_rows=rows)) == rows  # the minimum is a named, overridable constant


@pytest.mark.parametrize("value", ["1" * 400, "-" + "1" * 400])
def test_attack_csv_400_digit_integer(tmp_path: Path, value: str) -> None:
    """A 400-digit integer is out of range (line and column named), never "expected
    integer", in validation and in ``schema infer`` (which drafted the column as text)."""
    path = write(tmp_path, "big.csv", "\n".join(["year,stage,dead", *ROWS[:4], f"{value},I,0", *ROWS[4:]]) + "\n")
    with pytest.raises(OutOfRangeError) as info:
        load_registry_csv(path, SCHEMA)
    assert (info.value.column, info.value.line) == ("year", 6) and "too large to represent" in str(info.value)
    assert "expected" not in str(info.value)
    with pytest.raises(SchemaInferenceError) as info2:
        infer_schema_csv(path)
    assert info2.value.column == "year" and "line 6" in str(info2.value) and "out of range" in str(info2.value)
    # 400 leading zeros are still the number 1: a value, not an overflow
    zeros = write(tmp_path, "zeros.csv", "\n".join(["year,stage,dead", *ROWS[:4], f"{'0' * 400}2004,I,0", *ROWS[4:]]))
    assert load_registry_csv(zeros, SCHEMA)["year"].iloc[4] == 2004
