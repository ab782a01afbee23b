"""Draft a schema from a registry's data (``synthreg schema infer``).

Who calls: ``synthreg schema infer DATA.csv``, so that a consortium can start
from a draft instead of an empty file; the draft is then reviewed and agreed
offline like any schema (its hash goes on the ledger). Where data lives: the
CSV is read once (:func:`synthreg.data.csvload.read_raw_csv`); only the draft
YAML is produced, on stdout or in a file the caller names.

Rules, per column in file order (empty, ``NA`` and ``nan`` cells are missing,
as in :func:`synthreg.data.schema.validate`):

* any missing cell -> ``nullable: true``;
* every present value a finite number:
  - all integers within {0, 1} -> ``binary``;
  - all integers with at most ``max_int_categories`` distinct values ->
    ``categorical`` with those integers;
  - otherwise ``integer`` (all integral) or ``continuous``, with ``min``/``max``
    the observed extremes widened by ``margin`` x (max - min) on each side
    (integers to whole numbers, continuous to three significant digits of the
    span, rounded outward); a column without negative values keeps ``min >= 0``;
    a non-negative column with skewness > 2 gets ``transform: log1p``;
* otherwise ``categorical`` with the sorted distinct (stripped) strings.

The draft's ranges are observed extremes, not clinical plausibility limits:
the output says so and asks for review.

What fails when: :class:`SchemaInferenceError` for a column without any value,
a number too large to represent (a 400-digit integer: out of range, with its
line), or a text column with more than ``max_categories`` distinct values (an
identifier or free text: take it out of the file); read errors of
:mod:`synthreg.data.csvload` for the file. A column that is mostly numbers
with a few text values becomes categorical, and a note names the first text
value and its line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import yaml

from synthreg.data.csvload import MinimumRowsError, read_raw_csv
from synthreg.data.schema import Schema, _missing_mask, _number_text_to_float, _too_large

DEFAULT_MARGIN = 0.1
DEFAULT_MAX_INT_CATEGORIES = 5
DEFAULT_MAX_CATEGORIES = 50
_SKEW_LOG1P = 2.0
_MOSTLY_NUMERIC = 0.9


class SchemaInferenceError(ValueError):
    """A column's type cannot be drafted from the data; names the column (and file)."""

    def __init__(self, column: str, detail: str, source: str | None = None) -> None:
        self.column = column
        self.detail = detail
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"cannot infer a schema: {where}column {column!r}: {detail}")


@dataclass(frozen=True)
class SchemaDraft:
    """A drafted schema and notes a reviewer should read (one line each)."""

    schema: Schema
    notes: tuple[str, ...]
    rows: int

    def yaml(self, comment: str = "") -> str:
        """The draft as YAML that :meth:`Schema.loads` reads back to the same hash."""
        return render_schema_yaml(self.schema, comment)


def infer_schema(
    frame: pd.DataFrame,
    *,
    name: str,
    margin: float = DEFAULT_MARGIN,
    max_int_categories: int = DEFAULT_MAX_INT_CATEGORIES,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    description: str = "",
    source: str | None = None,
    lines: Sequence[int] | None = None,
) -> SchemaDraft:
    """Draft a schema for ``frame`` (text cells as read from a CSV, or typed columns).

    ``frame``'s rows are taken by position; ``lines[i]`` (optional) is the file
    line of row ``i``, used in notes; ``source`` names the file in errors.
    Raises :class:`SchemaInferenceError` (also for a duplicated column name);
    ``ValueError`` for a negative margin or category limits below 1.
    """
    if not margin >= 0 or not math.isfinite(margin):
        raise ValueError(f"margin must be a finite number >= 0, got {margin}")
    if max_int_categories < 0 or max_categories < 1:
        raise ValueError("category limits must be >= 0 (integers) and >= 1 (text)")
    names = [str(c) for c in frame.columns]
    for dup in (c for c in names if names.count(c) > 1):
        raise SchemaInferenceError(dup, "appears twice in the header", source)
    notes: list[str] = []
    columns = []
    for col in frame.columns:
        series = frame[col].reset_index(drop=True)
        column, note = _infer_column(str(col), series, margin, max_int_categories, max_categories,
                                     source, lines)
        columns.append(column)
        if note:
            notes.append(note)
    doc: dict[str, Any] = {"name": name, "version": 1}
    if description:
        doc["description"] = description
    doc["columns"] = columns
    return SchemaDraft(Schema.from_dict(doc, source="inferred"), tuple(notes), len(frame))


