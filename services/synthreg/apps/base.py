"""What a registry's three apps share: identity, workspace, event loop, run discovery.

Who calls: :mod:`synthreg.apps.generator`, :mod:`.discriminator`, :mod:`.merger`
(each its own OS process, ``synthreg app <role> --org ORG``), started by
``synthreg registry up``.

Where data lives (``state`` = the registry's state folder, default
``<network home>/registries/<MSP>``):

* ``state/workspace/``: the registry's content-addressed workspace, the only
  thing its three apps share (fake batches, feedback, weight vectors, agreed
  averages, audit ciphertexts; every hash is on the ledger);
* ``state/apps/<role>.checkpoint.json``: the app's event-stream position;
* ``state/apps/<role>.status.json``: what it is doing (read by ``registry status``);
* ``state/runs/<run>/<role>.done`` / ``.failed``: runs this app has finished;
* ``state/runs/<run>/condition-counts.json``: with a conditional generator
  (``condition_on``), the level counts of that column in this registry's records,
  put there by its merger for its generator (which never reads records): the
  generator draws its conditions at these frequencies. Never on the ledger.

An app loads only its own identity (one role of one org) from the network
profile and talks only to its own org's peer.

What fails when: a run whose spec the app cannot use is marked failed for this
app (``.failed`` with the reason) and the app goes back to idling; a run
aborted on the ledger stops the app's work on it cleanly.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import numpy as np
import pandas as pd
from cryptography import x509
from fabric_protos.common import common_pb2

from synthreg.apps.dirwatch import DirWatch
from synthreg.apps.events import AppEvent, EventFeed, Named, RunAbortedError, WaitTimeoutError
from synthreg.chain.runs import LedgerRuns, RunRecord, RunSpec
from synthreg.chain.secagg import left_out_of
from synthreg.data.schema import Schema
from synthreg.gan.encoder import EncoderStats, TabularEncoder
from synthreg.ledger import (
    ChaincodeError,
    CommitStatusError,
    ConnectError,
    Contract,
    GatewayError,
    LedgerError,
    SubmitError,
    evaluate_or_none,
)
from synthreg.ledger.events import Checkpoint
from synthreg.ledger.identity import load_msp_identity
from synthreg.ledger.sync import submit_synced
from synthreg.network.client import open_gateway
from synthreg.network.profile import load_profile
from synthreg.workspace import Workspace, atomic_write

ROLES = ("generator", "discriminator", "merger")

T = TypeVar("T")


class SiblingFailedError(RuntimeError):
    """Another app of this registry failed the run: this one cannot go on in it."""


log = logging.getLogger("synthreg.apps")


def encoder_run(run: str) -> str:
    """The aggregation run of the encoder's pooled histograms."""
    return f"{run}/encoder"


def registry_state_dir(network_home: Path, msp: str) -> Path:
    return network_home / "registries" / msp


def peak_rss_mb() -> float | None:
    """This process's peak resident set (VmHWM; unlike ``ru_maxrss`` it does not
    carry over the parent's peak across fork + exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def checkpoint_for_ledger(path: Path, genesis: str) -> bool:
    """Keep the event checkpoint at ``path`` only if it was written for the ledger
    whose genesis block has data hash ``genesis`` (kept beside it, ``.channel``);
    otherwise remove it. Returns True when one was removed."""
    marker = path.with_suffix(".channel")
    stale = path.exists() and (not marker.exists() or marker.read_text().strip() != genesis)
    if stale:
        path.unlink()
    atomic_write(marker, genesis)
    return stale


def on_round(agg: str, rnd: int, names: Collection[str]) -> Named:
    """Matches the events named ``names`` of secure-aggregation round ``rnd`` of ``agg``:
    a wait re-reads ``GetRound`` (18 ms of peer and chaincode CPU on this machine) only
    on events that can change what it waits for, not on each of the round's ~20."""
    return Named(frozenset(names), lambda ev: ev.run == agg and ev.payload.get("round") == rnd, (agg, rnd))


