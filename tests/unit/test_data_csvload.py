"""Reading a registry's CSV: every error names the file line (header = line 1) and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthreg.data.csvload import MinimumRowsError, check_csv, detect_delimiter, load_csv, read_raw_csv
from synthreg.data.schema import (
    MalformedCSVError,
    MissingColumnError,
    MissingValueError,
    OutOfRangeError,
    Schema,
    SchemaValidationError,
    UnexpectedColumnError,
    UnknownCategoryError,
    WrongTypeError,
    load_registry_csv,
    validate,
)

SCHEMA = Schema.loads("""
name: mini
version: 1
columns:
  - {name: year, type: integer, min: 2000, max: 2010}
  - {name: dose, type: continuous, min: 0.0, max: 5.0, nullable: true}
  - {name: stage, type: categorical, categories: [I, II, III]}
  - {name: grade, type: categorical, categories: [1, 2]}
  - {name: dead, type: binary}
""")
HEADER = "year,dose,stage,grade,dead"


def good_lines(n: int = 12) -> list[str]:
    return [f"{2000 + i % 11},{(i % 5) * 0.5},{['I', 'II', 'III'][i % 3]},{1 + i % 2},{i % 2}" for i in range(n)]


def write(tmp_path: Path, lines: list[str], header: str = HEADER, name: str = "reg.csv",
          sep: str = ",", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    text = "\n".join([header.replace(",", sep)] + [ln.replace(",", sep) for ln in lines]) + "\n"
    path.write_bytes(text.encode(encoding))
    return path


def with_line(line_no: int, content: str, n: int = 12) -> list[str]:
    """Good data lines where file line ``line_no`` (header = line 1) is ``content``."""
    lines = good_lines(n)
    lines[line_no - 2] = content
    return lines


def test_good_file_loads_validated_and_bom_is_accepted(tmp_path: Path) -> None:
    plain = load_csv(write(tmp_path, good_lines()), SCHEMA)
    bom = load_csv(write(tmp_path, good_lines(), name="bom.csv", encoding="utf-8-sig"), SCHEMA)
    assert (tmp_path / "bom.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    pd.testing.assert_frame_equal(plain, bom)
    assert list(plain.columns) == SCHEMA.column_names and len(plain) == 12
    assert plain["year"].dtype == np.int64 and plain["dose"].dtype == np.float64


@pytest.mark.parametrize(
    ("line_no", "content", "error", "column"),
    [
        (5, "2001,abc,I,1,0", WrongTypeError, "dose"),
        (4, "abc,1.0,I,1,0", WrongTypeError, "year"),
        (7, "2011,1.0,I,1,0", OutOfRangeError, "year"),
        (3, "2001,1.0,IV,1,0", UnknownCategoryError, "stage"),
        (9, "2001,1.0,I,3,0", UnknownCategoryError, "grade"),
        (6, "2001,1.0,,1,0", MissingValueError, "stage"),
        (8, "NA,1.0,I,1,0", MissingValueError, "year"),
        (13, "2001,1.0,I,1,", MissingValueError, "dead"),
    ],
)
def test_value_errors_name_file_line_and_column(
    tmp_path: Path, line_no: int, content: str, error: type[SchemaValidationError], column: str
) -> None:
    path = write(tmp_path, with_line(line_no, content))
    with pytest.raises(error) as info:
        load_csv(path, SCHEMA)
    exc = info.value
    assert isinstance(exc, SchemaValidationError)
    assert (exc.line, exc.column, exc.row, exc.source) == (line_no, column, line_no - 2, str(path))
    assert f"line {line_no} (header is line 1)" in str(exc) and repr(column) in str(exc)


def test_nullable_column_accepts_empty(tmp_path: Path) -> None:
    out = load_csv(write(tmp_path, with_line(4, "2001,,I,1,0")), SCHEMA)
    assert np.isnan(out["dose"].iloc[2])


def test_header_errors_name_the_header_line(tmp_path: Path) -> None:
    missing = write(tmp_path, [ln.rsplit(",", 1)[0] for ln in good_lines()], header="year,dose,stage,grade")
    with pytest.raises(MissingColumnError) as info:
        load_csv(missing, SCHEMA)
    assert (info.value.column, info.value.line) == ("dead", 1) and "line 1 (header)" in str(info.value)
    unknown = write(tmp_path, [ln + ",x" for ln in good_lines()], header=HEADER + ",ward", name="u.csv")
    with pytest.raises(UnexpectedColumnError) as info2:
        load_csv(unknown, SCHEMA)
    assert (info2.value.column, info2.value.line) == ("ward", 1)


@pytest.mark.parametrize("digits", [25, 400])
def test_absurdly_long_integer_is_out_of_range_not_wrong_type(tmp_path: Path, digits: int) -> None:
    path = write(tmp_path, with_line(4, f"{'9' * digits},1.0,I,1,0"))
    with pytest.raises(OutOfRangeError) as info:
        load_csv(path, SCHEMA)
    assert info.value.line == 4 and "out of range" in str(info.value)
    assert "expected integer" not in str(info.value)
    huge_float = write(tmp_path, with_line(3, "2001,1e400,I,1,0"), name="f.csv")
    with pytest.raises(OutOfRangeError):
        load_csv(huge_float, SCHEMA)
    huge_binary = write(tmp_path, with_line(3, f"2001,1.0,I,1,{'1' * 400}"), name="b.csv")
    with pytest.raises(UnknownCategoryError):
        load_csv(huge_binary, SCHEMA)


@pytest.mark.parametrize(("sep", "name"), [(";", "semicolon"), ("\t", "tab")])
def test_semicolon_and_tab_files_are_detected_and_read(tmp_path: Path, sep: str, name: str) -> None:
    path = write(tmp_path, good_lines(), sep=sep)
    assert read_raw_csv(path).delimiter == sep
    pd.testing.assert_frame_equal(load_csv(path, SCHEMA), load_csv(write(tmp_path, good_lines(), name="c.csv"), SCHEMA))
    # a decimal comma in a semicolon file: wrong type, with a hint naming the delimiter
    if sep == ";":
        bad = tmp_path / "dc.csv"
        bad.write_text(path.read_text().replace("2000;0.0;", "2000;1,5;", 1))
        with pytest.raises(WrongTypeError) as info:
            load_csv(bad, SCHEMA)
        assert "decimal comma" in str(info.value) and name in str(info.value)


def test_detect_delimiter_prefers_a_consistent_split() -> None:
    assert detect_delimiter("a;b\n1,5;2\n") == ";"
    assert detect_delimiter("a,b\n1,2\n") == ","
    assert detect_delimiter("single\n1\n") == ","


def test_header_only_and_too_few_rows_are_refused(tmp_path: Path) -> None:
    header_only = write(tmp_path, [], name="h.csv")
    with pytest.raises(MinimumRowsError) as info:
        load_csv(header_only, SCHEMA)
    assert info.value.rows == 0 and "no data rows" in str(info.value)
    few = write(tmp_path, good_lines(9))
    with pytest.raises(MinimumRowsError) as info2:
        load_csv(few, SCHEMA)
    assert (info2.value.rows, info2.value.min_rows) == (9, 10)
    assert len(load_csv(few, SCHEMA, min_rows=9)) == 9
    with pytest.raises(MinimumRowsError):  # checked before any value
        load_csv(write(tmp_path, ["junk,junk,junk,junk,junk"], name="j.csv"), SCHEMA)


@pytest.mark.parametrize(
    ("raw", "line", "needle"),
    [
        (b"year,dose,stage,grade,dead\n2001,1.0,I,1,0,extra\n", 2, "6 fields"),
        (b"year,dose\n2001,\xff\xfe\n", 2, "not UTF-8"),
        (b"year,dose,stage,grade,dead\n2001,\"1.0,I,1,0\n", None, "not parseable"),
        (b"year,dose,stage,grade,dead\n2001,1.0,I\x00,1,0\n", 2, "NUL bytes"),
        (b"year,,stage\n1,2,3\n", 1, "empty column name"),
        (b"", None, "empty file"),
    ],
)
def test_unparseable_files_are_malformed(tmp_path: Path, raw: bytes, line: int | None, needle: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(raw)
    with pytest.raises(MalformedCSVError) as info:
        load_csv(path, SCHEMA, min_rows=0)
    assert needle in str(info.value) and str(path) in str(info.value)
    if line is not None:
        assert info.value.line == line


def test_lines_follow_the_file_across_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    schema = Schema.loads("""
name: notes
version: 1
columns:
  - {name: note, type: categorical, categories: ["a\\nb", c]}
  - {name: n, type: integer, min: 0, max: 9}
