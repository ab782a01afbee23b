"""The run's stop rule, decided by every app from ledger records alone (the paper's stop flow).

Who calls: the run spec (:mod:`synthreg.chain.runs`, which refuses a malformed
rule), the generator, discriminator and merger apps after each round's
agreed average. Because the decision uses only what every registry can read
on the ledger (the discriminators' recorded generator losses), every app of
every registry reaches it at the same round; the generators then record
``RecordStop`` with reason ``threshold``, and the mergers write the bundle of
that round. The auditor recomputes it (:mod:`synthreg.trail.verify`).

Rules (``stop_rule`` in the run spec):

* ``{"kind": "budget"}``: train all ``rounds`` (the default);
* ``{"kind": "loss_plateau", "epsilon": e, "window": W, "min_rounds": m}``:
  with ``L_r`` the mean over registries of the mean generator loss their
  discriminators recorded in round r, stop after round r ≥ max(m, W) - 1 once
  ``|L_j - L_{j-1}| / max(|L_{j-1}|, 1e-8) < e`` for each of the last W rounds
  j = r-W+1 … r. The budget still caps the run.

What fails when: :class:`StopRuleError` for a malformed rule (the run spec is
refused before it reaches the ledger).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["StopRule", "StopRuleError"]


class StopRuleError(ValueError):
    """The stop rule of a run spec is malformed."""


@dataclass(frozen=True)
class StopRule:
    kind: str = "budget"
    epsilon: float = 0.0
    window: int = 1
    min_rounds: int = 1

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> StopRule:
        kind = raw.get("kind")
        if kind == "budget":
            if set(raw) != {"kind"}:
                raise StopRuleError(f"stop rule 'budget' takes no parameters, got {sorted(set(raw) - {'kind'})}")
            return cls()
        if kind != "loss_plateau":
            raise StopRuleError(f"unknown stop rule {kind!r} (budget, loss_plateau)")
        expected = {"kind", "epsilon", "window", "min_rounds"}
        if set(raw) != expected:
            raise StopRuleError(f"stop rule 'loss_plateau' needs exactly {sorted(expected)}, got {sorted(raw)}")
        try:
            rule = cls("loss_plateau", float(raw["epsilon"]), int(raw["window"]), int(raw["min_rounds"]))
        except (TypeError, ValueError) as exc:
            raise StopRuleError(f"stop rule: {exc}") from exc
        if not (math.isfinite(rule.epsilon) and rule.epsilon > 0) or rule.window < 1 or rule.min_rounds < 1:
            raise StopRuleError("stop rule needs epsilon > 0, window >= 1, min_rounds >= 1")
        return rule

    def stops_after(self, rnd: int, mean_g_loss: Callable[[int], float]) -> bool:
        """Whether training stops after round ``rnd`` (budget aside); ``mean_g_loss(r)``
        is L_r, read from the ledger (only the rounds the rule needs are asked for)."""
        if self.kind == "budget" or rnd + 1 < max(self.min_rounds, self.window + 1):
            return False
        for j in range(rnd - self.window + 1, rnd + 1):
            prev, cur = mean_g_loss(j - 1), mean_g_loss(j)
            if abs(cur - prev) / max(abs(prev), 1e-8) >= self.epsilon:
                return False
        return True
