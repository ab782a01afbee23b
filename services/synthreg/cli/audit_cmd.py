"""`synthreg audit keygen | unseal | verify`: the auditor's side.

Thin wiring over :mod:`synthreg.keys.keyfiles` and :mod:`synthreg.keys.audit`
(errors handled as in :mod:`synthreg.cli.keys_cmd`: one red line, exit 1).

The auditor reads channel ``keys`` through the ``auditor`` app identity of a
registry org (``--as-org``, default Registry1MSP). On this dev network that
identity is the stand-in for an external auditor's read access: it only
reads public state (the ceremony record and the releases); the shares are
encrypted to the auditor's own X25519 key (``keygen``), which no registry holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from synthreg.cli.keys_cmd import DEFAULT_HOME, DEFAULT_ORG, HomeOpt, JsonOpt, cli_errors, keyvault_as, print_json
from synthreg.keys.audit import unseal_audit_key
from synthreg.keys.keyfiles import generate_auditor_key, load_auditor_keypair
from synthreg.network.profile import load_profile

app = typer.Typer(help="Auditor: key pair, and unsealing the audit key from released shares.",
                  no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)


@app.command()
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Directory for the auditor's key pair (created 0700).")],
    as_json: JsonOpt = False,
) -> None:
    """Create the auditor's X25519 key pair (private key file mode 0600); print the public key and id."""
    with cli_errors("audit keygen"):
        files = generate_auditor_key(out)
    if as_json:
        print_json({"auditor_id": files.auditor_id, "public_key_file": str(files.public_key_file),
                    "secret_key_file": str(files.secret_key_file)})
        return
    typer.echo(f"auditor id:      {files.auditor_id}")
    typer.echo(f"public key:      {files.public_key_file}   (give this to the registries)")
    typer.echo(f"private key:     {files.secret_key_file}   (mode 0600; keep it)")


@app.command()
def unseal(
    key: Annotated[Path, typer.Option("--key", help="The auditor's key directory (from `audit keygen`).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the unsealed secret context (0600 files).")],
    as_org: Annotated[str, typer.Option("--as-org", help="Org whose `auditor` identity reads the ledger.")]
    = DEFAULT_ORG,
    home: HomeOpt = DEFAULT_HOME,
    as_json: JsonOpt = False,
) -> None:
    """Collect the shares released to this auditor, check commitments, unseal, decrypt the test ciphertext."""
    with cli_errors("audit unseal"):
        auditor = load_auditor_keypair(key)
        profile = load_profile(home)
        with keyvault_as(profile, as_org, "auditor") as vault:
            summary = unseal_audit_key(vault, auditor, out)
    if as_json:
        print_json(summary.to_dict())
        return
    who = ", ".join(f"{r['org']} (share {r['share_index']})" for r in summary.releases)
    console.print(f"[green]unsealed the audit key of ceremony {summary.ceremony_id}[/] as auditor "
                  f"{summary.auditor_id}: shares {summary.shares_used} of {who}")
    console.print(f"  test ciphertext decrypted, max error {summary.proof_max_abs_error:.2e}")
    console.print(f"  secret context -> {summary.secret_context_file} (mode 0600)")


@app.command()
def verify(
    run: Annotated[str, typer.Option("--run", help="Run id (the `run/<id>` record on channel gan).")],
    unsealed: Annotated[Path, typer.Option("--unsealed", help="Directory written by `audit unseal`.")],
    workspace: Annotated[list[str], typer.Option(
        "--workspace", help="MSP=DIR, one per registry: the workspace artefacts the auditor was given.")],
    as_org: Annotated[str, typer.Option("--as-org", help="Org whose `auditor` identity reads the ledger.")]
    = DEFAULT_ORG,
    registry: Annotated[list[str] | None, typer.Option(
        "--registry", help="MSP id of a registry the run must have (repeat); for a run without a run "
        "document on the ledger, else checked against it.")] = None,
    rounds: Annotated[int | None, typer.Option(
        "--rounds", min=1, help="Rounds to check (default: the agreed run's, or the header's).")] = None,
    home: HomeOpt = DEFAULT_HOME,
    as_json: JsonOpt = False,
) -> None:
    """Verify a recorded training run: ledger hashes vs workspaces, agreement,
    secure-aggregation rounds, G/D step records, decrypted mean vs average."""
    from synthreg.crypto.ckks import load_public_context
    from synthreg.keys.audit import load_unsealed_secret
    from synthreg.network.client import open_gateway
    from synthreg.trail.verify import verify_run
    from synthreg.workspace import Workspace

    workspaces: dict[str, Workspace] = {}
    for item in workspace:
        msp, sep, path = item.partition("=")
        if not sep or not msp or not path:
            console.print(f"[bold red]audit verify failed:[/] --workspace wants MSP=DIR, got {item!r}")
            raise typer.Exit(2)
        workspaces[msp] = Workspace(Path(path))
    with cli_errors("audit verify"):
        profile = load_profile(home)
        with keyvault_as(profile, as_org, "auditor") as vault:
            record = vault.get_ceremony_record()
        public = load_public_context(record.public_context)
        secret = load_unsealed_secret(unsealed, record.public_context_hash)
        with open_gateway(profile, as_org, "auditor") as gw:
            report = verify_run(run, gw.network("gan").contract("ganledger"), secret, public, workspaces,
                                rounds, registries=registry or None)
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        console.print(f"[green]run {run} verified[/]: {report.records_checked} ledger records, "
                      f"{report.rounds_checked} rounds ({report.secagg_rounds_checked} by secure aggregation), "
                      f"{report.steps_checked} G/D steps, "
                      f"audited rounds {report.audited_rounds} decrypted "
                      f"(max error {report.max_abs_error:.1e})")
    else:
        console.print(f"[bold red]run {run}: {len(report.failures)} failed check(s)[/]")
        for failure in report.failures:
            console.print(f"  - {escape(failure)}")
    if not report.ok:
        raise typer.Exit(1)