""")
    path = tmp_path / "q.csv"
    path.write_text('note,n\n"a\nb",1\n\nc,2\nc,x\n')
    raw = read_raw_csv(path)
    assert raw.lines == (2, 5, 6)
    with pytest.raises(WrongTypeError) as info:
        load_csv(path, schema, min_rows=0)
    assert info.value.line == 6


def test_check_collects_one_error_per_column(tmp_path: Path) -> None:
    lines = with_line(4, "abc,1.0,IV,1,0")
    lines[8] = "2001,9.0,I,1,0"
    path = write(tmp_path, [ln + ",w" for ln in lines], header=HEADER + ",ward")
    result = check_csv(path, SCHEMA)
    assert not result.ok and result.rows == 12 and result.delimiter == ","
    found = [(type(e), e.column, e.line) for e in result.errors]
    assert found == [
        (UnexpectedColumnError, "ward", 1),
        (WrongTypeError, "year", 4),
        (OutOfRangeError, "dose", 10),
        (UnknownCategoryError, "stage", 4),
    ]
    assert check_csv(write(tmp_path, good_lines(), name="ok.csv"), SCHEMA).ok


def test_load_registry_csv_keeps_its_contract(tmp_path: Path) -> None:
    header_only = write(tmp_path, [], name="h.csv")
    with pytest.raises(MinimumRowsError):  # a registry's file: DEFAULT_MIN_ROWS (issue 10, item 8c)
        load_registry_csv(header_only, SCHEMA)
    assert len(load_registry_csv(header_only, SCHEMA, min_rows=0)) == 0  # synthreg report's own minimum applies
    path = write(tmp_path, good_lines(3))
    frame = pd.DataFrame([ln.split(",") for ln in good_lines(3)], columns=HEADER.split(","), dtype=object)
    pd.testing.assert_frame_equal(load_registry_csv(path, SCHEMA, min_rows=3), validate(frame, SCHEMA))
