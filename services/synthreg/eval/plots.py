"""PNG figures of the evaluation (matplotlib, Agg backend, no display needed).

Called by `write_report`. Each function writes one PNG to the given path and
returns it; nothing is shown or kept open. Inputs are checked frames
(`synthreg.eval.table.check_frame`) and `LossRecord`s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from synthreg.eval.associations import association_matrix
from synthreg.eval.history import LossRecord
from synthreg.eval.table import TableSpec

_REAL, _SYNTH = "#1f77b4", "#ff7f0e"


def plot_marginals(real: pd.DataFrame, synthetic: pd.DataFrame, spec: TableSpec, path: Path) -> Path:
    """Grid of per-column marginals: shared-bin density histograms / category shares."""
    n = len(spec.columns)
    ncols = 4
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 2.8 * nrows), squeeze=False)
    for ax, column in zip(axes.flat, spec.columns, strict=False):  # the grid may have spare axes
        if spec.is_categorical(column):
            r = real[column].astype(str).value_counts(normalize=True)
            s = synthetic[column].astype(str).value_counts(normalize=True)
            cats = sorted(set(r.index) | set(s.index))
            x = np.arange(len(cats))
            ax.bar(x - 0.2, [r.get(c, 0.0) for c in cats], 0.4, color=_REAL, label="real")
            ax.bar(x + 0.2, [s.get(c, 0.0) for c in cats], 0.4, color=_SYNTH, label="synthetic")
            ax.set_xticks(x, cats, fontsize=8)
        else:
            r_vals = real[column].dropna().to_numpy(dtype=float)
            s_vals = synthetic[column].dropna().to_numpy(dtype=float)
            both = np.concatenate([r_vals, s_vals])
            bins = np.histogram_bin_edges(both, bins=30) if both.size else 10
            ax.hist(r_vals, bins=bins, density=True, alpha=0.55, color=_REAL, label="real")
            ax.hist(s_vals, bins=bins, density=True, alpha=0.55, color=_SYNTH, label="synthetic")
        ax.set_title(column, fontsize=10)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Marginal distributions: real vs synthetic")
    fig.tight_layout()
    return _save(fig, path)


def plot_correlation_difference(real: pd.DataFrame, synthetic: pd.DataFrame, spec: TableSpec,
                                path: Path) -> tuple[Path, float]:
    """Heatmap of |association(real) − association(synthetic)|; returns (path, mean off-diagonal diff)."""
    diff = (association_matrix(real, spec) - association_matrix(synthetic, spec)).abs()
    names = list(spec.columns)
    fig, ax = plt.subplots(figsize=(0.55 * len(names) + 3, 0.55 * len(names) + 2))
    image = ax.imshow(diff.to_numpy(), vmin=0.0, vmax=1.0, cmap="Reds")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{diff.iat[i, j]:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label="|assoc(real) − assoc(synthetic)|")
    ax.set_title("Association difference (|r|, Cramér's V, η)")
    fig.tight_layout()
    off = diff.to_numpy()[~np.eye(len(names), dtype=bool)]
    return _save(fig, path), float(off.mean()) if off.size else 0.0


def plot_loss_curves(records: Sequence[LossRecord], path: Path) -> Path:
    """Per-registry generator and discriminator loss per round (two panels)."""
    fig, (ax_g, ax_d) = plt.subplots(1, 2, figsize=(11, 3.8))
    registries = sorted({r.registry for r in records})
    for registry in registries:
        mine = [r for r in records if r.registry == registry]
        rounds = [r.round for r in mine]
        ax_g.plot(rounds, [r.g_loss for r in mine], marker=".", label=registry)
        ax_d.plot(rounds, [r.d_loss for r in mine], marker=".", label=registry)
    for ax, title in ((ax_g, "generator loss"), (ax_d, "discriminator loss")):
        ax.set_xlabel("round")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    ax_g.legend(title="registry", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
