"""Separate app processes vs one driver process, same config, same ledger (issue: registries as services).

Runs the same training twice on one real local network and prints what each cost:

* **single process**: the pre-services path. One driver holds every registry's
  data and every app identity and runs `train_federated` with the ledger hooks
  (`LedgerSteps`: every G/D hand-over recorded; `LedgerAggregator`: every average
  by secure aggregation; `TrailRecorder`: per-round trail records; the encoder by
  a secure sum) — what `make demo` did before;
* **separate processes**: `registry up` per registry (9 app processes woken by
  chaincode events), `run propose` + 3 `run approve`, until every app is done.

For each: training wall time (first ledger write of training to the final model),
transactions committed on `gan` (counted block by block with qscc), growth of the
peers' and orderers' data on disk, peak RSS per process, SDMetrics quality of
2,386 synthetic rows against the training pool; and whether both produced the
same generator bit for bit. The last line is `services/single-process ratio: R`.

Usage (starts its own network on base port 9900 unless --home is given):

    python bench/services_overhead.py                       # the demo config: 120 rounds x 10 iterations
    python bench/services_overhead.py --rounds 10           # shorter
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from fabric_protos.common import common_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, transaction_pb2
from rich.console import Console
from rich.table import Table

from synthreg.apps import admin
from synthreg.apps.registry import RegistryStack
from synthreg.chain.keyvault import LedgerKeyVault
from synthreg.chain.runs import default_audit_rounds
from synthreg.chain.secagg import LedgerAggregator, secure_sum
from synthreg.chain.steps import LedgerSteps, RegistryStepClients
from synthreg.crypto.ckks import encrypt_vector, load_public_context
from synthreg.data import dataset_schema, load_dataset, split_registries
from synthreg.data.schema import Schema
from synthreg.demo import ensure_ceremony
from synthreg.eval.quality import quality
from synthreg.eval.table import TableSpec
from synthreg.eval.utility import holdout_split
from synthreg.gan.bundle import load_bundle
from synthreg.gan.federated import TrainConfig, build_encoder, train_federated
from synthreg.ledger import Contract
from synthreg.ledger.sync import chain_height
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile, load_profile
from synthreg.trail.record import TrailRecorder
from synthreg.workspace import Workspace

console = Console(width=150)


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "synthreg.cli.main", "network", *args], check=True,
                   stdout=subprocess.DEVNULL)


@contextmanager
def bench_network(home: Path | None, work: Path, base_port: int) -> Iterator[Profile]:
    """The network at ``home`` if given, else a fresh 3-registry one in ``work/net``
    (ports from ``base_port``), stopped and wiped afterwards, with the audit ceremony."""
    net = home or work / "net"
    if home is None:
        console.print(f"starting a 3-registry network in {net} (base port {base_port}) ...")
        _cli("up", "--home", str(net), "--base-port", str(base_port))
    try:
        profile = load_profile(net)
        ensure_ceremony(profile, t=2, log=console.print)
        yield profile
    finally:
        if home is None:
            _cli("down", "--home", str(net), "--wipe")


def demo_split() -> tuple[Schema, pd.DataFrame, list[pd.DataFrame]]:
    """The demo's data: the Rotterdam schema, its training pool (80 %, the demo's
    holdout left out) and the pool split into 3 non-IID registries by period."""
    schema = dataset_schema("rotterdam")
    train_pool, _ = holdout_split(load_dataset("rotterdam"), 0.2, 0)
    return schema, train_pool, split_registries(train_pool, 3, "non-iid", seed=0, by=schema.partition)


def registry_files(profile: Profile, frames: list[pd.DataFrame], schema: Schema,
                   root: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Each registry's CSV and its copy of the schema under ``root/<msp>/``."""
    data, schema_files = {}, {}
    for m, f in zip(profile.msp_ids, frames, strict=True):
        (root / m).mkdir(parents=True)
        data[m] = root / m / "data.csv"
        f.to_csv(data[m], index=False)
        schema_files[m] = root / m / "schema.yaml"
        schema_files[m].write_text(schema.dump())
    return data, schema_files


CPU_PARTS = ("peer", "orderer", "chaincode", "generator", "discriminator", "merger", "supervisor")


def _cpu_part(argv: list[str]) -> str | None:
    """Which part of a registry stack a process is (by its command line), or None."""
    if not argv:
        return None
    exe = Path(argv[0]).name
    if exe in ("peer", "orderer"):
        return exe
    if exe in ("ganledger", "keyvault"):
        return "chaincode"
    if "synthreg.cli.main" in argv or exe == "synthreg":
        if "app" in argv:
            return next((r for r in ("generator", "discriminator", "merger") if r in argv), None)
        if "supervise" in argv:
            return "supervisor"
    return None


