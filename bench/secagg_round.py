"""Cost of one secure-aggregation round (DESIGN.md §4) on the real local Fabric network.

What is measured, per vector length L (``--length``, default 1000, 10000 and
85527 = the demo GAN's G‖D parameter count):

* ``--rounds`` full rounds of :func:`synthreg.chain.secagg.secure_average` with
  the 3 registries' mergers (each its own ``merger`` identity and Gateway),
  random float32 vectors (seeded), after one warm-up round that is not counted.
  Per round: wall time, and a per-phase breakdown taken by :class:`TimedMerger`,
  a subclass of :class:`~synthreg.chain.secagg.LedgerMerger` defined here that
  times its public phase methods (advertise, post_shares, submit, freeze,
  reveal, result) -- no library code is patched. A phase's time is the span
  from the first merger starting it to the last one finishing it (the mergers
  run each phase concurrently); "other" is the rest of the round: waiting for
  every peer's view (``wait_for``), thread hand-offs. Also per round:
  transactions committed (``len(m.tx_ids)`` deltas, all mergers) and bytes put
  on the ledger (masked blobs 8·L per survivor + share envelopes, decoded
  sizes; a blob's bytes travel in the transient map, so its block holds them
  once; the share envelopes travel base64, i.e. 4/3 of their size).
* one dropout round per L in a separate run with ``round_timeout_s=2``: one
  merger shares and then never submits; the others wait out the timeout,
  freeze and recover its mask. Its wall time and the max abs error against the
  survivors' mean are reported.
* the pure crypto of the same L offline (no ledger): ``Party.mask`` per merger
  and ``average`` (unmask + divide) for 3 parties, so the reader sees how much
  of a round is ledger and how much is computation.

Every round's agreed average is checked against numpy's mean (|err| <= 1e-6);
a wrong result aborts the bench (:class:`WrongResultError`) instead of being
timed. Without ``--home`` a fresh 3-registry network is started on
``--base-port`` (9700: the test network uses 7000, the lifecycle test 9400)
in a temp dir and always torn down (``down --wipe``).

Usage:

    python bench/secagg_round.py                          # own network, L = 1000, 10000, 85527
    python bench/secagg_round.py --rounds 3 --length 85527
    python bench/secagg_round.py --home .synthreg/network # an already running network
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from synthreg.chain.blobs import BlobFetcher
from synthreg.chain.secagg import (
    AggregationConfig,
    LedgerMerger,
    RoundOutcome,
    open_aggregation,
    secure_average,
)
from synthreg.ledger import Contract
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile, load_profile
from synthreg.secagg import Params, Party, average

console = Console(width=210)

PHASES = ("advertise", "post_shares", "submit", "freeze", "reveal", "result")
TOLERANCE = 1e-6
T = TypeVar("T")


class WrongResultError(Exception):
    """The agreed average differs from numpy's mean: the bench refuses to report timings."""

    def __init__(self, length: int, rnd: int, max_err: float) -> None:
        super().__init__(f"L={length} round {rnd}: agreed average differs from numpy's mean by {max_err:.3g} "
                         f"(> {TOLERANCE})")
        self.length, self.round, self.max_err = length, rnd, max_err


class NetworkCommandError(Exception):
    """`synthreg network up/down` for the bench's own network failed."""

    def __init__(self, action: str, stderr: str) -> None:
        super().__init__(f"network {action} failed:\n{stderr[-3000:]}")
        self.action, self.stderr = action, stderr


# --------------------------------------------------------------------- timing


