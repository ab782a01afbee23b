"""Submit-to-commit latency and throughput of small transactions on the local network.

For each orderer BatchTimeout given (default: Fabric's sample 2s, then our
tuned 50ms and 10ms) this starts a fresh 3-registry network on its own ports, then
measures with the real Python Gateway client:

* sequential: N `PutRecord` submits one after another (endorse by MAJORITY →
  order → wait for commit status), latency per transaction (p50/p95/max) and
  the resulting throughput;
* concurrent: W worker threads (one Gateway each, spread over the 3 orgs'
  peers) submitting M transactions each, wall-clock throughput and latency.

It prints what it measured, with the block-cutting settings, and tears each
network down. Usage:

    python bench/ledger_latency.py                      # 2s vs 50ms vs 10ms
    python bench/ledger_latency.py --batch-timeout 50ms --batch-timeout 10ms
    python bench/ledger_latency.py --home .synthreg/network   # an already running network
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile, load_profile

console = Console(width=150)


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _payload(i: int) -> str:
    return json.dumps({"i": i, "hash": uuid.uuid4().hex * 2})  # ~100 bytes


def sequential(profile: Profile, n: int, warmup: int = 3) -> list[float]:
    msp = profile.msp_ids[0]
    lat = []
    run = uuid.uuid4().hex[:8]
    with open_gateway(profile, msp, "generator") as gw:
        contract = gw.network("gan").contract("ganledger")
        for i in range(warmup + n):
            t0 = time.perf_counter()
            res = contract.submit("PutRecord", f"bench-seq-{run}-{i}", _payload(i))
            dt = time.perf_counter() - t0
            if res.status_name != "VALID":
                raise RuntimeError(f"tx {res.tx_id} {res.status_name}")
            if i >= warmup:
                lat.append(dt)
    return lat


def concurrent(profile: Profile, workers: int, per_worker: int) -> tuple[float, list[float]]:
    run = uuid.uuid4().hex[:8]
    lat: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(workers + 1)

    def work(w: int) -> None:
        msp = profile.msp_ids[w % len(profile.msp_ids)]
        try:
            with open_gateway(profile, msp, "generator") as gw:
                contract = gw.network("gan").contract("ganledger")
                start.wait()
                for i in range(per_worker):
                    t0 = time.perf_counter()
                    contract.submit("PutRecord", f"bench-con-{run}-{w}-{i}", _payload(i))
                    with lock:
                        lat.append(time.perf_counter() - t0)
        except BaseException as exc:
            errors.append(exc)
            with contextlib.suppress(threading.BrokenBarrierError):
                start.abort()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} worker(s) failed: {errors[0]}") from errors[0]
    return len(lat) / wall, lat


def _network(home: Path, base_port: int, batch_timeout: str, action: str) -> None:
    args = [sys.executable, "-m", "synthreg.cli.main", "network", action, "--home", str(home)]
    if action == "up":
        args += ["--base-port", str(base_port), "--batch-timeout", batch_timeout]
    else:
        args += ["--wipe"]
    proc = subprocess.run(args, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise RuntimeError(f"network {action} failed:\n{proc.stderr[-3000:]}")


def main(
    batch_timeout: Annotated[
        list[str], typer.Option(help="Orderer BatchTimeout(s) to compare.")
    ] = ["2s", "50ms", "10ms"],  # noqa: B006
    n: Annotated[int, typer.Option(help="Sequential transactions.")] = 60,
    workers: Annotated[int, typer.Option(help="Concurrent submitter threads.")] = 8,
    per_worker: Annotated[int, typer.Option(help="Transactions per thread.")] = 20,
    home: Annotated[Path | None, typer.Option(help="Use this running network instead of starting one.")] = None,
    base_port: Annotated[int, typer.Option(help="Base port of the networks this bench starts.")] = 9600,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write results here.")] = None,
) -> None:
    results = []
    configs = [("(running)", home)] if home else [(bt, None) for bt in batch_timeout]
    for bt, existing in configs:
        net_home = existing or Path(f"/tmp/synthreg-bench-ledger-{os.getpid()}")
        if existing is None:
            console.print(f"[bold]starting a 3-registry network with BatchTimeout={bt}[/] ({net_home})")
            _network(net_home, base_port, bt, "up")
        try:
            profile = load_profile(net_home)
            bt = profile.batch_timeout
            console.print(f"  sequential: {n} submits ...")
            seq = sequential(profile, n)
            console.print(f"  concurrent: {workers} threads x {per_worker} submits ...")
            tput, con = concurrent(profile, workers, per_worker)
        finally:
            if existing is None:
                _network(net_home, base_port, bt, "down")
        results.append({
            "batch_timeout": bt,
            "max_message_count": 100,
            "seq_n": n, "seq_p50_ms": 1000 * statistics.median(seq), "seq_p95_ms": 1000 * _pct(seq, 0.95),
            "seq_max_ms": 1000 * max(seq), "seq_tps": len(seq) / sum(seq),
            "con_workers": workers, "con_n": len(con), "con_tps": tput,
            "con_p50_ms": 1000 * statistics.median(con), "con_p95_ms": 1000 * _pct(con, 0.95),
        })
    table = Table(title="synthreg ledger latency: PutRecord (~100 B JSON), endorse MAJORITY of 3 → Raft x3 → commit")
    for col in ("BatchTimeout", "MaxMessageCount", "seq p50 ms", "seq p95 ms", "seq max ms", "seq tx/s",
                "conc threads", "conc tx/s", "conc p50 ms", "conc p95 ms"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(r["batch_timeout"], str(r["max_message_count"]), f"{r['seq_p50_ms']:.0f}",
                      f"{r['seq_p95_ms']:.0f}", f"{r['seq_max_ms']:.0f}", f"{r['seq_tps']:.1f}",
                      str(r["con_workers"]), f"{r['con_tps']:.1f}", f"{r['con_p50_ms']:.0f}",
                      f"{r['con_p95_ms']:.0f}")
    console.print(table)
    console.print(f"machine: {os.cpu_count()} cores; all 3 peers, 3 orderers, 6 chaincode servers and the "
                  "client on this host (127.0.0.1, TLS everywhere). Latency = client submit() round trip: "
                  "endorse (gateway gathers MAJORITY) + order + commit status.")
    if json_out:
        json_out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    typer.run(main)
