"""`synthreg demo`: the end-to-end pipeline of :mod:`synthreg.demo` (thin wiring)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from synthreg.cli.run_cmd import watch_progress
from synthreg.demo import run_demo, summarize
from synthreg.gan.config import TrainConfig


def demo(
    out: Annotated[Path, typer.Option(help="Output folder (synthetic data, report, workspaces, audit).")] = Path(
        ".synthreg/demo"),
    home: Annotated[Path | None, typer.Option(help="Network home (default: <out>/network).")] = None,
    rounds: Annotated[int, typer.Option(min=1, help="FedAvg rounds.")] = TrainConfig.rounds,
    local_iters: Annotated[int, typer.Option(min=1, help="Local iterations per round.")] = TrainConfig.local_iters,
    audit_every: Annotated[int, typer.Option(min=1, help="CKKS audit copy every N rounds (and the last).")] = 40,
    seed: Annotated[int, typer.Option(help="Seed for split, training and sampling.")] = 0,
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads (1 is fastest on a shared 2-core host).")] = 1,
    keep_network: Annotated[bool, typer.Option(help="Leave the network running afterwards.")] = False,
) -> None:
    """Network → key ceremony → federated training recorded on the ledger → report → audit."""
    console = Console()
    cache = Path(os.environ.get("SYNTHREG_CACHE", Path.home() / ".cache" / "synthreg"))
    fabric_bin = Path(os.environ.get("FABRIC_BIN", cache / "fabric" / "bin"))
    repo_root = Path(__file__).resolve().parents[3]
    out = out.resolve()
    try:
        res = run_demo(out, (home or out / "network").resolve(), fabric_bin, repo_root, rounds=rounds,
                       local_iters=local_iters, seed=seed, audit_every=audit_every, threads=threads,
                       keep_network=keep_network, log=console.print,
                       watch=lambda profile, org, run: watch_progress(profile, org, run, console))
    except Exception as exc:  # the CLI edge: one readable line, details in the log
        console.print(f"[bold red]demo failed:[/] {type(exc).__name__}: {escape(str(exc))}")
        raise typer.Exit(1) from exc
    table = Table(title="synthreg demo", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for k, v in summarize(res):
        table.add_row(k, v)
    console.print(table)
    console.print(f"stage times (s): {res.timings}")
    if res.audit is None or not res.audit.ok:
        raise typer.Exit(1)
