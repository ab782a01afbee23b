"""Record <-> feature-space encoder that is identical in every registry.

Who calls: every registry's generator and discriminator (through
:func:`synthreg.gan.federated.train_federated` in-process, or the ledger apps),
and :meth:`FederatedResult.sample` to decode synthetic records.

The encoder is built ONLY from the agreed :class:`~synthreg.data.schema.Schema`
plus, optionally, :class:`EncoderStats` that the registries agree on (the
element-wise sum of per-registry histograms on a grid fixed by the schema; in
the ledger version that sum is what secure aggregation would reveal, like the
average of weights). It is never fitted on one registry's data, so
:meth:`TabularEncoder.to_bytes` / :meth:`TabularEncoder.hash` are the same in
every registry and can be compared on the ledger.

Feature layout, in schema column order:

* integer / continuous -> one real value ("continuous" span, linear output).
  The value is transformed (``log1p`` if the schema says so), mapped through the
  agreed piecewise-linear CDF to u in (0, 1) (or through the schema's [min, max]
  range if no stats are given), then through the standard-normal quantile
  function: the pooled marginal becomes N(0, 1) (quantile normalisation), which
  the generator's Gaussian noise reaches easily. An integer v is encoded at the
  CDF midpoint of [v - 0.5, v + 0.5], so a point mass (e.g. 20 % zeros) sits
  inside its interval and every u decoded from that interval rounds back to v.
  A nullable numeric column adds a 2-wide softmax span (present, missing).
* binary / categorical -> one-hot ("softmax" span), plus one extra level for
  missing if the column is nullable.

What fails when: :class:`EncoderStatsError` if stats do not match the schema
(wrong columns / bins); :class:`EncodingShapeError` if a decoded array has the
wrong width; :class:`EncoderFormatError` if a serialised encoder
(:meth:`TabularEncoder.from_bytes`) is malformed or belongs to another schema.
Data is expected to be validated already (validate() first).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal, SupportsInt

import numpy as np
import numpy.typing as npt
import pandas as pd

from synthreg.data.schema import ColumnSpec, Schema
from synthreg.gan.config import DEFAULT_BINS

SpanKind = Literal["continuous", "softmax"]
_PSEUDO_COUNT = 1e-3  # per bin, relative to one record: keeps the CDF strictly increasing
_U_EPS = 1e-6  # u is clipped to [eps, 1 - eps] -> |x| <= 4.75
_FORMAT = "synthreg.TabularEncoder/1"


class EncoderStatsError(ValueError):
    """Agreed statistics do not fit the schema (unknown column, wrong bin count)."""


class EncoderFormatError(ValueError):
    """A serialised encoder (:meth:`TabularEncoder.from_dict`) is malformed or does
    not describe the encoder its schema and stats give."""


class EncodingShapeError(ValueError):
    """An array to decode does not have the encoder's output width."""

    def __init__(self, expected: int, got: tuple[int, ...]) -> None:
        self.expected = expected
        self.got = got
        super().__init__(f"expected array of shape (n, {expected}), got {got}")


@dataclass(frozen=True)
class SpanInfo:
    """One slice of the feature vector: ``dim`` columns activated by ``kind``."""

    column: str
    kind: SpanKind
    dim: int
    role: Literal["value", "missing", "levels"]


# --------------------------------------------------------------------------- grid + stats


