"""Reading a registry's own CSV file and validating it against the agreed schema.

Who calls: ``synthreg train-local --data`` (one file per registry), ``synthreg
schema check`` / ``schema infer``, :func:`synthreg.data.schema.load_registry_csv`
(``synthreg report``), and a registry's apps before training. Where data lives:
the file stays where the registry keeps it; it is read once, as text, and
nothing is written.

Reading: UTF-8 with or without a byte-order mark (``utf-8-sig``; a doubled
BOM, as left by a tool that adds one to a file that had one, is dropped too);
the delimiter is detected among ``,`` ``;`` tab and ``|`` (the one that splits
the header and the first records into the same number of fields, more than one;
a comma is preferred on a tie; when no delimiter splits them consistently, the
one that splits the header into the most fields, so that a ragged record is
reported at its line instead of the header being read as one column) unless
given; empty lines are skipped; quoted fields may span lines. Every cell
stays text until :func:`~synthreg.data.schema.validate` coerces it, so every
error can name the file line where its record starts.

Row convention in errors: ``line`` is the 1-based line of the file, the header
being line 1 (the first data record is line 2); the message says "line N
(header is line 1)". ``row`` on the error stays the 0-based data row.

What fails when (all are ``ValueError``):

* :class:`~synthreg.data.schema.MalformedCSVError`: not UTF-8 (UTF-16 named as
  such), NUL bytes, an unterminated quote, a record with more or fewer fields than the header, an
  empty header name, an empty file; :class:`MinimumRowsError` (a subclass) for a
  header-only file or fewer than ``min_rows`` data records (default
  :data:`DEFAULT_MIN_ROWS`);
* a :class:`~synthreg.data.schema.SchemaValidationError` subclass naming the
  line and column: missing / unexpected / duplicate column, wrong type ("abc"
  in an integer column), out of range (also for a number too large to
  represent), unknown category, missing value in a non-nullable column.

``FileNotFoundError`` / ``OSError`` pass through unchanged.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from synthreg.data.schema import (
    DEFAULT_MIN_ROWS as DEFAULT_MIN_ROWS,  # re-exported: csvload is where callers look for it
)
from synthreg.data.schema import (
    MalformedCSVError,
    Schema,
    SchemaValidationError,
    WrongTypeError,
    validate,
    validation_errors,
)

DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
_SNIFF_RECORDS = 50
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")


class MinimumRowsError(MalformedCSVError):
    """The file has fewer data records than required (a header-only file has 0)."""

    def __init__(self, path: str, rows: int, min_rows: int) -> None:
        self.rows = rows
        self.min_rows = min_rows
        what = "only a header, no data rows" if rows == 0 else f"{rows} data row{'s' if rows != 1 else ''}"
        super().__init__(path, f"{what}; at least {min_rows} needed")
        self.args = (f"registry CSV {path} is too small: {self.detail}",)  # well-formed, not "malformed"


@dataclass(frozen=True)
class RawCSV:
    """A parsed file before validation: header, text cells, and where each record starts.

    ``lines[i]`` is the 1-based file line of data record ``i`` (header = line 1).
    """

    path: str
    delimiter: str
    header: tuple[str, ...]
    records: tuple[tuple[str, ...], ...]
    lines: tuple[int, ...]

    @property
    def n_rows(self) -> int:
        return len(self.records)

    def frame(self) -> pd.DataFrame:
        """The records as an all-text (object) DataFrame, index 0..n-1, header as columns."""
        return pd.DataFrame(list(self.records), columns=list(self.header), dtype=object)

    def line_of(self, row: object) -> int | None:
        """File line of 0-based data row ``row`` (None if ``row`` is None or unknown)."""
        if isinstance(row, int) and 0 <= row < len(self.lines):
            return self.lines[row]
        return None

    def locate(self, exc: SchemaValidationError) -> SchemaValidationError:
        """``exc`` placed at its file line (header errors at line 1), with a
        decimal-comma hint when a number like ``1,5`` failed in a non-comma file."""
        line = 1 if exc.row is None else self.line_of(exc.row)
        note = ""
        if (isinstance(exc, WrongTypeError) and self.delimiter != ","
                and isinstance(exc.value, str) and _DECIMAL_COMMA.match(exc.value.strip())):
            note = f" (decimal comma? this file is {_delimiter_name(self.delimiter)}-delimited; write 1.5, not 1,5)"
        return exc.located(self.path, line, note)


@dataclass(frozen=True)
class CSVCheck:
    """Outcome of :func:`check_csv`: every problem found, located in the file."""

    path: str
    delimiter: str
    rows: int
    errors: tuple[SchemaValidationError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def read_raw_csv(path: str | Path, *, delimiter: str | None = None) -> RawCSV:
    """Parse ``path`` into a :class:`RawCSV` (no schema involved).

    ``delimiter`` None detects it (module docstring). Raises
    :class:`~synthreg.data.schema.MalformedCSVError` for anything that is not a
    rectangular UTF-8 CSV with a non-empty header.
    """
    path = Path(path)
    name = str(path)
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise MalformedCSVError(name, "UTF-16 text (it starts with a UTF-16 byte-order mark); "
                                      "save the file as UTF-8", 1)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MalformedCSVError(
            name, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                  "save the file as UTF-8", line) from exc
    text = text.lstrip("\ufeff")  # utf-8-sig drops one BOM; a file BOM'd twice has another
    if not text.strip():
        raise MalformedCSVError(name, "empty file (no header row)")
    if "\x00" in text:
        raise MalformedCSVError(name, "contains NUL bytes (UTF-16 text or a spreadsheet file?); "
                                      "save it as a UTF-8 CSV", text.count("\n", 0, text.index("\x00")) + 1)
    delim = delimiter if delimiter is not None else detect_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, skipinitialspace=True, strict=True)
    records: list[list[str]] = []
    lines: list[int] = []
    try:
        end = 0
        for row in reader:
            start, end = end + 1, reader.line_num
            if row:
                records.append(row)
                lines.append(start)
    except csv.Error as exc:
        raise MalformedCSVError(name, f"not parseable as CSV: {exc}", reader.line_num) from exc
    header = tuple(h.strip() for h in records[0])
    if any(not h for h in header):
        pos = next(i for i, h in enumerate(header) if not h) + 1
        raise MalformedCSVError(name, f"header field {pos} is an empty column name", lines[0])
    for row, line in zip(records[1:], lines[1:], strict=True):
        if len(row) != len(header):
            raise MalformedCSVError(
                name, f"{len(row)} fields, but the header (line {lines[0]}) has {len(header)} "
                      f"({_delimiter_name(delim)}-delimited)", line)
    return RawCSV(name, delim, header, tuple(tuple(r) for r in records[1:]), tuple(lines[1:]))


def detect_delimiter(text: str) -> str:
    """The delimiter among :data:`DELIMITERS` that splits the header and the first
    records into one consistent number (> 1) of fields; the widest wins, a comma
    on ties. When none does, the one that splits the header into the most fields
    (> 1), so that the ragged record is reported at its line ("4 fields, but the
    header has 3 (semicolon-delimited)") rather than every schema column being
    "missing" from a one-column header. A single-column file is read with commas."""
    sample = text[: 1 << 16]
    complete = sample if len(text) <= len(sample) else sample[: sample.rfind("\n") + 1]
    best, best_width = ",", 1
    header_best, header_width = ",", 1
    for delim in DELIMITERS:
        try:
            rows = [r for r in itertools.islice(csv.reader(io.StringIO(complete, newline=""), delimiter=delim,
                                                           skipinitialspace=True), _SNIFF_RECORDS) if r]
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        if width > best_width and all(len(r) == width for r in rows):
            best, best_width = delim, width
        if width > header_width:
            header_best, header_width = delim, width
    return best if best_width > 1 else header_best


def load_csv(
    path: str | Path,
    schema: Schema,
    *,
    min_rows: int = DEFAULT_MIN_ROWS,
    delimiter: str | None = None,
) -> pd.DataFrame:
    """Read a registry's CSV and return it validated (schema column order and dtypes).

    Raises :class:`MinimumRowsError` when the file has fewer than ``min_rows``
    data records (checked before any value), the first
    :class:`~synthreg.data.schema.SchemaValidationError` found (scanning
    columns in schema order) with its ``line`` and ``source`` set, or
    :class:`~synthreg.data.schema.MalformedCSVError` (module docstring).
    """
    raw = read_raw_csv(path, delimiter=delimiter)
    if raw.n_rows < min_rows:
        raise MinimumRowsError(raw.path, raw.n_rows, min_rows)
    try:
        return validate(raw.frame(), schema)
    except SchemaValidationError as exc:
        raise raw.locate(exc) from exc


def check_csv(
    path: str | Path,
    schema: Schema,
    *,
    min_rows: int = DEFAULT_MIN_ROWS,
    delimiter: str | None = None,
) -> CSVCheck:
    """Every schema problem of a file at once: header errors, then the first
    offending line of each column (with a count of affected rows).

    Who calls: ``synthreg schema check``. Raises what :func:`read_raw_csv` raises and
    :class:`MinimumRowsError`; schema problems are returned, not raised.
    """
    raw = read_raw_csv(path, delimiter=delimiter)
    if raw.n_rows < min_rows:
        raise MinimumRowsError(raw.path, raw.n_rows, min_rows)
    errors = tuple(raw.locate(e) for e in validation_errors(raw.frame(), schema))
    return CSVCheck(raw.path, raw.delimiter, raw.n_rows, errors)


def _delimiter_name(delim: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(delim, repr(delim))
