"""Cost of a secure-aggregation round as the consortium grows (issue 11, "Scale").

For each N in ``--orgs`` (default 3 4 5 6) this starts a fresh N-registry network on
this machine (``synthreg network up --orgs N``: N peers, N orderers in one Raft
cluster, 2N chaincode servers, channels ``keys`` and ``gan``), runs one warm-up and
``--rounds`` measured rounds of :func:`synthreg.chain.secagg.secure_average` with the N
registries' mergers (each its own ``merger`` identity and Gateway, the demo GAN's
vector length L = 85,527 by default; every average checked against numpy's mean, as
``bench/secagg_round.py`` does, whose round machinery this reuses), and tears the
network down. Measured per round:

* wall time (all N registries share this 2-core host, so it measures total work,
  not the latency N separate hosts would see);
* transactions committed (all mergers);
* bytes put on the ledger (masked blobs 8·L per survivor + share envelopes,
  decoded sizes), i.e. what every registry's peer stores per round; with ``--blobs
  served`` the masked vectors stay with their registries (only hashes on the ledger:
  :mod:`synthreg.chain.blobs`, one blob server per registry here) and the bytes each
  registry fetched from the others (its ``fetched`` store on disk) are a column of
  their own;
* CPU seconds per registry: its peer, orderer and both chaincode servers
  (``/proc/<pid>/stat`` utime+stime deltas of the processes in the network's
  ``run/`` pid files) plus its merger's client work (thread CPU time of its
  phase calls), averaged over the registries.

Then a least-squares fit of each quantity against N, linear (``a + b·N``) and
quadratic (``a + b·N + c·N²``), both printed with their extrapolation to N = 10, 20
and 50; the model the protocol predicts is marked (see ``MODELS``). Assumptions of the
extrapolation are printed with it. The step records of the G/D apps (independent of N:
one Merkle root per app and round, or 2 transactions per local iteration in the strict
mode) are not part of this bench.

Usage:

    python bench/scale.py                          # N = 3 4 5 6, 3 rounds each, served blobs (the default)
    python bench/scale.py --orgs 3 --orgs 4 --rounds 2 --length 10000
    python bench/scale.py --blobs ledger           # masked vectors as PutBlob transactions
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from secagg_round import PhaseLog, TimedMerger, _check, _ledger_bytes, _network, _round

from synthreg.chain.blobs import BlobFetcher, open_served_blobs
from synthreg.chain.secagg import AggregationConfig, open_aggregation
from synthreg.ledger import Contract
from synthreg.network.client import open_gateway
from synthreg.network.profile import load_profile

console = Console(width=160)
T = TypeVar("T")
DEMO_LENGTH = 85527
EXTRAPOLATE = (10, 20, 50)
_TICK = os.sysconf("SC_CLK_TCK")

# What the protocol predicts per round, as a function of N (DESIGN.md §4; chaincode/spec/secagg.md):
# every merger sends a constant number of transactions (advertise, shares, submit, freeze
# vote, reveal), so transactions grow linearly; each merger deals one share envelope to each
# of the N-1 others, so envelope bytes grow as N², while masked blobs grow as N (8·L each);
# a registry's own work (masks from N-1 pairwise seeds, N-1 shares, unmasking N vectors,
# validating N-proportional blocks) grows linearly.
MODELS = {"tx/round": "linear", "ledger MB/round": "quadratic", "CPU s/registry": "linear",
          "wall s/round": "quadratic"}
SERVED_MODELS = {**MODELS, "fetched MB/registry": "linear"}
"""with served blobs (``--blobs served``) each registry also fetches the N-1 others' masked vectors"""


class CpuMerger(TimedMerger):
    """A :class:`TimedMerger` that also sums the thread CPU time of its phase calls."""

    def __init__(self, contract: Contract, msp: str, run: str, config: AggregationConfig, log: PhaseLog,
                 blobs: BlobFetcher | None = None) -> None:
        super().__init__(contract, msp, run, config, log, blobs)
        self.cpu_s = 0.0
        self._lock = threading.Lock()

    def _timed(self, phase: str, rnd: int, call: Callable[[], T]) -> T:
        c0 = time.thread_time()
        try:
            return super()._timed(phase, rnd, call)
        finally:
            with self._lock:
                self.cpu_s += time.thread_time() - c0