FABRIC_PARTS = ("peer", "orderer", "chaincode")


def ratio_floor(used: dict[str, float], train_cpu: float, train_wall: float, cores: int,
                hosts: int) -> tuple[float, float, float]:
    """Three lower bounds on the ledger path's overhead ratio, from measured CPU (a run takes
    at least the CPU it needs over the cores it has; ``used``: the ledger arm's CPU seconds
    by part, :meth:`CpuMeter.seconds`), each over the in-process arm's ``train_wall``:
    on this machine, Fabric's alone (peers, orderers, chaincode servers), as if the apps
    cost nothing; on this machine, Fabric's plus the in-process arm's ``train_cpu`` (apps
    that cost nothing beyond the training itself); and with each of the ``hosts``
    registries on a host like this one, every part's CPU as measured, split evenly (the
    registries run the same processes), as if nothing waited on anything."""
    if train_wall <= 0 or cores < 1 or hosts < 1:
        raise ValueError(f"need a positive in-process wall time, core count and host count, got {train_wall} s, "
                         f"{cores} cores, {hosts} hosts")
    fabric = sum(used.get(p, 0.0) for p in FABRIC_PARTS)
    return (fabric / cores / train_wall, (fabric + train_cpu) / cores / train_wall,
            sum(used.values()) / hosts / cores / train_wall)


