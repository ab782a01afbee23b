"""Privacy accounting of DP-SGD on the discriminators (issue 12): Opacus's RDP accountant.

Who calls: :class:`synthreg.gan.federated.TrainConfig` (the round cap of a DP run),
the discriminator app (the epsilon it records per round), the auditor
(:mod:`synthreg.trail.verify`, which recomputes every recorded epsilon) and the
quality report. Nothing here is written by hand: :func:`epsilon_spent` is
Opacus's ``RDPAccountant`` (Poisson-subsampled Gaussian mechanism, Mironov et al.
2019, converted to (epsilon, delta) as in Balle et al. 2020) and
:func:`noise_for_budget` is Opacus's ``get_noise_multiplier``.

One step of one registry's discriminator is one use of the mechanism with noise
multiplier sigma and sample rate q (every record joins the step's real batch with
probability q, independently). sigma, q and delta are in the run's training
config, the same for every registry, so epsilon after k steps is a pure function
of the config and k: every registry, and the auditor, computes the same number.

What fails when: :class:`PrivacyBudgetError` when not even one round fits in the
budget.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

__all__ = ["ACCOUNTANT", "PrivacyBudgetError", "epsilon_spent", "noise_for_budget", "rounds_within_budget"]

ACCOUNTANT = "opacus-rdp"
"""The accountant's name as recorded on the ledger (``RecordPrivacySpend``)."""


def _opacus() -> tuple[Any, Any]:
    """Opacus, imported on first use only: importing it configures the root logger
    (``logging.basicConfig``), which runs without DP must not pay for; the handlers it
    adds are removed again (the apps configure their own, with ``force``)."""
    before = list(logging.getLogger().handlers)
    from opacus.accountants import RDPAccountant
    from opacus.accountants.utils import get_noise_multiplier

    root = logging.getLogger()
    for h in list(root.handlers):
        if h not in before:
            root.removeHandler(h)
    return RDPAccountant, get_noise_multiplier


class PrivacyBudgetError(ValueError):
    """The privacy budget does not allow one round of training."""


@lru_cache(maxsize=4096)
def epsilon_spent(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """Epsilon of ``steps`` DP-SGD steps (sigma = ``noise_multiplier``, Poisson rate
    ``sample_rate``) at ``delta``, by Opacus's RDP accountant; 0.0 for no step."""
    if steps <= 0:
        return 0.0
    RDPAccountant, _ = _opacus()
    acc = RDPAccountant()
    acc.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    return float(acc.get_epsilon(delta=float(delta)))


def rounds_within_budget(epsilon: float, delta: float, noise_multiplier: float, sample_rate: float,
                         local_iters: int, rounds: int) -> int:
    """The most rounds (<= ``rounds``) of ``local_iters`` steps whose epsilon stays
    within ``epsilon``: the round after it would exceed the budget, so the run stops
    there (every registry alike: the numbers are the run's). Raises
    :class:`PrivacyBudgetError` when even one round exceeds it."""
    lo, hi = 0, rounds  # epsilon grows with the steps: binary search the last round within budget
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if epsilon_spent(noise_multiplier, sample_rate, mid * local_iters, delta) <= epsilon:
            lo = mid
        else:
            hi = mid - 1
    if lo == 0:
        first = epsilon_spent(noise_multiplier, sample_rate, local_iters, delta)
        raise PrivacyBudgetError(f"one round of {local_iters} steps already spends epsilon {first:.4g} "
                                 f"> the budget {epsilon:g} (delta {delta:g}, noise multiplier "
                                 f"{noise_multiplier:g}, sample rate {sample_rate:g})")
    return lo


def noise_for_budget(epsilon: float, delta: float, sample_rate: float, steps: int) -> float:
    """The smallest noise multiplier (Opacus's search, tolerance 0.01 in epsilon)
    whose ``steps`` steps spend at most ``epsilon``: sets sigma for a run that
    should use its whole budget (the benchmark's runs)."""
    _, get_noise_multiplier = _opacus()
    return float(get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate,
                                      steps=steps, accountant="rdp"))
