"""The consortium's agreed data schema and validation of a registry's data against it.

Who calls: every registry before training (the CLI `train-local`, the generator
and discriminator apps, `synthreg.gan.federated.train_federated`), and the ledger
code that records :meth:`Schema.hash` on the `gan` channel.

Where data lives: the schema is a small YAML file agreed offline
(``synthreg/data/schemas/<name>.yaml`` ships the default); its canonical bytes
(sorted-key compact JSON of the parsed document) are what is hashed, so
re-formatting the YAML does not change the hash while any semantic change does.

What fails when: :meth:`Schema.load` / :meth:`Schema.from_dict` raise
:class:`SchemaFormatError` for a malformed schema document; :func:`validate`
raises a subclass of :class:`SchemaValidationError` naming the first offending
row and column (:func:`validation_errors` collects one per offending column
instead); :func:`load_registry_csv` (see :mod:`synthreg.data.csvload`) raises
:class:`MalformedCSVError` when the file cannot be parsed as CSV at all and
names the file line of every data error. Nothing is written anywhere.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import yaml

ColumnType = Literal["categorical", "integer", "continuous", "binary"]
Transform = Literal["none", "log1p"]
_COLUMN_TYPES: tuple[str, ...] = ("categorical", "integer", "continuous", "binary")
_TRANSFORMS: tuple[str, ...] = ("none", "log1p")
Category = str | int

DEFAULT_MIN_ROWS = 10
"""Fewer data records than this are refused when a registry's CSV is loaded
(:func:`load_registry_csv`, :func:`synthreg.data.csvload.load_csv`): a registry
that small cannot train, its histograms would identify patients, and a
header-only or one-row file would otherwise pass the load and fail later, deep
inside training. Not tied to the batch size (a run's config is checked apart)."""


# --------------------------------------------------------------------------- errors


class SchemaFormatError(ValueError):
    """The schema document itself is malformed (bad YAML, unknown type, min > max...)."""

    def __init__(self, detail: str, source: str | None = None) -> None:
        self.detail = detail
        self.source = source
        where = f" in {source}" if source else ""
        super().__init__(f"invalid schema{where}: {detail}")


class SchemaValidationError(ValueError):
    """Base of all data-vs-schema failures; carries the column and (if any) row.

    ``row`` is the DataFrame index label of the first offending row (for data read
    by :func:`load_registry_csv` that is the 0-based data row); ``n_bad`` counts
    all offending rows of that kind in that column. Errors raised for a file
    (:mod:`synthreg.data.csvload`) also carry ``source`` (the path) and ``line``,
    the 1-based line of the file where that record starts, the header being
    line 1 (so the first data row is line 2); the message then says so.
    """

    kind: str = "invalid data"

    def __init__(
        self,
        column: str,
        row: Any = None,
        value: Any = None,
        detail: str = "",
        n_bad: int = 1,
        *,
        source: str | None = None,
        line: int | None = None,
    ) -> None:
        self.column = column
        self.row = row
        self.value = value
        self.detail = detail
        self.n_bad = n_bad
        self.source = source
        self.line = line
        if line is not None:
            what = "header" if line == 1 and row is None else "header is line 1"
            at = f"{source or 'file'} line {line} ({what}), "
        else:
            at = (f"{source}: " if source else "") + (f"row {row}, " if row is not None else "")
        val = f" (value {value!r})" if row is not None else ""
        more = f"; {n_bad} rows affected" if n_bad > 1 else ""
        super().__init__(f"{self.kind}: {at}column {column!r}{val}: {detail}{more}")

    def located(self, source: str, line: int | None, note: str = "") -> SchemaValidationError:
        """The same error (same class and fields) placed in file ``source`` at ``line``.

        Called by :mod:`synthreg.data.csvload`, which knows where each record
        starts; ``note`` is appended to the detail (e.g. a decimal-comma hint).
        """
        return type(self)(self.column, self.row, self.value, self.detail + note, self.n_bad,
                          source=source, line=line)


class MissingColumnError(SchemaValidationError):
    kind = "missing column"


class UnexpectedColumnError(SchemaValidationError):
    kind = "unexpected column"


class WrongTypeError(SchemaValidationError):
    kind = "wrong type"


class UnknownCategoryError(SchemaValidationError):
    kind = "unknown category"


class OutOfRangeError(SchemaValidationError):
    kind = "out of range"


class MissingValueError(SchemaValidationError):
    kind = "missing or non-finite value"


class MalformedCSVError(ValueError):
    """A registry CSV could not be parsed (not CSV, ragged rows, bad encoding, empty).

    ``line`` is the 1-based file line of the problem (header = line 1), if known.
    """

    def __init__(self, path: str, detail: str, line: int | None = None) -> None:
        self.path = path
        self.detail = detail
        self.line = line
        at = f" line {line}" if line is not None else ""
        super().__init__(f"malformed registry CSV {path}{at}: {detail}")


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class ColumnSpec:
    """One agreed column. ``min``/``max`` apply to integer and continuous columns."""

    name: str
    type: ColumnType
    categories: tuple[Category, ...] = ()
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    transform: Transform = "none"
    description: str = ""

    @property
    def is_numeric(self) -> bool:
        return self.type in ("integer", "continuous")

    @property
    def levels(self) -> tuple[Category, ...]:
        """Allowed non-missing values of a discrete column (binary -> (0, 1))."""
        if self.type == "binary":
            return (0, 1)
        return self.categories

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type == "categorical":
            out["categories"] = list(self.categories)
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.nullable:
            out["nullable"] = True
        if self.transform != "none":
            out["transform"] = self.transform
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(cls, raw: Any, source: str | None = None) -> ColumnSpec:
        if not isinstance(raw, dict) or "name" not in raw or "type" not in raw:
            raise SchemaFormatError(f"column entry needs 'name' and 'type': {raw!r}", source)
        name = str(raw["name"])
        ctype = str(raw["type"])
        if ctype not in _COLUMN_TYPES:
            raise SchemaFormatError(f"column {name!r}: unknown type {ctype!r}", source)
        transform = str(raw.get("transform", "none"))
        if transform not in _TRANSFORMS:
            raise SchemaFormatError(f"column {name!r}: unknown transform {transform!r}", source)
        known = {"name", "type", "categories", "min", "max", "nullable", "transform", "description"}
        extra = set(raw) - known
        if extra:
            raise SchemaFormatError(f"column {name!r}: unknown keys {sorted(extra)}", source)
        categories: tuple[Category, ...] = ()
        if ctype == "categorical":
            cats = raw.get("categories")
            if not isinstance(cats, list) or not cats:
                raise SchemaFormatError(f"column {name!r}: categorical needs categories", source)
            if not all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in cats):
                raise SchemaFormatError(f"column {name!r}: categories must be str or int", source)
            if len({type(c) for c in cats}) != 1 or len(set(cats)) != len(cats):
                raise SchemaFormatError(
                    f"column {name!r}: categories must be unique and of one type", source
                )
            categories = tuple(cats)
        lo = _opt_float(raw.get("min"), name, "min", source)
        hi = _opt_float(raw.get("max"), name, "max", source)
        if ctype in ("integer", "continuous"):
            if lo is None or hi is None or not lo < hi:
                raise SchemaFormatError(f"column {name!r}: needs finite min < max", source)
            if transform == "log1p" and lo < 0:
                raise SchemaFormatError(f"column {name!r}: log1p needs min >= 0", source)
        elif lo is not None or hi is not None or transform != "none":
            raise SchemaFormatError(f"column {name!r}: min/max/transform only for numbers", source)
        return cls(
            name=name,
            type=cast(ColumnType, ctype),
            categories=categories,
            min=lo,
            max=hi,
            nullable=bool(raw.get("nullable", False)),
            transform=cast(Transform, transform),
            description=str(raw.get("description", "")),
        )


