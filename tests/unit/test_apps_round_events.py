"""Which chaincode events make an app re-read a secure-aggregation round (issue 11: each
``GetRound`` costs the peer and the chaincode ~18 ms of CPU on this machine)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from synthreg.apps.base import AGREEMENT_EVENTS, PHASE_CLOSING_EVENTS, App, on_round
from synthreg.apps.events import AppEvent, EventFeed, Named
from synthreg.apps.merger import PHASE_EVENTS
from synthreg.ledger.events import Checkpoint


def _agg(name: str, rnd: int, run: str = "r", **payload: Any) -> AppEvent:
    return AppEvent(name, 1, "tx", {"run": run, "round": rnd, "msp": "Registry2MSP", **payload})


class _Generator:
    """What :meth:`App.round_went_on` uses of an app: its feed, its memo and a counted ``left_out``."""

    msp = "Registry1MSP"
    _closing_without_me = App._closing_without_me
    mine_in = App.mine_in

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
    feed._deliver(_agg("AggAdvertised", 3))  # another merger's keys: close nothing
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


def test_once_its_merger_joined_a_phase_the_generator_ignores_what_closes_that_phase(tmp_path: Path) -> None:
    """Shares and votes that close a phase the own merger is in cannot leave the registry
    out (:func:`~synthreg.chain.secagg.left_out_of`): no ``GetRound`` for them."""
    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"))  # type: ignore[arg-type]  # fed by hand
    g = _Generator(feed)

    def went_on() -> bool:
        return bool(App.round_went_on(g, "r", 3, None))  # type: ignore[arg-type]

    _from(feed, "Registry1MSP", "AggAdvertised", 3)  # the own merger is in A
    _from(feed, "Registry2MSP", "AggSharesPosted", 3)  # closes the advertise phase: not without it
    _from(feed, "Registry3MSP", "AggVoted", 3, phase="advertise")
    assert not went_on() and g.asks == 0
    _from(feed, "Registry2MSP", "AggSubmitted", 3)  # closes the share phase, the own shares not in yet
    assert not went_on() and g.asks == 1
    _from(feed, "Registry1MSP", "AggSharesPosted", 3)  # now in P too
    _from(feed, "Registry3MSP", "AggSubmitted", 3)
    _from(feed, "Registry3MSP", "AggVoted", 3, phase="shares")
    assert not went_on() and g.asks == 1
    _from(feed, "Registry2MSP", "AggVoted", 3, phase="submit")  # a vote alone freezes nothing: the freeze does
    assert not went_on() and g.asks == 1
    g.out = True
    _from(feed, "Registry2MSP", "AggFrozen", 3, status="frozen")
    assert went_on() and g.asks == 2


def test_a_shares_vote_asks_while_the_own_shares_are_not_in(tmp_path: Path) -> None:
    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"))  # type: ignore[arg-type]  # fed by hand
    g = _Generator(feed)
    _from(feed, "Registry1MSP", "AggAdvertised", 3)
    _from(feed, "Registry2MSP", "AggVoted", 3, phase="advertise")
    assert not App.round_went_on(g, "r", 3, None) and g.asks == 0  # type: ignore[arg-type]
    _from(feed, "Registry2MSP", "AggVoted", 3, phase="shares")
    assert not App.round_went_on(g, "r", 3, None) and g.asks == 1  # type: ignore[arg-type]


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


def _from(feed: EventFeed, msp: str, name: str, rnd: int, **payload: Any) -> None:
    feed._deliver(AppEvent(name, 1, "tx", {"run": "r", "round": rnd, "msp": msp, **payload}))


def test_a_result_that_advertised_the_next_round_is_that_rounds_advertisement(tmp_path: Path) -> None:
    """``PostResult`` with "next" advertises its merger in the next round in the same
    transaction, whose one event is the ``AggResultPosted``: the feed delivers it as that
    round's ``AggAdvertised`` too, so the next round's waits count it like an Advertise."""
    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"))  # type: ignore[arg-type]  # fed by hand
    adverts_of_4 = on_round("r", 4, {"AggAdvertised"})
    _from(feed, "Registry1MSP", "AggResultPosted", 3, average_sha256="a" * 64)  # the result alone
    assert feed.msps(adverts_of_4) == set()
    _from(feed, "Registry2MSP", "AggResultPosted", 3, average_sha256="a" * 64, next_advertised=True)
    _from(feed, "Registry3MSP", "AggAdvertised", 4)  # a plain Advertise
    assert feed.msps(adverts_of_4) == {"Registry2MSP", "Registry3MSP"}
    assert feed.msps(on_round("r", 3, {"AggResultPosted"})) == {"Registry1MSP", "Registry2MSP"}  # results kept
    assert feed.msps(on_round("r", 3, {"AggAdvertised"})) == set()
    assert [ev.payload["msp"] for ev in feed.matching(adverts_of_4)] == ["Registry2MSP", "Registry3MSP"]


def test_the_feed_finds_named_events_like_a_scan_of_all(tmp_path: Path) -> None:
    """:class:`Named` matches look only at their names' events (and, with ``at``, only at
    those of one run and round), with the same answers."""
    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"))  # type: ignore[arg-type]  # fed by hand
    named = on_round("r", 3, {"AggResultPosted", "AggFrozen"})
    scan = lambda ev: named(ev)  # noqa: E731  # a plain callable: the feed scans every event
    by_name = Named(named.names, named.where)  # the names' events of every round
    assert isinstance(named, Named) and named.at == ("r", 3)
    feed._deliver(AppEvent("AggResultPosted", 1, "tx", {"run": "other", "round": 3, "msp": "Registry1MSP"}))
    mark = feed.mark()
    assert feed.seen(named) is None and feed.msps(named) == set() and not feed.seen_since(mark, named)
    for rnd in range(5):
        for i in (1, 2, 3):
            _from(feed, f"Registry{i}MSP", "AggSubmitted", rnd)
    _from(feed, "Registry1MSP", "AggFrozen", 3, status="frozen")
    _from(feed, "Registry2MSP", "AggResultPosted", 3)
    mark = feed.mark()
    _from(feed, "Registry3MSP", "AggResultPosted", 3)
    _from(feed, "Registry3MSP", "AggResultPosted", 4)
    for match in (named, by_name, scan):
        newest = feed.seen(match)
        assert newest is not None and newest.payload["msp"] == "Registry3MSP" and newest.name == "AggResultPosted"
        assert feed.msps(match) == {"Registry1MSP", "Registry2MSP", "Registry3MSP"}
        assert feed.seen_since(mark, match) and not feed.seen_since(feed.mark(), match)


def test_a_gated_wait_asks_the_ledger_first_then_only_when_the_events_allow(tmp_path: Path) -> None:
    """:meth:`App.gated`: the first check asks; later ones only when the gate opens, or
    once the last ask is ``recheck_s`` old (a missed event only delays)."""
    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"), recheck_s=0.2)  # type: ignore[arg-type]
    app = SimpleNamespace(feed=feed)
    asks: list[int] = []
    gate = [False]
    check = App.gated(app, lambda: asks.append(1) or None, lambda: gate[0])  # type: ignore[arg-type, func-returns-value]
    assert check() is None and len(asks) == 1  # the first check always asks
    assert check() is None and len(asks) == 1  # gate shut, last ask fresh: no ask
    gate[0] = True
    assert check() is None and len(asks) == 2
    gate[0] = False
    time.sleep(0.2)
    assert check() is None and len(asks) == 3  # the last ask is recheck_s old
    asks.clear()
    later = App.gated(app, lambda: asks.append(1) or None, lambda: gate[0], ask_first=False)  # type: ignore[arg-type, func-returns-value]
    assert later() is None and asks == []  # not even the first check asks while the gate is shut
    gate[0] = True
    assert later() is None and len(asks) == 1


def test_the_agreement_may_be_in_only_after_t_results_or_a_void_freeze(tmp_path: Path) -> None:
    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"))  # type: ignore[arg-type]  # fed by hand
    app = SimpleNamespace(feed=feed)

    def may(rnd: int) -> bool:
        return bool(App.agreement_may_be_in(app, "r", rnd, 2))  # type: ignore[arg-type]

    _from(feed, "Registry1MSP", "AggFrozen", 0, status="frozen")
    _from(feed, "Registry1MSP", "AggResultPosted", 0)
    _from(feed, "Registry1MSP", "AggResultPosted", 0)  # the same registry twice is one result
    _from(feed, "Registry2MSP", "AggResultPosted", 1)  # another round's
    assert not may(0)
    _from(feed, "Registry3MSP", "AggResultPosted", 0)
    assert may(0)
    _from(feed, "Registry2MSP", "AggFrozen", 2, status="void")
    assert may(2) and not may(1)


class _Waiter:
    """What :meth:`App.agreed_average` uses of a generator or discriminator: a hand-fed
    feed, a counted ``GetRound`` and a real workspace holding the average."""

    agreed_average = App.agreed_average
    agreed_by_events = App.agreed_by_events
    agreement_may_be_in = App.agreement_may_be_in
    gated = App.gated

    def __init__(self, feed: EventFeed, root: Path) -> None:
        from synthreg.workspace import Workspace
        self.feed, self.workspace = feed, Workspace(root)
        self._agreement_waited = False
        self.state: dict[str, Any] | None = None
        self.reads = 0

    def evaluate_or_none(self, fn: str, *args: str) -> Any:
        assert fn == "GetRound"
        self.reads += 1
        return self.state

    def wait(self, ready: Any, match: Any, what: str, run: str) -> Any:
        return self.feed.wait(ready, match, what, run=run, timeout=5.0)


def test_the_agreed_average_is_read_at_once_only_in_the_first_wait(tmp_path: Path) -> None:
    """A generator or discriminator waits for round r's agreement right after its own
    update, before any merger could post a result: after the process's first wait
    (whose events may precede the feed's checkpoint) it reads ``GetRound`` only once t
    results came."""
    import threading

    import numpy as np
    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"), recheck_s=30.0)  # type: ignore[arg-type]
    app = _Waiter(feed, tmp_path / "ws")
    avg = np.arange(4, dtype="<f4")
    sha = app.workspace.put(avg.tobytes())
    app.state = {"agreed": True, "average_sha256": sha}  # round 3 agreed before the process started
    got, _ = app.agreed_average("r", 3, "r", threshold=2)
    assert app.reads == 1 and got.tolist() == avg.tolist()

    app.state = {"status": "frozen"}

    def agree() -> None:
        _from(feed, "Registry2MSP", "AggResultPosted", 4)
        time.sleep(0.1)
        app.state = {"agreed": True, "average_sha256": sha}
        _from(feed, "Registry3MSP", "AggResultPosted", 4)

    timer = threading.Timer(0.3, agree)
    timer.start()
    try:
        app.agreed_average("r", 4, "r", threshold=2)
    finally:
        timer.join()
    assert app.reads == 2  # none before the t-th result (recheck_s is 30 s here), one after it


def test_t_equal_results_seen_as_events_are_the_agreement_without_a_read(tmp_path: Path) -> None:
    """Only survivors post a result, once each, and t > n/2: t events naming one hash
    are the agreement GetRound would derive. Fewer, or t that disagree: read."""
    import numpy as np
    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"), recheck_s=30.0)  # type: ignore[arg-type]
    app = _Waiter(feed, tmp_path / "ws")
    sha = app.workspace.put(np.arange(3, dtype="<f4").tobytes())
    _from(feed, "Registry1MSP", "AggResultPosted", 5, average_sha256=sha)
    assert app.agreed_by_events("r", 5, 2) is None  # one of t = 2
    _from(feed, "Registry1MSP", "AggResultPosted", 5, average_sha256=sha)  # the same registry again: still one
    _from(feed, "Registry2MSP", "AggResultPosted", 6, average_sha256=sha)  # another round's
    _from(feed, "Registry3MSP", "AggResultPosted", 5, average_sha256="f" * 64)  # another hash
    assert app.agreed_by_events("r", 5, 2) is None
    _from(feed, "Registry2MSP", "AggResultPosted", 5, average_sha256=sha)
    assert app.agreed_by_events("r", 5, 2) == sha
    app._agreement_waited = True
    got, state = app.agreed_average("r", 5, "r", threshold=2, by_events=True)
    assert app.reads == 0 and state == {"agreed": True, "average_sha256": sha} and got.tolist() == [0, 1, 2]
    _from(feed, "Registry1MSP", "AggResultPosted", 7)  # an event without the hash (an older chaincode)
    _from(feed, "Registry2MSP", "AggResultPosted", 7)
    app.state = {"agreed": True, "average_sha256": sha}
    app.agreed_average("r", 7, "r", threshold=2, by_events=True)
    assert app.reads == 1  # read back, as before


class _Merger:
    """What MergerApp._round_waits uses of the app: a hand-fed feed and a counted GetRound."""

    msp = "Registry1MSP"
    gated = App.gated
    agreement_may_be_in = App.agreement_may_be_in

    def __init__(self, feed: EventFeed, state: dict[str, Any]) -> None:
        self.feed, self.state = feed, state
        self._first_round: dict[str, int] = {}
        self.reads = 0

    def evaluate_or_none(self, fn: str, *args: str) -> Any:
        assert fn == "GetRound"
        self.reads += 1
        return self.state

    def wait(self, ready: Any, match: Any, what: str, run: str, timeout: float | None = None) -> Any:
        return self.feed.wait(ready, match, what, run=run, timeout=timeout)


def test_after_its_first_round_a_merger_reads_a_phase_only_once_everyone_arrived(tmp_path: Path) -> None:
    """:meth:`MergerApp._round_waits`: in the first round of a process the wait reads at once
    (the round's events may precede its feed's checkpoint); later, not before the expected
    arrivals' events came (their count read off the previous wait's round: ``after``)."""
    import threading

    from synthreg.apps.merger import MergerApp

    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"), recheck_s=30.0)  # type: ignore[arg-type]
    three = {m: {} for m in ("Registry1MSP", "Registry2MSP", "Registry3MSP")}
    app = _Merger(feed, {"advertised": three, "shares": three, "votes": {}})
    spec = SimpleNamespace(participants=list(three), threshold=2, round_timeout_s=None)
    merger = SimpleNamespace(run="r")

    def shares_wait(rnd: int) -> dict[str, Any]:
        until = MergerApp._round_waits(app, merger, spec, rnd, "r")  # type: ignore[arg-type]
        return until(lambda s: len(s["shares"]) == len(s["advertised"]), "every merger's shares",
                     PHASE_EVENTS["shares"], gate="shares", after={"advertised": three})

    assert shares_wait(4)["shares"] == three and app.reads == 1  # the process's first round: read at once
    for m in ("Registry1MSP", "Registry2MSP"):
        _from(feed, m, "AggSharesPosted", 5)
    timer = threading.Timer(0.3, lambda: _from(feed, "Registry3MSP", "AggSharesPosted", 5))
    timer.start()
    try:
        assert shares_wait(5)["shares"] == three
    finally:
        timer.join()
    assert app.reads == 2  # round 5: one read, after the third merger's shares came


def test_a_merger_answers_the_agreement_wait_from_t_equal_result_events(tmp_path: Path) -> None:
    """The final wait of a round: ``by_events`` answers once t results name one hash, no read."""
    from synthreg.apps.merger import MergerApp

    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"), recheck_s=30.0)  # type: ignore[arg-type]
    app = _Merger(feed, {"agreed": None})
    app.agreed_by_events = App.agreed_by_events.__get__(app)  # type: ignore[attr-defined]
    spec = SimpleNamespace(participants=["Registry1MSP", "Registry2MSP", "Registry3MSP"], threshold=2,
                           round_timeout_s=None)
    until = MergerApp._round_waits(app, SimpleNamespace(run="r"), spec, 4, "r")  # type: ignore[arg-type]
    for m in ("Registry1MSP", "Registry3MSP"):
        _from(feed, m, "AggResultPosted", 4, average_sha256="a" * 64)

    def by_events() -> dict[str, Any] | None:
        sha = app.agreed_by_events("r", 4, 2)  # type: ignore[attr-defined]
        return None if sha is None else {"agreed": True, "average_sha256": sha}

    final = until(lambda s: s.get("agreed") is not None, "t equal results", AGREEMENT_EVENTS, gate="result",
                  by_events=by_events)
    assert final == {"agreed": True, "average_sha256": "a" * 64} and app.reads == 0


class _UpdateReader:
    """What MergerApp._local_update uses: the feed, the own msp and a counted GetLocalUpdate."""

    msp = "Registry1MSP"
    mine = App.mine
    mine_in = App.mine_in

    def __init__(self, feed: EventFeed) -> None:
        self.feed = feed
        self.reads = 0

    def evaluate_or_none(self, fn: str, *args: str) -> Any:
        assert fn == "GetLocalUpdate"
        self.reads += 1
        return {"round": 3, "g_weights_sha256": "c" * 64, "d_weights_sha256": "d" * 64, "iter": 9}


def test_the_merger_reads_its_local_update_back_and_raises_a_recorded_fault(tmp_path: Path) -> None:
    """``_local_update``: the update an earlier process's Submit recorded, read back (its
    generator puts it in the workspace; the ledger has it only after the Submit); a fault
    of the registry's G or D, on the own peer's events, raises instead."""
    from synthreg.apps.merger import MergerApp

    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"))  # type: ignore[arg-type]  # fed by hand
    app = _UpdateReader(feed)

    def local_update(rnd: int) -> Any:
        return MergerApp._local_update(app, "r", rnd)  # type: ignore[arg-type]

    assert local_update(3)["g_weights_sha256"] == "c" * 64 and app.reads == 1
    _from(feed, "Registry2MSP", "StepFault", 4, iter=2, kind="fake_hash_mismatch")  # another registry's
    assert local_update(4)["g_weights_sha256"] == "c" * 64 and app.reads == 2
    _from(feed, "Registry1MSP", "StepFault", 4, iter=2, kind="fake_hash_mismatch")
    with pytest.raises(Exception, match="fake_hash_mismatch"):
        local_update(4)
    assert app.reads == 2


class _UpdateWaiter(_UpdateReader):
    """What MergerApp._update_wait uses besides _local_update: the left-out check."""

    _closing_without_me = App._closing_without_me
    round_went_on = App.round_went_on

    def __init__(self, feed: EventFeed, out: bool) -> None:
        super().__init__(feed)
        self._first_round = {"r": 0}
        self._went_on_asked: dict[tuple[str, int], int] = {}
        self.out, self.round_reads = out, 0

    def left_out(self, run: str, rnd: int, spec: Any) -> bool:
        self.round_reads += 1
        return self.out

    def _local_update(self, run: str, rnd: int) -> Any:
        from synthreg.apps.merger import MergerApp
        return MergerApp._local_update(self, run, rnd)  # type: ignore[arg-type]

    def _update_or_left_out(self, run: str, rnd: int, spec: Any) -> Any:
        from synthreg.apps.merger import MergerApp
        return MergerApp._update_or_left_out(self, run, rnd, spec)  # type: ignore[arg-type]


def test_a_merger_sees_it_was_left_out_by_events_that_came_before_its_wait(tmp_path: Path) -> None:
    """A registry back from an outage: the round's other mergers shared while it could not
    (events replayed before its wait for the update began). Its first check asks the
    ledger and finds it left out; it never waits for an update its generator will not
    record (a hang seen in test_apps_recovery while this was written)."""
    from synthreg.apps.merger import MergerApp

    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"))  # type: ignore[arg-type]  # fed by hand
    _from(feed, "Registry2MSP", "AggAdvertised", 3)
    _from(feed, "Registry2MSP", "AggSharesPosted", 3)  # closes the advertise phase without Registry1
    app = _UpdateWaiter(feed, out=True)
    ready = MergerApp._update_wait(app, "r", 3, None)  # type: ignore[arg-type]
    assert ready() == {"left_out": True} and app.round_reads == 1 and app.reads == 0


def test_a_merger_waiting_for_its_update_reads_nothing_until_an_event_calls_for_it(tmp_path: Path) -> None:
    from synthreg.apps.merger import MergerApp

    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"))  # type: ignore[arg-type]  # fed by hand
    app = _UpdateWaiter(feed, out=False)
    _from(feed, "Registry1MSP", "AggAdvertised", 3)
    _from(feed, "Registry1MSP", "AggSharesPosted", 3)
    ready = MergerApp._update_wait(app, "r", 3, None)  # type: ignore[arg-type]
    for name in ("AggAdvertised", "AggSharesPosted", "AggSubmitted"):  # the others' round: cannot leave it out
        _from(feed, "Registry2MSP", name, 3)
        assert ready() is None
    assert (app.reads, app.round_reads) == (0, 0)
    _from(feed, "Registry1MSP", "GeneratorRoot", 3)  # its own training: the update comes from the workspace
    assert ready() is None and (app.reads, app.round_reads) == (0, 0)
    first = MergerApp._update_wait(app, "r", 0, None)  # type: ignore[arg-type]  # the process's first round
    assert first() is not None and app.reads == 1  # read from the ledger at once