def node_cpu(home: Path, n_orgs: int) -> dict[int, float]:
    """CPU seconds (user + system) so far of each registry's peer, orderer and chaincode servers."""
    out = {i: 0.0 for i in range(1, n_orgs + 1)}
    for pid_file in (home / "run").glob("*-registry*.pid"):
        org = int(pid_file.stem.rsplit("registry", 1)[1])
        pid = int(pid_file.read_text().split("\n", 1)[0])
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        out[org] += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14, 15)
    return out


@dataclass
class ScaleResult:
    n: int
    walls: list[float] = field(default_factory=list)
    txs: list[int] = field(default_factory=list)
    ledger_bytes: list[int] = field(default_factory=list)
    cpu_per_registry: list[float] = field(default_factory=list)
    fetched_per_registry: list[float] = field(default_factory=list)
    """served blobs: bytes each registry fetched from the others (mean over registries)"""
    network_up_s: float = 0.0

    def means(self) -> dict[str, float]:
        return {"wall s/round": statistics.mean(self.walls), "tx/round": statistics.mean(self.txs),
                "ledger MB/round": statistics.mean(self.ledger_bytes) / 1e6,
                "CPU s/registry": statistics.mean(self.cpu_per_registry),
                "fetched MB/registry": statistics.mean(self.fetched_per_registry) / 1e6}


def measure(home: Path, n: int, length: int, rounds: int, seed: int, blobs: str = "ledger") -> ScaleResult:
    """Warm-up round 0 and ``rounds`` measured rounds on the running N-registry network at
    ``home``; ``blobs``: the masked vectors on the ledger or served by each registry."""
    profile = load_profile(home)
    msps = profile.msp_ids
    res = ScaleResult(n)
    with ExitStack() as stack:
        contracts: Mapping[str, Contract] = {
            m: stack.enter_context(open_gateway(profile, m, "merger")).network("gan").contract("ganledger")
            for m in msps}
        fetchers: dict[str, BlobFetcher | None] = dict.fromkeys(msps)
        if blobs == "served":
            for m in msps:
                fetcher, server = open_served_blobs(profile, m, home / "served-blobs" / m)
                stack.callback(server.close)
                fetchers[m] = fetcher
        config = AggregationConfig.default(msps, length, blobs=blobs)
        run = f"bench-scale-{n}-{uuid.uuid4().hex[:8]}"
        open_aggregation(contracts[msps[0]], msps[0], run, config)
        log = PhaseLog()
        mergers = [CpuMerger(contracts[m], m, run, config, log, fetchers[m]) for m in msps]
        for rnd in range(rounds + 1):
            nodes0 = node_cpu(home, n)
            client0 = {m.msp: m.cpu_s for m in mergers}
            wall, out, vectors, txs = _round(mergers, rnd, length, seed + rnd)
            nodes1 = node_cpu(home, n)
            _check(out, vectors, length, rnd)
            if sorted(out.survivors) != sorted(msps):
                raise RuntimeError(f"N={n} round {rnd}: survivors {out.survivors} (nobody was dropped)")
            if rnd == 0:
                continue  # warm-up
            on_ledger, envelopes = _ledger_bytes(mergers[0], rnd, length)
            if blobs == "served":
                on_ledger = 0  # only hashes: the bytes went registry to registry
            fetched = statistics.mean(_round_bytes(home / "served-blobs" / m / "fetched", rnd) for m in msps)
            cpu = [nodes1[i] - nodes0[i] + mergers[i - 1].cpu_s - client0[msps[i - 1]] for i in range(1, n + 1)]
            res.walls.append(wall)
            res.txs.append(txs)
            res.ledger_bytes.append(on_ledger + envelopes)
            res.cpu_per_registry.append(statistics.mean(cpu))
            res.fetched_per_registry.append(fetched)
            console.print(f"  N={n} round {rnd}: {wall:.2f} s, {txs} tx, {(on_ledger + envelopes) / 1e6:.2f} MB "
                          f"on the ledger, {fetched / 1e6:.2f} MB fetched per registry, "
                          f"{statistics.mean(cpu):.2f} CPU s per registry")
    return res


def _round_bytes(fetched: Path, rnd: int) -> int:
    """Bytes of round ``rnd``'s blobs in a fetched store (one run per store here)."""
    return sum(p.stat().st_size for p in fetched.glob(f"*/{rnd}/*") if p.is_file())


def fit(ns: Sequence[int], ys: Sequence[float], degree: int) -> tuple[np.ndarray, float]:
    """Least-squares polynomial coefficients (highest power first) and R²."""
    coef = np.polyfit(np.asarray(ns, float), np.asarray(ys, float), degree)
    pred = np.polyval(coef, np.asarray(ns, float))
    ss_res = float(np.sum((np.asarray(ys) - pred) ** 2))
    ss_tot = float(np.sum((np.asarray(ys) - np.mean(ys)) ** 2))
    return coef, 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0