def infer_schema_csv(
    path: str | Path,
    *,
    name: str | None = None,
    margin: float = DEFAULT_MARGIN,
    max_int_categories: int = DEFAULT_MAX_INT_CATEGORIES,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> SchemaDraft:
    """:func:`infer_schema` of a registry's CSV; ``name`` defaults to the file's stem.

    Raises the read errors of :mod:`synthreg.data.csvload` (a header-only file:
    :class:`~synthreg.data.csvload.MinimumRowsError`) and :class:`SchemaInferenceError`.
    """
    raw = read_raw_csv(path)
    if raw.n_rows < 1:
        raise MinimumRowsError(raw.path, 0, 1)
    stem = Path(path).stem
    return infer_schema(
        raw.frame(), name=name or stem, margin=margin, max_int_categories=max_int_categories,
        max_categories=max_categories, source=raw.path, lines=raw.lines,
        description=f"drafted by synthreg schema infer from {Path(path).name} ({raw.n_rows} rows)",
    )


def render_schema_yaml(schema: Schema, comment: str = "") -> str:
    """YAML in the layout of the bundled schemas (one flow mapping per column).

    ``comment`` lines are written first as ``#`` comments. The text is checked to
    load back (:meth:`Schema.loads`) to the same :meth:`Schema.hash`.
    """
    doc = schema.to_dict()
    out = [f"# {ln}".rstrip() for ln in comment.splitlines()]
    for key in ("name", "version", "description", "partition"):
        if key in doc:
            out.append(_dump({key: doc[key]}))
    out.append("columns:")
    out += [f"  - {_dump(c, flow=True)}" for c in doc["columns"]]
    text = "\n".join(out) + "\n"
    if Schema.loads(text).hash() != schema.hash():  # pragma: no cover - a bug in this function
        raise SchemaInferenceError("*", "rendered YAML does not load back to the same schema")
    return text


def _dump(value: dict[str, Any], flow: bool = False) -> str:
    return str(yaml.safe_dump(value, default_flow_style=flow, sort_keys=False, allow_unicode=True,
                              width=1 << 30)).strip()


def _infer_column(
    name: str,
    series: pd.Series,
    margin: float,
    max_int_categories: int,
    max_categories: int,
    source: str | None,
    lines: Sequence[int] | None,
) -> tuple[dict[str, Any], str]:
    missing = _missing_mask(series)
    present = series[~missing]
    spec: dict[str, Any] = {"name": name}
    if present.empty:
        raise SchemaInferenceError(name, "no values (every cell is empty or NA): its type cannot be "
                                         "told; remove the column or fill it", source)
    nullable = bool(missing.any())
    note = ""
    if pd.api.types.is_bool_dtype(present.dtype) or pd.api.types.is_numeric_dtype(present.dtype):
        numbers = present.astype("float64")
    else:
        text = present.astype(str).str.strip()
        numbers = _number_text_to_float(text)
        huge = _too_large(text, numbers)
        if huge.any():
            pos = int(np.flatnonzero(huge.to_numpy())[0])
            value = str(text.iloc[pos])
            raise SchemaInferenceError(
                name, f"{_where(int(present.index[pos]), lines)}: a {len(value)}-character number "
                      f"({value[:20]}...) is out of range: too large to represent; fix or blank it", source)
        numbers = numbers.where(np.isfinite(numbers))
        if numbers.isna().any():
            levels = sorted(set(text))
            share = float(numbers.notna().mean())
            if share >= _MOSTLY_NUMERIC:
                pos = int(np.flatnonzero(numbers.isna().to_numpy())[0])
                at = _where(int(present.index[pos]), lines)
                note = (f"column {name!r}: {share:.0%} of the values are numbers but {text.iloc[pos]!r} "
                        f"({at}) is not, so it was drafted as categorical; fix or blank that value "
                        "if the column is numeric")
            if len(levels) > max_categories:
                shown = ", ".join(repr(v) for v in levels[:3])
                raise SchemaInferenceError(
                    name, f"{len(levels)} distinct text values ({shown}, ...), more than {max_categories}: "
                          "an identifier or free text? Remove it from the file (identifiers must not be "
                          "trained on) or raise --max-categories", source)
            spec.update(type="categorical", categories=levels)
            if nullable:
                spec["nullable"] = True
            return spec, note
    values = numbers.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise SchemaInferenceError(name, "has infinite values", source)
    integral = bool(np.all(values % 1 == 0))
    distinct = np.unique(values)
    if integral and set(distinct.tolist()) <= {0.0, 1.0}:
        spec["type"] = "binary"
    elif integral and len(distinct) <= max_int_categories:
        spec.update(type="categorical", categories=[int(v) for v in distinct])
    else:
        spec["type"] = "integer" if integral else "continuous"
        spec["min"], spec["max"] = _widened_range(float(values.min()), float(values.max()), margin, integral)
        # a float column's skew is a float (pandas-stubs say Scalar)
        if values.min() >= 0 and float(cast(float, pd.Series(values).skew())) > _SKEW_LOG1P:
            spec["transform"] = "log1p"
    if nullable:
        spec["nullable"] = True
    return spec, note


def _where(row: int, lines: Sequence[int] | None) -> str:
    return f"line {lines[row]}" if lines is not None and row < len(lines) else f"row {row}"


def _widened_range(lo: float, hi: float, margin: float, integral: bool) -> tuple[float | int, float | int]:
    """[lo, hi] widened by ``margin`` x span (x max(|lo|, 1) for a constant column),
    not below 0 for non-negative data, rounded outward; always min < max."""
    span = hi - lo
    pad = margin * (span if span > 0 else max(abs(lo), 1.0))
    new_lo, new_hi = lo - pad, hi + pad
    if lo >= 0:
        new_lo = max(new_lo, 0.0)
    if integral:
        low, high = math.floor(new_lo), math.ceil(new_hi)
        return (low, high) if low < high else (low, low + 1)
    width = new_hi - new_lo if new_hi > new_lo else max(abs(lo), 1.0)
    digits = max(0, 2 - math.floor(math.log10(width)))
    step = 10.0 ** -digits if digits else 10.0 ** (math.floor(math.log10(width)) - 2)
    a = round(math.floor(new_lo / step) * step, digits)
    b = round(math.ceil(new_hi / step) * step, digits)
    if a > lo:
        a = round(a - step, digits)
    if b < hi:
        b = round(b + step, digits)
    if not a < b:
        b = round(a + step, digits)
    return a, b
