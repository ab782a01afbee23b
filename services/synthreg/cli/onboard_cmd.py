"""Onboarding commands: `registry init | join | node ... | check-keys` and `consortium create | commit`.

Thin wiring over :mod:`synthreg.network.onboarding` (the steps and their order are in
its docstring and in docs/deploy.md). Each runs on one registry's host, on that
registry's own home (``--home``). Expected failures are one red line and exit 1.
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

from synthreg.network import process
from synthreg.network.launcher import NetworkError
from synthreg.network.onboarding import (
    OnboardingError,
    RegistryLauncher,
    create_consortium,
    init_registry,
    registry_config,
)
from synthreg.network.orgdef import OrgDefError

console = Console(stderr=True, soft_wrap=True)
RegistryHomeOpt = Annotated[Path, typer.Option("--home", envvar="SYNTHREG_NETWORK_HOME",
                                               help="This registry's own home (crypto, ledgers, logs, profile).")]
DEFAULT_REGISTRY_HOME = Path(".synthreg/registry")

node_app = typer.Typer(help="This registry's Fabric nodes (orderer, peer) on its host.", no_args_is_help=True)
consortium_app = typer.Typer(help="Form the consortium from public org definitions; commit the chaincodes.",
                             no_args_is_help=True)


def _fabric_bin() -> Path:
    import os

    from synthreg.cli.network_cmd import _cache

    return Path(os.environ.get("FABRIC_BIN", _cache() / "fabric" / "bin"))


def _repo_root() -> Path:
    from synthreg.cli.network_cmd import _repo_root as root

    return root()


def _log(msg: str) -> None:
    console.print(f"[bold cyan]registry[/] {escape(msg)}")


@contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except (OnboardingError, OrgDefError, NetworkError, process.ProcessStartError, process.PortInUseError,
            FileNotFoundError, ValueError) as exc:
        console.print(f"[bold red]{what} failed:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc


def _chaincode_bin() -> Path | None:
    """Prebuilt chaincode servers (the container image sets SYNTHREG_CHAINCODE_BIN)."""
    import os

    value = os.environ.get("SYNTHREG_CHAINCODE_BIN")
    return Path(value) if value else None


def _launcher(home: Path) -> RegistryLauncher:
    return RegistryLauncher(registry_config(home.resolve(), _fabric_bin(), _repo_root(), _chaincode_bin()), _log)


def init(
    org: Annotated[str, typer.Option("--org", help="This registry's MSP ID (Registry<N>MSP).")],
    host: Annotated[str, typer.Option("--host", help="The address the other registries reach this host at.")],
    base_port: Annotated[int, typer.Option("--base-port", help="Ports base+100*N+1..22 (N from the MSP ID).")]
    = 7000,
    home: RegistryHomeOpt = DEFAULT_REGISTRY_HOME,
) -> None:
    """Create this registry's CAs, node and app identities and share key, here only; write
    its public org definition (``<home>/org-def.json``) to send to the other registries."""
    with _errors("registry init"):
        d = init_registry(home.resolve(), org, host, base_port, _fabric_bin(), _repo_root())
    o = d.org
    _log(f"{d.msp_id} initialised in {home} (private keys stay there, mode 0600)")
    _log(f"public org definition: {home / 'org-def.json'}  (send it to the consortium)")
    _log(f"open to the other registries: orderer {o.orderer_endpoint}, peer {o.peer_endpoint}, "
         f"merger blobs {o.blob_endpoint}")


def join(
    consortium: Annotated[Path, typer.Option("--consortium", help="The bundle from `consortium create`.")],
    home: RegistryHomeOpt = DEFAULT_REGISTRY_HOME,
    approve_timeout: Annotated[float, typer.Option(help="Seconds to wait for a majority of orderers "
                                                        "to have joined before approving.")] = 600,
) -> None:
    """Check the bundle, join this registry's orderer and peer to `keys` and `gan`, run the
    chaincode servers and approve both chaincodes with this registry's own admin."""
    with _errors("registry join"):
        launcher = _launcher(home)
        launcher.join(consortium, _fabric_bin().parent / "config", approve_timeout)


def check_keys(home: RegistryHomeOpt = DEFAULT_REGISTRY_HOME) -> None:
    """List every private key in this home that is not this registry's own (exit 1 if any)."""
    with _errors("registry check-keys"):
        foreign = _launcher(home).scan_foreign_keys()
    for path in foreign:
        console.print(f"[bold red]foreign private key:[/] {escape(path)}")
    if foreign:
        raise typer.Exit(1)
    _log(f"{home}: every private key belongs to this registry")


@node_app.command("up")
def node_up(home: RegistryHomeOpt = DEFAULT_REGISTRY_HOME) -> None:
    """Start (or keep) this registry's orderer and peer on its host (idempotent)."""
    with _errors("registry node up"):
        _launcher(home).nodes_up(_fabric_bin().parent / "config")


