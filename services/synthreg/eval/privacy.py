"""Privacy check: distance to closest record (DCR) and exact copies.

Called by `write_report` and `bench/quality.py`. All three frames (real
training rows the generator saw, a real holdout it did not see, synthetic
rows) are mapped into one standardised space fitted on the real training
rows only: numerical columns are centred and divided by their standard
deviation (missing values imputed with the training median), categorical
columns one-hot encoded with each indicator scaled by 1/sqrt(2), so that two
different categories are at distance 1, like one standard deviation.

- DCR(synthetic): Euclidean distance from each synthetic row to its closest
  real training row; DCR(holdout): the same for each holdout row. A generator
  that generalises produces synthetic rows no closer to the training rows than
  fresh real patients are, so the two distributions should look alike.
- share_closer_than_holdout_p5: share of synthetic rows closer to a training
  row than the 5th percentile of the holdout DCR (≈ 0.05 when fine, well
  above 0.05 when the generator memorises).
- exact_copy_rate: share of synthetic rows identical to some training row on
  every column (compared on values, not distances, so float round-off in the
  neighbour search cannot hide or invent a copy); `holdout_exact_copy_rate`
  is the same for real holdout rows, i.e. how often duplicates occur naturally.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from synthreg.eval.table import TableSpec, check_frame


@dataclass(frozen=True)
class PrivacyResult:
    """DCR summary of synthetic rows and of real holdout rows against real training rows."""

    dcr_synthetic_median: float
    dcr_synthetic_p5: float
    dcr_holdout_median: float
    dcr_holdout_p5: float
    share_closer_than_holdout_p5: float
    exact_copy_rate: float
    holdout_exact_copy_rate: float
    n_train: int
    n_holdout: int
    n_synthetic: int

    @property
    def dcr_ratio(self) -> float:
        """Median synthetic DCR / median holdout DCR (≈ 1 fine, ≪ 1 memorising)."""
        if self.dcr_holdout_median == 0.0:
            return float("nan")
        return self.dcr_synthetic_median / self.dcr_holdout_median

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["dcr_ratio"] = self.dcr_ratio
        return out


@dataclass(frozen=True)
class StandardSpace:
    """The fitted standardisation (from real training rows) that DCR is measured in."""

    spec: TableSpec
    centre: dict[str, float]
    scale: dict[str, float]
    categories: dict[str, tuple[str, ...]]

    @classmethod
    def fit(cls, real_train: pd.DataFrame, spec: TableSpec) -> StandardSpace:
        centre: dict[str, float] = {}
        scale: dict[str, float] = {}
        categories: dict[str, tuple[str, ...]] = {}
        for column in spec.columns:
            values = real_train[column]
            if spec.is_categorical(column):
                categories[column] = tuple(sorted(values.dropna().astype(str).unique()))
            else:
                median = float(values.median()) if values.notna().any() else 0.0
                filled = values.fillna(median).to_numpy(dtype=float)
                centre[column] = float(filled.mean())
                std = float(filled.std())
                scale[column] = std if std > 0 else 1.0
        return cls(spec=spec, centre=centre, scale=scale, categories=categories)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Map checked rows to the standardised space; unseen categories get all-zero indicators."""
        blocks: list[np.ndarray] = []
        for column in self.spec.columns:
            values = frame[column]
            if self.spec.is_categorical(column):
                cats = self.categories[column]
                labels = values.astype(str).to_numpy()
                onehot = np.stack([labels == c for c in cats], axis=1).astype(float) if cats else \
                    np.zeros((len(frame), 0))
                blocks.append(onehot / np.sqrt(2.0))
            else:
                median_fill = self.centre[column]
                filled = values.fillna(median_fill).to_numpy(dtype=float)
                blocks.append(((filled - self.centre[column]) / self.scale[column])[:, None])
        return np.concatenate(blocks, axis=1)


def distances_to_closest(reference: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Euclidean distance from each query row to its nearest reference row."""
    nn = NearestNeighbors(n_neighbors=1, algorithm="auto").fit(reference)
    distances, _ = nn.kneighbors(query)
    return np.asarray(distances[:, 0], dtype=float)


def exact_copy_rate(reference: pd.DataFrame, query: pd.DataFrame) -> float:
    """Share of `query` rows equal on every column to some `reference` row (checked frames)."""
    known = set(_row_keys(reference))
    keys = _row_keys(query)
    return float(np.mean([k in known for k in keys])) if keys else 0.0


def _row_keys(frame: pd.DataFrame) -> list[tuple[str, ...]]:
    return [tuple(repr(v) for v in row) for row in frame.itertuples(index=False, name=None)]


def privacy(real_train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame,
            spec: TableSpec) -> PrivacyResult:
    """DCR of synthetic and holdout rows against the real training rows (see module doc).

    `holdout` must be real rows the generator did not train on; passing
    training rows as holdout makes the comparison meaningless (holdout DCR 0).
    """
    train_c = check_frame(real_train, spec, "real")
    hold_c = check_frame(holdout, spec, "holdout")
    synth_c = check_frame(synthetic, spec, "synthetic")
    space = StandardSpace.fit(train_c, spec)
    reference = space.transform(train_c)
    d_syn = distances_to_closest(reference, space.transform(synth_c))
    d_hold = distances_to_closest(reference, space.transform(hold_c))
    hold_p5 = float(np.percentile(d_hold, 5))
    return PrivacyResult(
        dcr_synthetic_median=float(np.median(d_syn)),
        dcr_synthetic_p5=float(np.percentile(d_syn, 5)),
        dcr_holdout_median=float(np.median(d_hold)),
        dcr_holdout_p5=hold_p5,
        share_closer_than_holdout_p5=float(np.mean(d_syn < hold_p5)),
        exact_copy_rate=exact_copy_rate(train_c, synth_c),
        holdout_exact_copy_rate=exact_copy_rate(train_c, hold_c),
        n_train=len(train_c),
        n_holdout=len(hold_c),
        n_synthetic=len(synth_c),
    )
