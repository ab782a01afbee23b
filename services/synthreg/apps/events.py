"""The apps' event loop: ``ganledger`` chaincode events from the app's own peer.

Who calls: every app (:mod:`synthreg.apps.base`). One background thread reads
the resumable chaincode-event stream (:meth:`synthreg.ledger.Network.chaincode_events`)
and records where it got to in a file :class:`~synthreg.ledger.events.Checkpoint`;
the app's logic blocks in :meth:`EventFeed.wait` until an event it cares about
has arrived and the ledger then shows what it waits for.

Events are wake-ups, the ledger is the truth: every wait re-reads the state it
needs (``GetStep``, ``GetRound``, ...) through the app's own peer, which has
committed the block by the time it delivers that block's events. A replayed
event (after a restart from the checkpoint) is therefore harmless, and a wait
whose condition already holds returns at once. A slow safety re-check
(``recheck_s``, default 5 s) covers a stream that is being re-opened.

What fails when: :class:`RunAbortedError` from :meth:`EventFeed.wait` once the
run's ``RunAborted`` event has been seen; :class:`WaitTimeoutError` after the
wait's timeout; a stream failure (peer down) is retried with backoff, and
:attr:`EventFeed.stream_error` says why the feed is waiting.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from synthreg.ledger import LedgerError
from synthreg.ledger.events import ChaincodeEvent, Checkpoint
from synthreg.ledger.gateway import Network

T = TypeVar("T")

__all__ = ["AppEvent", "EventFeed", "RunAbortedError", "WaitTimeoutError"]


class RunAbortedError(Exception):
    """The run was aborted by a participant's admin (``AbortRun``)."""

    def __init__(self, run: str, detail: str = "") -> None:
        super().__init__(f"run {run} was aborted{': ' + detail if detail else ''}")
        self.run = run


class WaitTimeoutError(TimeoutError):
    def __init__(self, what: str, timeout: float) -> None:
        super().__init__(f"still waiting for {what} after {timeout:.0f}s")
        self.what = what


@dataclass(frozen=True)
class AppEvent:
    """A chaincode event with its JSON payload decoded (``{}`` if not JSON)."""

    name: str
    block: int
    tx_id: str
    payload: dict[str, Any]

    @property
    def run(self) -> str:
        return str(self.payload.get("run", ""))

    @property
    def round(self) -> int | None:
        """The payload's ``round`` if it is an integer (not a bool), else None."""
        rnd = self.payload.get("round")
        return rnd if isinstance(rnd, int) and not isinstance(rnd, bool) else None

    def implied(self) -> tuple[AppEvent, ...]:
        """This event and those its transaction implies: an ``AggResultPosted`` with
        ``next_advertised`` also advertised its merger in the next round (chaincode
        ``PostResult`` "next"), which every wait sees as that round's ``AggAdvertised``."""
        rnd = self.round
        if self.name == "AggResultPosted" and self.payload.get("next_advertised") is True and rnd is not None:
            advert = {"run": self.run, "round": rnd + 1, "msp": self.payload.get("msp"),
                      "txid": self.payload.get("txid")}
            return self, AppEvent("AggAdvertised", self.block, self.tx_id, advert)
        return (self,)

    @classmethod
    def of(cls, ev: ChaincodeEvent) -> AppEvent:
        try:
            payload = json.loads(ev.payload)
        except ValueError:
            payload = {}
        return cls(ev.event_name, ev.block_number, ev.tx_id, payload if isinstance(payload, dict) else {})


Match = Callable[[AppEvent], bool]


@dataclass(frozen=True)
class Named:
    """A :data:`Match` of events named one of ``names`` for which ``where`` holds. The
    feed then looks only at events of those names (:meth:`EventFeed.seen` and the
    waits scanned every remembered event, up to 4096, on each check: a few percent of
    each app's CPU, issue 11)."""

    names: frozenset[str]
    where: Callable[[AppEvent], bool]
    at: tuple[str, int] | None = None
    """(run, round) when only events of that run and round (payload ``round``) can
    match: the feed then looks only at those (a round-0 ``seen`` that found nothing
    scanned every remembered event of the names, some per step)"""

    def __call__(self, ev: AppEvent) -> bool:
        return ev.name in self.names and self.where(ev)