@node_app.command("run")
def node_run(home: RegistryHomeOpt = DEFAULT_REGISTRY_HOME) -> None:
    """Start this registry's orderer, peer (and chaincode servers once joined) and stay in the
    foreground until SIGTERM, then stop them: the main process of a node container."""
    from synthreg.network.foreground import run_nodes

    with _errors("registry node run"):
        code = run_nodes(_launcher(home), _fabric_bin().parent / "config")
    raise typer.Exit(code)


@node_app.command("down")
def node_down(home: RegistryHomeOpt = DEFAULT_REGISTRY_HOME) -> None:
    """Stop this registry's chaincode servers, peer and orderer (state is kept)."""
    with _errors("registry node down"):
        stopped = _launcher(home).down(wipe=False)
    _log(f"stopped {', '.join(stopped) or 'nothing'}")


@node_app.command("status")
def node_status(home: RegistryHomeOpt = DEFAULT_REGISTRY_HOME) -> None:
    """This registry's node processes and whether it has joined (JSON)."""
    with _errors("registry node status"):
        launcher = _launcher(home)
        data = launcher.status()
        data["joined"] = (launcher.consortium_dir / "bundle.json").exists()
    typer.echo(json.dumps(data, indent=2))


@consortium_app.command("create")
def create(
    org_def: Annotated[list[Path], typer.Option("--org-def", help="An org definition (repeat, one per registry).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the consortium bundle (public).")],
    batch_timeout: Annotated[str, typer.Option(help="Orderer BatchTimeout.")] = "10ms",
    check_reachable: Annotated[bool, typer.Option(help="Refuse a definition whose nodes do not answer "
                                                       "over TLS.")] = True,
) -> None:
    """Build the genesis blocks of `keys` and `gan` from public org definitions only."""
    with _errors("consortium create"):
        create_consortium(org_def, out, _fabric_bin(), batch_timeout=batch_timeout, reachable=check_reachable,
                          log=_log)


@consortium_app.command("commit")
def commit(home: RegistryHomeOpt = DEFAULT_REGISTRY_HOME,
           timeout: Annotated[float, typer.Option(help="Seconds to wait for a majority's approvals.")] = 600) -> None:
    """Commit both chaincode definitions once a majority approved, or wait until this
    registry's peer sees them committed (every registry runs it; one commits); then
    register this registry as a member of `keys` and `gan` with its own admin
    (idempotent: re-run it if it stopped before)."""
    with _errors("consortium commit"):
        _launcher(home).commit(timeout)


UpdateDir = Annotated[Path, typer.Argument(help="The update folder from `consortium add-org`.")]


@consortium_app.command("add-org")
def add_org(
    org_def: Annotated[Path, typer.Option("--org-def", help="The newcomer's org definition.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the update (sent to the other members).")],
    home: RegistryHomeOpt = DEFAULT_REGISTRY_HOME,
    check_reachable: Annotated[bool, typer.Option(help="Refuse a newcomer whose nodes do not answer.")] = True,
) -> None:
    """Propose adding a registry to `keys` and `gan` (org groups, Raft consenter); sign it."""
    from synthreg.network.addorg import propose_add_org

    with _errors("consortium add-org"):
        propose_add_org(_launcher(home), org_def, out, reachable=check_reachable, log=_log)


@consortium_app.command("sign-update")
def sign_update(update: UpdateDir, home: RegistryHomeOpt = DEFAULT_REGISTRY_HOME) -> None:
    """Check that the update adds exactly the proposed registry, then sign it with this registry's admin."""
    from synthreg.network.addorg import sign_update as sign

    with _errors("consortium sign-update"):
        sign(_launcher(home), update, log=_log)


@consortium_app.command("submit-update")
def submit_update(update: UpdateDir, home: RegistryHomeOpt = DEFAULT_REGISTRY_HOME) -> None:
    """Submit the signed update (a majority of admins must have signed); write `join.json` for the newcomer."""
    from synthreg.network.addorg import submit_update as submit

    with _errors("consortium submit-update"):
        path = submit(_launcher(home), update, log=_log)
    _log(f"send {path} to the newcomer (`registry join --consortium`) and to every member (`consortium sync`)")


@consortium_app.command("sync")
def sync(update: UpdateDir, home: RegistryHomeOpt = DEFAULT_REGISTRY_HOME) -> None:
    """Record the members added by a submitted update (its `join.json`); approve the keys chaincode again."""
    from synthreg.network.addorg import JOIN_FILE, sync_members

    with _errors("consortium sync"):
        sync_members(_launcher(home), update / JOIN_FILE, log=_log)
