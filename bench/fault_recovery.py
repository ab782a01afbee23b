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

For a merger (``--role merger``) killed mid-run: resume is from the new
process's start to its first secure-aggregation transaction in a round it had
not joined before the kill; rounds lost are the rounds whose average the
registry is not in (a merger killed inside a round is left out of it, t of n;
also of the next one if its restart outlasts the others' ``--round-timeout-s``).

``--peer-down-s S`` adds one outage of Registry2's peer for S seconds: rounds
lost are those the other two finished without it, and re-join is measured from
the peer's return to the first round whose average includes Registry2 again
(the issue's "re-joins within one round": rounds that *started* after the
peer's return and still went on without it).

    python bench/fault_recovery.py                 # generator and discriminator, 3 kills each
    python bench/fault_recovery.py --kills 5 --role generator --role discriminator --role merger --peer-down-s 20
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from services_overhead import _cli, bench_network, registry_files  # the shared bench helpers beside this file

from synthreg.apps import admin
from synthreg.apps.registry import RegistryStack
from synthreg.data import dataset_schema, load_dataset, split_registries
from synthreg.network import process
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile

console = Console(width=140)
VICTIM = "Registry2MSP"


def _head(contract: Any, run: str) -> tuple[int, int, str]:
    try:
        h = json.loads(contract.evaluate("GetStepHead", run, VICTIM))
    except Exception:  # NOT_FOUND before the first step
        return (-1, -1, "")
    return int(h["round"]), int(h["iter"]), str(h["phase"])


def _rounds(contract: Any, run: str, upto: int) -> list[dict[str, Any]]:
    """GetRound of rounds 0..upto (an unopened round is {} )."""
    out = []
    for r in range(upto + 1):
        try:
            out.append(json.loads(contract.evaluate("GetRound", run, str(r))))
        except Exception:
            out.append({})
    return out


def _agreed(contract: Any, run: str, upto: int) -> dict[int, list[str]]:
    """Round -> survivors, for the agreed rounds up to ``upto``."""
    return {r: list(st["survivors"]) for r, st in enumerate(_rounds(contract, run, upto)) if st.get("agreed") is True}


def _joined(contract: Any, run: str, upto: int) -> set[int]:
    """Rounds in which the victim's merger advertised."""
    return {r for r, st in enumerate(_rounds(contract, run, upto)) if VICTIM in st.get("advertised", {})}


def measure(profile: Profile, work: Path, roles: list[str], kills: int, pause_s: float,
            round_timeout_s: int = 10, peer_down_s: float = 0.0, base_port: int = 7000) -> list[dict[str, Any]]:
    schema = dataset_schema("rotterdam")
    frames = split_registries(load_dataset("rotterdam"), 3, "non-iid", seed=0, by="year")
    data, schema_files = registry_files(profile, frames, schema, work)
    stacks = {m: RegistryStack(profile.home, m, work / m / "state") for m in profile.msp_ids}
    rows: list[dict[str, Any]] = []
    run = f"bench-faults-{uuid.uuid4().hex[:8]}"
    try:
        for m, st in stacks.items():
            st.up(data[m], exit_after=1)
        ceremony = admin.ceremony_id(profile, profile.msp_ids[0])
        assert ceremony is not None
        raw = {"run": run, "schema": "schema.yaml", "audit_rounds": [], "threshold": 2,
               "round_timeout_s": round_timeout_s, "training": {"rounds": 400, "local_iters": 10, "num_threads": 1}}
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
                    joined_before = _joined(cc, run, at_kill[0] + 1)
                    t_kill = time.monotonic()
                    os.kill(old, signal.SIGKILL)
                    while (new := process.running_pid(victim.run_dir, role)) in (None, old):
                        time.sleep(0.02)
                    t_start = time.monotonic()
                    if role == "merger":
                        while not (_joined(cc, run, _head(cc, run)[0] + 1) - joined_before - {at_kill[0]}
                                   - {max(joined_before, default=-1)}):
                            time.sleep(0.05)
                        t_step = time.monotonic()
                        upto = _head(cc, run)[0]
                        lost = sorted(r for r, u in _agreed(cc, run, upto).items()
                                      if VICTIM not in u and r >= min(at_kill[0], max(joined_before, default=0)))
                        rows.append({"role": role, "kill": k + 1, "pid": new, "head_at_kill": at_kill,
                                     "restart_s": t_start - t_kill, "resume_s": t_step - t_start,
                                     "replayed_iters": 0, "rounds_lost": lost})
                        console.print(f"merger kill {k + 1}: at round {at_kill[0]}; restarted after "
                                      f"{t_start - t_kill:.1f} s; joined a new round {t_step - t_start:.1f} s after "
                                      f"the restart; rounds left out of: {lost}")
                        continue
                    mine = "g" if role == "generator" else "d"  # a record by the killed app itself
                    while not ((h := _head(cc, run))[:2] > at_kill[:2] and h[2] == mine):
                        time.sleep(0.02)
                    t_step = time.monotonic()
                    rows.append({"role": role, "kill": k + 1, "pid": new, "head_at_kill": at_kill,
                                 "restart_s": t_start - t_kill, "resume_s": t_step - t_start,
                                 "replayed_iters": at_kill[1] + 1, "rounds_lost": []})
                    console.print(f"{role} kill {k + 1}: head at kill round {at_kill[0]} iter {at_kill[1]} "
                                  f"({at_kill[2]}); restarted after {t_start - t_kill:.1f} s; first new step "
                                  f"{t_step - t_start:.1f} s after the restart")
            if peer_down_s > 0:
                time.sleep(pause_s)
                at_kill = _head(cc, run)[0]
                os.kill(process.running_pid(profile.home / "run", "peer-registry2") or 0, signal.SIGKILL)
                time.sleep(peer_down_s)
                _cli("up", "--home", str(profile.home), "--base-port", str(base_port))
                t_back = time.monotonic()
                # the rounds already open (advertised by the others) when the peer came back
                started = {r for r, st in enumerate(_rounds(cc, run, _head(cc, run)[0] + 2)) if st.get("advertised")}
                while True:
                    upto = max(started) + 3
                    back = [r for r, u in _agreed(cc, run, upto).items() if r > at_kill and VICTIM in u]
                    if back:
                        break
                    time.sleep(0.2)
                t_join = time.monotonic()
                lost = sorted(r for r, u in _agreed(cc, run, min(back)).items() if r >= at_kill and VICTIM not in u)
                after_return = [r for r in lost if r not in started]
                rows.append({"role": "peer", "kill": 1, "pid": 0, "head_at_kill": (at_kill, 0, ""),
                             "restart_s": peer_down_s, "resume_s": t_join - t_back, "replayed_iters": 0,
                             "rounds_lost": lost, "lost_after_return": after_return})
                console.print(f"peer down {peer_down_s:.0f} s from round {at_kill}: rounds left out of {lost} "
                              f"({len(after_return)} started after its return); back in round {min(back)}, "
                              f"{t_join - t_back:.1f} s after the return")
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
    round_timeout_s: Annotated[int, typer.Option(help="Each merger's wait before it votes a missing one out.")] = 10,
    peer_down_s: Annotated[float, typer.Option(help="Also take Registry2's peer down this long (0: no).")] = 0.0,
) -> None:
    with tempfile.TemporaryDirectory(prefix="synthreg-faults-") as tmp, \
            bench_network(home, Path(tmp), base_port) as profile:
        rows = measure(profile, Path(tmp) / "apps", roles, kills, pause_s, round_timeout_s, peer_down_s, base_port)
    table = Table(title=f"kill -9 of {VICTIM}'s apps mid-run (demo model, K = 10); p50 over {kills} kills")
    for col in ("fault", "restart s (p50)", "resume s after restart (p50)", "max resume s", "iterations replayed",
                "rounds lost per fault"):
        table.add_column(col, justify="right")
    for role in [*roles, *(["peer"] if peer_down_s > 0 else [])]:
        r = [x for x in rows if x["role"] == role]
        table.add_row(role if role != "peer" else f"peer down {peer_down_s:.0f} s (re-join s after return)",
                      f"{statistics.median(x['restart_s'] for x in r):.1f}",
                      f"{statistics.median(x['resume_s'] for x in r):.1f}", f"{max(x['resume_s'] for x in r):.1f}",
                      ", ".join(str(x["replayed_iters"]) for x in r),
                      ", ".join(str(len(x["rounds_lost"])) for x in r))
    console.print(table)
    console.print("G/D: every step is recorded once; the restarted app replays the current round's recorded steps "
                  "from its round checkpoint and the workspace, checking each against the ledger (no round lost). "
                  f"Merger and peer: rounds the registry was left out of (t of n, round_timeout_s={round_timeout_s}).")


if __name__ == "__main__":
    typer.run(main)
