"""`synthreg app generator|discriminator|merger`: one app of one registry, as this process.

Thin wiring: settings from the command line (the process edge) into
:class:`synthreg.apps.base.AppSettings`, then the app's event loop until it is
stopped (SIGTERM) or has finished ``--exit-after`` runs. Usually started by
``synthreg registry up``, not by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthreg.apps.base import App, AppSettings, app_main, registry_state_dir

app = typer.Typer(help="Run one app of one registry in this process (normally via `registry up`).",
                  no_args_is_help=True)

HomeOpt = Annotated[Path, typer.Option("--home", envvar="SYNTHREG_NETWORK_HOME",
                                       help="Network state folder (holds profile.json).")]
OrgOpt = Annotated[str, typer.Option("--org", help="The registry (MSP ID) this app belongs to.")]
StateOpt = Annotated[Path | None, typer.Option("--state", help="The registry's state folder "
                                                                "(default <home>/registries/<ORG>).")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="The registry's own CSV (never leaves this host).")]
ExitOpt = Annotated[int | None, typer.Option("--exit-after", min=1, help="Exit after this many finished runs.")]


def _serve(cls: type[App], role: str, org: str, home: Path, state: Path | None, data: Path | None,
           exit_after: int | None) -> None:
    settings = AppSettings(role, org, home, state or registry_state_dir(home, org), data, exit_after)
    raise typer.Exit(app_main(cls, settings))


@app.command()
def generator(org: OrgOpt, home: HomeOpt = Path(".synthreg/network"), state: StateOpt = None,
              exit_after: ExitOpt = None) -> None:
    """The generator app (flows 1, 2a, 2b, 6, 9a); it never reads real data."""
    from synthreg.apps.generator import GeneratorApp
    _serve(GeneratorApp, "generator", org, home, state, None, exit_after)


@app.command()
def discriminator(org: OrgOpt, home: HomeOpt = Path(".synthreg/network"), state: StateOpt = None,
                  data: DataOpt = None, exit_after: ExitOpt = None) -> None:
    """The discriminator app (flows 3, 4a, 4b, 5a, 5b, 9b): trains on the registry's CSV."""
    from synthreg.apps.discriminator import DiscriminatorApp
    _serve(DiscriminatorApp, "discriminator", org, home, state, data, exit_after)


@app.command()
def merger(org: OrgOpt, home: HomeOpt = Path(".synthreg/network"), state: StateOpt = None,
           data: DataOpt = None, exit_after: ExitOpt = None) -> None:
    """The merger app (flows 7, 8): secure aggregation, audit copies, the model bundle."""
    from synthreg.apps.merger import MergerApp
    _serve(MergerApp, "merger", org, home, state, data, exit_after)
