"""`synthreg network up | down | status | logs`: the local consortium network.

Thin wiring over :mod:`synthreg.network.launcher`. Environment variables are
read here, at the process edge, only as defaults for the options.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from synthreg.network import process
from synthreg.network.launcher import Launcher, NetworkError
from synthreg.network.topology import NetworkConfig

app = typer.Typer(help="Run the local Fabric network (3 registries, TLS, Raft, CCaaS; no Docker).",
                  no_args_is_help=True)
console = Console(stderr=True)


def _repo_root() -> Path:
    # services/synthreg/cli/network_cmd.py -> repo root
    return Path(__file__).resolve().parents[3]


def _cache() -> Path:
    return Path(os.environ.get("SYNTHREG_CACHE", Path.home() / ".cache" / "synthreg"))


HomeOpt = Annotated[Path, typer.Option("--home", envvar="SYNTHREG_NETWORK_HOME",
                                       help="Network state folder (crypto, ledgers, logs, pids).")]
_DEFAULT_HOME = Path(".synthreg/network")


def _config(home: Path, orgs: int = 3, base_port: int = 7000, batch_timeout: str = "10ms") -> NetworkConfig:
    fabric_bin = Path(os.environ.get("FABRIC_BIN", _cache() / "fabric" / "bin"))
    return NetworkConfig(home=home.resolve(), fabric_bin=fabric_bin, repo_root=_repo_root(), n_orgs=orgs,
                         base_port=base_port, batch_timeout=batch_timeout)


def _log(msg: str) -> None:
    console.print(f"[bold cyan]network[/] {escape(msg)}")


@app.command()
def up(
    home: HomeOpt = _DEFAULT_HOME,
    orgs: Annotated[int, typer.Option(help="Number of registry orgs.")] = 3,
    base_port: Annotated[int, typer.Option(help="Org i uses ports base+100*i+1..22.")] = 7000,
    batch_timeout: Annotated[str, typer.Option(help="Orderer BatchTimeout (block cutting).")] = "10ms",
) -> None:
    """Start (or resume) the network: crypto, channels `keys` and `gan`, chaincodes. Idempotent."""
    cfg = _config(home, orgs, base_port, batch_timeout)
    launcher = Launcher(cfg, _log)
    try:
        launcher.up(cfg.fabric_bin.parent / "config")
    except (NetworkError, process.ProcessStartError, process.PortInUseError, RuntimeError,
            FileNotFoundError) as exc:
        console.print(f"[bold red]network up failed:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc


@app.command()
def down(
    home: HomeOpt = _DEFAULT_HOME,
    wipe: Annotated[bool, typer.Option(help="Also delete all state (crypto, ledgers, logs).")] = False,
) -> None:
    """Stop every process this network started (by PID); optionally wipe its state."""
    launcher = Launcher(_config(home), _log)
    stopped = launcher.down(wipe=wipe)
    _log(f"stopped {len(stopped)} process(es){' and wiped ' + str(home) if wipe else ''}")


@app.command()
def status(home: HomeOpt = _DEFAULT_HOME, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show the network's processes and whether a client profile exists."""
    st = Launcher(_config(home), _log).status()
    if as_json:
        typer.echo(json.dumps(st, indent=2))
        return
    table = Table(title=f"synthreg network ({st['home']})")
    table.add_column("process")
    table.add_column("pid")
    table.add_column("state")
    procs = st["processes"]
    assert isinstance(procs, dict)
    for name, info in procs.items():
        table.add_row(name, str(info["pid"] or "-"), "[green]running" if info["running"] else "[red]stopped")
    Console().print(table)
    if not procs:
        console.print("no processes recorded: the network is not up")


@app.command()
def logs(
    name: Annotated[str, typer.Argument(help="Process name, e.g. peer-registry1 (see `status`).")],
    home: HomeOpt = _DEFAULT_HOME,
    lines: Annotated[int, typer.Option("-n", help="Number of lines.")] = 40,
) -> None:
    """Print the last lines of one process's log."""
    path = home / "logs" / f"{name}.log"
    if not path.exists():
        known = sorted(p.stem for p in (home / "logs").glob("*.log")) if (home / "logs").exists() else []
        console.print(f"[red]no log {path}[/] (known: {', '.join(known) or 'none'})")
        raise typer.Exit(1)
    typer.echo(process.log_tail(path, lines))
