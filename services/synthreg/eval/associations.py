"""Pairwise association matrix for mixed-type tables (used by the heatmap and the report).

Called by `synthreg.eval.plots.correlation_difference` and `write_report`.
All measures are in [0, 1] so real and synthetic matrices can be subtracted:

- numerical × numerical: |Pearson r|
- categorical × categorical: Cramér's V (no small-sample bias correction)
- numerical × categorical: correlation ratio η (share of the numerical
  variance explained by the categories, square-rooted)

Undefined values (constant columns) are 0. Missing values are dropped pairwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthreg.eval.table import TableSpec


def association_matrix(frame: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Symmetric columns × columns matrix of associations in [0, 1], diagonal 1."""
    names = list(spec.columns)
    out = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            value = _association(frame[a], frame[b], spec.is_categorical(a), spec.is_categorical(b))
            out.loc[a, b] = value
            out.loc[b, a] = value
    return out


def _association(x: pd.Series, y: pd.Series, x_cat: bool, y_cat: bool) -> float:
    keep = x.notna() & y.notna()
    x, y = x[keep], y[keep]
    if len(x) < 2:
        return 0.0
    if x_cat and y_cat:
        return _cramers_v(x.astype(str), y.astype(str))
    if x_cat:
        return _correlation_ratio(x.astype(str), y.astype(float))
    if y_cat:
        return _correlation_ratio(y.astype(str), x.astype(float))
    xv, yv = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
    if xv.std() == 0 or yv.std() == 0:
        return 0.0
    return float(abs(np.corrcoef(xv, yv)[0, 1]))


def _cramers_v(x: pd.Series, y: pd.Series) -> float:
    table = pd.crosstab(x, y).to_numpy(dtype=float)
    if min(table.shape) < 2:
        return 0.0
    n = table.sum()
    expected = table.sum(axis=1, keepdims=True) @ table.sum(axis=0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / (n * (min(table.shape) - 1))))


def _correlation_ratio(categories: pd.Series, values: pd.Series) -> float:
    total = float(((values - values.mean()) ** 2).sum())
    if total == 0:
        return 0.0
    between = sum(
        len(group) * (float(group.mean()) - float(values.mean())) ** 2
        for _, group in values.groupby(categories)
    )
    return float(np.sqrt(min(1.0, between / total)))
