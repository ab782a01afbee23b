"""Statistical fidelity of synthetic vs pooled real data (SDMetrics QualityReport).

Called by `synthreg.eval.report.write_report` and `bench/quality.py`. Uses the
non-deprecated `sdmetrics.reports.QualityReport` of sdmetrics 0.32 with its
default settings, so scores are comparable with what SDV users see:

- Column Shapes: mean over columns of KSComplement (numerical) or
  TVComplement (categorical), 1 = identical marginals.
- Column Pair Trends: mean over column pairs of CorrelationSimilarity /
  ContingencySimilarity, counting only pairs whose *real* correlation
  (|r| > 0.5) or association (Cramér's V > 0.3) is strong enough to matter
  (sdmetrics' default thresholds; on rotterdam that is ~11 of 91 pairs).
  `pair_trends_all` re-runs the pair metrics with both thresholds at 0, i.e.
  averages every pair (the pre-threshold SDMetrics definition), which is
  steadier and also sees weak relationships.
- score: mean of the two properties.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sdmetrics.reports import QualityReport

from synthreg.eval.table import TableSpec, check_frame

_TABLE = "records"


@dataclass(frozen=True)
class QualityResult:
    """SDMetrics quality of one synthetic table against one real table."""

    score: float
    column_shapes: float
    column_pair_trends: float
    pair_trends_all: float
    pairs_contributing: int
    pairs_total: int
    columns: dict[str, float] = field(default_factory=dict)  # column -> shape score
    column_metric: dict[str, str] = field(default_factory=dict)  # column -> metric name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sdmetrics_metadata(spec: TableSpec) -> dict[str, Any]:
    """SDMetrics (unified, multi-table style) metadata for one table from the spec."""
    columns = {
        c: {"sdtype": "categorical" if spec.is_categorical(c) else "numerical"}
        for c in spec.columns
    }
    return {"tables": {_TABLE: {"columns": columns}}}


def quality(real: pd.DataFrame, synthetic: pd.DataFrame, spec: TableSpec) -> QualityResult:
    """Run the SDMetrics quality report of `synthetic` against `real`.

    Both frames are checked against `spec` first (typed errors on mismatch).
    SDMetrics is deterministic for the column-shape and pair metrics used here.
    """
    real_c = check_frame(real, spec, "real")
    synth_c = check_frame(synthetic, spec, "synthetic")
    report = _generate(real_c, synth_c, spec, thresholded=True)
    unthresholded = _generate(real_c, synth_c, spec, thresholded=False)
    properties = report.get_properties().set_index("Property")["Score"]
    shapes = report.get_details("Column Shapes")
    pairs = report.get_details("Column Pair Trends")
    contributing = pairs["Meets Threshold?"].astype("boolean").fillna(False)
    all_pairs = unthresholded.get_details("Column Pair Trends")
    return QualityResult(
        score=_f(report.get_score()),
        column_shapes=_f(properties["Column Shapes"]),
        column_pair_trends=_f(properties["Column Pair Trends"]),
        pair_trends_all=_f(all_pairs["Score"].mean()),
        pairs_contributing=int(contributing.sum()),
        pairs_total=len(pairs),
        columns={str(r["Column"]): _f(r["Score"]) for _, r in shapes.iterrows()},
        column_metric={str(r["Column"]): str(r["Metric"]) for _, r in shapes.iterrows()},
    )


def _generate(real: pd.DataFrame, synthetic: pd.DataFrame, spec: TableSpec, thresholded: bool) -> QualityReport:
    report = QualityReport()
    if not thresholded:
        report.real_correlation_threshold = 0.0
        report.real_association_threshold = 0.0
    with warnings.catch_warnings():
        # sdmetrics warns on constant columns / undefined correlations; the
        # affected scores come back as NaN and are skipped by its averages.
        warnings.simplefilter("ignore")
        report.generate({_TABLE: real}, {_TABLE: synthetic}, sdmetrics_metadata(spec), verbose=False)
    return report


def _f(value: object) -> float:
    out = float(value)  # type: ignore[arg-type]
    return out if np.isfinite(out) else float("nan")