@dataclass
class PhaseLog:
    """(phase, round, msp, start, end) of every timed phase call, from all merger threads."""

    calls: list[tuple[str, int, str, float, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, phase: str, rnd: int, msp: str, t0: float, t1: float) -> None:
        with self.lock:
            self.calls.append((phase, rnd, msp, t0, t1))

    def spans(self, rnd: int) -> dict[str, float]:
        """Seconds from the first start to the last end of each phase in round ``rnd``."""
        out = {}
        for phase in PHASES:
            calls = [(t0, t1) for p, r, _, t0, t1 in self.calls if p == phase and r == rnd]
            out[phase] = (max(t1 for _, t1 in calls) - min(t0 for t0, _ in calls)) if calls else 0.0
        return out


class TimedMerger(LedgerMerger):
    """A LedgerMerger that records how long each of its public phase calls takes."""

    def __init__(self, contract: Contract, msp: str, run: str, config: AggregationConfig, log: PhaseLog,
                 blobs: BlobFetcher | None = None) -> None:
        super().__init__(contract, msp, run, config, blobs=blobs)
        self.log = log

    def _timed(self, phase: str, rnd: int, call: Callable[[], T]) -> T:
        t0 = time.perf_counter()
        try:
            return call()
        finally:
            self.log.add(phase, rnd, self.msp, t0, time.perf_counter())

    def advertise(self, rnd: int) -> str:
        return self._timed("advertise", rnd, lambda: super(TimedMerger, self).advertise(rnd))

    def post_shares(self, rnd: int) -> str:
        return self._timed("post_shares", rnd, lambda: super(TimedMerger, self).post_shares(rnd))

    def submit(self, rnd: int, vector: np.ndarray, weight: float = 1.0, audit_blob: bytes | None = None) -> str:
        return self._timed("submit", rnd, lambda: super(TimedMerger, self).submit(rnd, vector, weight, audit_blob))

    def freeze(self, rnd: int) -> bool:
        return self._timed("freeze", rnd, lambda: super(TimedMerger, self).freeze(rnd))

    def reveal(self, rnd: int) -> str:
        return self._timed("reveal", rnd, lambda: super(TimedMerger, self).reveal(rnd))

    def result(self, rnd: int, weights: Mapping[str, float] | None = None) -> RoundOutcome:
        return self._timed("result", rnd, lambda: super(TimedMerger, self).result(rnd, weights))


# --------------------------------------------------------------------- rounds


@dataclass
class RoundStats:
    wall_s: float
    phases_s: dict[str, float]
    txs: int
    blob_bytes: int
    envelope_bytes: int
    max_err: float


@dataclass
class LengthResult:
    length: int
    rounds: list[RoundStats]
    mask_ms: float
    unmask_ms: float
    dropout_ms: float
    dropout_err: float
    dropout_survivors: list[str]


def _vectors(msps: Sequence[str], length: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {m: rng.normal(scale=0.5, size=length).astype(np.float32) for m in msps}


def _check(out: RoundOutcome, vectors: Mapping[str, np.ndarray], length: int, rnd: int) -> float:
    expected = np.mean([vectors[m].astype(np.float64) for m in out.survivors], axis=0)
    err = float(np.max(np.abs(out.average.astype(np.float64) - expected)))
    if not err <= TOLERANCE:  # also catches NaN
        raise WrongResultError(length, rnd, err)
    return err


def _ledger_bytes(merger: LedgerMerger, rnd: int, length: int) -> tuple[int, int]:
    """(masked blob bytes, envelope bytes) this round put on the ledger, decoded sizes."""
    state: dict[str, Any] = merger.state(rnd)
    blobs = 8 * length * len(state["submissions"])
    envelopes = sum(len(base64.b64decode(b64)) for per_sender in state["shares"].values()
                    for b64 in per_sender.values())
    return blobs, envelopes


def _round(mergers: Sequence[TimedMerger], rnd: int, length: int, seed: int,
           drop: Sequence[str] = ()) -> tuple[float, RoundOutcome, dict[str, np.ndarray], int]:
    vectors = _vectors([m.msp for m in mergers], length, seed)
    before = sum(len(m.tx_ids) for m in mergers)
    t0 = time.perf_counter()
    out = secure_average(mergers, rnd, vectors, drop_before_submit=drop)
    wall = time.perf_counter() - t0
    return wall, out, vectors, sum(len(m.tx_ids) for m in mergers) - before


def ledger_rounds(contracts: Mapping[str, Contract], length: int, rounds: int, seed: int) -> list[RoundStats]:
    """Warm-up round 0, then ``rounds`` measured rounds in a fresh run."""
    msps = sorted(contracts)
    config = AggregationConfig.default(msps, length)
    run = f"bench-sa-{length}-{uuid.uuid4().hex[:8]}"
    open_aggregation(contracts[msps[0]], msps[0], run, config)
    log = PhaseLog()
    mergers = [TimedMerger(contracts[m], m, run, config, log) for m in msps]
    stats = []
    for rnd in range(rounds + 1):
        wall, out, vectors, txs = _round(mergers, rnd, length, seed + rnd)
        err = _check(out, vectors, length, rnd)
        if sorted(out.survivors) != msps:
            raise WrongResultError(length, rnd, float("nan"))
        if rnd == 0:
            continue  # warm-up
        blobs, envelopes = _ledger_bytes(mergers[0], rnd, length)
        stats.append(RoundStats(wall, log.spans(rnd), txs, blobs, envelopes, err))
        console.print(f"    round {rnd}: {1000 * wall:.0f} ms, {txs} tx, max |err| {err:.2e}")
    return stats


def dropout_round(contracts: Mapping[str, Contract], length: int, seed: int) -> tuple[float, float, list[str]]:
    """One round in a run with round_timeout_s=2 where the middle merger shares and then vanishes."""
    msps = sorted(contracts)
    config = AggregationConfig.default(msps, length, round_timeout_s=2)
    run = f"bench-sa-drop-{length}-{uuid.uuid4().hex[:8]}"
    open_aggregation(contracts[msps[0]], msps[0], run, config)
    log = PhaseLog()
    mergers = [TimedMerger(contracts[m], m, run, config, log) for m in msps]
    gone = msps[1]
    wall, out, vectors, _ = _round(mergers, 0, length, seed, drop=[gone])
    if gone in out.survivors or out.dropped != [gone]:
        raise WrongResultError(length, 0, float("nan"))
    return wall, _check(out, vectors, length, 0), list(out.survivors)


def crypto_offline(msps: Sequence[str], length: int, reps: int, seed: int) -> tuple[float, float]:
    """Median ms of one ``Party.mask`` and of one ``average`` (3 parties, nobody dropped), no ledger."""
    mask_s: list[float] = []
    avg_s: list[float] = []
    for rep in range(reps):
        params = Params(run="bench-offline", round=rep, participants=tuple(sorted(msps)),
                        threshold=len(msps) // 2 + 1, vector_len=length, scale_bits=32)
        vectors = _vectors(msps, length, seed + rep)
        parties = {m: Party.new(params, m) for m in msps}
        adverts = {m: p.advertisement() for m, p in parties.items()}
        envelopes = {m: p.make_shares(adverts) for m, p in parties.items()}
        for sender, per_recipient in envelopes.items():
            for recipient, env in per_recipient.items():
                parties[recipient].receive_shares(sender, env, parties[sender].dealing)
        peers_of = {m: [p for p in msps if p != m] for m in msps}
        masked = {}
        for m, p in parties.items():
            t0 = time.perf_counter()
            masked[m] = p.mask(vectors[m], 1.0, peers_of[m])
            mask_s.append(time.perf_counter() - t0)
        reveals = {m: p.reveal(list(msps), []) for m, p in parties.items()}
        t0 = time.perf_counter()
        dealings = {m: p.dealing for m, p in parties.items()}
        avg = average(params, adverts, masked, reveals, [], peers_of, dealings)
        avg_s.append(time.perf_counter() - t0)
        expected = np.mean([vectors[m].astype(np.float64) for m in msps], axis=0)
        err = float(np.max(np.abs(avg.astype(np.float64) - expected)))
        if not err <= TOLERANCE:
            raise WrongResultError(length, -1, err)
        for p in parties.values():
            p.erase()
    return 1000 * statistics.median(mask_s), 1000 * statistics.median(avg_s)


# --------------------------------------------------------------------- network


def _network(home: Path, action: str, base_port: int, orgs: int = 3) -> None:
    args = [sys.executable, "-m", "synthreg.cli.main", "network", action, "--home", str(home)]
    args += ["--base-port", str(base_port), "--orgs", str(orgs)] if action == "up" else ["--wipe"]
    proc = subprocess.run(args, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise NetworkCommandError(action, proc.stderr)


def bench(profile: Profile, lengths: Sequence[int], rounds: int, seed: int) -> list[LengthResult]:
    msps = profile.msp_ids
    results = []
    with ExitStack() as stack:
        contracts = {m: stack.enter_context(open_gateway(profile, m, "merger")).network("gan").contract("ganledger")
                     for m in msps}
        for length in lengths:
            console.print(f"[bold]L = {length}[/]: 1 warm-up + {rounds} rounds ...")
            stats = ledger_rounds(contracts, length, rounds, seed)
            console.print("  dropout round (round_timeout_s=2) ...")
            d_wall, d_err, d_surv = dropout_round(contracts, length, seed + 1000)
            console.print(f"    {1000 * d_wall:.0f} ms, survivors {d_surv}, max |err| {d_err:.2e}")
            console.print("  offline crypto ...")
            mask_ms, unmask_ms = crypto_offline(msps, length, rounds, seed + 2000)
            results.append(LengthResult(length, stats, mask_ms, unmask_ms, 1000 * d_wall, d_err, d_surv))
    return results


def _table(results: Sequence[LengthResult], n_mergers: int) -> Table:
    table = Table(title=f"synthreg secure aggregation: one round, {n_mergers} mergers on the local Fabric network "
                        "(times in ms, phase = mean span over rounds)")
    cols = ["L", "rounds", "round p50", "mean", "max", *PHASES, "other", "tx/round", "ledger MB/round",
            "env KB/round", "mask (crypto)", "unmask+avg (crypto)", "dropout round", "dropout |err|"]
    for col in cols:
        table.add_column(col, justify="right", min_width=len(col) if col in PHASES else None)
    for r in results:
        walls = [1000 * s.wall_s for s in r.rounds]
        phase_means = {p: statistics.mean(1000 * s.phases_s[p] for s in r.rounds) for p in PHASES}
        other = statistics.mean(1000 * (s.wall_s - sum(s.phases_s.values())) for s in r.rounds)
        table.add_row(
            str(r.length), str(len(r.rounds)), f"{statistics.median(walls):.0f}", f"{statistics.mean(walls):.0f}",
            f"{max(walls):.0f}", *(f"{phase_means[p]:.0f}" for p in PHASES), f"{other:.0f}",
            f"{statistics.mean(s.txs for s in r.rounds):.1f}",
            f"{statistics.mean((s.blob_bytes + s.envelope_bytes) / 1e6 for s in r.rounds):.3f}",
            f"{statistics.mean(s.envelope_bytes / 1e3 for s in r.rounds):.1f}",
            f"{r.mask_ms:.1f}", f"{r.unmask_ms:.1f}", f"{r.dropout_ms:.0f}", f"{r.dropout_err:.1e}")
    return table


def main(
    length: Annotated[list[int], typer.Option(help="Vector length(s) L.")] = [1000, 10000, 85527],  # noqa: B006
    rounds: Annotated[int, typer.Option(help="Measured rounds per length (after 1 warm-up).")] = 5,
    home: Annotated[Path | None, typer.Option(help="Use this running network instead of starting one.")] = None,
    base_port: Annotated[int, typer.Option(help="Base port of the network this bench starts.")] = 9700,
    seed: Annotated[int, typer.Option(help="Seed of the random vectors.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write results here.")] = None,
) -> None:
    if rounds < 1:
        raise typer.BadParameter("--rounds must be >= 1")
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if home is None:
        tmp = tempfile.TemporaryDirectory(prefix="synthreg-bench-secagg-")
        net_home = Path(tmp.name) / "network"
        console.print(f"[bold]starting a 3-registry network[/] on base port {base_port} ({net_home})")
    else:
        net_home = home
    try:
        if tmp is not None:
            _network(net_home, "up", base_port)
        profile = load_profile(net_home)
        results = bench(profile, length, rounds, seed)
    finally:
        if tmp is not None:
            try:
                _network(net_home, "down", base_port)
            finally:
                tmp.cleanup()
    console.print(_table(results, len(profile.msp_ids)))
    bt = profile.batch_timeout
    bt_line = f"orderer BatchTimeout {bt} (from the network profile)" if bt != "?" else \
        "orderer BatchTimeout not recorded in the profile: the launcher default is 10ms"
    console.print(f"{bt_line}; machine: {os.cpu_count()} cores, shared with other work (numbers are noisy); "
                  "3 peers, 3 orderers, chaincode servers and the client all on this host. Every round's "
                  f"average was checked against numpy's mean (|err| <= {TOLERANCE}). Ledger bytes are decoded "
                  "sizes (masked blobs 8·L per survivor, in their blocks once: transient, + share envelopes, base64 in "
                  "their transactions: x4/3).")
    if json_out:
        json_out.write_text(json.dumps([{
            "length": r.length, "mask_ms": r.mask_ms, "unmask_ms": r.unmask_ms, "dropout_ms": r.dropout_ms,
            "dropout_err": r.dropout_err, "dropout_survivors": r.dropout_survivors,
            "rounds": [{"wall_ms": 1000 * s.wall_s, "phases_ms": {p: 1000 * v for p, v in s.phases_s.items()},
                        "txs": s.txs, "blob_bytes": s.blob_bytes, "envelope_bytes": s.envelope_bytes,
                        "max_err": s.max_err} for s in r.rounds],
        } for r in results], indent=2))


if __name__ == "__main__":
    typer.run(main)
