"""Conditional generator on one categorical column (issue 12, part 1: non-IID registries).

Who calls: :func:`synthreg.gan.federated.train_federated` (and through it the
bench) when ``TrainConfig.condition_on`` names a column, and the samplers
(:func:`synthreg.gan.sampling.sample_records`) of such a model.

Why: when registries differ by a categorical column (each holds one disease group
alone, say), an unconditional generator is pulled towards a different category in
every registry and the average fits none of them. Conditioned on that column c,
the generator learns P(rest | c): each registry trains it only on the categories
it holds, its own critic judging (record, c) against its own records with the same
c, and the average keeps every registry's part. Sampling draws c at the
consortium's frequencies, the agreed sum of the registries' level counts
(:class:`~synthreg.gan.encoder.EncoderStats`, secure aggregation on the ledger),
so the column's marginal is the pooled one.

How, per batch: c is drawn (one-hot over the column's levels, missing last) from a
seeded ``torch.Generator``; the generator sees [z ‖ c]; the column's span of the
activated output is replaced by c itself (no gradient flows there: the column is
given, not generated), so the critic sees c where the column is. The registry's
real batch is drawn with the same c, row by row (:class:`ConditionalSampler`).
A registry draws c at its own frequencies, so it never asks for a category it has
no record of.

What fails when: :class:`ConditionError` for a column that is not categorical or
binary, or a real batch asking for a level this registry holds no record of.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from synthreg.data.schema import Schema
from synthreg.gan.encoder import TabularEncoder, levels_width
from synthreg.gan.step import BatchShapeError, RealBatchSampler


class ConditionError(ValueError):
    """The conditioning column or a conditional batch does not fit."""


def condition_width(schema: Schema, column: str) -> int:
    """Width of the one-hot condition for ``column`` (its levels, + 1 if nullable)."""
    if column not in schema.column_names:
        raise ConditionError(f"condition_on names {column!r}, not a column of schema {schema.name!r}")
    spec = schema.column(column)
    if spec.is_numeric:
        raise ConditionError(f"condition_on needs a categorical or binary column; {column!r} is {spec.type}")
    return levels_width(spec)


@dataclass(frozen=True)
class Condition:
    """Where the condition sits in the feature vector and how it is drawn."""

    column: str
    start: int
    probs: tuple[float, ...]
    """draw probability of each level (missing last), summing to 1"""

    @property
    def width(self) -> int:
        return len(self.probs)

    @classmethod
    def from_counts(cls, encoder: TabularEncoder, column: str, counts: Sequence[float]) -> Condition:
        start, width = encoder.levels_span(column)
        arr = np.asarray(counts, dtype=np.float64)
        if arr.shape != (width,) or not np.isfinite(arr).all() or (arr < 0).any() or arr.sum() <= 0:
            raise ConditionError(f"level counts of {column!r} must be {width} finite, non-negative numbers "
                                 f"with a positive sum, got {list(counts)}")
        return cls(column, start, tuple(float(p) for p in arr / arr.sum()))

    @classmethod
    def local(cls, encoder: TabularEncoder, column: str, encoded: np.ndarray) -> Condition:
        """Drawn at this registry's own level frequencies (from its encoded records)."""
        start, width = encoder.levels_span(column)
        return cls.from_counts(encoder, column, np.asarray(encoded)[:, start:start + width].sum(axis=0))

    @classmethod
    def consortium(cls, encoder: TabularEncoder, column: str) -> Condition:
        """Drawn at the consortium's level frequencies (the agreed counts)."""
        return cls.from_counts(encoder, column, encoder.level_counts(column))

    def draw(self, n: int, rng: torch.Generator) -> torch.Tensor:
        """(n, width) float32 one-hot rows, levels drawn from :attr:`probs`."""
        idx = torch.multinomial(torch.tensor(self.probs, dtype=torch.float64), n, replacement=True, generator=rng)
        return torch.nn.functional.one_hot(idx, self.width).to(torch.float32)

    def insert(self, batch: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``batch`` with the column's span replaced by ``cond``."""
        end = self.start + self.width
        return torch.cat([batch[:, :self.start], cond, batch[:, end:]], dim=1)


class ConditionalSampler(RealBatchSampler):
    """Real records with the same condition as each row of a fake batch (uniform
    among this registry's records of that level, with replacement)."""

    def __init__(self, encoded: np.ndarray, seed: int, start: int, width: int) -> None:
        super().__init__(encoded, seed)
        self.start, self.width = start, width
        levels = self.encoded[:, start:start + width].argmax(axis=1)
        self.rows = [np.flatnonzero(levels == k) for k in range(width)]

    def sample_for(self, fake: np.ndarray) -> np.ndarray:
        fake = np.asarray(fake)
        if fake.ndim != 2 or fake.shape[1] != self.encoded.shape[1]:
            raise BatchShapeError(f"fake batch shape {fake.shape}, expected (n, {self.encoded.shape[1]})")
        wanted = fake[:, self.start:self.start + self.width].argmax(axis=1)
        missing = sorted({int(k) for k in wanted if self.rows[k].size == 0})
        if missing:
            raise ConditionError(f"the fake batch asks for levels {missing} of the condition, which this "
                                 "registry holds no record of")
        picks = self.rng.random(len(wanted))
        idx = np.array([self.rows[k][int(p * self.rows[k].size)] for k, p in zip(wanted, picks, strict=True)],
                       dtype=np.int64)
        return self.encoded[idx]
