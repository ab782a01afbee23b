"""The run's stop rule: parsing and the plateau decision every app and the auditor recompute."""

from __future__ import annotations

import pytest

from synthreg.gan.stoprule import StopRule, StopRuleError


def test_budget_never_stops_early() -> None:
    rule = StopRule.parse({"kind": "budget"})
    assert not any(rule.stops_after(r, lambda _r: 1.0) for r in range(50))


def test_plateau_stops_at_the_first_round_whose_window_is_flat() -> None:
    losses = [2.0, 1.0, 0.8, 0.79, 0.7895, 0.7894, 0.5]
    asked: list[int] = []

    def loss(r: int) -> float:
        asked.append(r)
        return losses[r]

    rule = StopRule.parse({"kind": "loss_plateau", "epsilon": 0.02, "window": 2, "min_rounds": 3})
    decisions = [rule.stops_after(r, loss) for r in range(len(losses))]
    # r=3: changes 0.8->0.79 (1.25%) and 1.0->0.8 (20%): no; r=4: 1.25% and 0.06%: yes
    assert decisions.index(True) == 4
    assert max(asked) <= 6 and min(asked) >= 0


def test_min_rounds_holds_back_an_early_plateau() -> None:
    rule = StopRule.parse({"kind": "loss_plateau", "epsilon": 0.5, "window": 1, "min_rounds": 5})
    assert [rule.stops_after(r, lambda _r: 1.0) for r in range(6)] == [False] * 4 + [True, True]


@pytest.mark.parametrize("raw", [
    {"kind": "sometimes"},
    {"kind": "budget", "epsilon": 1},
    {"kind": "loss_plateau", "epsilon": 0.1, "window": 2},
    {"kind": "loss_plateau", "epsilon": -1, "window": 2, "min_rounds": 1},
    {"kind": "loss_plateau", "epsilon": 0.1, "window": 0, "min_rounds": 1},
    {"kind": "loss_plateau", "epsilon": "x", "window": 1, "min_rounds": 1},
])
def test_malformed_rules_are_refused(raw: dict[str, object]) -> None:
    with pytest.raises(StopRuleError):
        StopRule.parse(raw)
