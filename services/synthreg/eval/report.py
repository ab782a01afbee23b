"""Write an evaluation report (Markdown + PNGs + metrics.json) for one synthetic table.

Who calls: `synthreg report` (`synthreg.cli.report_cmd`), the demo, people in
notebooks. Where data lives: everything goes into `out_dir` (created):
``report.md``, ``metrics.json``, ``marginals.png``, ``association_diff.png``
and, with a history, ``loss_curves.png``. Nothing else is written.

What fails when: frames that do not match the schema raise
`SchemaMismatchError` / `ColumnTypeError` / `EmptyDataError` before anything
is written; a malformed history raises `HistoryFormatError` (also before
writing); a holdout whose rows are mostly also in `real` raises
`HoldoutOverlapError`; a dataset without a usable utility target raises
`TargetError`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from synthreg.eval.errors import HoldoutOverlapError
from synthreg.eval.history import LossRecord, parse_history
from synthreg.eval.plots import plot_correlation_difference, plot_loss_curves, plot_marginals
from synthreg.eval.privacy import PrivacyResult, exact_copy_rate, privacy
from synthreg.eval.quality import QualityResult, quality
from synthreg.eval.table import TableSpec, check_frame
from synthreg.eval.utility import UtilityResult, UtilityTask, holdout_split, utility

REPORT_NAME = "report.md"
METRICS_NAME = "metrics.json"
# Real data has few natural duplicate records (rotterdam: none); a holdout that
# mostly repeats the real rows was not held out.
_MAX_HOLDOUT_OVERLAP = 0.5


@dataclass(frozen=True)
class Evaluation:
    """All metrics of one synthetic table, plus caveats that apply to them."""

    n_real: int
    n_synthetic: int
    n_holdout: int
    quality: QualityResult
    utility: UtilityResult
    privacy: PrivacyResult | None
    synthetic_exact_copy_rate: float
    association_diff_mean: float
    notes: list[str] = field(default_factory=list)
    dp: tuple[float, float] | None = None
    """(epsilon spent per registry, delta) of a model trained with differential privacy"""

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_real": self.n_real,
            "n_synthetic": self.n_synthetic,
            "n_holdout": self.n_holdout,
            "quality": self.quality.to_dict(),
            "utility": self.utility.to_dict(),
            "privacy": None if self.privacy is None else self.privacy.to_dict(),
            "synthetic_exact_copy_rate": self.synthetic_exact_copy_rate,
            "association_diff_mean": self.association_diff_mean,
            "notes": list(self.notes),
            "differential_privacy": None if self.dp is None else {"epsilon": self.dp[0], "delta": self.dp[1]},
        }


def write_report(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Any,
    out_dir: Path,
    history: Any = None,
    holdout: pd.DataFrame | None = None,
    task: UtilityTask | None = None,
    seed: int = 0,
    dp: tuple[float, float] | None = None,
) -> Path:
    """Evaluate `synthetic` against `real` and write the report; returns the report.md path.

    `real` is the pooled real data the generator was trained on, `holdout`
    optional real rows it never saw. With a holdout, utility is tested and
    privacy measured on it. Without one, utility uses a seeded 25 % split of
    `real` as test rows (optimistic: the generator may have seen them) and the
    DCR holdout comparison is skipped; both are stated in the report.
    `schema` is a `synthreg.data.Schema` (or a `TableSpec`); `history` any
    shape `synthreg.eval.history.parse_history` accepts. `dp` = (epsilon, delta)
    spent by each registry's discriminator (``FederatedResult.epsilon``,
    ``TrainConfig.dp_delta``) when the model was trained with differential privacy;
    the report states it (and states that there was none otherwise).
    """
    spec = TableSpec.from_schema(schema)
    real_c = check_frame(real, spec, "real")
    synth_c = check_frame(synthetic, spec, "synthetic")
    hold_c = None if holdout is None else check_frame(holdout, spec, "holdout")
    records = None if history is None else parse_history(history)
    if hold_c is not None:
        overlap = exact_copy_rate(real_c, hold_c)
        if overlap > _MAX_HOLDOUT_OVERLAP:
            raise HoldoutOverlapError(round(overlap * len(hold_c)), len(hold_c))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    notes: list[str] = []
    q = quality(real_c, synth_c, spec)
    if hold_c is not None:
        u = utility(real_c, hold_c, synth_c, spec, task, seed)
        p: PrivacyResult | None = privacy(real_c, hold_c, synth_c, spec)
    else:
        train, test = holdout_split(real_c, 0.25, seed)
        u = utility(train, test, synth_c, spec, task, seed)
        p = None
        notes.append("No real holdout was given: utility is tested on a 25 % split of the real "
                     "data that the generator may have trained on (optimistic), and the DCR "
                     "comparison against unseen patients is skipped.")
    files = [plot_marginals(real_c, synth_c, spec, out_dir / "marginals.png")]
    heatmap, assoc_diff = plot_correlation_difference(real_c, synth_c, spec,
                                                      out_dir / "association_diff.png")
    files.append(heatmap)
    if records is not None:
        files.append(plot_loss_curves(records, out_dir / "loss_curves.png"))

    evaluation = Evaluation(
        n_real=len(real_c), n_synthetic=len(synth_c), n_holdout=0 if hold_c is None else len(hold_c),
        quality=q, utility=u, privacy=p,
        synthetic_exact_copy_rate=exact_copy_rate(real_c, synth_c),
        association_diff_mean=assoc_diff, notes=notes, dp=dp,
    )
    metrics = evaluation.to_dict() | {"files": [f.name for f in files]}
    (out_dir / METRICS_NAME).write_text(json.dumps(_finite(metrics), indent=2) + "\n", encoding="utf-8")
    report_path = out_dir / REPORT_NAME
    report_path.write_text(render_markdown(evaluation, spec, [f.name for f in files], records),
                           encoding="utf-8")
    return report_path


def summary_lines(e: Evaluation) -> list[str]:
    """Plain-language verdicts, one per aspect (top of the report, CLI output)."""
    q = e.quality
    level = "high" if q.score >= 0.9 else "moderate" if q.score >= 0.8 else "low"
    lines = [f"Fidelity is {level}: SDMetrics quality {q.score:.1%} (column shapes "
             f"{q.column_shapes:.1%}, column pair trends {q.column_pair_trends:.1%})."]
    worst = min(q.columns, key=lambda c: q.columns[c]) if q.columns else None
    if worst is not None and q.columns[worst] < 0.999:
        lines.append(f"The least faithful column is `{worst}` (shape score {q.columns[worst]:.1%}).")
    u = e.utility
    keeps = "keeps most of" if u.auc_gap <= 0.03 else "keeps part of" if u.auc_gap <= 0.10 else "loses much of"
    lines.append(f"Utility: a model trained on synthetic data {keeps} the predictive signal for "
                 f"`{u.task}` (AUC {u.tstr_auc:.3f} vs {u.trtr_auc:.3f} when trained on real data).")
    p = e.privacy
    if p is None:
        warn = " — copies of real records are a disclosure risk" if e.synthetic_exact_copy_rate > 0.01 else ""
        lines.append(f"Privacy: {e.synthetic_exact_copy_rate:.1%} of synthetic records are exact copies "
                     f"of real records{warn}; no holdout was given, so closeness to unseen patients "
                     "was not compared.")
    else:
        suspicious = p.share_closer_than_holdout_p5 > 0.10 or p.exact_copy_rate > p.holdout_exact_copy_rate + 0.01
        verdict = "some synthetic records sit suspiciously close to training records" if suspicious \
            else "no sign of memorisation"
        lines.append(f"Privacy: {verdict} ({p.exact_copy_rate:.1%} exact copies; "
                     f"{p.share_closer_than_holdout_p5:.1%} of synthetic records are closer to a training "
                     f"record than 95 % of unseen real patients are; expected ≈ 5 %).")
    if e.dp is None:
        lines.append("Differential privacy: none (the generator was trained without a privacy budget).")
    else:
        lines.append(f"Differential privacy: each registry's discriminator spent epsilon = {e.dp[0]:.3g} at "
                     f"delta = {e.dp[1]:.3g} (DP-SGD, Opacus RDP accountant); the generator is post-processing. "
                     "Not covered: the consortium encoder's summed histograms.")
    return lines


def render_markdown(e: Evaluation, spec: TableSpec, files: list[str],
                    records: list[LossRecord] | None) -> str:
    """The report.md text (pure function of the evaluation)."""
    q, u, p = e.quality, e.utility, e.privacy
    out = ["# Synthetic data evaluation", "", "## Summary", ""]
    out += [f"- {line}" for line in summary_lines(e)]
    out += [f"- Note: {n}" for n in e.notes]
    out += ["", f"Real rows: {e.n_real}; synthetic rows: {e.n_synthetic}; holdout rows: {e.n_holdout}.", ""]
    out += ["## Fidelity (SDMetrics QualityReport)", "",
            "| metric | score |", "|---|---|",
            f"| overall quality | {q.score:.4f} |",
            f"| column shapes | {q.column_shapes:.4f} |",
            f"| column pair trends ({q.pairs_contributing} of {q.pairs_total} pairs above sdmetrics' "
            f"real-association thresholds) | {q.column_pair_trends:.4f} |",
            f"| column pair trends, all {q.pairs_total} pairs | {q.pair_trends_all:.4f} |",
            f"| mean absolute association difference | {e.association_diff_mean:.4f} |",
            "", "| column | type | metric | shape score |", "|---|---|---|---|"]
    for column in spec.columns:
        kind = "categorical" if spec.is_categorical(column) else "numerical"
        score = q.columns.get(column, float("nan"))
        out.append(f"| {column} | {kind} | {q.column_metric.get(column, '-')} | {score:.4f} |")
    out += ["", "![marginals](marginals.png)", "", "![association difference](association_diff.png)", ""]
    out += ["## Utility (train on synthetic, test on real)", "",
            f"Task `{u.task}`; logistic regression (one-hot + standardised features); "
            f"{u.n_real_test} real test rows (positive rate {u.positive_rate_real_test:.1%}).", "",
            "| trained on | rows | AUC | accuracy |", "|---|---|---|---|",
            f"| real (TRTR) | {u.n_real_train} | {u.trtr_auc:.4f} | {u.trtr_accuracy:.4f} |",
            f"| synthetic (TSTR) | {u.n_synthetic_train} | {u.tstr_auc:.4f} | {u.tstr_accuracy:.4f} |", ""]
    if u.synthetic_single_class:
        out += ["The synthetic rows contain a single outcome class; the TSTR model is constant.", ""]
    out += ["## Privacy (distance to closest real training record)", ""]
    if p is None:
        out += [f"Exact copies of real records: {e.synthetic_exact_copy_rate:.2%}. "
                "No holdout given: DCR comparison skipped.", ""]
    else:
        out += ["Standardised space fitted on the real training rows (numerical: z-score; "
                "categorical: one-hot / √2).", "",
                "| rows | median DCR | 5th percentile DCR | exact copies |", "|---|---|---|---|",
                f"| synthetic → train | {p.dcr_synthetic_median:.4f} | {p.dcr_synthetic_p5:.4f} | "
                f"{p.exact_copy_rate:.2%} |",
                f"| real holdout → train | {p.dcr_holdout_median:.4f} | {p.dcr_holdout_p5:.4f} | "
                f"{p.holdout_exact_copy_rate:.2%} |", "",
                f"Share of synthetic rows closer than the holdout's 5th percentile: "
                f"{p.share_closer_than_holdout_p5:.2%} (≈ 5 % expected without memorisation).", ""]
    if records is not None:
        rounds = len({r.round for r in records})
        regs = sorted({r.registry for r in records})
        out += ["## Training", "", f"{len(regs)} registries, {rounds} rounds.", "",
                "![loss curves](loss_curves.png)", ""]
    out += ["Files: " + ", ".join([*files, METRICS_NAME]), ""]
    return "\n".join(out)


def _finite(value: Any) -> Any:
    """Replace NaN/inf by None so metrics.json is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
