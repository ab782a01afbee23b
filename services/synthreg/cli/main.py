"""Root of the `synthreg` command: thin wiring only.

Each sub-command lives in its own module under `synthreg.cli` and is imported
only when it is invoked (or its help is shown), so `synthreg network up` does
not pay for importing torch, TenSEAL or SDMetrics.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
import typer.main
from typer.core import TyperGroup

# name -> (module under synthreg.cli, attribute, one-line help). A typer.Typer
# attribute is mounted as a group, a plain function as a single command.
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "network": ("network_cmd", "app", "Run the local Fabric network (3 registries, TLS, Raft, CCaaS; no Docker)."),
    "keys": ("keys_cmd", "app", "Audit key ceremony, share release and overview (channel keys)."),
    "audit": ("audit_cmd", "app", "The auditor: key pair, unsealing the audit key."),
    "registry": ("registry_cmd", "app", "One registry: init its home, its nodes, join; its apps as processes."),
    "consortium": ("onboard_cmd", "consortium_app", "Form the consortium from public org definitions; commit."),
    "run": ("run_cmd", "app", "Training runs agreed on the ledger: propose, approve, status, watch, abort."),
    "app": ("app_cmd", "app", "Run one app of one registry in this process (normally via `registry up`)."),
    "schema": ("schema_cmd", "app", "Draft a schema from a CSV, check a CSV against a schema, print its hash."),
    "train-local": ("train_cmd", "train_local", "Federated GAN training in-process (no ledger)."),
    "sample": ("sample_cmd", "sample", "Synthetic records from a model bundle (--verify: against the ledger)."),
    "report": ("report_cmd", "report", "Quality report of synthetic vs real data."),
    "demo": ("demo_cmd", "demo", "End-to-end demo: network, key ceremony, recorded training, report, audit."),
}


def _load(name: str) -> Any:
    module_name, attr, _ = _COMMANDS[name]
    obj = getattr(importlib.import_module(f"synthreg.cli.{module_name}"), attr)
    if isinstance(obj, typer.Typer):
        cmd = typer.main.get_command(obj)
    else:
        single = typer.Typer()
        single.command(name=name)(obj)
        cmd = typer.main.get_command(single)
    cmd.name = name
    return cmd


class _LazyGroup(TyperGroup):
    """Resolves sub-commands by name on demand (help lists them without importing)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in _COMMANDS:
            return None
        return _load(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(n, h) for n, (_, _, h) in _COMMANDS.items()])


app = typer.Typer(cls=_LazyGroup, no_args_is_help=True, rich_markup_mode=None,
                  pretty_exceptions_show_locals=False)


@app.callback()
def _root() -> None:
    """Secure federated GAN training for a consortium of health registries."""


if __name__ == "__main__":  # pragma: no cover
    app()