class EventFeed:
    """Chaincode events of ``chaincode`` on ``network``, resumed from ``checkpoint``.

    ``start()`` opens the stream in a daemon thread; ``close()`` ends it. The
    checkpoint is written at most every ``checkpoint_every_s`` seconds and on
    close (a replay after a crash only repeats wake-ups).
    """

    def __init__(self, network: Network, checkpoint: Checkpoint, chaincode: str = "ganledger",
                 recheck_s: float = 5.0, checkpoint_every_s: float = 1.0,
                 on_stream_state: Callable[[str | None], None] | None = None) -> None:
        self.network, self.checkpoint, self.chaincode = network, checkpoint, chaincode
        self.recheck_s, self.checkpoint_every_s = recheck_s, checkpoint_every_s
        self._cond = threading.Condition()
        self._seq = 0
        self._recent: list[tuple[int, AppEvent]] = []
        self._named: dict[str, list[tuple[int, AppEvent]]] = {}  # _recent by event name
        self._rounds: dict[tuple[str, str, int], list[tuple[int, AppEvent]]] = {}  # by name, run, round
        self._aborted: dict[str, str] = {}
        self._closed = False
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self.last_block: int | None = checkpoint.block_number
        self.stream_error: str | None = None
        self._last: tuple[int, str] | None = None
        self._saved_at = 0.0
        self._on_stream_state = on_stream_state
        """told the stream error (or None once the stream is back), e.g. to update a status line"""

    # -- the reader thread
    def start(self) -> EventFeed:
        self._thread = threading.Thread(target=self._read, name="event-feed", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        backoff = 0.5
        while not self._closed:
            start, after = self.checkpoint.block_number, self.checkpoint.tx_id
            if self._last is not None:
                start, after = self._last
            try:
                with self.network.chaincode_events(self.chaincode, start_block=start, after_tx_id=after) as stream:
                    self._stream = stream
                    for ev in stream:
                        if self.stream_error is not None:  # back: the first event proves it
                            self.stream_error = None
                            if self._on_stream_state is not None:
                                self._on_stream_state(None)
                        self._deliver(AppEvent.of(ev))
                        backoff = 0.5
            except LedgerError as exc:
                if self._closed:
                    return
                self.stream_error = f"own peer unavailable (event stream: {exc}); retrying"
                if self._on_stream_state is not None:
                    self._on_stream_state(self.stream_error)
                with self._cond:  # waiters re-check the ledger (and may report the error)
                    self._cond.notify_all()
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _deliver(self, delivered: AppEvent) -> None:
        with self._cond:
            for ev in delivered.implied():
                self._seq += 1
                self._recent.append((self._seq, ev))
                if len(self._recent) > 4096:
                    del self._recent[:2048]
                named = self._named.setdefault(ev.name, [])
                named.append((self._seq, ev))
                if len(named) > 4096:
                    del named[:2048]
                rnd = ev.round
                if rnd is not None:
                    self._rounds.setdefault((ev.name, ev.run, rnd), []).append((self._seq, ev))
                    if len(self._rounds) > 4096:  # the oldest rounds' go first, like _named's oldest
                        for key in list(self._rounds)[:2048]:
                            del self._rounds[key]
                if ev.name == "RunAborted":
                    self._aborted[ev.run] = str(ev.payload.get("reason", ""))
            self.last_block = delivered.block
            self._last = (delivered.block, delivered.tx_id)
            self._cond.notify_all()
        now = time.monotonic()
        if now - self._saved_at >= self.checkpoint_every_s:
            self._save()
            self._saved_at = now

    def _save(self) -> None:
        if self._last is not None:
            self.checkpoint.save(*self._last)

    def close(self) -> None:
        self._closed = True
        if self._stream is not None:
            self._stream.close()
        with self._cond:
            self._cond.notify_all()
        self._save()

    # -- waiting
    def note_aborted(self, run: str, reason: str) -> None:
        """Mark ``run`` aborted (learnt from the ledger rather than an event)."""
        with self._cond:
            self._aborted[run] = reason
            self._cond.notify_all()

    def aborted(self, run: str) -> bool:
        return run in self._aborted

    def wait(self, ready: Callable[[], T | None], match: Match, what: str, run: str | None = None,
             timeout: float | None = None) -> T:
        """Return ``ready()`` once it is not None, re-checking after each event that
        ``match``es (and every ``recheck_s``). Raises :class:`RunAbortedError` if
        ``run`` gets aborted, :class:`WaitTimeoutError` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                seen = self._seq
            if run is not None and run in self._aborted:
                raise RunAbortedError(run, self._aborted[run])
            value = ready()
            if value is not None:
                return value
            with self._cond:
                while not self._closed and not self._matched_since(seen, match) and not (
                        run is not None and run in self._aborted):
                    left = self.recheck_s if deadline is None else min(self.recheck_s, deadline - time.monotonic())
                    if left <= 0 or not self._cond.wait(left):
                        break
            if self._closed:
                raise WaitTimeoutError(what + " (app stopping)", 0)
            if deadline is not None and time.monotonic() > deadline:
                raise WaitTimeoutError(what, timeout or 0)

    def mark(self) -> int:
        """The position of the newest event seen: pass it to :meth:`wait_event`."""
        with self._cond:
            return self._seq

    def wait_event(self, since: int, match: Match, timeout: float) -> bool:
        """Block until an event after ``since`` ``match``es (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed and not self._matched_since(since, match):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return not self._closed

    def seen_since(self, since: int, match: Match) -> bool:
        """Whether a remembered event after position ``since`` (:meth:`mark`) ``match``es."""
        with self._cond:
            return self._matched_since(since, match)

    def _lists(self, match: Match) -> list[list[tuple[int, AppEvent]]]:
        """Where to look for ``match`` (under the lock): its names' events, or all."""
        if isinstance(match, Named) and match.at is not None:
            run, rnd = match.at
            return [self._rounds[(n, run, rnd)] for n in match.names if (n, run, rnd) in self._rounds]
        if isinstance(match, Named):
            return [self._named[n] for n in match.names if n in self._named]
        return [self._recent]

    def msps(self, match: Match) -> set[str]:
        """The registries (payload ``msp``) of the remembered events that ``match``."""
        with self._cond:
            return {str(ev.payload.get("msp")) for events in self._lists(match) for _, ev in events if match(ev)}

    def matching(self, match: Match) -> list[AppEvent]:
        """The remembered events that ``match``, oldest first."""
        with self._cond:
            found = sorted(((s, ev) for events in self._lists(match) for s, ev in events if match(ev)),
                           key=lambda f: f[0])
        return [ev for _, ev in found]

    def seen(self, match: Match) -> AppEvent | None:
        """The newest remembered event that ``match``es, if any."""
        with self._cond:
            found = [next(((s, ev) for s, ev in reversed(events) if match(ev)), None)
                     for events in self._lists(match)]
            newest = max((f for f in found if f is not None), key=lambda f: f[0], default=None)
            return None if newest is None else newest[1]

    def _matched_since(self, seq: int, match: Match) -> bool:
        for events in self._lists(match):
            for s, ev in reversed(events):
                if s <= seq:
                    break
                if match(ev):
                    return True
        return False
