"""`synthreg run propose|approve|status|watch|abort`: training runs agreed on the ledger.

Thin wiring over :mod:`synthreg.apps.admin`; every command acts as ``--org``'s
admin through that org's own peer. Expected failures (a bad config, data that
breaks the run's schema, a schema that is not the registry's, a chaincode
refusal) are one red line and exit code 1; nothing is submitted then.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from synthreg.apps import admin
from synthreg.chain.runs import ApprovalRefusedError, RunLedgerError, RunSpecError
from synthreg.data.schema import MalformedCSVError, SchemaFormatError, SchemaValidationError
from synthreg.ledger import LedgerError
from synthreg.network.profile import ProfileError, load_profile

app = typer.Typer(help="Training runs agreed on the ledger: propose, approve, watch, abort.",
                  no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)

HomeOpt = Annotated[Path, typer.Option("--home", envvar="SYNTHREG_NETWORK_HOME",
                                       help="Network state folder (holds profile.json).")]
OrgOpt = Annotated[str, typer.Option("--org", help="Acting registry (MSP ID); its admin identity signs.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
DEFAULT_HOME = Path(".synthreg/network")


@contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except (RunSpecError, ApprovalRefusedError, RunLedgerError, SchemaValidationError, SchemaFormatError,
            MalformedCSVError, LedgerError, ProfileError) as exc:
        console.print(f"[bold red]{what} refused:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        console.print(f"[bold red]{what} failed:[/] {escape(str(exc.strerror or exc) + where)}")
        raise typer.Exit(1) from exc


@app.command()
def propose(config: Annotated[Path, typer.Option("--config", help="Run config YAML (see `synthreg.apps.admin`).")],
            org: OrgOpt, home: HomeOpt = DEFAULT_HOME,
            run: Annotated[str | None, typer.Option("--run", help="Run id (overrides the config's).")] = None,
            as_json: JsonOpt = False) -> None:
    """Propose a run: participants, schema, training config, threshold, audit schedule, stop rule."""
    with _errors("run propose"):
        profile = load_profile(home)
        ceremony = admin.ceremony_id(profile, org)
        if ceremony is None:
            raise RunSpecError("no audit-key ceremony on channel 'keys' (run `synthreg keys ceremony` first)")
        raw = admin.load_run_config(config)
        if run:
            raw["run"] = run
        run_id, spec = admin.spec_from_config(raw, profile, ceremony, config.parent)
        sha = admin.propose_run(profile, org, run_id, spec)
    if as_json:
        typer.echo(json.dumps({"run": run_id, "run_sha256": sha}))
    else:
        console.print(f"proposed run [bold]{run_id}[/] (sha256 {sha}); participants "
                      f"{', '.join(spec.participants)} must each `synthreg run approve {run_id} --org ...`")


@app.command()
def approve(run: Annotated[str, typer.Argument(help="Run id.")], org: OrgOpt,
            data: Annotated[Path, typer.Option("--data", help="This registry's CSV (validated, never sent).")],
            schema: Annotated[Path, typer.Option("--schema", help="This registry's copy of the agreed schema.")],
            home: HomeOpt = DEFAULT_HOME) -> None:
    """Approve a run after checking it against local facts (schema, data, audit ceremony)."""
    with _errors("run approve"):
        record = admin.approve_run(load_profile(home), org, run, data, schema)
    console.print(f"{org} approved run {run}: status {record.status} "
                  f"({len(record.approvals)}/{len(record.spec.participants)} approvals)")


@app.command()
def abort(run: Annotated[str, typer.Argument(help="Run id.")], org: OrgOpt,
          reason: Annotated[str, typer.Option("--reason", help="Recorded on the ledger.")],
          home: HomeOpt = DEFAULT_HOME) -> None:
    """Abort a run (recorded with the reason); every app stops working on it."""
    with _errors("run abort"):
        admin.abort_run(load_profile(home), org, run, reason)
    console.print(f"run {run} aborted by {org}: {reason}")


@app.command()
def status(run: Annotated[str, typer.Argument(help="Run id.")], org: OrgOpt = "Registry1MSP",
           home: HomeOpt = DEFAULT_HOME, as_json: JsonOpt = False) -> None:
    """The run's approvals and each registry's progress, read from the ledger."""
    with _errors("run status"):
        st = admin.run_status(load_profile(home), org, run)
    d = st.to_dict()
    if as_json:
        typer.echo(json.dumps(d, indent=2))
        return
    console.print(f"run [bold]{run}[/]: {d['status']}; approvals {', '.join(d['approvals']) or '-'}; "
                  f"{d['agreed_rounds']}/{d['rounds']} rounds agreed")
    table = Table()
    for col in ("registry", "round", "iter", "phase", "faults", "missed rounds"):
        table.add_column(col)
    for m, head in d["heads"].items():
        h = head or {}
        missed = d["missed_rounds"][m]
        table.add_row(m, str(h.get("round", "-")), str(h.get("iter", "-")), str(h.get("phase", "-")),
                      str(d["faults"][m]), ", ".join(map(str, missed)) if missed else "-")
    Console().print(table)


@app.command()
def watch(run: Annotated[str, typer.Argument(help="Run id.")], org: OrgOpt = "Registry1MSP",
          home: HomeOpt = DEFAULT_HOME) -> None:
    """Live per-registry progress from chaincode events: round, iteration, losses, agreed averages."""
    with _errors("run watch"):
        watch_progress(load_profile(home), org, run, console)
    console.print(f"run {run}: every registry stopped")


def watch_progress(profile: Any, org: str, run: str, out: Console) -> dict[str, int]:
    """Progress bars per registry until every registry recorded its stop (or the run
    is aborted); returns the number of events seen per event name (one per transaction)."""
    st = admin.run_status(profile, org, run)
    spec = st.record.spec
    total = spec.rounds * spec.local_iters
    bars = Progress(TextColumn("{task.fields[msp]:<14}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.description}"), TimeElapsedColumn(), console=out)
    tasks = {m: bars.add_task("waiting for the encoder", total=total, msp=m) for m in spec.participants}
    stopped: set[str] = set()
    agreed: set[int] = set()
    counts: dict[str, int] = {}

    def on_event(name: str, p: dict[str, Any], contract: Any) -> bool:
        counts[name] = counts.get(name, 0) + 1
        msp = str(p.get("msp", ""))
        if name == "RunAborted":
            out.print(f"[red]run aborted by {msp}: {p.get('reason', '')}[/]")
            return False
        # a step record, or in an anchored run the round's root (iter = its count - 1)
        if name in ("DiscriminatorStep", "DiscriminatorRoot") and msp in tasks and p.get("run") == run:
            done = int(p["round"]) * spec.local_iters + int(p["iter"]) + 1
            bars.update(tasks[msp], completed=done,
                        description=f"round {p['round']} iter {p['iter']}"
                                    f"{_losses(contract, run, p, name == 'DiscriminatorRoot')} "
                                    f"| {len(agreed)} averages agreed")
        elif name == "AggResultPosted" and p.get("run") == run:
            agreed.add(int(p["round"]))
        elif name == "TrainingStopped" and msp in tasks:
            stopped.add(msp)
            bars.update(tasks[msp], description=f"stopped ({p.get('reason', '')}) | {len(agreed)} averages agreed")
        return stopped != set(spec.participants)

    with bars:
        admin.watch_run(profile, org, run, on_event)
    return counts


def _losses(contract: Any, run: str, p: dict[str, Any], root: bool = False) -> str:
    """' D … G …' of a discriminator step, or ' G mean …' of its anchored round's root (one
    ledger read per event shown)."""
    try:
        if root:
            d = json.loads(contract.evaluate("GetStepRoot", run, str(p["msp"]), str(p["round"])))["discriminator"]
            return f"  G mean {d['g_loss_mean']:+.3f}"
        step = json.loads(contract.evaluate("GetStep", run, str(p["msp"]), str(p["round"]), str(p["iter"])))
        d = step["discriminator"]
        return f"  D {d['d_loss']:+.3f} G {d['g_loss']:+.3f}"
    except (LedgerError, KeyError, TypeError, ValueError):
        return ""
