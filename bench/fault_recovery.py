"""How fast a registry's app comes back after kill -9, on a real local network.

Starts its own 3-registry network (or uses --home), brings up the 3 registries'
stacks (supervisor + generator, discriminator, merger each), starts a long run
and then, for each app kind in --roles, repeatedly kills Registry2's app with
SIGKILL mid-run. For each kill it measures

* restart: from the kill to the supervisor's new process (the backoff grows
  1, 2, 4 … s with repeated deaths in 10 minutes);
* resume: from the new process's start to the first *new* step record by the
  killed app on the ledger (imports, Gateway, event stream, checkpoint restore,
  replay of the round's already-recorded steps, the next step; for a
  discriminator killed between rounds that includes waiting for the round's
  agreement and its generator's next batch), the issue's "resumes within 5 s of
  its restart";
* rounds lost: rounds of that registry's training redone (a G/D restart replays
  the current round from its round checkpoint; nothing is lost on the ledger:
  every step is recorded exactly once).

Prints every kill and the p50 per kind. The merger is not killed here: a merger
restarted inside a round cannot finish it yet (its round secrets are gone; the
t-of-n rule of the crash-recovery issue is still to come).

    python bench/fault_recovery.py                 # generator and discriminator, 3 kills each
    python bench/fault_recovery.py --kills 5
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from synthreg.apps import admin
from synthreg.apps.registry import RegistryStack
from synthreg.data import dataset_schema, load_dataset, split_registries
from synthreg.demo import ensure_ceremony
from synthreg.network import process
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile, load_profile

console = Console(width=140)
VICTIM = "Registry2MSP"


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "synthreg.cli.main", "network", *args], check=True,
                   stdout=subprocess.DEVNULL)


def _head(contract: Any, run: str) -> tuple[int, int, str]:
    try:
        h = json.loads(contract.evaluate("GetStepHead", run, VICTIM))
    except Exception:  # NOT_FOUND before the first step
        return (-1, -1, "")
    return int(h["round"]), int(h["iter"]), str(h["phase"])


def measure(profile: Profile, work: Path, roles: list[str], kills: int, pause_s: float) -> list[dict[str, Any]]:
    schema = dataset_schema("rotterdam")
    frames = split_registries(load_dataset("rotterdam"), 3, "non-iid", seed=0, by="year")
    data, schema_files = {}, {}
    for m, f in zip(profile.msp_ids, frames, strict=True):
        (work / m).mkdir(parents=True)
        data[m] = work / m / "data.csv"
        f.to_csv(data[m], index=False)
        schema_files[m] = work / m / "schema.yaml"
        schema_files[m].write_text(schema.dump())
    ensure_ceremony(profile, t=2, log=lambda _m: None)
    stacks = {m: RegistryStack(profile.home, m, work / m / "state") for m in profile.msp_ids}
    rows: list[dict[str, Any]] = []
    run = f"bench-faults-{uuid.uuid4().hex[:8]}"
    try:
        for m, st in stacks.items():
            st.up(data[m], exit_after=1)
        ceremony = admin.ceremony_id(profile, profile.msp_ids[0])
        assert ceremony is not None
        raw = {"run": run, "schema": "schema.yaml", "audit_rounds": [], "threshold": 2,
               "training": {"rounds": 400, "local_iters": 10, "num_threads": 1}}
        run, spec = admin.spec_from_config(raw, profile, ceremony, schema_files[profile.msp_ids[0]].parent)
        admin.propose_run(profile, profile.msp_ids[0], run, spec)
        for m in profile.msp_ids:
            admin.approve_run(profile, m, run, data[m], schema_files[m])
        victim = stacks[VICTIM]
        with open_gateway(profile, profile.msp_ids[0], "auditor") as gw:
            cc = gw.network("gan").contract("ganledger")
            while _head(cc, run)[0] < 1:  # training under way
                time.sleep(0.2)
            for role in roles:
                for k in range(kills):
                    time.sleep(pause_s)
                    old = process.running_pid(victim.run_dir, role)
                    assert old is not None, f"{role} not running"
                    at_kill = _head(cc, run)
                    t_kill = time.monotonic()
                    os.kill(old, signal.SIGKILL)
                    while (new := process.running_pid(victim.run_dir, role)) in (None, old):
                        time.sleep(0.02)
                    t_start = time.monotonic()
                    mine = "g" if role == "generator" else "d"  # a record by the killed app itself
                    while not ((h := _head(cc, run))[:2] > at_kill[:2] and h[2] == mine):
                        time.sleep(0.02)
                    t_step = time.monotonic()
                    rows.append({"role": role, "kill": k + 1, "pid": new, "head_at_kill": at_kill,
                                 "restart_s": t_start - t_kill, "resume_s": t_step - t_start,
                                 "replayed_iters": at_kill[1] + 1})
                    console.print(f"{role} kill {k + 1}: head at kill round {at_kill[0]} iter {at_kill[1]} "
                                  f"({at_kill[2]}); restarted after {t_start - t_kill:.1f} s; first new step "
                                  f"{t_step - t_start:.1f} s after the restart")
        admin.abort_run(profile, profile.msp_ids[0], run, "benchmark over")
    finally:
        for st in stacks.values():
            st.down(grace=5)
    return rows


def main(
    home: Annotated[Path | None, typer.Option(help="An already running network (else one is started).")] = None,
    kills: Annotated[int, typer.Option(min=1)] = 3,
    pause_s: Annotated[float, typer.Option(help="Training time between kills.")] = 8.0,
    roles: Annotated[list[str], typer.Option("--role")] = ["generator", "discriminator"],  # noqa: B006
    base_port: Annotated[int, typer.Option(help="Ports of the network this starts.")] = 9700,
) -> None:
    with tempfile.TemporaryDirectory(prefix="synthreg-faults-") as tmp:
        work = Path(tmp)
        net = home or work / "net"
        started = home is None
        try:
            if started:
                console.print(f"starting a 3-registry network in {net} (base port {base_port}) ...")
                _cli("up", "--home", str(net), "--base-port", str(base_port))
            rows = measure(load_profile(net), work / "apps", roles, kills, pause_s)
        finally:
            if started:
                _cli("down", "--home", str(net), "--wipe")
    table = Table(title=f"kill -9 of {VICTIM}'s apps mid-run (demo model, K = 10); p50 over {kills} kills")
    for col in ("app", "restart s (p50)", "resume s after restart (p50)", "max resume s", "iterations replayed"):
        table.add_column(col, justify="right")
    for role in roles:
        r = [x for x in rows if x["role"] == role]
        table.add_row(role, f"{statistics.median(x['restart_s'] for x in r):.1f}",
                      f"{statistics.median(x['resume_s'] for x in r):.1f}", f"{max(x['resume_s'] for x in r):.1f}",
                      ", ".join(str(x["replayed_iters"]) for x in r))
    console.print(table)
    console.print("rounds lost per fault: 0 (every step is recorded once; the restarted app replays the current "
                  "round's recorded steps from its round checkpoint and the workspace, checking each against the "
                  "ledger)")


if __name__ == "__main__":
    typer.run(main)
