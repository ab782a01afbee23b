"""The evaluation view of the agreed schema: which columns, which are categorical.

Every metric in `synthreg.eval` works on a `TableSpec`, derived once from the
agreed `synthreg.data.Schema` (`TableSpec.from_schema`). `check_frame` is the
single gate that real and synthetic frames pass before any metric runs: it
raises `SchemaMismatchError` / `ColumnTypeError` / `EmptyDataError` instead
of letting pandas or SDMetrics fail deep inside with an unrelated message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from synthreg.eval.errors import ColumnTypeError, EmptyDataError, SchemaMismatchError

# Schema column types that are evaluated as categories (everything else is numerical).
_CATEGORICAL_TYPES = frozenset({"categorical", "category", "binary", "boolean", "bool", "ordinal"})


@dataclass(frozen=True)
class TableSpec:
    """Column names in schema order and the subset that is categorical."""

    columns: tuple[str, ...]
    categorical: frozenset[str]

    @property
    def numerical(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.categorical)

    def is_categorical(self, column: str) -> bool:
        return column in self.categorical

    @classmethod
    def from_schema(cls, schema: Any) -> TableSpec:
        """Build from a `synthreg.data.Schema` (or pass a `TableSpec` through).

        Reads `schema.columns`, each with a `name` and a `kind`/`type`/`dtype`
        naming the column type; types in `_CATEGORICAL_TYPES` are categorical.
        Raises `TypeError` for anything else.
        """
        if isinstance(schema, TableSpec):
            return schema
        columns = getattr(schema, "columns", None)
        if columns is None:
            raise TypeError(f"not a schema: {type(schema).__name__} has no 'columns'")
        names: list[str] = []
        categorical: set[str] = set()
        for col in columns:
            name = getattr(col, "name", None)
            kind = None
            for attr in ("kind", "type", "dtype"):
                kind = getattr(col, attr, None)
                if kind is not None:
                    break
            if not isinstance(name, str) or kind is None:
                raise TypeError(f"schema column {col!r} has no name/type")
            kind_name = str(getattr(kind, "value", kind)).lower()
            names.append(name)
            if kind_name in _CATEGORICAL_TYPES:
                categorical.add(name)
        return cls(columns=tuple(names), categorical=frozenset(categorical))

    @classmethod
    def infer(cls, frame: pd.DataFrame, max_categories: int = 10) -> TableSpec:
        """Guess a spec from data (tests and ad-hoc use only, never for agreed data).

        Non-numeric columns and integer columns with at most `max_categories`
        distinct values are categorical.
        """
        categorical = set()
        for name in frame.columns:
            series = frame[name]
            if not pd.api.types.is_numeric_dtype(series) or (
                pd.api.types.is_integer_dtype(series) and series.nunique() <= max_categories
            ):
                categorical.add(str(name))
        return cls(columns=tuple(str(c) for c in frame.columns), categorical=frozenset(categorical))


def check_frame(frame: pd.DataFrame, spec: TableSpec, name: str, min_rows: int = 2) -> pd.DataFrame:
    """Return `frame` restricted to the spec's columns in spec order, with typed columns.

    Numerical columns become float64, categorical columns strings (so that a
    category read from CSV as `1` and generated as `1.0` compare equal, both
    become "1"). `name` ("real", "synthetic", "holdout") goes into errors.
    """
    missing = [c for c in spec.columns if c not in frame.columns]
    extra = [str(c) for c in frame.columns if c not in spec.columns]
    if missing or extra:
        raise SchemaMismatchError(name, missing, extra)
    if len(frame) < min_rows:
        raise EmptyDataError(name, len(frame), min_rows)
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for column in spec.columns:
        values = frame[column].reset_index(drop=True)
        if spec.is_categorical(column):
            out[column] = values.map(_category_label).astype(object)
        else:
            numeric = pd.to_numeric(values, errors="coerce")
            bad = numeric.isna() & values.notna()
            if bool(bad.any()):
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise ColumnTypeError(name, column, row, values.iloc[row])
            out[column] = numeric.astype(float)
    return out


def _category_label(value: object) -> object:
    """Canonical string of a category value; missing stays missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    return str(value)