def _opt_float(value: Any, column: str, key: str, source: str | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SchemaFormatError(f"column {column!r}: {key} must be a finite number", source)
    return int(value) if float(value).is_integer() else float(value)


@dataclass(frozen=True)
class Schema:
    """The agreed schema: column order is significant (it is the encoder's order)."""

    name: str
    version: int
    columns: tuple[ColumnSpec, ...]
    partition: str | None = None
    description: str = ""
    _by_name: dict[str, ColumnSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise SchemaFormatError(f"schema {self.name!r}: duplicate column names")
        if not names:
            raise SchemaFormatError(f"schema {self.name!r}: no columns")
        if self.partition is not None and self.partition not in names:
            raise SchemaFormatError(f"schema {self.name!r}: partition {self.partition!r} unknown")
        self._by_name.update({c.name: c for c in self.columns})

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        return self._by_name[name]

    # -- (de)serialisation ------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "columns": [c.to_dict() for c in self.columns],
        }
        if self.partition is not None:
            out["partition"] = self.partition
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(cls, raw: Any, source: str | None = None) -> Schema:
        if not isinstance(raw, dict):
            raise SchemaFormatError("top level must be a mapping", source)
        for key in ("name", "version", "columns"):
            if key not in raw:
                raise SchemaFormatError(f"missing key {key!r}", source)
        if not isinstance(raw["columns"], list):
            raise SchemaFormatError("'columns' must be a list", source)
        version = raw["version"]
        if isinstance(version, bool) or not isinstance(version, int):
            raise SchemaFormatError("'version' must be an integer", source)
        partition = raw.get("partition")
        return cls(
            name=str(raw["name"]),
            version=version,
            columns=tuple(ColumnSpec.from_dict(c, source) for c in raw["columns"]),
            partition=None if partition is None else str(partition),
            description=str(raw.get("description", "")),
        )

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read a schema YAML file. Raises :class:`SchemaFormatError` (or OSError)."""
        text = Path(path).read_text(encoding="utf-8")
        return cls.loads(text, source=str(path))

    @classmethod
    def loads(cls, text: str, source: str | None = None) -> Schema:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SchemaFormatError(f"not valid YAML: {exc}", source) from exc
        return cls.from_dict(raw, source)

    @classmethod
    def bundled(cls, name: str = "rotterdam") -> Schema:
        """The schema shipped as package data ``synthreg/data/schemas/<name>.yaml``."""
        ref = resources.files("synthreg.data").joinpath("schemas", f"{name}.yaml")
        if not ref.is_file():
            raise FileNotFoundError(f"no bundled schema named {name!r}")
        return cls.loads(ref.read_text(encoding="utf-8"), source=f"bundled:{name}")

    def dump(self) -> str:
        """YAML text of this schema (round-trips through :meth:`loads`)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def canonical_bytes(self) -> bytes:
        """Sorted-key compact JSON (UTF-8) of :meth:`to_dict`: the bytes that are hashed."""
        return json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    def hash(self) -> str:
        """SHA-256 hex of :meth:`canonical_bytes`; recorded on the ledger."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()


# --------------------------------------------------------------------------- validation


def _first_bad(mask: pd.Series, series: pd.Series) -> tuple[Any, Any, int]:
    idx = mask.to_numpy().nonzero()[0]
    pos = int(idx[0])
    return series.index[pos], series.iloc[pos], len(idx)


def _missing_mask(series: pd.Series) -> pd.Series:
    mask = series.isna()
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        stripped = series.astype("string").str.strip()
        mask = mask | stripped.isna() | (stripped == "") | stripped.str.lower().isin(["nan", "na"])
    return mask.astype(bool)


_NUMBER_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _is_number_text(value: Any) -> bool:
    return isinstance(value, str) and bool(_NUMBER_TEXT.match(value.strip()))


def _number_text_to_float(series: pd.Series) -> pd.Series:
    """``series`` as float64; text that is not a number becomes NaN.

    Well-formed numbers that pandas gives up on (more than ~300 characters, such
    as a 400-digit integer or ``0...01`` with 400 leading zeros) are parsed by
    :class:`float`: a value too large to represent becomes ``±inf`` and one with
    leading zeros its value. Who calls: :func:`validate` and
    :mod:`synthreg.data.infer`.
    """
    numeric = pd.to_numeric(series, errors="coerce").astype("float64")
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        retry = numeric.isna() & series.map(_is_number_text).astype(bool)
        if retry.any():
            numeric[retry] = np.array([float(str(v).strip()) for v in series[retry]], dtype=np.float64)
    return numeric


def _too_large(series: pd.Series, numeric: pd.Series) -> pd.Series:
    """Where ``series`` holds a well-formed number that ``numeric`` (its
    :func:`_number_text_to_float`) could only represent as ±inf (not the text "inf")."""
    looks = series.map(_is_number_text).astype(bool)
    return looks & pd.Series(np.isinf(numeric.to_numpy()), index=series.index)


def _to_numeric(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    """Coerce to float64; raise WrongTypeError / MissingValueError naming the row.

    A well-formed number too large for a float (``1e400``, a 400-digit integer)
    is out of range (or an unknown level of a discrete column), not of the wrong type.
    """
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("float64")
    numeric = _number_text_to_float(series)
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        # strings such as "True" or "1e3x" coerce to NaN -> wrong type
        wrong = numeric.isna() & ~series.isna()
        if wrong.any():
            row, value, n = _first_bad(wrong, series)
            raise WrongTypeError(spec.name, row, value, f"expected {spec.type}", n)
        huge = _too_large(series, numeric)
        if huge.any():
            row, value, n = _first_bad(huge, series)
            size = f"a {len(str(value).strip())}-character number, too large to represent"
            if spec.is_numeric:
                raise OutOfRangeError(spec.name, row, value, f"allowed [{spec.min}, {spec.max}]; {size}", n)
            raise UnknownCategoryError(spec.name, row, value, f"allowed: {list(spec.levels)}; {size}", n)
    finite = cast("pd.Series[bool]", np.isfinite(numeric))  # a ufunc keeps the Series (the stubs say ndarray)
    nonfinite = ~finite & ~numeric.isna()
    if nonfinite.any():
        row, value, n = _first_bad(nonfinite, series)
        raise MissingValueError(spec.name, row, value, "NaN/Inf not allowed", n)
    return numeric


def _validate_column(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    missing = _missing_mask(series)
    if missing.any() and not spec.nullable:
        row, value, n = _first_bad(missing, series)
        raise MissingValueError(spec.name, row, value, "column is not nullable", n)
    present = series[~missing]

    if spec.type == "categorical" and isinstance(spec.categories[0], str):
        if not all(isinstance(v, str) for v in present):
            bad = pd.Series([not isinstance(v, str) for v in series], index=series.index) & ~missing
            row, value, n = _first_bad(bad, series)
            raise WrongTypeError(spec.name, row, value, "expected a string category", n)
        blanked: pd.Series = series.where(~missing, None)  # type: ignore[call-overload]  # pandas-stubs lack other=None
        values = blanked.map(lambda v: v.strip() if isinstance(v, str) else v)
        unknown = ~values.isin(list(spec.categories)) & ~missing
        if unknown.any():
            row, value, n = _first_bad(unknown, series)
            raise UnknownCategoryError(
                spec.name, row, value, f"allowed: {list(spec.categories)}", n
            )
        return values.astype(object)

    numeric = _to_numeric(series.where(~missing, np.nan), spec)
    if spec.type in ("integer", "binary") or spec.type == "categorical":
        frac = (numeric % 1 != 0) & ~missing
        if frac.any():
            row, value, n = _first_bad(frac, series)
            raise WrongTypeError(spec.name, row, value, "expected an integer", n)
    if spec.type in ("categorical", "binary"):
        unknown = ~numeric.isin([float(c) for c in spec.levels]) & ~missing
        if unknown.any():
            row, value, n = _first_bad(unknown, series)
            raise UnknownCategoryError(spec.name, row, value, f"allowed: {list(spec.levels)}", n)
    else:
        assert spec.min is not None and spec.max is not None
        out = ((numeric < spec.min) | (numeric > spec.max)) & ~missing
        if out.any():
            row, value, n = _first_bad(out, series)
            raise OutOfRangeError(spec.name, row, value, f"allowed [{spec.min}, {spec.max}]", n)
    if spec.type == "continuous":
        return numeric
    if spec.nullable:
        return numeric.round().astype("Int64")
    return numeric.astype("int64")


def _header_errors(df: pd.DataFrame, schema: Schema, allow_extra: bool) -> list[SchemaValidationError]:
    """Every missing column (schema order), then unexpected and duplicate columns."""
    present = [str(c) for c in df.columns]
    errors: list[SchemaValidationError] = [
        MissingColumnError(spec.name, detail=f"schema {schema.name!r} requires it")
        for spec in schema.columns if spec.name not in present
    ]
    if not allow_extra:
        errors += [UnexpectedColumnError(c, detail=f"not in schema {schema.name!r}")
                   for c in present if c not in schema.column_names]
    dups = sorted({c for c in present if present.count(c) > 1}, key=present.index)
    errors += [UnexpectedColumnError(c, detail="duplicate column") for c in dups]
    return errors


def validate(df: pd.DataFrame, schema: Schema, allow_extra: bool = False) -> pd.DataFrame:
    """Check ``df`` against ``schema`` and return a clean copy in schema column order.

    Output dtypes: integer/binary/int-categorical -> int64 (``Int64`` if nullable),
    continuous -> float64, string-categorical -> object (stripped strings).
    Raises the first failure found, scanning columns in schema order:
    :class:`MissingColumnError`, :class:`UnexpectedColumnError` (unless
    ``allow_extra``, then extras are dropped), :class:`MissingValueError`,
    :class:`WrongTypeError`, :class:`UnknownCategoryError`, :class:`OutOfRangeError`.
    """
    header = _header_errors(df, schema, allow_extra)
    if header:
        raise header[0]
    out = {spec.name: _validate_column(df[spec.name], spec) for spec in schema.columns}
    return pd.DataFrame(out, index=df.index)


def validation_errors(df: pd.DataFrame, schema: Schema, allow_extra: bool = False) -> list[SchemaValidationError]:
    """All header errors, then the first error of every offending column (schema order).

    The same checks as :func:`validate`, which stops at the first; used to report
    everything wrong with a registry's file at once (``synthreg schema check``).
    An empty list means :func:`validate` succeeds.
    """
    errors = _header_errors(df, schema, allow_extra)
    present = [str(c) for c in df.columns]
    for spec in schema.columns:
        if present.count(spec.name) != 1:
            continue  # missing or duplicated: already reported
        try:
            _validate_column(df[spec.name], spec)
        except SchemaValidationError as exc:
            errors.append(exc)
    return errors


def load_registry_csv(path: str | Path, schema: Schema, *, min_rows: int = DEFAULT_MIN_ROWS) -> pd.DataFrame:
    """Read a registry's CSV and :func:`validate` it.

    Who calls: a registry's apps (``run approve``, the discriminator and merger
    before training) and ``synthreg report`` (which passes ``min_rows=0`` and
    applies its own minimum). It is :func:`synthreg.data.csvload.load_csv`: errors
    name the file line (header = line 1) and column, ``row`` stays the 0-based
    data row. Raises :class:`~synthreg.data.csvload.MinimumRowsError` for fewer
    than ``min_rows`` data records (:data:`DEFAULT_MIN_ROWS`; a header-only file
    has 0), :class:`MalformedCSVError` if the file is not parseable CSV,
    :class:`FileNotFoundError` if it does not exist, else validation errors.
    """
    from synthreg.data.csvload import load_csv  # csvload builds on this module

    return load_csv(path, schema, min_rows=min_rows)