def column_edges(spec: ColumnSpec, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Histogram bin edges (in transformed space) of a numeric column, fixed by the schema.

    Integer ranges are padded by half a unit (an integer v owns [v - 0.5, v + 0.5]);
    untransformed integers with at most ``bins`` values get one bin per integer.
    """
    assert spec.min is not None and spec.max is not None
    lo, hi = float(spec.min), float(spec.max)
    if spec.type == "integer":
        if spec.transform == "none" and hi - lo + 1 <= bins:
            return np.arange(lo - 0.5, hi + 1.0, 1.0, dtype=np.float64)
        lo, hi = lo - 0.5, hi + 0.5
    t = _forward_transform(np.array([lo, hi], dtype=np.float64), spec)
    return np.linspace(t[0], t[1], bins + 1, dtype=np.float64)


def _forward_transform(values: npt.NDArray[np.float64], spec: ColumnSpec) -> npt.NDArray[np.float64]:
    if spec.transform == "log1p":
        return np.log1p(np.maximum(values, -0.5))
    return values


def _inverse_transform(values: npt.NDArray[np.float64], spec: ColumnSpec) -> npt.NDArray[np.float64]:
    if spec.transform == "log1p":
        return np.expm1(values)
    return values


@dataclass(frozen=True)
class EncoderStats:
    """Agreed per-column counts: histograms on the schema-fixed grid for numeric
    columns, and level counts (missing last) for the categorical columns asked for
    (the column a conditional generator is conditioned on, :mod:`synthreg.gan.condition`).

    Build one per registry with :meth:`from_frame` and sum them with
    :meth:`combine`; only the sum is used by the encoder.
    """

    bins: int
    counts: dict[str, tuple[float, ...]]

    @classmethod
    def from_frame(cls, df: pd.DataFrame, schema: Schema, bins: int = DEFAULT_BINS,
                   levels_of: tuple[str, ...] = ()) -> EncoderStats:
        """One registry's counts; ``levels_of`` names categorical columns whose level
        counts are included (validated data: every value is a level or missing)."""
        counts: dict[str, tuple[float, ...]] = {}
        for name in levels_of:
            spec = schema.column(name)
            if spec.is_numeric:
                raise EncoderStatsError(f"column {name!r} is numeric: it has no levels to count")
            counts[name] = tuple(float(c) for c in np.bincount(_level_indices(df[name], spec),
                                                               minlength=levels_width(spec)))
        for spec in schema.columns:
            if not spec.is_numeric:
                continue
            edges = column_edges(spec, bins)
            values = pd.to_numeric(df[spec.name], errors="coerce").to_numpy(dtype=np.float64)
            values = _forward_transform(values[np.isfinite(values)], spec)
            idx = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
            hist = np.bincount(idx, minlength=len(edges) - 1)
            counts[spec.name] = tuple(float(c) for c in hist)
        return cls(bins=bins, counts=counts)

    @classmethod
    def combine(cls, parts: list[EncoderStats]) -> EncoderStats:
        """Element-wise sum of registries' histograms (what the consortium agrees on)."""
        if not parts:
            raise EncoderStatsError("no statistics to combine")
        bins = parts[0].bins
        keys = set(parts[0].counts)
        for p in parts:
            if p.bins != bins or set(p.counts) != keys:
                raise EncoderStatsError("statistics disagree on bins or columns")
        summed = {
            k: tuple(float(x) for x in np.sum([np.array(p.counts[k]) for p in parts], axis=0))
            for k in sorted(keys)
        }
        return cls(bins=bins, counts=summed)

    def to_dict(self) -> dict[str, object]:
        return {"bins": self.bins, "counts": {k: list(v) for k, v in sorted(self.counts.items())}}

    def to_vector(self) -> np.ndarray:
        """All counts as one float64 vector, columns in sorted order (for a secure sum)."""
        return np.concatenate([np.asarray(self.counts[k], dtype=np.float64) for k in sorted(self.counts)])

    def from_vector(self, vec: np.ndarray) -> EncoderStats:
        """Statistics of this shape holding ``vec``'s counts, rounded to integers
        (a securely aggregated sum carries fixed-point noise far below 0.5).
        Raises :class:`EncoderStatsError` for a wrong length or negative/non-finite counts."""
        vec = np.asarray(vec, dtype=np.float64)
        sizes = [len(self.counts[k]) for k in sorted(self.counts)]
        if vec.shape != (sum(sizes),):
            raise EncoderStatsError(f"expected {sum(sizes)} counts, got shape {vec.shape}")
        if not np.isfinite(vec).all() or (vec < -0.5).any():
            raise EncoderStatsError("counts must be finite and non-negative")
        parts = np.split(np.rint(vec), np.cumsum(sizes)[:-1])
        return EncoderStats(self.bins, {k: tuple(float(x) for x in part)
                                        for k, part in zip(sorted(self.counts), parts, strict=True)})


# --------------------------------------------------------------------------- encoder


@dataclass(frozen=True)
class _NumericMap:
    edges: np.ndarray  # transformed-space bin edges
    cdf: np.ndarray  # same length, strictly increasing from 0 to 1


class TabularEncoder:
    """Deterministic schema-derived encoder; see the module docstring for the layout."""

    def __init__(self, schema: Schema, stats: EncoderStats | None = None) -> None:
        self.schema = schema
        self.stats = stats
        self._maps: dict[str, _NumericMap] = {}
        spans: list[SpanInfo] = []
        for spec in schema.columns:
            if spec.is_numeric:
                self._maps[spec.name] = self._numeric_map(spec)
                spans.append(SpanInfo(spec.name, "continuous", 1, "value"))
                if spec.nullable:
                    spans.append(SpanInfo(spec.name, "softmax", 2, "missing"))
            else:
                n = levels_width(spec)
                spans.append(SpanInfo(spec.name, "softmax", n, "levels"))
        self.output_info: tuple[SpanInfo, ...] = tuple(spans)
        self.output_dim: int = sum(s.dim for s in spans)

    def _numeric_map(self, spec: ColumnSpec) -> _NumericMap:
        bins = self.stats.bins if self.stats is not None else DEFAULT_BINS
        edges = column_edges(spec, bins)
        nb = len(edges) - 1
        if self.stats is None:
            counts = np.ones(nb, dtype=np.float64)
        else:
            if spec.name not in self.stats.counts:
                raise EncoderStatsError(f"stats lack numeric column {spec.name!r}")
            counts = np.asarray(self.stats.counts[spec.name], dtype=np.float64)
            if counts.shape != (nb,):
                raise EncoderStatsError(f"column {spec.name!r}: expected {nb} bins")
            counts = counts + _PSEUDO_COUNT
        cdf = np.concatenate([[0.0], np.cumsum(counts)])
        return _NumericMap(edges=edges, cdf=cdf / cdf[-1])

    def levels_span(self, column: str) -> tuple[int, int]:
        """(start, width) of a categorical column's one-hot span in the feature vector;
        :class:`EncoderStatsError` if the column is unknown or numeric."""
        pos = 0
        for span in self.output_info:
            if span.column == column and span.role == "levels":
                return pos, span.dim
            pos += span.dim
        raise EncoderStatsError(f"no categorical column {column!r} in schema {self.schema.name!r}")

    def level_counts(self, column: str) -> tuple[float, ...]:
        """The agreed level counts of a categorical column (missing last), from the
        stats; :class:`EncoderStatsError` if the stats do not hold them."""
        if self.stats is None or column not in self.stats.counts:
            raise EncoderStatsError(f"the agreed statistics hold no level counts of {column!r}")
        counts = self.stats.counts[column]
        width = self.levels_span(column)[1]
        if len(counts) != width:
            raise EncoderStatsError(f"column {column!r}: {len(counts)} level counts for {width} levels")
        return counts

    # -- encode / decode ---------------------------------------------------------

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """Validated records -> float32 array of shape (len(df), output_dim)."""
        out = np.zeros((len(df), self.output_dim), dtype=np.float32)
        pos = 0
        for spec in self.schema.columns:
            col = df[spec.name]
            missing = col.isna().to_numpy()
            if spec.is_numeric:
                m = self._maps[spec.name]
                values = col.to_numpy(dtype=np.float64, na_value=np.nan)
                assert spec.min is not None  # numeric columns have bounds (Schema.load checks min < max)
                values = np.where(missing, spec.min, values)
                if spec.type == "integer":
                    lo = np.interp(_forward_transform(values - 0.5, spec), m.edges, m.cdf)
                    hi = np.interp(_forward_transform(values + 0.5, spec), m.edges, m.cdf)
                    u = (lo + hi) / 2.0
                else:
                    u = np.interp(_forward_transform(values, spec), m.edges, m.cdf)
                out[:, pos] = np.where(missing, 0.0, _probit(u))
                pos += 1
                if spec.nullable:
                    out[np.arange(len(df)), pos + missing.astype(int)] = 1.0
                    pos += 2
            else:
                out[np.arange(len(df)), pos + _level_indices(col, spec)] = 1.0
                pos += levels_width(spec)
        return out

    def decode(self, array: np.ndarray) -> pd.DataFrame:
        """Feature array -> records in schema columns and dtypes.

        continuous spans go through the normal CDF and the inverse agreed CDF,
        then clipped to the schema range (and rounded for integers); softmax
        spans take the argmax (the generator's Gumbel-softmax makes this a draw).
        """
        arr = np.asarray(array, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.output_dim:
            raise EncodingShapeError(self.output_dim, tuple(arr.shape))
        cols: dict[str, pd.Series] = {}
        pos = 0
        for spec in self.schema.columns:
            if spec.is_numeric:
                assert spec.min is not None and spec.max is not None
                m = self._maps[spec.name]
                u = _normal_cdf(arr[:, pos])
                values = np.clip(_inverse_transform(np.interp(u, m.cdf, m.edges), spec),
                                 spec.min, spec.max)
                pos += 1
                missing = np.zeros(len(arr), dtype=bool)
                if spec.nullable:
                    missing = np.argmax(arr[:, pos:pos + 2], axis=1) == 1
                    pos += 2
                if spec.type == "integer":
                    series: pd.Series = pd.Series(np.round(values).astype(np.int64))
                    if spec.nullable:
                        series = series.astype("Int64").mask(missing)
                else:
                    series = pd.Series(np.where(missing, np.nan, values))
                cols[spec.name] = series
            else:
                levels = list(spec.levels)
                width = levels_width(spec)
                idx = np.argmax(arr[:, pos:pos + width], axis=1)
                pos += width
                if isinstance(levels[0], str):
                    cols[spec.name] = pd.Series(
                        [levels[i] if i < len(levels) else None for i in idx], dtype=object
                    )
                else:
                    vals = pd.Series(np.array(levels, dtype=np.int64)[np.minimum(idx, len(levels) - 1)])
                    if spec.nullable:
                        vals = vals.astype("Int64").mask(idx == len(levels))
                    cols[spec.name] = vals
        return pd.DataFrame(cols)

    # -- identity -----------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        return {
            "format": _FORMAT,
            "schema_sha256": self.schema.hash(),
            "stats": None if self.stats is None else self.stats.to_dict(),
            "output_info": [
                {"column": s.column, "kind": s.kind, "dim": s.dim, "role": s.role}
                for s in self.output_info
            ],
        }

    def to_bytes(self) -> bytes:
        """Canonical bytes (sorted compact JSON) that fully determine the encoder."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, raw: Any, schema: Schema) -> TabularEncoder:
        """Rebuild an encoder from :meth:`to_dict` and the schema it was built on.

        Who calls: :func:`synthreg.gan.bundle.load_bundle` (``encoder.json`` next to
        ``schema.yaml``). The encoder is a pure function of (schema, stats), so this
        reconstructs it and then checks that it is the one described: format,
        ``schema_sha256`` and ``output_info`` must match, else
        :class:`EncoderFormatError`; stats that do not fit the schema raise
        :class:`EncoderStatsError`. The result has the same :meth:`hash`.
        """
        if not isinstance(raw, dict):
            raise EncoderFormatError(f"expected a JSON object, got {type(raw).__name__}")
        if raw.get("format") != _FORMAT:
            raise EncoderFormatError(f"unknown format {raw.get('format')!r} (expected {_FORMAT!r})")
        if raw.get("schema_sha256") != schema.hash():
            raise EncoderFormatError(
                f"built on schema {raw.get('schema_sha256')!r}, not on {schema.name!r} ({schema.hash()})")
        stats_raw = raw.get("stats")
        stats = None
        if stats_raw is not None:
            try:
                bins = stats_raw["bins"]
                counts = {str(k): tuple(float(x) for x in v) for k, v in stats_raw["counts"].items()}
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise EncoderFormatError(f"malformed stats: {exc!r}") from exc
            if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
                raise EncoderFormatError(f"stats bins must be a positive integer, got {bins!r}")
            stats = EncoderStats(bins=bins, counts=counts)
        encoder = cls(schema, stats)
        if encoder.to_dict()["output_info"] != raw.get("output_info"):
            raise EncoderFormatError("output_info does not match the one this schema and stats give")
        return encoder

    @classmethod
    def from_bytes(cls, data: bytes, schema: Schema) -> TabularEncoder:
        """Inverse of :meth:`to_bytes` (see :meth:`from_dict`); bad JSON -> :class:`EncoderFormatError`."""
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EncoderFormatError(f"not JSON: {exc}") from exc
        return cls.from_dict(raw, schema)

    def hash(self) -> str:
        """SHA-256 hex of :meth:`to_bytes`: equal in every registry or it is a bug."""
        return hashlib.sha256(self.to_bytes()).hexdigest()


def _probit(u: np.ndarray) -> np.ndarray:
    """Standard-normal quantile of u clipped to [eps, 1 - eps] (float64)."""
    import torch  # here, not at the top: the encoder is read by torch-free commands

    clipped = torch.from_numpy(np.clip(np.asarray(u, dtype=np.float64), _U_EPS, 1 - _U_EPS))
    out: np.ndarray = torch.special.ndtri(clipped).numpy()
    return out


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    import torch

    out: np.ndarray = torch.special.ndtr(torch.from_numpy(np.asarray(x, dtype=np.float64))).numpy()
    return out


def levels_width(spec: ColumnSpec) -> int:
    """Width of a categorical or binary column's one-hot span: its levels, + 1 if nullable."""
    return len(spec.levels) + (1 if spec.nullable else 0)


def _level_indices(col: pd.Series, spec: ColumnSpec) -> npt.NDArray[np.int64]:
    """Each value's position among the column's levels (missing: one past the last)."""
    lookup = {lv: i for i, lv in enumerate(spec.levels)}
    return np.array([len(lookup) if miss else lookup[_level_key(v, spec)]
                     for v, miss in zip(col.tolist(), col.isna().to_numpy(), strict=True)], dtype=np.int64)


def _level_key(value: SupportsInt | str, spec: ColumnSpec) -> str | int:
    if spec.type == "binary" or (spec.categories and isinstance(spec.categories[0], int)):
        return int(value)
    return str(value)