def plot_overhead(path: Path, used: dict[str, float], train_cpu: float, train_wall: float, ledger_wall: float,
                  floors: dict[str, float], target: float = 1.3) -> Path:
    """A PNG of one ``bench/overhead.py`` run: left, the CPU seconds of the in-process arm
    and of the ledger arm by part (``used``); right, the ledger arm's wall time, the
    in-process arm's, the ``floors`` (name -> ratio, :func:`ratio_floor`) as the wall
    times they stand for, and the ``target`` ratio as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (cpu_ax, wall_ax) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1, 1.6]})
    bottom, total = 0.0, sum(used.values())
    for part in CPU_PARTS:
        secs = used.get(part, 0.0)
        if secs <= 0:
            continue
        cpu_ax.bar("ledger", secs, bottom=bottom, label=part)
        if secs >= 0.03 * total:  # a sliver (the supervisor) gets no label
            cpu_ax.text(0, bottom + secs / 2, f"{part} {secs:.0f}", ha="center", va="center", fontsize=8)
        bottom += secs
    cpu_ax.bar("in-process", train_cpu, color="grey")
    cpu_ax.text(1, train_cpu / 2, f"training {train_cpu:.0f}", ha="center", va="center", fontsize=8)
    cpu_ax.set_ylabel("CPU core-seconds while training")
    cpu_ax.set_title("where the CPU goes")
    names = ["in-process", "ledger", *floors]
    secs = [train_wall, ledger_wall, *(r * train_wall for r in floors.values())]
    colors = ["grey", "tab:blue", *["tab:olive"] * len(floors)]
    bars = wall_ax.barh(names, secs, color=colors)
    for bar, sec in zip(bars, secs, strict=True):
        wall_ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                     f" {sec:.1f} s ({sec / train_wall:.2f}x)", va="center", fontsize=8)
    wall_ax.axvline(target * train_wall, color="tab:red", linestyle="--", label=f"target {target}x")
    wall_ax.invert_yaxis()
    wall_ax.set_xlabel("training wall seconds (floors: lower bounds from the CPU measured)")
    wall_ax.set_xlim(0, max(secs) * 1.3)
    wall_ax.legend(loc="lower right")
    wall_ax.set_title("ledger path vs in-process, and how low it can go")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


class CpuMeter:
    """CPU seconds (user + system) per part of the stacks while it runs: every process of
    :data:`CPU_PARTS` is sampled from /proc every ``interval`` s, counted from its value at
    start (0 for a process started later) to its last sample (a process that exits loses
    at most ``interval`` s). Linux only."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self._first: dict[int, float] = {}
        self._last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.wall = 0.0

    def _sample(self, first: bool) -> None:
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                argv = (d / "cmdline").read_bytes().decode(errors="replace").split("\0")
                part = _cpu_part([a for a in argv if a])
                if part is None:
                    continue
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used = (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime
            pid = int(d.name)
            if first:
                self._first[pid] = used
            self._last[pid] = (part, used)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample(first=False)

    def __enter__(self) -> CpuMeter:
        self._t0 = time.perf_counter()
        self._sample(first=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(first=False)
        self.wall = time.perf_counter() - self._t0

    def seconds(self) -> dict[str, float]:
        out = dict.fromkeys(CPU_PARTS, 0.0)
        for pid, (part, used) in self._last.items():
            out[part] += used - self._first.get(pid, 0.0)
        return out


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _ledger_bytes(home: Path) -> dict[str, int]:
    return {d.name: _du(d) for d in sorted((home / "data").glob("*"))}


def _blocks(profile: Profile, first: int, last: int) -> Iterator[common_pb2.Block]:
    """Blocks first..last-1 of `gan` (qscc on Registry1's peer)."""
    with open_gateway(profile, profile.msp_ids[0], "auditor") as gw:
        qscc = gw.network("gan").contract("qscc")
        for b in range(first, last):
            yield common_pb2.Block.FromString(qscc.evaluate("GetBlockByNumber", "gan", str(b)))


def _transactions(profile: Profile, first: int, last: int) -> int:
    """Transactions in blocks first..last-1 of `gan`."""
    return sum(len(block.data.data) for block in _blocks(profile, first, last))


def _invocations(blocks: Iterable[common_pb2.Block]) -> list[tuple[float, str, str, list[str]]]:
    """(proposal time, creator MSP, function, string args) of each chaincode transaction
    in ``blocks``. The time is the channel header's: set by the submitting client when it
    builds the proposal (one machine's clock here)."""
    rows = []
    for block in blocks:
        for raw in block.data.data:
            payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(raw).payload)
            header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
            if header.type != common_pb2.ENDORSER_TRANSACTION:
                continue
            creator = identities_pb2.SerializedIdentity.FromString(
                common_pb2.SignatureHeader.FromString(payload.header.signature_header).creator).mspid
            action = transaction_pb2.ChaincodeActionPayload.FromString(
                transaction_pb2.Transaction.FromString(payload.data).actions[0].payload)
            proposal = proposal_pb2.ChaincodeProposalPayload.FromString(action.chaincode_proposal_payload)
            spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(proposal.input).chaincode_spec
            args = [a.decode("utf-8", "replace") for a in spec.input.args]
            rows.append((header.timestamp.seconds + header.timestamp.nanos / 1e9, creator, args[0], args[1:]))
    return rows


ROUND_PHASES = (
    ("local steps: agreement of r-1 -> D root", "agreed", "droot"),
    ("D root -> Submit (D root commits, G's last step and hand-over, merger masks; records the update)",
     "droot", "submit"),
    ("last Submit -> first Reveal (it commits: U = P, frozen)", "last_submit", "first_reveal"),
    ("first Reveal -> t-th result (reveals commit, unmask)", "first_reveal", "agreement"),
    ("round: agreement of r-1 -> agreement of r", "agreed", "agreement"),
)


def round_breakdown(rows: list[tuple[float, str, str, list[str]]], run: str, threshold: int) -> dict[str, float]:
    """Median seconds of each of :data:`ROUND_PHASES` over the run's rounds 1..R-2 (and
    every registry, for the per-registry ones), from :func:`_invocations`. The agreement
    of a round is the proposal of its t-th result; the rest per registry."""
    def rnd_of(fn: str, args: list[str]) -> int | None:
        if fn in ("Submit", "Reveal", "PostResult") and args and args[0] == run:
            return int(args[1])
        if fn == "RecordDiscriminatorRoot" and args and args[0] == run:
            return int(json.loads(args[1])["round"])
        return None

    at: dict[tuple[str, int, str], list[float]] = {}
    for t, msp, fn, args in rows:
        rnd = rnd_of(fn, args)
        if rnd is not None:
            at.setdefault((fn, rnd, msp), []).append(t)
            at.setdefault((fn, rnd, "*"), []).append(t)
    rounds = sorted({r for (fn, r, m) in at if fn == "PostResult"})
    gaps: dict[str, list[float]] = {name: [] for name, _, _ in ROUND_PHASES}
    own_marks = {"droot": "RecordDiscriminatorRoot", "submit": "Submit"}
    for rnd in rounds[1:-1]:
        results = sorted(at.get(("PostResult", rnd, "*"), []))
        before = sorted(at.get(("PostResult", rnd - 1, "*"), []))
        if len(results) < threshold or len(before) < threshold:
            continue
        marks = {"agreed": before[threshold - 1], "agreement": results[threshold - 1],
                 "last_submit": max(at[("Submit", rnd, "*")]), "first_reveal": min(at[("Reveal", rnd, "*")])}
        registries = sorted({m for (fn, r, m) in at if r == rnd and m != "*"})
        for name, a, b in ROUND_PHASES:
            if a not in own_marks and b not in own_marks:  # one per round
                gaps[name].append(marks[b] - marks[a])
                continue
            for msp in registries:  # one per registry and round
                mine = dict(marks)
                mine.update({k: min(at[(fn, rnd, msp)]) for k, fn in own_marks.items() if (fn, rnd, msp) in at})
                if a in mine and b in mine:
                    gaps[name].append(mine[b] - mine[a])
    return {name: float(np.median(v)) for name, v in gaps.items() if v}


def _height(profile: Profile) -> int:
    with open_gateway(profile, profile.msp_ids[0], "auditor") as gw:
        return chain_height(gw.network("gan"), profile.msp_ids[0])


def single_process(profile: Profile, frames: list[pd.DataFrame], config: TrainConfig, audit: tuple[int, ...],
                   work: Path) -> tuple[float, np.ndarray, Any]:
    """The pre-services demo path; returns (seconds, generator vector, result)."""
    schema = dataset_schema("rotterdam")
    msps = list(profile.msp_ids)
    run = f"bench-single-{uuid.uuid4().hex[:8]}"
    with open_gateway(profile, msps[0], "admin") as gw:
        record = LedgerKeyVault(gw.network("keys").contract("keyvault")).get_ceremony_record()
    public = load_public_context(record.public_context)
    workspaces = {m: Workspace(work / "single" / m) for m in msps}
    with ExitStack() as stack:
        def app(msp: str, role: str) -> Contract:
            return stack.enter_context(open_gateway(profile, msp, role)).network("gan").contract("ganledger")

        t0 = time.perf_counter()
        contracts = {m: app(m, "merger") for m in msps}
        recorder = TrailRecorder(run, msps, contracts, workspaces, public, set(audit))
        aggregator = LedgerAggregator(contracts, msps, run, audit_rounds=audit,
                                      audit=lambda v: encrypt_vector(public, v.astype(np.float64)).to_bytes())
        recorder.ciphertext_source = aggregator.audit_ciphertext
        steps = LedgerSteps(run, [RegistryStepClients(m, app(m, "generator"), app(m, "discriminator"),
                                                      workspaces[m]) for m in msps], msps, keep_rounds=audit)
        encoder = build_encoder(frames, schema, config, secure_sum=lambda vecs: secure_sum(
            contracts, msps, f"{run}/encoder", vecs))
        result = train_federated(frames, schema, config, progress=True, on_round=recorder.on_round,
                                 aggregate=aggregator, step=steps, encoder=encoder)
        steps.stop(config.rounds - 1, config.local_iters - 1,
                   {m: 0.0 for m in msps}, reason="budget")
        # the header once the aggregation is open (its first participant's merger owns it)
        recorder.record_run({"schema_sha256": schema.hash(), "config": config.to_dict(),
                             "averaging": "secagg-ledger-uniform", "step_records": "ledger"})
        seconds = time.perf_counter() - t0
    return seconds, result.generator_vector(), result


def separate_processes(profile: Profile, data: dict[str, Path], schema_files: dict[str, Path],
                       config: TrainConfig, audit: tuple[int, ...], work: Path,
                       run_options: dict[str, Any] | None = None,
                       cpu: CpuMeter | None = None) -> tuple[float, Any, dict[str, dict[str, Any]]]:
    """registry up x3, run propose + approve x3, wait; returns (seconds, bundle, each app's last status by
    "<msp>/<role>": its peak RSS MB "max_rss_mb", its evaluates by function "reads", ...).
    ``run_options``: further run config keys (e.g. ``{"step_records": "anchored"}``); ``cpu``
    measures the timed part (first approval to every app done)."""
    msps = list(profile.msp_ids)
    run = f"bench-apps-{uuid.uuid4().hex[:8]}"
    stacks = [RegistryStack(profile.home, m, work / "apps" / m) for m in msps]
    try:
        for st in stacks:
            st.up(data[st.msp], exit_after=1)
        deadline = time.monotonic() + 300
        while any(s.status.get("phase") != "idle" for st in stacks for s in st.status()):  # warmed up
            if time.monotonic() > deadline:
                raise RuntimeError("apps not idle after 300 s: "
                                   f"{[(st.msp, s.role, s.status.get('phase')) for st in stacks for s in st.status()]}")
            time.sleep(0.2)
        ceremony = admin.ceremony_id(profile, msps[0])
        assert ceremony is not None
        raw = {"run": run, "schema": schema_files[msps[0]].name, "audit_rounds": list(audit), "threshold": 2,
               "training": json.loads(json.dumps(config.to_dict())), **(run_options or {})}
        run, spec = admin.spec_from_config(raw, profile, ceremony, schema_files[msps[0]].parent)
        admin.propose_run(profile, msps[0], run, spec)
        with cpu or contextlib.nullcontext():
            t0 = time.perf_counter()
            for m in msps:
                admin.approve_run(profile, m, run, data[m], schema_files[m])
            outcomes = {st.msp: st.wait_idle(run, timeout=6 * 3600) for st in stacks}
            seconds = time.perf_counter() - t0
        if any(set(o.values()) != {"done"} for o in outcomes.values()):
            raise RuntimeError(f"apps did not finish: {outcomes}")
        statuses = {f"{st.msp}/{s.role}": dict(s.status) for st in stacks for s in st.status()}
    finally:
        for st in stacks:
            st.down(grace=5)
    return seconds, load_bundle(stacks[0].state / "bundles" / run), statuses


def main(
    home: Annotated[Path | None, typer.Option(help="An already running network (else one is started).")] = None,
    rounds: Annotated[int, typer.Option(min=1)] = TrainConfig.rounds,
    local_iters: Annotated[int, typer.Option(min=1)] = TrainConfig.local_iters,
    audit_every: Annotated[int, typer.Option(min=1)] = 40,
    base_port: Annotated[int, typer.Option(help="Ports of the network this starts.")] = 9900,
) -> None:
    config = TrainConfig(rounds=rounds, local_iters=local_iters, num_threads=1)
    audit = default_audit_rounds(rounds, audit_every)
    schema, train_pool, frames = demo_split()
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="synthreg-services-") as tmp, \
            bench_network(home, Path(tmp), base_port) as profile:
        work, net = Path(tmp), profile.home
        data, schema_files = registry_files(profile, frames, schema, work / "data")
        spec = TableSpec.from_schema(schema)

        for arm in ("single process", "separate processes"):
            h0, disk0 = _height(profile), _ledger_bytes(net)
            console.print(f"[bold]{arm}[/] ...")
            if arm == "single process":
                seconds, g_vec, result = single_process(profile, frames, config, audit, work)
                synthetic = result.sample(len(train_pool), 0)
                rss = {"driver (all 9 roles)": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
            else:
                seconds, bundle, statuses = separate_processes(profile, data, schema_files, config, audit, work)
                rss = {app: float(st.get("max_rss_mb", float("nan"))) for app, st in statuses.items()}
                g_vec = bundle.generator_vector()
                synthetic = bundle.sample(len(train_pool), 0)
            h1, disk1 = _height(profile), _ledger_bytes(net)
            rows[arm] = {"seconds": seconds, "txs": _transactions(profile, h0, h1), "blocks": h1 - h0,
                         "disk": {k: disk1.get(k, 0) - disk0.get(k, 0) for k in disk1}, "rss": rss,
                         "quality": quality(train_pool, synthetic, spec).score, "g": g_vec}
    single, apps = rows["single process"], rows["separate processes"]
    table = Table(title=f"{rounds} rounds x {local_iters} local iterations, 3 registries, audit rounds "
                        f"{list(audit)}, same network, one after the other")
    for col in ("path", "train wall s", "transactions", "blocks", "ledger growth MB (all hosts)",
                "peak RSS MB per process", "SDMetrics quality"):
        table.add_column(col, justify="right")
    for name, r in rows.items():
        rss = ", ".join(f"{k} {v:.0f}" for k, v in r["rss"].items())
        table.add_row(name, f"{r['seconds']:.1f}", str(r["txs"]), str(r["blocks"]),
                      f"{sum(r['disk'].values()) / 1e6:.1f}", rss, f"{r['quality']:.3f}")
    console.print(table)
    for name, r in rows.items():
        console.print(f"{name}: ledger growth per node MB " + ", ".join(
            f"{k} {v / 1e6:.1f}" for k, v in r["disk"].items()))
    same = np.array_equal(single["g"], apps["g"])
    console.print(f"final generator bit-identical between the two paths: {same}")
    console.print(f"services/single-process ratio: {apps['seconds'] / single['seconds']:.3f}")


if __name__ == "__main__":
    typer.run(main)
