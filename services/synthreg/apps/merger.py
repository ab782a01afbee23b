"""A registry's merger app (the paper's flows 7, 8): its own process.

Who runs it: ``synthreg app merger --org ORG --data CSV`` (started by
``registry up``), signing as that org's *merger* identity.

Per run it takes part in:

1. **Encoder**: validates its CSV against the run's schema, computes its
   per-column histograms on the schema grid and sums them with the other
   mergers by one secure-aggregation round (aggregation run ``<run>/encoder``),
   so no registry sees another's counts. The first participant's merger opens
   the aggregation runs; the proposing registry's merger writes the run's
   trail header (the chaincode admits no other).
2. **Rounds**: one secure-aggregation round (DESIGN.md §4) per training round
   with the other mergers, each phase started by the ``Agg*`` events of the
   previous one, pipelined with training: its result of the previous round
   also advertises its keys of this round (one ``PostResult``; a merger that
   posted no result there advertises by itself), and as soon as that round is
   agreed it deals its shares (neither depends on the round's input) while its
   generator and discriminator train; once its
   generator put the round's local update (the hashes of its generator and
   discriminator weights) in the workspace it loads both weight vectors, masks
   them and submits, recording the update in the same ``Submit`` (the chaincode
   checks it against the registry's step records, as ``RecordLocalUpdate``
   would), then freezes, reveals and posts the result; on audited rounds its
   submission carries the CKKS audit copy. It puts
   the average into the workspace *before* posting its hash, so G and D can
   load it as soon as the ledger shows the agreement; the same ``PostResult``
   transaction records the round's trail entry (hashes of its update, the
   average, the audit copy; a ``PutRecord`` of its own only where the merger
   finished a round without posting a result, e.g. restarted inside it).
   The update is bounded (:mod:`synthreg.gan.bound`, the run's
   ``max_update_norm``): before masking the merger clips its registry's vector
   to within that norm of the previous agreed average (round 0: the initial
   weights built from the run seed), so the masked vector, the audit copy and
   the trail snapshot are the clipped one; after the agreement it checks the
   average against the bound (a mean of clipped updates stays within it) and
   stops the run with :class:`~synthreg.gan.bound.UpdateBoundError` naming the
   round if it does not: some survivor did not clip.
3. **Bundle**: after the last round it writes the model bundle (generator
   weights in safetensors, encoder, schema, run id, ledger hash of the final
   average) to ``state/bundles/<run>/``.

Round secrets live only in this process's memory and are erased per round.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np

from synthreg.apps.base import AGREEMENT_EVENTS, PHASE_CLOSING_EVENTS, App, AppSettings, encoder_run, on_round
from synthreg.apps.events import WaitTimeoutError
from synthreg.apps.generator import raise_recorded_fault
from synthreg.chain.anchor import StatementStore
from synthreg.chain.blobs import BlobFetcher, BlobServer, endpoints_of, open_served_blobs, tls_cas_of
from synthreg.chain.runs import RunRecord, RunSpec
from synthreg.chain.secagg import (
    PEER_CATCH_UP_S,
    AggregationConfig,
    AggregationLedgerError,
    AlreadyDoneError,
    DisagreementError,
    LedgerMerger,
    RoundClosedError,
    RoundVoidError,
    left_out_of,
    open_aggregation,
    phase_closed,
    phase_standing,
)
from synthreg.crypto.ckks import encrypt_vector, load_public_context
from synthreg.data.hashing import array_bytes
from synthreg.data.schema import load_registry_csv
from synthreg.gan.bound import check_bound, clip_update
from synthreg.gan.encoder import EncoderStats, TabularEncoder
from synthreg.gan.models import build_models
from synthreg.gan.weights import state_dict_to_vector
from synthreg.ledger.sync import chain_height, wait_for_block, wrote_nothing
from synthreg.network.client import open_gateway
from synthreg.network.profile import load_profile
from synthreg.trail.record import RoundEntry, round_key, run_key
from synthreg.workspace import sha256_hex

__all__ = ["MergerApp"]

log = logging.getLogger("synthreg.apps")

PHASE_EVENTS: dict[str, frozenset[str]] = {
    "advertise": frozenset({"AggAdvertised", "AggSharesPosted", "AggVoted", "AggFrozen"}),
    "shares": frozenset({"AggSharesPosted", "AggSubmitted", "AggVoted", "AggFrozen"}),
    "submit": frozenset({"AggSubmitted", "AggVoted", "AggFrozen"}),
    "freeze": frozenset({"AggFrozen"}),
    "reveal": frozenset({"AggRevealed"}),
}
"""The events after which each of a merger's round waits can be over: everyone in, or the
phase closed (:func:`~synthreg.chain.secagg.phase_closed`: votes, the next phase, the
freeze); the freeze; reveals. A wait also re-reads every ``recheck_s`` (a missed event)."""

UPDATE_HASHES = ("g_weights_sha256", "d_weights_sha256")

ARRIVALS: dict[str, str] = {"advertise": "AggAdvertised", "shares": "AggSharesPosted", "submit": "AggSubmitted",
                            "reveal": "AggRevealed"}
"""The event of each merger's arrival in a phase: a wait for all of them (or t reveals) asks
``GetRound`` again only once that many arrived, unless another of its events came."""


def _put_update(updates: StatementStore, run: str, rnd: int) -> dict[str, Any] | None:
    """The local update the generator put in the workspace (before recording it), marked so."""
    upd = updates.update(run, rnd)
    return None if upd is None else {**upd, "workspace": True}


class MergerApp(App):
    role = "merger"
    _fetcher: BlobFetcher | None = None
    _blob_server: BlobServer | None = None

    def __init__(self, settings: AppSettings) -> None:
        super().__init__(settings)
        # (aggregation run, round) -> its GetRound as last read by a wait whose outcome later
        # steps reuse instead of reading again: after the share phase closed (P and the
        # dealings fixed: the submission masks with it), and after the agreement
        self._seen: dict[tuple[str, int], dict[str, Any]] = {}
        # aggregation run -> the first of its rounds this process took part in (_round_waits)
        self._first_round: dict[str, int] = {}
        # (run, round)s whose round record went on the ledger with this process's PostResult
        self._recorded_with_result: set[tuple[str, int]] = set()

    def blob_fetcher(self) -> BlobFetcher:
        """This registry's served blobs (runs with ``blobs: served``): its own and fetched
        stores in ``state/blobs``, the fetcher of the other mergers' blobs and the server
        of its own at the org's blob endpoint, started on first use and stopped with the
        app (it keeps serving between runs: a slower registry may still be finishing one).
        Each call reads the network profile again, so a registry that joined since is
        trusted and asked too."""
        profile = load_profile(self.settings.network_home)
        if self._fetcher is not None and self._blob_server is not None:
            self._blob_server.trust(tls_cas_of(profile))
            self._fetcher.endpoints = endpoints_of(profile)
            return self._fetcher
        self._fetcher, self._blob_server = open_served_blobs(profile, self.msp, self.state / "blobs")
        self._stack.callback(self._blob_server.close)
        self._stack.callback(self._fetcher.close)
        log.info("%s merger: serving blobs at %s", self.msp, profile.org(self.msp).blob_endpoint)
        return self._fetcher

    def _merger(self, run: str, config: AggregationConfig) -> LedgerMerger:
        return LedgerMerger(self.contract, self.msp, run, config, sync=False,
                            blobs=self.blob_fetcher() if config.blobs == "served" else None)

    # -- one secure-aggregation round, each phase woken by the previous one's events
    def _round_waits(self, merger: LedgerMerger, spec: RunSpec, rnd: int, run: str) -> Callable[..., dict[str, Any]]:
        """``until(pred, what, events, vote=None, gate=None, after=None)``: ``GetRound`` of
        round ``rnd`` once ``pred`` holds, re-read on the round's ``events`` (those that can
        make it hold: :data:`PHASE_EVENTS`); with ``vote``, this merger votes to close that
        phase once it waited ``round_timeout_s`` (t of n). ``gate`` (a key of
        :data:`ARRIVALS`, or "result") reads only once the events seen can have made
        ``pred`` hold (:meth:`App.gated`): every expected arrival, t reveals or results,
        or any other event of the wait (a vote, the next phase, the freeze). How many
        arrivals the share and submit phases expect is read off the round as the previous
        wait returned it (``after``: the advertisements, the shares). The first read too
        waits for the gate, except in the first round this process takes part in: the
        events of a round it joined before a restart may lie before its feed's checkpoint."""
        agg = merger.run
        n, t = len(spec.participants), spec.threshold
        need = {"advertise": lambda s: n, "shares": lambda s: len(s["advertised"]),
                "submit": lambda s: len(s["shares"]), "reveal": lambda s: t}
        first_here = self._first_round.setdefault(agg, rnd) == rnd

        def until(pred: Any, what: str, events: Collection[str], vote: str | None = None,
                  gate: str | None = None, after: dict[str, Any] | None = None,
                  by_events: Callable[[], dict[str, Any] | None] | None = None) -> dict[str, Any]:
            """GetRound once ``pred`` holds, woken by the round's ``events``; with ``vote``,
            vote to close that phase once this merger waited round_timeout_s; ``by_events``
            answers from the events seen where it can, before any read."""
            match = on_round(agg, rnd, events)
            last: list[dict[str, Any] | None] = [None]

            def read() -> dict[str, Any] | None:
                known = by_events() if by_events is not None else None
                if known is not None:
                    return known
                last[0] = self.evaluate_or_none("GetRound", agg, str(rnd))
                return last[0] if last[0] is not None and pred(last[0]) else None

            def may_hold() -> bool:
                state = last[0] if last[0] is not None else after
                if gate is None:
                    return True
                if gate == "result":
                    return self.agreement_may_be_in(agg, rnd, t)
                arrival = ARRIVALS[gate]
                if self.feed.seen(on_round(agg, rnd, set(events) - {arrival})) is not None:
                    return True
                if state is None and gate in ("shares", "submit"):
                    return True
                return len(self.feed.msps(on_round(agg, rnd, {arrival}))) >= need[gate](state or {})

            ready = self.gated(read, may_hold, ask_first=first_here or gate is None or may_hold())
            if vote is not None:
                try:
                    return dict(self.wait(ready, match, what, run, spec.round_timeout_s))
                except WaitTimeoutError:
                    missing = self._missing(self._round_when(agg, rnd, lambda s: True)(), vote, spec)
                    self.set_status(detail=f"round {rnd}: voted to close the {vote} phase without {missing}",
                                    force=True)
                    log.warning("%s merger: round %d: %s missing after %ds: voting to close the %s phase",
                                self.msp, rnd, missing, spec.round_timeout_s, vote)
                    merger.vote(rnd, vote)
            return dict(self.wait(ready, match, what, run))

        return until

    def _join_round(self, merger: LedgerMerger, spec: RunSpec, rnd: int, run: str) -> np.ndarray | None:
        """Phases 1 and 2 of round ``rnd``: advertise this round's keys and deal the
        shares of its secrets. Neither needs the round's input, so the merger runs them
        while its generator and discriminator train the round (pipelining, issue 11:
        they leave the critical path; FedAvg stays exact). None once this merger's
        shares are in; the agreed average if a phase closed without it
        (:meth:`_observe`)."""
        n, t = len(spec.participants), spec.threshold
        until = self._round_waits(merger, spec, rnd, run)
        left_out = self._write(merger, rnd, run, lambda: merger.advertise(rnd), "advertise", t)
        if left_out is not None:
            return left_out
        # each wait: everyone it expects is in, or the phase closed (phase_closed; a round that
        # is no longer open already has submissions, hence shares)
        advertised = until(lambda s: len(s["advertised"]) == n or phase_closed(s, "advertise", t),
                           "every advertisement (or t votes)", PHASE_EVENTS["advertise"], vote="advertise",
                           gate="advertise")
        left_out = self._write(merger, rnd, run, lambda: merger.post_shares(rnd, advertised), "shares", t)
        if left_out is not None:
            return left_out
        # P and the dealings are fixed once the share phase closed: the submission masks with this view
        self._seen[(merger.run, rnd)] = until(
            lambda s: len(s["shares"]) == len(s["advertised"]) or phase_closed(s, "shares", t),
            "every advertised merger's shares (or t votes)", PHASE_EVENTS["shares"], vote="shares", gate="shares",
            after=advertised)
        return None

    def _secagg_round(self, merger: LedgerMerger, spec: RunSpec, rnd: int, vector: np.ndarray,
                      audit_blob: bytes | None, run: str,
                      record: Callable[[np.ndarray, str], dict[str, Any]] | None = None,
                      update: Mapping[str, str] | None = None) -> np.ndarray:
        """Phases 3 to 5 of round ``rnd``, which :meth:`_join_round` joined: submit the
        masked ``vector``, freeze, reveal, and agree on the result (t of n: each phase
        waits for everyone it expects, and after ``round_timeout_s`` of its own waiting
        this merger votes to go on without the missing ones); if a phase closes without
        this merger it is left out and takes the agreed average from the ledger
        (:meth:`_observe`). ``record(average, sha256)``: the round's trail entry, posted
        with the result (then listed in ``_recorded_with_result``). ``update``: the
        registry's local update, recorded by the Submit (not yet on the ledger)."""
        t = spec.threshold
        agg = merger.run
        until = self._round_waits(merger, spec, rnd, run)

        def round_state(pred: Any) -> Any:
            return self._round_when(agg, rnd, pred)

        shared = self._seen.pop((agg, rnd), None)
        left_out = self._write(merger, rnd, run, lambda: merger.submit(rnd, vector, 1.0, audit_blob, shared, update),
                               "submit", t)
        if left_out is not None:
            return left_out
        # Freeze: the submission completing U = P froze the round itself (chaincode);
        # after t votes instead, the first survivor freezes, any other merger too if
        # the round is still open a timeout later.
        state = until(lambda s: len(s["submissions"]) == len(s["shares"]) or phase_closed(s, "submit", t),
                      "every submission (or t votes)", PHASE_EVENTS["submit"], vote="submit", gate="submit",
                      after=shared)
        if state["status"] == "open":
            if min(state["submissions"]) == self.msp:
                merger.freeze(rnd)
            try:
                state = dict(self.wait(round_state(lambda s: s["status"] != "open"),
                                       on_round(agg, rnd, PHASE_EVENTS["freeze"]), "the freeze", run,
                                       spec.round_timeout_s))
            except WaitTimeoutError:
                merger.freeze(rnd)
                state = until(lambda s: s["status"] != "open", "the freeze", PHASE_EVENTS["freeze"])
        if state["status"] == "void":
            merger.forget(rnd)
            raise RoundVoidError(agg, rnd, state["survivors"], spec.threshold)
        if left_out_of(state, self.msp, t):
            return self._observe(merger, rnd, run, "the round froze without its submission")
        merger.reveal(rnd, state)  # U and D are fixed once frozen
        revealed = until(lambda s: len(s["reveals"]) >= t, "t survivors' reveals", PHASE_EVENTS["reveal"],
                         gate="reveal")
        # The next training round's advertisement rides in this round's result (its
        # AggAdvertised is the result's event: EventFeed) unless the run stops here.
        outcome = merger.result(rnd, None, before_post=lambda avg, sha: self.workspace.put(array_bytes(avg)),
                                state=revealed, record=record,
                                advertise_next=agg == run and not self.stops_after(run, spec, rnd))
        if record is not None:
            self._recorded_with_result.add((agg, rnd))
        def agreed_by_events() -> dict[str, Any] | None:  # U and the submissions are fixed since the freeze
            sha = self.agreed_by_events(agg, rnd, t)
            return None if sha is None else {**revealed, "agreed": True, "average_sha256": sha, "mismatched": []}

        final = until(lambda s: s.get("agreed") is not None, "t equal results", AGREEMENT_EVENTS, gate="result",
                      by_events=agreed_by_events)
        if final.get("agreed") is not True or final.get("average_sha256") != outcome.average_sha256:
            raise DisagreementError(agg, rnd, final.get("mismatched") or [self.msp])
        self._seen[(agg, rnd)] = final  # survivors and submissions, for the round's record
        return outcome.average

    def _write(self, merger: LedgerMerger, rnd: int, run: str, write: Callable[[], object], phase: str, t: int,
               patience: float = PEER_CATCH_UP_S, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> np.ndarray | None:
        """This merger's write of ``phase`` ("advertise", "shares", "submit"); None once it
        is on the ledger. A refusal as "closed" (:class:`RoundClosedError`: any
        ``PRECONDITION_FAILED``) or as a duplicate (:class:`AlreadyDoneError`: an earlier
        attempt landed after all), or a write that failed without writing anything
        (:func:`~synthreg.ledger.sync.wrote_nothing`: no endorsement, or no orderer took it,
        after :func:`~synthreg.ledger.sync.submit_synced`'s retries), is judged by the round
        on this merger's own peer (:func:`phase_standing`):

        - its entry is there: the write landed after all (an orderer that died had taken it);
        - the phase is closed: it is left out of the round like a late merger and takes
          the agreed average from the ledger (:meth:`_observe`);
        - the phase is still open: the refusal came from a peer that had not committed its
          earlier write yet (``Submit`` before the peer has the ``PutBlob``), or the
          network is still healing: written again after a pause, for up to ``patience``
          seconds, then left out. Leaving an open phase would stall a round in which only
          t mergers are left to vote (the host-cut test, CI at 8ef4187: Registry4 took a
          lagging peer's "blob not stored" for a closed phase, and two votes of t = 3 were
          left). The round unreadable (own peer down) counts as open.

        Any other failure raises."""
        deadline = clock() + patience
        while True:
            try:
                write()
                return None
            except (RoundClosedError, AlreadyDoneError) as exc:  # refused, or an earlier attempt landed
                refusal: AggregationLedgerError = exc
            except AggregationLedgerError as exc:
                if not wrote_nothing(exc.__cause__):
                    raise
                refusal = exc
            try:
                standing = phase_standing(merger.state(rnd), self.msp, phase, t)
            except AggregationLedgerError:
                standing = "open"  # cannot tell yet: the own peer is unreachable
            if standing == "in":
                log.warning("%s merger: round %d: its %s write landed after all (%s)", self.msp, rnd, phase, refusal)
                return None
            if standing == "closed":
                return self._observe(merger, rnd, run, f"the {phase} phase closed without it ({refusal})")
            if clock() > deadline:
                return self._observe(merger, rnd, run, f"its write in the {phase} phase failed for {patience:.0f}s "
                                     f"while the phase stayed open: {refusal}")
            log.warning("%s merger: round %d: %s write refused while the phase is open (%s): writing again",
                        self.msp, rnd, phase, refusal)
            self.set_status(detail=f"round {rnd}: {phase} write refused, writing again: {refusal}", force=True)
            sleep(1.0)

    def _round_entry(self, rnd: int, vector: np.ndarray, audit_blob: bytes | None, average_sha: str) -> RoundEntry:
        """This registry's trail entry of round ``rnd`` (the average already in the
        workspace under ``average_sha``), the other bytes put in the workspace first."""
        return RoundEntry(rnd, self.msp, int(vector.size), self.workspace.put(array_bytes(vector)), average_sha,
                          self.workspace.put(audit_blob) if audit_blob is not None else None)

    def _round_record(self, rnd: int, vector: np.ndarray, audit_blob: bytes | None, avg: np.ndarray,
                      average_sha: str) -> dict[str, Any]:
        """:meth:`_round_entry` as posted with the result (:meth:`LedgerMerger.result`), one
        transaction instead of a ``PutRecord`` after the agreement (issue 11); ``before_post``
        put ``avg`` in the workspace under ``average_sha`` already."""
        return dict(json.loads(self._round_entry(rnd, vector, audit_blob, average_sha).to_json()))

    def _finished_before(self, run: str, rnd: int) -> str | None:
        """The agreed average's hash of round ``rnd`` if this registry's record of it is on
        the ledger and the round is agreed on the record's average (a merger restarted
        after the round); None otherwise. The record goes with the result, so it can
        precede the agreement: such a round is not finished yet (:meth:`_finished_round`)."""
        done = self.evaluate_or_none("GetRecord", round_key(run, rnd, self.msp))
        if done is None:
            return None
        sha = RoundEntry.from_json(done["value"]).average_sha256
        state = self.evaluate_or_none("GetRound", run, str(rnd)) or {}
        return sha if state.get("agreed") is True and state.get("average_sha256") == sha else None

    def _recorded(self, key: str) -> bool:
        """Whether a trail record is under ``key`` (a PutRecord whose answer was lost landed)."""
        return self.evaluate_or_none("GetRecord", key) is not None

    def _round_when(self, agg: str, rnd: int, pred: Any) -> Any:
        """A ``ready`` for :meth:`wait`: ``GetRound`` of ``agg`` round ``rnd`` once ``pred`` holds."""
        return lambda: (lambda s: s if s is not None and pred(s) else None)(
            self.evaluate_or_none("GetRound", agg, str(rnd)))

    @staticmethod
    def _missing(state: dict[str, Any] | None, phase: str, spec: RunSpec) -> list[str]:
        if state is None:
            return list(spec.participants)
        expected, present = {"advertise": (spec.participants, state["advertised"]),
                             "shares": (state["advertised"], state["shares"]),
                             "submit": (state["shares"], state["submissions"])}[phase]
        return sorted(set(expected) - set(present))

    def _observe(self, merger: LedgerMerger, rnd: int, run: str, why: str) -> np.ndarray:
        """Left out of round ``rnd`` (``why``), or restarted inside it (its round
        secrets died with the old process): wait for the t survivors' agreement,
        compute the same average from the ledger alone, check it against the agreed
        hash and put it into the workspace for G and D."""
        agg = merger.run
        merger.forget(rnd)
        self.set_status(phase="left out of the round", round=rnd, detail=why, force=True)
        log.warning("%s merger: out of round %d of %s (%s): taking the agreed average from the ledger",
                    self.msp, rnd, agg, why)
        state = dict(self.wait(self._round_when(agg, rnd, lambda s: s.get("agreed") is not None
                                                or s["status"] == "void"),
                               on_round(agg, rnd, AGREEMENT_EVENTS), f"the agreement of round {rnd} without {self.msp}",
                               run))
        if state["status"] == "void":
            raise RoundVoidError(agg, rnd, state["survivors"], merger.config.threshold)
        if state.get("agreed") is not True:
            raise DisagreementError(agg, rnd, state.get("mismatched") or [])
        outcome = merger.observe(rnd)
        self.workspace.put(array_bytes(outcome.average))
        return outcome.average

    def _put_condition_counts(self, run: str, column: str, counts: tuple[float, ...]) -> None:
        """Write this registry's level counts of the conditioning column for its generator
        (atomically: the generator waits for the whole file)."""
        path = self.condition_counts_file(run)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"column": column, "counts": list(counts)}))
        os.replace(tmp, path)

    def _open(self, spec: RunSpec, agg_run: str, vector_len: int, run: str) -> AggregationConfig:
        """Open aggregation run ``agg_run`` with the run's config: every merger tries
        (OpenAggregation has no event to wait for); the first write wins and the
        others check that what is on the ledger is what the run says."""
        config = AggregationConfig(spec.participants, spec.threshold, vector_len, 32, spec.round_timeout_s,
                                   spec.blobs)
        for _ in range(5):
            on_ledger = self.evaluate_or_none("GetAggregation", agg_run)
            if on_ledger is not None:
                break
            try:
                open_aggregation(self.contract, self.msp, agg_run, config)
            except AggregationLedgerError as exc:
                if exc.code not in ("ALREADY_EXISTS", ""):  # "": lost a same-block race
                    raise
            wait_for_block(self.network, spec.participants, chain_height(self.network, self.msp) - 1)
        else:
            raise AggregationLedgerError("OpenAggregation", self.msp, "", f"{agg_run} could not be opened")
        agreed = AggregationConfig.from_dict(on_ledger)
        if agreed != config:
            raise AggregationLedgerError("GetAggregation", self.msp, "",
                                         f"{agg_run} is open with {agreed}, the run says {config}")
        return config

    def _local_update(self, run: str, rnd: int) -> dict[str, Any] | None:
        """This registry's local update of round ``rnd`` if the ledger has it already
        (a Submit of an earlier process of this merger recorded it), else None; raises
        if its G or D recorded a fault instead (the registry cannot contribute this run)."""
        raise_recorded_fault(self, run, rnd, 0)
        update = self.evaluate_or_none("GetLocalUpdate", run, self.msp, str(rnd))
        return dict(update) if update else None

    def _update_wait(self, run: str, rnd: int, spec: RunSpec) -> Callable[[], dict[str, Any] | None]:
        """The ledger side of the wait for round ``rnd``'s local update (whose generator
        puts it in the workspace: :func:`_put_update`): a fault of this registry's G or D
        raised, or ``{"left_out": True}`` once the round went on without this registry
        (:meth:`App.round_went_on`: ``GetRound`` only after an event that can leave it
        out, seen before the wait or during it). In the process's first round the first
        check reads both from the ledger (their events may lie before the feed's
        checkpoint), and also the update itself, which an earlier process's Submit may
        have recorded. Issue 11: the generator recorded the update in a transaction of
        its own (``RecordLocalUpdate``), which the merger waited for before its Submit;
        the Submit records it now."""
        first = [self._first_round.setdefault(run, rnd) == rnd]

        def ready() -> dict[str, Any] | None:
            if first[0]:
                first[0] = False
                return self._update_or_left_out(run, rnd, spec)
            raise_recorded_fault(self, run, rnd, 0)
            return {"left_out": True} if self.round_went_on(run, rnd, spec) else None
        return ready

    def _update_vector(self, upd: dict[str, Any], generator_only: bool, n: int, prev: np.ndarray,
                       spec: RunSpec) -> np.ndarray:
        """The update [G ‖ D] named by ``upd`` from the workspace, clipped (before masking
        and the audit copy)."""
        g_vec = np.frombuffer(self.workspace.get(upd["g_weights_sha256"]), dtype="<f4")
        d_vec = np.zeros(0, np.float32) if generator_only else np.frombuffer(
            self.workspace.get(upd["d_weights_sha256"]), dtype="<f4")  # a local critic is never read
        vector = np.concatenate([g_vec, d_vec]).astype(np.float32)
        if vector.size != n:
            raise ValueError(f"round {upd.get('round')}: local update has {vector.size} weights, expected {n}")
        return clip_update(vector, prev, spec.max_update_norm)

    @staticmethod
    def _audit_blob(public: Any, spec: RunSpec, rnd: int, vector: np.ndarray) -> bytes | None:
        """The CKKS audit copy of an audited round's update, else None."""
        if public is None or rnd not in spec.audit_rounds:
            return None
        return bytes(encrypt_vector(public, vector.astype(np.float64)).to_bytes())

    def _note_missed(self, rnd: int) -> None:
        """Round ``rnd``'s average is not this registry's: shown by ``registry status``."""
        missed = self.progress.extra.setdefault("missed_rounds", [])
        if rnd not in missed:
            missed.append(rnd)
        self.set_status(force=True)

    def _update_or_left_out(self, run: str, rnd: int, spec: RunSpec) -> dict[str, Any] | None:
        """The registry's local update of round ``rnd``, or ``{"left_out": True}`` once
        the round went on without this registry (it will not wait for the update)."""
        return self._local_update(run, rnd) or ({"left_out": True} if self.left_out(run, rnd, spec) else None)

    def _update_events(self, run: str, rnd: int) -> Any:
        mine, closing = self.mine(run, "StepFault"), on_round(run, rnd, PHASE_CLOSING_EVENTS)
        return lambda ev: mine(ev) or closing(ev)

    def _finished_round(self, merger: LedgerMerger, rnd: int, run: str) -> np.ndarray | None:
        """The average of a round this merger already joined before a restart (it
        advertised), or None if it has not joined it yet. Its round secrets lived
        only in the crashed process, so it cannot go on in that round: if the round
        is not yet agreed, the other mergers finish it with t of n (they vote out a
        missing merger) and this one takes the agreed average from the ledger."""
        state = self.evaluate_or_none("GetRound", merger.run, str(rnd))
        if state is None or self.msp not in state.get("advertised", {}):
            return None
        sha = str(state["results"].get(self.msp, ""))
        if state.get("agreed") is True and sha == state.get("average_sha256") and sha in self.workspace:
            return np.frombuffer(self.workspace.get(sha), dtype="<f4").copy()
        return self._observe(merger, rnd, run, "restarted inside the round")

    def run_one(self, record: RunRecord, spec: RunSpec) -> None:
        run, cfg = record.run, spec.config
        self.progress.extra.pop("missed_rounds", None)
        if self.settings.data is None:
            raise ValueError("the merger needs its registry's --data CSV (for the encoder histograms)")
        schema = spec.schema()
        frame = load_registry_csv(self.settings.data, schema)
        opener = record.proposer.get("msp") == self.msp  # only its merger may write the header (chaincode)
        if opener and self.evaluate_or_none("GetRecord", run_key(run)) is None:
            self.submit(spec, "PutRecord", run_key(run), json.dumps({
                "schema_sha256": spec.schema_sha256, "config": cfg.to_dict(), "registries": list(spec.participants),
                "audit_rounds": list(spec.audit_rounds), "averaging": "secagg-ledger-uniform",
                "step_records": spec.step_records, "ceremony_id": spec.ceremony_id, "run_sha256": record.run_sha256},
                sort_keys=True), landed=functools.partial(self._recorded, run_key(run)))

        # 1. the encoder, from the securely summed histograms
        self.set_status(phase="encoder", force=True)
        local_stats = EncoderStats.from_frame(frame, schema, cfg.bins, cfg.levels_of)
        if cfg.condition_on is not None:  # for this registry's generator, which never reads records
            self._put_condition_counts(run, cfg.condition_on, local_stats.counts[cfg.condition_on])
        hist = local_stats.to_vector()
        enc_cfg = self._open(spec, encoder_run(run), int(hist.size), run)
        enc_merger = self._merger(encoder_run(run), enc_cfg)
        enc_avg = self._finished_round(enc_merger, 0, run)
        if enc_avg is None:
            enc_avg = self._join_round(enc_merger, spec, 0, run)
        if enc_avg is None:
            enc_avg = self._secagg_round(enc_merger, spec, 0, np.asarray(hist, dtype=np.float64), None, run)
        state = self._seen.pop((encoder_run(run), 0), None) or self.evaluate_or_none("GetRound", encoder_run(run), "0")
        if enc_merger.blobs is not None:
            enc_merger.blobs.cache.prune(encoder_run(run), 1)
        stats = EncoderStats.from_frame(frame.iloc[:0], schema, cfg.bins, cfg.levels_of).from_vector(
            enc_avg.astype(np.float64) * len(state["survivors"]))
        encoder = TabularEncoder(schema, stats)
        gen, dis = build_models(encoder.output_dim, cfg.model_config(encoder.schema), cfg.seed)
        n_g = state_dict_to_vector(gen).size
        initial = cfg.shared_vector(gen, dis)  # w_prev of round 0: [G ‖ D], or G if only G is averaged
        n = initial.size

        # 2. the rounds
        w_cfg = self._open(spec, run, n, run)
        merger = self._merger(run, w_cfg)
        public = None
        if spec.audit_rounds:
            with open_gateway(load_profile(self.settings.network_home), self.msp, "merger") as gw:
                from synthreg.chain.keyvault import LedgerKeyVault
                ceremony = LedgerKeyVault(gw.network("keys").contract("keyvault")).get_ceremony_record()
            public = load_public_context(ceremony.public_context)
        avg = np.zeros(0, dtype=np.float32)
        average_sha = ""
        last = 0
        updates = StatementStore(self.workspace.root)  # where the generator puts its update (recorded by the Submit)
        resumed = False  # rounds recorded, or joined, by an earlier process can only precede the first here
        for rnd in range(spec.rounds):
            if rnd > 0 and self.stops_after(run, spec, rnd - 1):  # decided from the ledger (also on resume)
                break
            last = rnd
            prev = avg if rnd > 0 else initial  # the update bound's w_prev (gan/bound.py)
            done = None if resumed else self._finished_before(run, rnd)
            if done is not None:  # finished before a restart
                average_sha = done
                avg = np.frombuffer(self.workspace.get(average_sha), dtype="<f4").copy()
                continue
            # Pipelined: this round's keys and shares go on the ledger while G and D train
            # it; a round this merger advertised before a restart is not joined again
            # (its secrets died with the old process: _finished_round).
            self.set_status(phase="secure aggregation", round=rnd, detail="keys and shares", force=True)
            state = None if resumed else self.evaluate_or_none("GetRound", run, str(rnd))
            resumed = True
            restarted_inside = state is not None and self.msp in state.get("advertised", {})
            early = None if restarted_inside else self._join_round(merger, spec, rnd, run)

            def taken(early: np.ndarray | None = early, restarted_inside: bool = restarted_inside,
                      rnd: int = rnd) -> np.ndarray | None:
                """The round's average from the ledger if this merger cannot go on in it: left
                out while joining, or joined before a restart (agreed, or taken from the ledger)."""
                if early is not None:
                    return early
                return self._finished_round(merger, rnd, run) if restarted_inside else None

            self.set_status(phase="waiting for local update", round=rnd, detail="", force=True)
            # The generator puts its update in the workspace; this merger records it with its
            # Submit (the chaincode checks it against the registry's step records).
            upd = self.wait_local(functools.partial(_put_update, updates, run, rnd), self._update_wait(run, rnd, spec),
                                  self._update_events(run, rnd), f"the local update of round {rnd}", run,
                                  watch=updates.round_dir(run, rnd))
            if upd.get("left_out"):  # e.g. back from an outage: the round went on with t others
                self._seen.pop((run, rnd), None)
                joined = taken()
                avg = joined if joined is not None else self._observe(
                    merger, rnd, run, "the round went on without this registry")
                check_bound(avg, prev, spec.max_update_norm, rnd)
                average_sha = sha256_hex(array_bytes(avg))
                self._note_missed(rnd)
                continue
            vector = self._update_vector(upd, cfg.generator_only, n, prev, spec)
            finished = taken()
            audit_blob = None
            if finished is not None:
                avg = finished
            else:
                audit_blob = self._audit_blob(public, spec, rnd, vector)
                self.set_status(phase="secure aggregation", round=rnd, detail="", force=True)
                avg = self._secagg_round(merger, spec, rnd, vector, audit_blob, run,
                                         record=functools.partial(self._round_record, rnd, vector, audit_blob),
                                         update={k: upd[k] for k in UPDATE_HASHES} if upd.get("workspace") else None)
            check_bound(avg, prev, spec.max_update_norm, rnd)  # after the agreement: did every survivor clip?
            average_sha = sha256_hex(array_bytes(avg))
            state = self._seen.pop((run, rnd), None) or self.evaluate_or_none("GetRound", run, str(rnd))
            if self.msp not in state["survivors"]:
                self._note_missed(rnd)
                continue  # left out: its update is not in the average, so no trail entry
            if (run, rnd) not in self._recorded_with_result:  # else the entry went with its result
                submitted = state["submissions"][self.msp]
                if audit_blob is None and submitted.get("audit_sha256"):
                    audit_blob = merger.blob(str(submitted["audit_sha256"]), rnd, self.msp)
                entry = self._round_entry(rnd, vector, audit_blob, self.workspace.put(array_bytes(avg)))
                key = round_key(run, rnd, self.msp)  # only this merger writes it: one there is its own
                self.submit(spec, "PutRecord", key, entry.to_json(), landed=functools.partial(self._recorded, key))
            self._recorded_with_result.discard((run, rnd))
            if merger.blobs is not None:  # the copies fetched for this round are no longer needed here
                merger.blobs.cache.prune(run, rnd + 1)

        # 3. the bundle
        from synthreg.gan.bundle import write_bundle
        from synthreg.gan.weights import vector_to_state_dict

        vector_to_state_dict(gen, avg[:n_g])
        out = self.state / "bundles" / run.replace("/", "_")
        write_bundle(out, generator=gen, discriminator_vector=avg[n_g:], encoder=encoder, schema=schema,
                     config=cfg, run_id=run, aggregation_run=run, round=last,
                     average_sha256=average_sha, overwrite=True)
        self.set_status(phase="stopped-run", detail=f"bundle {out}", force=True)
