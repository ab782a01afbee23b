"""Which chaincode events make an app re-read a secure-aggregation round (issue 11: each
``GetRound`` costs the peer and the chaincode ~18 ms of CPU on this machine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthreg.apps.base import AGREEMENT_EVENTS, PHASE_CLOSING_EVENTS, App, on_round
from synthreg.apps.events import AppEvent, EventFeed
from synthreg.apps.merger import PHASE_EVENTS
from synthreg.ledger.events import Checkpoint


def _agg(name: str, rnd: int, run: str = "r", **payload: Any) -> AppEvent:
    return AppEvent(name, 1, "tx", {"run": run, "round": rnd, "msp": "Registry2MSP", **payload})


class _Generator:
    """What :meth:`App.round_went_on` uses of an app: its feed, its memo and a counted ``left_out``."""

    def __init__(self, feed: EventFeed) -> None:
        self.feed = feed
        self._went_on_asked: dict[tuple[str, int], int] = {}
        self.asks = 0
        self.out = False

    def left_out(self, run: str, rnd: int, spec: Any) -> bool:
        self.asks += 1
        return self.out


def test_the_generator_asks_the_ledger_only_after_an_event_that_can_leave_it_out(tmp_path: Path) -> None:
    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"))  # type: ignore[arg-type]  # fed by hand
    g = _Generator(feed)

    def went_on() -> bool:
        return bool(App.round_went_on(g, "r", 3, None))  # type: ignore[arg-type]

    assert not went_on() and g.asks == 0  # no event of the round yet
    feed._deliver(_agg("AggAdvertised", 3))  # the own merger's keys, pipelined: closes nothing
    assert not went_on() and g.asks == 0
    feed._deliver(_agg("AggSharesPosted", 3))  # may close the advertise phase without this registry
    assert not went_on() and g.asks == 1
    assert not went_on() and g.asks == 1  # nothing new since that ask: the answer cannot have changed
    feed._deliver(_agg("AggFrozen", 4))  # another round's
    feed._deliver(_agg("AggFrozen", 3, run="other"))  # another run's
    assert not went_on() and g.asks == 1
    g.out = True
    feed._deliver(_agg("AggFrozen", 3, status="frozen"))
    assert went_on() and g.asks == 2


def test_round_waits_match_only_the_events_that_can_end_them() -> None:
    agreed = on_round("r", 2, AGREEMENT_EVENTS)
    assert agreed(_agg("AggResultPosted", 2)) and agreed(_agg("AggFrozen", 2))
    assert not agreed(_agg("AggSubmitted", 2)) and not agreed(_agg("AggResultPosted", 1))
    assert not agreed(_agg("AggResultPosted", 2, run="r/encoder"))
    assert "AggAdvertised" not in PHASE_CLOSING_EVENTS
    # every phase wait wakes on the freeze and on votes (a phase closed without someone);
    # the advertise wait also on shares (they close it), the share wait on submissions
    for phase in ("advertise", "shares", "submit"):
        assert {"AggFrozen", "AggVoted"} <= PHASE_EVENTS[phase]
    assert "AggSharesPosted" in PHASE_EVENTS["advertise"] and "AggSubmitted" in PHASE_EVENTS["shares"]
    assert PHASE_EVENTS["reveal"] == {"AggRevealed"}
