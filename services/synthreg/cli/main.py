"""Root of the `synthreg` command: thin wiring only.

Each sub-command lives in its own module under `synthreg.cli` and is registered
here; the logic lives in the library packages they call.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="synthreg",
    help="Secure federated GAN training for a consortium of health registries.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# (module under synthreg.cli, attribute, name) — a sub-app (typer.Typer) is
# mounted as a group, a plain function as a single command.
_COMMANDS: list[tuple[str, str, str]] = [
    ("network_cmd", "app", "network"),
    ("keys_cmd", "app", "keys"),
    ("audit_cmd", "app", "audit"),
    ("train_cmd", "train_local", "train-local"),
    ("report_cmd", "report", "report"),
    ("demo_cmd", "demo", "demo"),
]


def _register() -> None:
    for module_name, attr, name in _COMMANDS:
        try:
            module = importlib.import_module(f"synthreg.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"synthreg.cli.{module_name}":
                continue  # command not built yet
            raise
        obj = getattr(module, attr)
        if isinstance(obj, typer.Typer):
            app.add_typer(obj, name=name)
        else:
            app.command(name=name)(obj)


_register()

if __name__ == "__main__":  # pragma: no cover
    app()
