"""`synthreg audit keygen | unseal`: the auditor's side of the audit key.

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
