"""`synthreg registry up|down|status|logs`: one registry's generator, discriminator and merger.

Thin wiring over :class:`synthreg.apps.registry.RegistryStack`. Run by a
registry's IT staff on that registry's host: it starts and signs for that one
registry only. Expected failures are one red line and exit code 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from synthreg.apps.base import ROLES
from synthreg.apps.registry import RegistryError, RegistryStack
from synthreg.cli import onboard_cmd
from synthreg.network.process import ProcessStartError, log_tail
from synthreg.network.profile import ProfileError

app = typer.Typer(help="One registry: its own home and nodes (init, node, join, check-keys) and its apps "
                       "(generator, discriminator, merger) as separate processes.",
                  no_args_is_help=True)
app.command("init")(onboard_cmd.init)
app.command("join")(onboard_cmd.join)
app.command("check-keys")(onboard_cmd.check_keys)
app.add_typer(onboard_cmd.node_app, name="node")
console = Console(stderr=True, soft_wrap=True)

HomeOpt = Annotated[Path, typer.Option("--home", envvar="SYNTHREG_NETWORK_HOME",
                                       help="Network state folder (holds profile.json).")]
OrgOpt = Annotated[str, typer.Option("--org", help="The registry (MSP ID).")]
StateOpt = Annotated[Path | None, typer.Option("--state", help="The registry's state folder "
                                                                "(default <home>/registries/<ORG>).")]
DEFAULT_HOME = Path(".synthreg/network")


@contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except (RegistryError, ProfileError, ProcessStartError, OSError) as exc:
        console.print(f"[bold red]{what} failed:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc


@app.command()
def up(org: OrgOpt, data: Annotated[Path, typer.Option("--data", help="This registry's own CSV.")],
       home: HomeOpt = DEFAULT_HOME, state: StateOpt = None,
       exit_after: Annotated[int | None, typer.Option("--exit-after", min=1,
                                                      help="Apps exit after this many runs.")] = None) -> None:
    """Start the registry's three apps (idempotent: running ones are kept); they idle until a run starts."""
    with _errors("registry up"):
        stack = RegistryStack(home, org, state)
        pids = stack.up(data, exit_after)
        for role, pid in pids.items():
            console.print(f"{org} {role} ready (pid {pid}, log {stack.log_path(role)})")


@app.command(hidden=True)
def supervise(org: OrgOpt, data: Annotated[Path, typer.Option("--data", help="This registry's own CSV.")],
              home: HomeOpt = DEFAULT_HOME, state: StateOpt = None,
              exit_after: Annotated[int | None, typer.Option("--exit-after", min=1)] = None) -> None:
    """The supervisor process `registry up` starts (restarts apps that die)."""
    from synthreg.apps.supervisor import supervise as run_supervisor

    stack = RegistryStack(home, org, state)
    raise typer.Exit(run_supervisor(stack.app_specs(data.resolve(), exit_after), stack.state, stack.run_dir,
                                    stack.logs_dir))


@app.command()
def down(org: OrgOpt, home: HomeOpt = DEFAULT_HOME, state: StateOpt = None) -> None:
    """Stop the registry's apps (SIGTERM, then SIGKILL)."""
    with _errors("registry down"):
        stopped = RegistryStack(home, org, state).down()
        console.print(f"{org}: stopped {', '.join(stopped) or 'nothing (no app was running)'}")


@app.command()
def status(org: OrgOpt, home: HomeOpt = DEFAULT_HOME, state: StateOpt = None,
           as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False) -> None:
    """Per app: pid, alive, restarts, last block seen, run / round / iteration, and
    the rounds its registry was left out of (merger: not in the average; generator:
    not trained)."""
    with _errors("registry status"):
        rows = RegistryStack(home, org, state).status()
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    table = Table(title=f"{org} apps")
    for col in ("app", "pid", "alive", "restarts", "last block", "run", "phase", "round", "iter", "missed rounds"):
        table.add_column(col)
    for r in rows:
        s = r.status
        missed = s.get("missed_rounds") or s.get("skipped_rounds") or []
        table.add_row(r.role, str(r.pid or "-"), "yes" if r.alive else "[red]no[/]", str(s.get("restarts", 0)),
                      str(s.get("last_block", "-")),
                      str(s.get("run") or "-"), str(s.get("phase", "-")), str(s.get("round", "-")),
                      str(s.get("iter", "-")), ", ".join(map(str, missed)) or "-")
    Console().print(table)


@app.command()
def logs(org: OrgOpt, role: Annotated[str, typer.Argument(help=f"One of {', '.join(ROLES)}.")] = "merger",
         home: HomeOpt = DEFAULT_HOME, state: StateOpt = None,
         lines: Annotated[int, typer.Option("--lines", "-n")] = 40) -> None:
    """The tail of an app's log."""
    if role not in ROLES:
        console.print(f"[bold red]unknown app {role!r}[/] (one of {', '.join(ROLES)})")
        raise typer.Exit(1)
    with _errors("registry logs"):
        typer.echo(log_tail(RegistryStack(home, org, state).log_path(role), lines))
