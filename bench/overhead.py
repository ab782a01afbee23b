"""Ledger overhead (issue 11): in-process training vs the ledger-coordinated 9-process path, one run.

Both paths train the same config on the same data, one after the other:

* **in-process**: :func:`synthreg.gan.federated.train_federated` with in-memory
  FedAvg and the in-process G -> D -> G hand-over, as ``synthreg train-local``
  does (no ledger, no workspace);
* **ledger**: three registry stacks (generator, discriminator and merger of each
  registry as their own OS processes, woken by chaincode events), the run
  proposed and approved by each registry's admin, secure aggregation and step
  records on `gan` (:func:`services_overhead.separate_processes`, shared with
  ``bench/services_overhead.py``), in the apps' default modes: anchored step
  records (one signed Merkle root per app per round, ``chaincode/spec/steps.md``
  "Anchored step records"; ``--step-records ledger``: a transaction per step, the
  strict mode) and served blobs (masked vectors off the ledger,
  :mod:`synthreg.chain.blobs`; ``--blobs ledger``: ``PutBlob`` transactions).

Each registry's data is the CSV its discriminator reads; the in-process path reads
the same CSVs. Printed: training wall time (in-process: ``train_federated``;
ledger: first approval to every app done), transactions and blocks committed on
`gan` (qscc, block by block), ledger growth per registry host (its peer's and its
orderer's data folders on disk, before/after), SDMetrics quality of
``len(train pool)`` synthetic rows against the training pool, and whether the two
generators are bit-identical, and the CPU seconds each part of the stacks used while the
ledger arm trained (peers, orderers, chaincode servers, generators, discriminators,
mergers; :class:`services_overhead.CpuMeter`, /proc sampled every 0.5 s) against the
in-process arm's, and the reads the apps evaluated on their own peers (per round, by role
and function, from each app's status: each a signed proposal its peer checks and runs the
chaincode for), and three lower bounds on the ratio from that CPU (a run takes at least
the CPU it needs over the cores it has; :func:`services_overhead.ratio_floor`): on this
machine, Fabric's alone and Fabric's plus the training's own (the in-process arm's CPU:
apps that cost nothing beyond it); and all of it split over one such host per registry.
``--plot`` draws them with the CPU by part.
One-off start-up work is outside both timings: the apps import what the first optimizer
needs when they start (``App.warm_up``) and the bench waits until they are idle; the
in-process arm builds a throwaway optimizer first. The last line is ``overhead ratio: R``
(ledger wall time / in-process wall time).

Measured and not adopted (issue 11): the blob bytes in a private data collection of every
member on `gan` (hash in the block, bytes gossiped between the peers), at `--rounds 12
--local-iters 5` on this machine, both arms the same day: 58.6 -> 57.2 MB per host. The
orderer's share fell 21.9 -> 4.9 MB, the peer's rose 36.7 -> 52.3 MB: a peer keeps private
data in its transient store (until `transientstoreMaxBlockRetention`, 1000 blocks), its
private data store and its private state, so the bytes move from the orderer to the peer.

Usage (starts its own network unless --home is given; stops it afterwards):

    python bench/overhead.py                                   # the demo config (120 x 10, local critics)
    python bench/overhead.py --plot docs/bench_overhead.png    # also the figure in the README
    python bench/overhead.py --no-demo-levers                  # TrainConfig defaults (averaged critics)
    python bench/overhead.py --rounds 4 --local-iters 5 --home /tmp/net-h7
    python bench/overhead.py --rounds 4 --local-iters 5 --home /tmp/net-h7 --step-records ledger --blobs ledger
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from services_overhead import (  # the shared bench helpers beside this file
    CpuMeter,
    _blocks,
    _du,
    _height,
    _invocations,
    _ledger_bytes,
    _transactions,
    bench_network,
    demo_split,
    plot_overhead,
    ratio_floor,
    registry_files,
    round_breakdown,
    separate_processes,
)

from synthreg.chain.runs import default_audit_rounds
from synthreg.data.schema import load_registry_csv
from synthreg.eval.quality import quality
from synthreg.eval.table import TableSpec
from synthreg.gan.federated import NON_IID_LEVERS, TrainConfig, train_federated
from synthreg.gan.step import warm_up_torch

console = Console(width=150)


def per_host(disk: dict[str, int], hosts: int) -> dict[str, dict[str, int]]:
    """Growth by registry host: ``peer-registryN`` and ``orderer-registryN`` run on host N."""
    out: dict[str, dict[str, int]] = {}
    for n in range(1, hosts + 1):
        out[f"registry{n}"] = {k.split("-")[0]: v for k, v in disk.items() if k.endswith(f"-registry{n}")}
    return out


def main(
    home: Annotated[Path | None, typer.Option(help="An already running network (else one is started).")] = None,
    rounds: Annotated[int, typer.Option(min=1)] = TrainConfig.rounds,
    local_iters: Annotated[int, typer.Option(min=1)] = TrainConfig.local_iters,
    audit_every: Annotated[int, typer.Option(min=1)] = 40,
    step_records: Annotated[str, typer.Option(help="anchored (one signed Merkle root per app per round; "
                                                   "the default) | ledger (one transaction per step)")] = "anchored",
    blobs: Annotated[str, typer.Option(help="ledger (a PutBlob per masked vector) | served (each merger serves "
                                            "its own over mutual TLS, hashes on the ledger)")] = "served",
    base_port: Annotated[int, typer.Option(help="Ports of the network this starts.")] = 9900,
    demo_levers: Annotated[bool, typer.Option(help="The demo's TrainConfig levers (NON_IID_LEVERS: local "
                                                   "critics, lr_d 1e-3); off: the TrainConfig defaults "
                                                   "(averaged critics).")] = True,
    plot: Annotated[Path | None, typer.Option(help="Also draw the run (CPU by part, wall times and the ratio "
                                                   "floors) into this PNG.")] = None,
) -> None:
    config = TrainConfig(rounds=rounds, local_iters=local_iters, num_threads=1,
                         **(dict(NON_IID_LEVERS) if demo_levers else {}))
    audit = default_audit_rounds(rounds, audit_every)
    schema, train_pool, frames = demo_split()
    rows: dict[str, dict[str, Any]] = {}
    spec = TableSpec.from_schema(schema)
    with tempfile.TemporaryDirectory(prefix="synthreg-overhead-") as tmp, \
            bench_network(home, Path(tmp), base_port) as profile:
        work, net = Path(tmp), profile.home
        data, schema_files = registry_files(profile, frames, schema, work / "data")
        same_data = [load_registry_csv(data[m], schema) for m in profile.msp_ids]

        console.print("[bold]in-process[/] (train_federated, in-memory FedAvg) ...")
        h0, disk0 = _height(profile), _ledger_bytes(net)
        warm_up_torch()  # one-off imports out of the timing, as the apps do before any run
        t0, c0 = time.perf_counter(), time.process_time()
        result = train_federated(same_data, schema, config, progress=False)
        seconds, local_cpu = time.perf_counter() - t0, time.process_time() - c0
        h1, disk1 = _height(profile), _ledger_bytes(net)
        rows["in-process"] = {"seconds": seconds, "txs": _transactions(profile, h0, h1), "blocks": h1 - h0,
                              "disk": {k: disk1.get(k, 0) - disk0.get(k, 0) for k in disk1},
                              "quality": quality(train_pool, result.sample(len(train_pool), 0), spec).score,
                              "g": result.generator_vector()}

        arm = f"ledger, 9 processes ({step_records}, blobs {blobs})"
        console.print(f"[bold]{arm}[/] ...")
        h0, disk0 = _height(profile), _ledger_bytes(net)
        cpu = CpuMeter()
        seconds, bundle, statuses = separate_processes(profile, data, schema_files, config, audit, work,
                                                       run_options={"step_records": step_records, "blobs": blobs},
                                                       cpu=cpu)
        reads_by_fn: Counter[str] = Counter()
        reads_by_role: Counter[str] = Counter()
        for app, status in statuses.items():
            for fn, count in (status.get("reads") or {}).items():
                reads_by_fn[fn] += int(count)
                reads_by_role[app.split("/")[-1]] += int(count)
        served = {m: _du(work / "apps" / m / "blobs") for m in profile.msp_ids}
        h1, disk1 = _height(profile), _ledger_bytes(net)
        blocks = list(_blocks(profile, h0, h1))  # read once: counted, and timed per round phase
        calls = _invocations(blocks)
        breakdown = round_breakdown(calls, bundle.run_id, len(profile.msp_ids) // 2 + 1)
        per_fn = Counter(fn for _t, _msp, fn, _args in calls)
        rows[arm] = {"seconds": seconds, "txs": sum(len(b.data.data) for b in blocks), "blocks": h1 - h0,
                     "disk": {k: disk1.get(k, 0) - disk0.get(k, 0) for k in disk1},
                     "quality": quality(train_pool, bundle.sample(len(train_pool), 0), spec).score,
                     "g": bundle.generator_vector()}
        hosts = len(profile.msp_ids)
    local, ledger = rows["in-process"], rows[arm]
    table = Table(title=f"{rounds} rounds x {local_iters} local iterations, 3 registries, audit rounds "
                        f"{list(audit)}, {'the demo levers' if demo_levers else 'TrainConfig defaults'}, "
                        "same data, same network, one after the other")
    for col in ("path", "train wall s", "transactions", "blocks", "ledger growth MB per host (peer + orderer)",
                "SDMetrics quality"):
        table.add_column(col, justify="right")
    for name, r in rows.items():
        growth = ", ".join(f"{h} {sum(v.values()) / 1e6:.1f}" for h, v in per_host(r["disk"], hosts).items())
        table.add_row(name, f"{r['seconds']:.1f}", str(r["txs"]), str(r["blocks"]), growth, f"{r['quality']:.3f}")
    console.print(table)
    for h, v in per_host(ledger["disk"], hosts).items():
        console.print(f"{arm}: {h}: " + ", ".join(f"{k} {b / 1e6:.2f} MB" for k, b in sorted(v.items())))
    console.print(f"transactions per round (ledger): {ledger['txs'] / rounds:.1f}; by function (set-up included): "
                  + ", ".join(f"{fn} {count / rounds:.2f}" for fn, count in per_fn.most_common()))
    console.print(f"reads per round (the apps' evaluates on their own peers, set-up included): "
                  f"{sum(reads_by_fn.values()) / rounds:.1f}; by app role: "
                  + ", ".join(f"{role} {count / rounds:.2f}" for role, count in sorted(reads_by_role.items()))
                  + "; by function: "
                  + ", ".join(f"{fn} {count / rounds:.2f}" for fn, count in reads_by_fn.most_common()))
    console.print("served blob stores after the run (registry state, off the ledger; own blobs kept, fetched "
                  "copies pruned each round): " + ", ".join(f"{m} {b / 1e6:.2f} MB" for m, b in served.items()))
    used = cpu.seconds()
    console.print(f"CPU seconds (user + system, /proc sampled every {cpu.interval} s) while the ledger arm trained "
                  f"({cpu.wall:.1f} s wall x {os.cpu_count()} cores = {cpu.wall * (os.cpu_count() or 1):.0f} "
                  f"core-seconds): " + ", ".join(f"{k} {v:.1f}" for k, v in used.items())
                  + f"; total {sum(used.values()):.1f}; in-process arm {local_cpu:.1f}")
    cores = os.cpu_count() or 1
    fabric_only, with_training, per_host_floor = ratio_floor(used, local_cpu, local["seconds"], cores, hosts)
    apps = sum(used[p] for p in ("generator", "discriminator", "merger"))
    console.print(f"ratio floor (a run takes at least its CPU over its cores): on this machine, where every "
                  f"registry's Fabric nodes and apps share {cores} cores, Fabric's measured CPU alone -> "
                  f"{fabric_only:.2f}; plus the training's own CPU, as in the in-process arm (apps costing nothing "
                  f"beyond it; they cost {apps - local_cpu:.1f} core-s more) -> {with_training:.2f}; with each of "
                  f"the {hosts} registries on a host like this one (all CPU as measured, split evenly, nothing "
                  f"waiting) -> {per_host_floor:.2f}")
    if plot is not None:
        floors = {"floor: Fabric's CPU alone": fabric_only, "floor: + the training's CPU": with_training,
                  f"floor: a host per registry ({hosts})": per_host_floor}
        console.print(f"plot: {plot_overhead(plot, used, local_cpu, local['seconds'], ledger['seconds'], floors)}")
    console.print("where a ledger round's time goes (median seconds over rounds 1..R-2, from the transactions' "
                  "proposal times; per registry where a registry's own transaction marks it):")
    for name, secs in breakdown.items():
        console.print(f"  {name}: {secs:.3f}")
    console.print(f"quality difference (ledger - in-process): {ledger['quality'] - local['quality']:+.4f}")
    console.print(f"final generator bit-identical between the two paths: {np.array_equal(local['g'], ledger['g'])} "
                  "(not expected: secure aggregation sums in fixed point, the in-process arm in float; the "
                  "apps reproduce the single-process ledger path bit for bit, tests/integration/test_apps_ledger.py)")
    console.print(f"overhead ratio: {ledger['seconds'] / local['seconds']:.2f}")


if __name__ == "__main__":
    typer.run(main)