def _formula(coef: np.ndarray) -> str:
    terms = {0: "", 1: "·N", 2: "·N²"}
    deg = len(coef) - 1
    return " + ".join(f"{c:.3g}{terms[deg - i]}" for i, c in enumerate(coef))


def main(
    orgs: Annotated[list[int], typer.Option("--orgs", help="Consortium sizes N (repeatable).")] = [3, 4, 5, 6],  # noqa: B006
    rounds: Annotated[int, typer.Option(min=1, help="Measured rounds per N (after 1 warm-up).")] = 3,
    length: Annotated[int, typer.Option(min=1, help="Vector length L.")] = DEMO_LENGTH,
    base_port: Annotated[int, typer.Option(help="Base port of the networks this starts.")] = 9800,
    seed: Annotated[int, typer.Option()] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the results here.")] = None,
    blobs: Annotated[str, typer.Option(help="ledger (masked vectors as PutBlob) | served (each registry "
                                            "serves its own over mutual TLS, hashes on the ledger)")] = "served",
) -> None:
    if len(set(orgs)) < 2 or min(orgs) < 2:
        raise typer.BadParameter("give at least two different N >= 2")
    results = []
    models = SERVED_MODELS if blobs == "served" else MODELS
    for n in sorted(set(orgs)):
        with tempfile.TemporaryDirectory(prefix=f"synthreg-bench-scale-{n}-") as tmp:
            home = Path(tmp) / "network"
            console.print(f"[bold]N = {n}[/]: starting an {n}-registry network on base port {base_port} ...")
            t0 = time.perf_counter()
            try:
                _network(home, "up", base_port, orgs=n)
                up_s = time.perf_counter() - t0
                res = measure(home, n, length, rounds, seed, blobs)
                res.network_up_s = up_s
                results.append(res)
            finally:
                _network(home, "down", base_port)

    table = Table(title=f"one secure-aggregation round vs consortium size N (L = {length}, {rounds} rounds each, "
                        f"blobs {blobs}, all registries on this 2-core host)")
    for col in ("N", "network up s", *models):
        table.add_column(col, justify="right")
    for r in results:
        m = r.means()
        table.add_row(str(r.n), f"{r.network_up_s:.0f}", *(f"{m[k]:.2f}" for k in models))
    console.print(table)

    ns = [r.n for r in results]
    fits = Table(title="fitted models (least squares over the N above) and extrapolation")
    for col in ("quantity", "model", "formula", "R²", *(f"N={x}" for x in EXTRAPOLATE)):
        fits.add_column(col, justify="right")
    fitted: dict[str, dict[str, object]] = {}
    for key, predicted in models.items():
        ys = [r.means()[key] for r in results]
        for degree, name in ((1, "linear"), (2, "quadratic")):
            if degree >= len(ns):
                continue
            coef, r2 = fit(ns, ys, degree)
            mark = " (predicted)" if name == predicted else ""
            fits.add_row(key, name + mark, _formula(coef), f"{r2:.3f}",
                         *(f"{np.polyval(coef, x):.3g}" for x in EXTRAPOLATE))
            fitted.setdefault(key, {})[name] = {"coef_high_first": coef.tolist(), "r2": r2}
    console.print(fits)
    console.print(
        "Assumptions: one merger per registry and one peer + orderer per registry as here; every registry "
        "deals shares to every other (complete masking graph; a k-regular graph as in SecAgg+ would make "
        "envelope bytes and per-registry work grow with k, not N); Raft with N consenters; the wall time "
        "is measured with all N registries sharing 2 cores, so its extrapolation is an upper bound of the "
        "work, not of the latency on N hosts; per-registry CPU is the scale measure that carries over to "
        "one host per registry. Every round's average was checked against numpy's mean.")
    if json_out:
        json_out.write_text(json.dumps({
            "length": length, "rounds": rounds, "blobs": blobs,
            "results": [{"n": r.n, "network_up_s": r.network_up_s, "walls_s": r.walls, "txs": r.txs,
                         "ledger_bytes": r.ledger_bytes, "cpu_per_registry_s": r.cpu_per_registry,
                         "fetched_bytes_per_registry": r.fetched_per_registry}
                        for r in results],
            "fits": fitted}, indent=2))


if __name__ == "__main__":
    typer.run(main)