AGREEMENT_EVENTS = frozenset({"AggResultPosted", "AggFrozen"})
"""After which a round may be agreed (t equal results) or found void (frozen with fewer than t)."""

PHASE_CLOSING_EVENTS = frozenset({"AggSharesPosted", "AggSubmitted", "AggVoted", "AggFrozen", "AggRevealed",
                                  "AggResultPosted"})
"""Events of a secure-aggregation round after which a merger that had not joined a phase
may be out of the round (:func:`~synthreg.chain.secagg.left_out_of`: shares posted close
the advertise phase, a submission the share phase, votes and the freeze close phases;
reveals and results follow a freeze). An advertisement closes nothing."""


@dataclass
class AppSettings:
    """One app process's settings (from the command line, at the process edge)."""

    role: str
    msp: str
    network_home: Path
    state: Path
    data: Path | None = None
    exit_after: int | None = None
    """stop after this many finished runs (tests, demo); None: serve forever"""

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown app role {self.role!r} (one of {ROLES})")


@dataclass
class Progress:
    run: str | None = None
    phase: str = "idle"
    round: int | None = None
    iter: int | None = None
    detail: str = ""
    runs_done: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


PEER_DOWN = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
"""gRPC codes of a call its own peer did not answer (down, restarting, unreachable)."""


PEER_WARMING = "no combination of peers can be derived"
"""A just-restarted peer's Gateway before its discovery knows the other peers."""


