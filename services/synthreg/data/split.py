"""Split a pooled dataset into N simulated registries (horizontal partitioning).

Who calls: the CLI, the demo and the benchmark, to simulate a consortium from one
bundled dataset. Every registry then keeps its frame locally.

Modes (both deterministic given ``seed``):

* ``"iid"``: rows shuffled with ``seed`` and cut into ``n`` near-equal parts.
* ``"non-iid"``: rows ordered by column ``by`` (default: the schema's partition
  hint, ``year`` for rotterdam: diagnosis period), then cut at boundaries
  *between distinct values* of ``by`` so that no value is shared by two
  registries; target sizes are proportional to 1, 2, ..., n (unequal sizes and
  distributions, like an early, a middle and a late registry). Missing values of
  ``by`` form one group, ordered after all others. Rows inside each registry are
  shuffled with ``seed``.

What fails when: :class:`SplitError` if ``n`` < 1, the mode is unknown, ``by`` is
missing, or there are fewer distinct ``by`` values (or rows) than registries.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

SplitMode = Literal["iid", "non-iid"]


class SplitError(ValueError):
    """The requested split is impossible or ill-specified."""


def split_registries(
    df: pd.DataFrame,
    n: int,
    mode: SplitMode = "non-iid",
    seed: int = 0,
    by: str | None = None,
) -> list[pd.DataFrame]:
    """Return ``n`` disjoint frames covering ``df`` (index reset in each)."""
    if n < 1:
        raise SplitError(f"need n >= 1 registries, got {n}")
    if len(df) < n:
        raise SplitError(f"{len(df)} rows cannot fill {n} registries")
    rng = np.random.default_rng(seed)
    if mode == "iid":
        order = rng.permutation(len(df))
        parts = np.array_split(order, n)
    elif mode == "non-iid":
        if by is None or by not in df.columns:
            raise SplitError(f"non-iid split needs an existing column 'by', got {by!r}")
        parts = _period_parts(df[by].to_numpy(), n)
        parts = [rng.permutation(p) for p in parts]
    else:
        raise SplitError(f"unknown split mode {mode!r} (iid | non-iid)")
    return [df.iloc[p].reset_index(drop=True) for p in parts]


def _period_parts(values: np.ndarray, n: int) -> list[np.ndarray]:
    # dense ranks: missing values form one group, ordered last (NaN != NaN would
    # otherwise make a boundary between every two missing rows)
    values = pd.Series(values).rank(method="dense", na_option="bottom").to_numpy()
    order = np.argsort(values, kind="stable")
    sorted_vals = values[order]
    # candidate cut positions: where the sorted value changes
    boundaries = np.flatnonzero(sorted_vals[1:] != sorted_vals[:-1]) + 1
    if len(boundaries) < n - 1:
        raise SplitError(f"{len(boundaries) + 1} distinct values cannot make {n} registries")
    weights = np.arange(1, n + 1, dtype=np.float64)
    targets = np.cumsum(weights / weights.sum())[:-1] * len(values)
    cuts: list[int] = []
    available = list(boundaries)
    for k, target in enumerate(targets):
        # keep enough boundaries for the remaining cuts, and cuts strictly increasing
        remaining = len(targets) - k - 1
        lo = cuts[-1] if cuts else 0
        choices = [b for b in available if b > lo]
        choices = choices[: len(choices) - remaining] if remaining else choices
        best = min(choices, key=lambda b: (abs(b - target), b))
        cuts.append(int(best))
    return list(np.split(order, cuts))