class PeerWaitingContract:
    """A :class:`~synthreg.ledger.Contract` that rides out its own peer being down.

    A call the peer did not answer (connection refused or timed out: nothing was
    endorsed, so nothing can have been written) is tried again every second, with a
    status line saying the app waits for its peer, until it answers; chaincode
    verdicts and every other failure pass through. Orderer failures are
    :func:`~synthreg.ledger.sync.submit_synced`'s to ride out.
    """

    def __init__(self, contract: Contract, waiting: Callable[[str], None],
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.contract, self.waiting, self.sleep = contract, waiting, sleep
        self.reads: Counter[str] = Counter()  # evaluates by function (the app's status shows them)

    @property
    def network(self) -> Any:
        return self.contract.network

    @property
    def name(self) -> str:
        return self.contract.name

    def _call(self, call: Callable[[], Any], what: str) -> Any:
        since: float | None = None
        while True:
            try:
                result = call()
            except (ChaincodeError, SubmitError, CommitStatusError):
                raise
            except (GatewayError, ConnectError) as exc:
                if isinstance(exc, GatewayError) and exc.code not in PEER_DOWN and not (
                        exc.code == grpc.StatusCode.FAILED_PRECONDITION and PEER_WARMING in str(exc)):
                    raise
                since = since or time.monotonic()
                self.waiting(f"own peer unavailable ({what}) for {time.monotonic() - since:.0f}s; waiting for it")
                self.sleep(1.0)
                continue
            if since is not None:
                self.waiting("")
            return result

    def evaluate(self, fn: str, *args: str | bytes, **kwargs: Any) -> bytes:
        self.reads[fn] += 1
        return bytes(self._call(lambda: self.contract.evaluate(fn, *args, **kwargs), fn))

    def submit(self, fn: str, *args: str | bytes, **kwargs: Any) -> Any:
        return self._call(lambda: self.contract.submit(fn, *args, **kwargs), fn)


class App:
    """One app of one registry: its Gateway (own identity, own peer), event feed,
    workspace and status file. Subclasses implement :meth:`run_one`."""

    role: str = ""

    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self.msp = settings.msp
        self.state = settings.state
        self.workspace = Workspace(settings.state / "workspace")
        self.progress = Progress()
        self._status_at = 0.0
        self._losses: dict[tuple[str, int], float] = {}
        self._went_on_asked: dict[tuple[str, int], int] = {}  # round_went_on: feed mark of the last ask
        self._past_asked: dict[str, int] = {}  # the discriminator's last ask of G's head, by run
        self._agreement_waited = False  # agreed_average: asks first only in the process's first wait
        self._watches: dict[int, DirWatch] = {}  # wait_local: each thread's folder watch, kept
        self._stop = threading.Event()
        self._stack = ExitStack()
        apps_dir = settings.state / "apps"
        self.status_path = apps_dir / f"{self.role}.status.json"
        profile = load_profile(settings.network_home)
        org = profile.org(settings.msp)
        # this app's own key signs its step statements in anchored runs (synthreg.chain.anchor);
        # the certificates (only: never the keys) of its registry's other apps verify theirs
        _identity, self.signer = load_msp_identity(settings.msp, org.user_msp(settings.role))
        self.certs: dict[str, x509.Certificate] = {
            role: x509.load_pem_x509_certificate(min((org.user_msp(role) / "signcerts").glob("*.pem")).read_bytes())
            for role in ("generator", "discriminator") if role != settings.role}
        while True:  # the own peer may be down (maintenance): wait for it, saying so
            try:
                gw = self._stack.enter_context(open_gateway(profile, settings.msp, settings.role))
                break
            except ConnectError as exc:
                atomic_write(self.status_path, json.dumps({
                    "pid": os.getpid(), "msp": self.msp, "role": self.role, "phase": "waiting for own peer",
                    "detail": f"{profile.org(self.msp).peer_endpoint}: {exc}",
                    "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}))
                time.sleep(2.0)
        self.network = gw.network("gan")
        self.feed = EventFeed(self.network, self._event_checkpoint(apps_dir / f"{self.role}.checkpoint.json"),
                              on_stream_state=lambda _text: self.set_status(force=True)).start()
        self._waiting = PeerWaitingContract(self.network.contract("ganledger"),
                                            lambda text: self.set_status(detail=text, force=True))
        self.contract: Contract = self._waiting  # type: ignore[assignment]  # same interface
        self.runs = LedgerRuns(self.contract)

    def _event_checkpoint(self, path: Path) -> Checkpoint:
        """The app's event checkpoint, if it was written for this ledger: a network
        re-created under the same registry state (wiped and started again) has other
        blocks under the same numbers, and replaying from the old position would miss
        every event until the new chain got that long. The ledger is recognised by
        the data hash of the channel's genesis block, kept beside the checkpoint."""
        try:
            raw = self.network.contract("qscc").evaluate("GetBlockByNumber", self.network.name, "0")
            genesis = common_pb2.Block.FromString(raw).header.data_hash.hex()
        except LedgerError as exc:  # cannot tell now: keep the checkpoint
            log.warning("%s %s: cannot read the genesis block to check the event checkpoint: %s",
                        self.msp, self.role, exc)
            return Checkpoint(path)
        if checkpoint_for_ledger(path, genesis):
            log.warning("%s %s: event checkpoint %s belongs to another ledger (the network was re-created): "
                        "replaying this ledger's events from its first block", self.msp, self.role, path)
        return Checkpoint(path)

    # -- lifecycle
    def close(self) -> None:
        self.feed.close()
        self._stack.close()
        for files in list(self._watches.values()):
            files.close()

    def request_stop(self, *_: Any) -> None:
        self._stop.set()
        self.feed.close()

    def serve(self) -> int:
        """Idle until this org takes part in a started run, run it, repeat."""
        signal.signal(signal.SIGTERM, self.request_stop)
        self.set_status(phase="starting", force=True)
        self.warm_up()
        self.set_status(phase="idle", force=True)
        done = 0
        try:
            while not self._stop.is_set():
                record = self._next_run()
                if record is None:
                    continue
                self._run_guarded(record)
                done += 1
                self.progress.runs_done = done
                self.set_status(phase="idle", force=True)
                if self.settings.exit_after is not None and done >= self.settings.exit_after:
                    break
        except WaitTimeoutError:
            if not self._stop.is_set():
                raise
        finally:
            self.set_status(phase="stopped", force=True)
            self.close()
        return 0

    def warm_up(self) -> None:
        """One-off start-up work, done before this app takes part in any run (none here)."""

    def _marker(self, run: str, kind: str, role: str | None = None) -> Path:
        return self.state / "runs" / run.replace("/", "_") / f"{role or self.role}.{kind}"

    def raise_if_sibling_failed(self, run: str) -> None:
        """Raise :class:`SiblingFailedError` once another app of this registry marked
        ``run`` failed: this app would otherwise wait without end for what that app
        no longer does (its statement, its local update, the round's average)."""
        for role in ROLES:
            if role != self.role:
                marker = self._marker(run, "failed", role)
                if marker.exists():
                    reason = marker.read_text(encoding="utf-8", errors="replace").strip()
                    raise SiblingFailedError(f"this registry's {role} failed run {run}: {reason[:500]}")

    def condition_counts_file(self, run: str) -> Path:
        """Where this registry's merger puts its local level counts of the conditioning column."""
        return self.state / "runs" / run.replace("/", "_") / "condition-counts.json"

    def _pending(self) -> RunRecord | None:
        for entry in self.runs.list():
            if entry.get("status") != "started":
                continue
            run = str(entry["run"])
            if self._marker(run, "done").exists() or self._marker(run, "failed").exists():
                continue
            record = self.runs.get(run)
            try:
                if self.msp not in record.spec.participants:
                    continue
            except ValueError as exc:
                self._finish(run, "failed", f"unusable run spec: {exc}")
                continue
            head = self.evaluate_or_none("GetStepHead", run, self.msp)
            if head is not None and head.get("phase") == "stopped":
                continue  # this registry finished the run (before this app's state existed)
            return record
        return None

    def _next_run(self) -> RunRecord | None:
        try:
            return self.feed.wait(self._pending, lambda ev: ev.name == "RunStarted", "a run to take part in",
                                  timeout=60.0)
        except WaitTimeoutError:
            return None

    def _finish(self, run: str, kind: str, text: str) -> None:
        atomic_write(self._marker(run, kind), text + "\n")

    def _run_guarded(self, record: RunRecord) -> None:
        run = record.run
        self.progress = Progress(run=run, phase="starting", runs_done=self.progress.runs_done)
        resuming = self._marker(run, "started").exists()
        self._finish(run, "started", time.strftime("%Y-%m-%dT%H:%M:%S"))
        log.info("%s %s: %s run %s", self.msp, self.role, "resuming" if resuming else "taking part in", run)
        try:
            record.check_hash()
            self.run_one(record, record.spec)
        except (RunAbortedError, SiblingFailedError) as exc:
            log.warning("%s %s: %s", self.msp, self.role, exc)
            self._finish(run, "failed", str(exc))
            return
        except LedgerError as exc:
            if self._stop.is_set():
                raise WaitTimeoutError("the run (app stopping)", 0) from exc
            if isinstance(exc, ChaincodeError):  # the chaincode's verdict: the run cannot go on like this
                log.exception("%s %s: run %s failed", self.msp, self.role, run)
                self._finish(run, "failed", f"{type(exc).__name__}: {exc}")
                return
            # the ledger's infrastructure (an orderer or peer down, a lost commit status):
            # exit non-zero so the supervisor restarts this app, which resumes the run
            log.exception("%s %s: ledger unavailable in run %s; exiting to be restarted", self.msp, self.role, run)
            raise
        except Exception as exc:
            if self._stop.is_set():
                raise WaitTimeoutError("the run (app stopping)", 0) from exc
            log.exception("%s %s: run %s failed", self.msp, self.role, run)
            self._finish(run, "failed", f"{type(exc).__name__}: {exc}")
            return
        self._finish(run, "done", time.strftime("%Y-%m-%dT%H:%M:%S"))
        log.info("%s %s: run %s done", self.msp, self.role, run)

    def run_one(self, record: RunRecord, spec: RunSpec) -> None:
        raise NotImplementedError

    # -- status
    def set_status(self, force: bool = False, **changes: Any) -> None:
        for k, v in changes.items():
            setattr(self.progress, k, v)
        now = time.monotonic()
        if not force and now - self._status_at < 0.5:
            return
        self._status_at = now
        p = self.progress
        atomic_write(self.status_path, json.dumps({
            "pid": os.getpid(), "msp": self.msp, "role": self.role, "run": p.run, "phase": p.phase,
            "round": p.round, "iter": p.iter, "detail": p.detail, "runs_done": p.runs_done,
            "last_block": self.feed.last_block,
            "max_rss_mb": peak_rss_mb(),
            "stream_error": self.feed.stream_error, "reads": self._reads(),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), **p.extra}))

    def _reads(self) -> dict[str, int]:
        """This process's evaluates on ``gan`` so far, by function (``bench/overhead.py``)."""
        waiting = getattr(self, "_waiting", None)  # not yet while the app waits for its own peer
        return dict(waiting.reads) if waiting is not None else {}

    # -- ledger helpers
    def evaluate_or_none(self, fn: str, *args: str) -> Any:
        """``fn(*args)`` decoded from JSON, or None when the chaincode says NOT_FOUND."""
        return evaluate_or_none(self.contract, fn, *args)

    def _step_landed(self, run: str, rnd: int, it: int, side: str, fields: dict[str, str]) -> bool:
        """Whether this registry's ``side`` record of step (``rnd``, ``it``) is on the
        ledger with these ``fields`` (for :meth:`submit`'s ``landed``)."""
        record = (self.evaluate_or_none("GetStep", run, self.msp, str(rnd), str(it)) or {}).get(side) or {}
        return bool(record) and all(record.get(k) == v for k, v in fields.items())

    def submit(self, spec: RunSpec, fn: str, *args: str, landed: Callable[[], bool] | None = None) -> None:
        """Submit and return at the own peer's commit. The app that acts on it next
        is woken by the block's event from *its* own peer and may endorse on peers
        still a block behind; :func:`~synthreg.ledger.sync.submit_synced` endorses
        such a refusal afresh (no polling of every peer after every write).

        ``landed`` tells whether the ledger already holds exactly this write. When the
        own peer dies after the orderer took a transaction, the Gateway call fails, the
        app waits for its peer and sends the write afresh; the chaincode then refuses
        the duplicate (ALREADY_EXISTS, or a step's PRECONDITION_FAILED "waiting for the
        discriminator step" of the very step just recorded). Such a refusal is the
        earlier attempt's success when ``landed()``; any other refusal raises."""
        try:
            submit_synced(self.contract, fn, *args, orgs=())
        except ChaincodeError:
            if landed is None or not landed():
                raise
            log.info("%s %s: %s was already on the ledger (an earlier attempt whose answer was lost)",
                     self.msp, self.role, fn)

    def wait(self, ready: Callable[[], Any], match: Callable[[AppEvent], bool], what: str, run: str,
             timeout: float | None = None) -> Any:
        """``ready()`` once not None, re-checked on each event that ``match``es (and every
        ``recheck_s``, when it also looks for a failure of another app of this registry:
        :meth:`raise_if_sibling_failed`)."""
        def checked() -> Any:
            self.raise_if_sibling_failed(run)
            return ready()
        return self.feed.wait(checked, match, what, run=run, timeout=timeout)

    def mean_g_loss(self, run: str, spec: RunSpec, rnd: int) -> float:
        """L_r of the stop rule: the mean over the round's survivors (the registries
        whose update is in its average; all participants when nobody was left out)
        of the generator losses their discriminators recorded in round ``rnd``
        (from the ledger; cached). A registry left out of the round may record its
        steps late or never, so only the survivors' count: every app decides alike."""
        key = (run, rnd)
        if key not in self._losses:
            per_registry = []
            state = self.evaluate_or_none("GetRound", run, str(rnd)) or {}
            for msp in sorted(state.get("survivors") or spec.participants):
                if spec.step_records == "anchored":  # the discriminator root carries the round's mean
                    root = (self.evaluate_or_none("GetStepRoot", run, msp, str(rnd)) or {}).get("discriminator")
                    if not root or int(root["count"]) != spec.local_iters:
                        raise RuntimeError(f"round {rnd} of {msp} is not complete on the ledger")
                    per_registry.append(float(root["g_loss_mean"]))
                    continue
                steps = [self.evaluate_or_none("GetStep", run, msp, str(rnd), str(it)) or {}
                         for it in range(spec.local_iters)]
                losses = [float(s["discriminator"]["g_loss"]) for s in steps if s.get("discriminator")]
                if len(losses) != spec.local_iters:
                    raise RuntimeError(f"round {rnd} of {msp} is not complete on the ledger")
                per_registry.append(sum(losses) / len(losses))
            self._losses[key] = sum(per_registry) / len(per_registry)
        return self._losses[key]

    def stops_after(self, run: str, spec: RunSpec, rnd: int) -> bool:
        """The run's stop rule after round ``rnd`` (the last round always stops)."""
        return rnd == spec.rounds - 1 or spec.rule.stops_after(rnd, lambda r: self.mean_g_loss(run, spec, r))

    def left_out(self, run: str, rnd: int, spec: RunSpec) -> bool:
        """Whether round ``rnd`` of ``run`` went on without this registry (t of n: a
        phase its merger had not joined closed without it); monotone."""
        state = self.evaluate_or_none("GetRound", run, str(rnd))
        return state is not None and left_out_of(state, self.msp, spec.threshold)

    def round_went_on(self, run: str, rnd: int, spec: RunSpec) -> bool:
        """:meth:`left_out`, asking the ledger only when an ``Agg*`` event of the round
        that can close a phase without this registry (:meth:`_closing_without_me`) was
        seen since the last ask: before that the answer cannot have changed. The
        generator asks before each step, while the round's keys and shares (pipelined)
        arrive."""
        closing = self._closing_without_me(run, rnd)
        key = (run, rnd)
        last = self._went_on_asked.get(key)
        if (self.feed.seen(closing) is None) if last is None else not self.feed.seen_since(last, closing):
            return False
        self._went_on_asked = {key: self.feed.mark()}  # before the ask: a later event asks again
        return self.left_out(run, rnd, spec)

    def _closing_without_me(self, run: str, rnd: int) -> Named:
        """The round's events after which this registry may be out of it
        (:func:`~synthreg.chain.secagg.left_out_of`): every phase-closing event
        (:data:`PHASE_CLOSING_EVENTS`) until its merger's advertisement came in; then
        those that close the share phase (a submission, a "shares" vote) or follow a
        freeze until its shares came in; then only a freeze and what follows it. A
        phase its merger joined cannot close without it, so the other mergers'
        advertisements and shares (3 to 5 events a round) no longer send the generator
        to ``GetRound`` (issue 11)."""
        def joined(name: str) -> bool:
            return self.feed.seen(self.mine_in(run, rnd, name)) is not None

        if not joined("AggAdvertised"):
            return on_round(run, rnd, PHASE_CLOSING_EVENTS)
        after_freeze = frozenset({"AggFrozen", "AggRevealed", "AggResultPosted"})
        if not joined("AggSharesPosted"):
            names, vote = after_freeze | {"AggSubmitted", "AggVoted"}, "shares"
        else:
            names, vote = after_freeze, None
        return Named(names, lambda ev: ev.run == run and ev.payload.get("round") == rnd
                     and (ev.name != "AggVoted" or ev.payload.get("phase") == vote), (run, rnd))

    def wait_local(self, local: Callable[[], T | None], ledger: Callable[[], T | None],
                   match: Callable[[AppEvent], bool], what: str, run: str, watch: Path | None = None) -> T:
        """``local()`` (something another app of this registry puts in the workspace,
        which has no ledger event: looked at when a file lands in the folder ``watch``,
        :class:`~synthreg.apps.dirwatch.DirWatch`, and every 20 ms; polled every 1-20 ms
        without a watch) or
        ``ledger()`` (asked first and again on each event that ``match``es), whichever
        is not None first. Raises :class:`RunAbortedError` / :class:`WaitTimeoutError`
        like :meth:`wait`."""
        files = self._watch(watch) if watch is not None else None
        since = self.feed.mark()
        value = ledger()
        # A watched folder wakes the waiter when the file lands: no need to look sooner
        # than the events' 20 ms (a back-off from 1 ms looked ~7 times per hand-over).
        delay = 0.02 if files is not None and files.active else 0.001
        looked = time.monotonic()
        while value is None:
            if self._stop.is_set():
                raise WaitTimeoutError(what + " (app stopping)", 0)
            if self.feed.aborted(run):
                raise RunAbortedError(run)
            if time.monotonic() - looked > 1.0:
                self.raise_if_sibling_failed(run)
                looked = time.monotonic()
            value = local()
            if value is not None:
                break
            if files is not None and files.active:  # woken by a file; events looked at every <= 20 ms
                files.wait(delay)
                if self.feed.seen_since(since, match):
                    since = self.feed.mark()
                    value = ledger()
            elif self.feed.wait_event(since, match, delay):
                since = self.feed.mark()
                value = ledger()
            delay = min(delay * 1.5, 0.02)
        return value

    def _watch(self, folder: Path) -> DirWatch:
        """This thread's watch of ``folder``, kept while its waits look at the same folder
        (a round's statements: two waits per local iteration; an inotify instance made
        and closed per wait cost a kernel grace period on each hand-over). A file that
        landed between two waits wakes the next at once, which then looks for itself."""
        key = threading.get_ident()
        files = self._watches.get(key)
        if files is None or files.folder != folder:
            if files is not None:
                files.close()
            files = self._watches[key] = DirWatch(folder)
        return files

    def gated(self, ready: Callable[[], T | None], gate: Callable[[], bool],
              ask_first: bool = True) -> Callable[[], T | None]:
        """``ready`` for :meth:`wait` that asks the ledger (calls ``ready``) the first time
        (unless not ``ask_first``), then only when ``gate()`` says the events seen since
        could have changed its answer, or when its last ask is ``recheck_s`` old (a
        missed event: a gate can only delay an answer, never change it). A ``GetRound``
        costs its peer and chaincode ~10 ms of CPU, and a wait was woken by each of a
        round's events although only the t-th or n-th of them can end it (issue 11)."""
        asked: list[float] = [] if ask_first else [time.monotonic()]

        def check() -> T | None:
            now = time.monotonic()
            if asked and now - asked[0] < 0.8 * self.feed.recheck_s and not gate():
                return None
            asked[:] = [now]
            return ready()
        return check

    def agreed_by_events(self, agg: str, rnd: int, threshold: int) -> str | None:
        """The agreed average's hash of round ``rnd`` of ``agg`` once ``threshold`` (the
        run's t) registries' ``AggResultPosted`` events name one hash, else None. Only
        survivors post, once each, and t > n/2: that is the agreement ``GetRound``
        derives, here from the own peer's events (of valid transactions only). Fewer,
        or no t with one hash (a disagreement): None, and the caller reads the round."""
        posted: dict[str, str] = {}
        for ev in self.feed.matching(on_round(agg, rnd, {"AggResultPosted"})):
            sha = ev.payload.get("average_sha256")
            if isinstance(sha, str) and sha:
                posted[str(ev.payload.get("msp"))] = sha
        agreed = [sha for sha, count in Counter(posted.values()).items() if count >= threshold]
        return agreed[0] if len(agreed) == 1 else None

    def agreement_may_be_in(self, agg: str, rnd: int, threshold: int) -> bool:
        """Whether round ``rnd`` of ``agg`` may be agreed or void by the events seen:
        ``threshold`` results posted, or a freeze that made the round void."""
        if len(self.feed.msps(on_round(agg, rnd, {"AggResultPosted"}))) >= threshold:
            return True
        frozen = self.feed.seen(on_round(agg, rnd, {"AggFrozen"}))
        return frozen is not None and frozen.payload.get("status") == "void"

    def mine(self, run: str, *names: str) -> Callable[[AppEvent], bool]:
        """Events of ``run`` by this registry's apps with one of ``names``."""
        return Named(frozenset(names), lambda ev: ev.run == run and ev.payload.get("msp") == self.msp)

    def mine_in(self, run: str, rnd: int, *names: str) -> Named:
        """:meth:`mine`, of round ``rnd`` only."""
        return Named(frozenset(names), lambda ev: ev.run == run and ev.payload.get("msp") == self.msp
                     and ev.payload.get("round") == rnd, (run, rnd))

    # -- what the merger hands to G and D through the workspace
    def agreed_average(self, agg_run: str, rnd: int, run: str, threshold: int = 1,
                       by_events: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
        """The average agreed on the ledger for ``agg_run`` round ``rnd``, loaded from
        this registry's workspace by its ledger hash, once this registry's merger put
        it there: before posting its own hash of it, or (left out of the round, t of
        n) after computing it from the ledger. t other mergers may agree first.
        ``GetRound`` is asked only once ``threshold`` (t) results were posted or the round
        froze void (:meth:`agreement_may_be_in`), or ``recheck_s`` passed; first thing
        only in the process's first wait, whose round's events may precede the feed's
        checkpoint (later waits begin right after this registry's own update, long before
        any result: that first ask found nothing in nearly every round, issue 11). With
        ``by_events`` (``threshold`` then is the run's t) t equal results seen as events
        are the agreement, without a read (:meth:`agreed_by_events`); the state returned
        is then only ``{"agreed", "average_sha256"}``."""
        def ready() -> dict[str, Any] | None:
            sha = self.agreed_by_events(agg_run, rnd, threshold) if by_events else None
            if sha is not None:
                return {"agreed": True, "average_sha256": sha}
            state = self.evaluate_or_none("GetRound", agg_run, str(rnd))
            if state is not None and state.get("agreed") is True:
                return dict(state)
            if state is not None and state.get("status") == "void":
                raise RuntimeError(f"aggregation {agg_run} round {rnd} is void")
            return None

        def gate() -> bool:
            return self.agreement_may_be_in(agg_run, rnd, threshold)

        ask_first, self._agreement_waited = not self._agreement_waited or gate(), True
        state = self.wait(self.gated(ready, gate, ask_first=ask_first),
                          on_round(agg_run, rnd, AGREEMENT_EVENTS), f"the agreed average of {agg_run} round {rnd}",
                          run)
        sha = str(state["average_sha256"])
        # The workspace put has no ledger event (a merger left out of the round puts it
        # after the agreement): look for the file itself, often, so that a registry
        # re-joining after an outage starts the next round with the others.
        if sha not in self.workspace:
            self.set_status(detail=f"waiting for this registry's merger to put the agreed average of round {rnd}",
                            force=True)
            self.wait_local(lambda: True if sha in self.workspace else None, lambda: None, lambda _ev: False,
                            "the agreed average in the workspace", run)
        vec = np.frombuffer(self.workspace.get(sha), dtype="<f4").copy()
        return vec, state

    def agreed_encoder(self, run: str, schema: Schema, bins: int, levels_of: tuple[str, ...] = ()) -> TabularEncoder:
        """The consortium encoder: schema + the securely summed histograms (and level
        counts of ``levels_of``, the conditioning column)."""
        self.set_status(phase="encoder", force=True)
        avg, state = self.agreed_average(encoder_run(run), 0, run)
        template = EncoderStats.from_frame(pd.DataFrame(columns=schema.column_names), schema, bins, levels_of)
        stats = template.from_vector(avg.astype(np.float64) * len(state["survivors"]))
        return TabularEncoder(schema, stats)


def app_main(app_cls: type[App], settings: AppSettings) -> int:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {settings.msp} {settings.role} %(levelname)s "
                                                    "%(message)s", force=True)
    app = app_cls(settings)
    return app.serve()


def iter_rounds(spec: RunSpec) -> Iterator[int]:
    return iter(range(spec.rounds))
