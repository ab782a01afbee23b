"""`synthreg keys ceremony | show | release | request-share | contribute-share | complete-share`.

The audit key on the ledger.

Thin wiring over :mod:`synthreg.keys`: this module picks the network profile
(``--home``, default from ``SYNTHREG_NETWORK_HOME``, read here at the process
edge), opens a Gateway for the acting org identity, wraps it in a
:class:`~synthreg.chain.keyvault.LedgerKeyVault` and prints the result. Every
expected failure (typed :class:`~synthreg.keys.errors.KeysError`, ledger
client errors, a missing profile or file) becomes one red line on stderr and
exit code 1 — never a gRPC traceback. ``--json`` prints data to stdout.

Who acts:

- ``ceremony``: the ``admin`` identity of ``--org`` (the host, default
  Registry1MSP); recipients = every org in the profile, public share keys from
  their ``share_key_dir``.
- ``show``: any consortium identity (``--as-org`` / ``--as-role``).
- ``release``: the ``admin`` identity of ``--org`` and that org's private
  share key (``share_key_dir/x25519_sk.pem``) — run on that org's host.
- ``request-share`` / ``complete-share``: a registry that joined after the
  ceremony (its admin and share key); ``contribute-share --for NEWCOMER``: each
  holder the request chose (:mod:`synthreg.keys.extension`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from synthreg.chain.keyvault import CHAINCODE, CHANNEL, LedgerKeyVault
from synthreg.crypto.transport import RecipientKeyPair
from synthreg.keys.ceremony import host_ceremony, read_recipient_keys
from synthreg.keys.errors import KeysError
from synthreg.keys.extension import complete_share, contribute_share, request_share
from synthreg.keys.keyfiles import load_auditor_public_key, load_org_keypair
from synthreg.keys.records import ExtensionRecord
from synthreg.keys.release import release_to_auditor
from synthreg.keys.show import keys_overview
from synthreg.ledger import ConnectError, LedgerError
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile, ProfileError, load_profile

app = typer.Typer(help="Audit key: one-time ceremony, public facts, releasing a share to an auditor.",
                  no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)

HomeOpt = Annotated[Path, typer.Option("--home", envvar="SYNTHREG_NETWORK_HOME",
                                       help="Network state folder (holds profile.json).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
DEFAULT_HOME = Path(".synthreg/network")
DEFAULT_ORG = "Registry1MSP"


@contextmanager
def cli_errors(what: str) -> Iterator[None]:
    """Turn expected failures into one red line and exit code 1 (shared with ``audit_cmd``)."""
    try:
        yield
    except (KeysError, LedgerError, ProfileError) as exc:
        console.print(f"[bold red]{what} failed:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from exc
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        console.print(f"[bold red]{what} failed:[/] {escape(str(exc.strerror or exc) + where)}", soft_wrap=True)
        raise typer.Exit(1) from exc


@contextmanager
def keyvault_as(profile: Profile, msp_id: str, role: str) -> Iterator[LedgerKeyVault]:
    """A :class:`LedgerKeyVault` acting as ``msp_id``'s ``role`` app identity on its own peer."""
    with ExitStack() as stack:
        try:
            gw = stack.enter_context(open_gateway(profile, msp_id, role))
        except ConnectError as exc:
            raise ConnectError(f"{msp_id} peer {profile.org(msp_id).peer_endpoint}: {exc} "
                               f"(is the network up? `synthreg network status --home {profile.home}`)") from exc
        yield LedgerKeyVault(gw.network(CHANNEL).contract(CHAINCODE))


@contextmanager
def registry_admin(home: Path, org: str) -> Iterator[tuple[LedgerKeyVault, RecipientKeyPair]]:
    """``org``'s admin keyvault and its share key pair (``share_key_dir``): acting on the org's own share."""
    profile = load_profile(home)
    org_key = load_org_keypair(profile.org(org).share_key_dir)
    with keyvault_as(profile, org, "admin") as vault:
        yield vault, org_key


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


@app.command()
def ceremony(
    threshold: Annotated[int, typer.Option("--threshold", "-t", help="Shares needed to unseal (2 <= t <= n).")],
    org: Annotated[str, typer.Option("--org", help="Host org (MSP ID) whose admin runs the ceremony.")]
    = DEFAULT_ORG,
    home: HomeOpt = DEFAULT_HOME,
    as_json: JsonOpt = False,
) -> None:
    """Create the audit key, seal and split it t-of-n, record it, put each share in its org's collection.

    Runs once per network; the secret never touches disk and is wiped from memory.
    """
    with cli_errors("keys ceremony"):
        profile = load_profile(home)
        profile.org(org)
        recipients = read_recipient_keys({m: o.share_key_dir for m, o in profile.orgs.items()})
        console.print(f"[cyan]keys[/] ceremony as {org} admin: t={threshold}, n={len(recipients)} "
                      f"({', '.join(recipients)})")
        with keyvault_as(profile, org, "admin") as vault:
            report = host_ceremony(vault, threshold, recipients)
    if as_json:
        print_json(report.to_dict())
        return
    console.print(f"[green]ceremony {report.ceremony_id} recorded[/] by {report.host_msp} "
                  f"(tx {report.record_tx_id[:16]}…): t={report.t} of n={report.n}")
    console.print(f"  public context {report.public_context_hash} ({report.public_context_bytes} bytes)")
    for s in report.shares:
        console.print(f"  share {s.share_index} -> {s.collection} (sha256 {s.sha256[:16]}…, tx {s.tx_id[:16]}…)")
    console.print("  secret context and sealing key wiped; nothing written to disk")


def _auditor_ids(values: list[str]) -> list[str]:
    out = []
    for v in values:
        path = Path(v)
        out.append(load_auditor_public_key(path).id if path.exists() else v)
    return out


@app.command()
def show(
    auditor: Annotated[list[str] | None, typer.Option(
        "--auditor", help="Auditor id or public key PEM (repeatable): list releases to it.")] = None,
    as_org: Annotated[str, typer.Option("--as-org", help="Org whose identity reads the ledger.")] = DEFAULT_ORG,
    as_role: Annotated[str, typer.Option("--as-role", help="App identity role used to read.")] = "admin",
    home: HomeOpt = DEFAULT_HOME,
    as_json: JsonOpt = False,
) -> None:
    """Public facts of the audit key: t, n, hashes, commitments, distributed shares, releases."""
    with cli_errors("keys show"):
        ids = _auditor_ids(auditor or [])
        profile = load_profile(home)
        with keyvault_as(profile, as_org, as_role) as vault:
            data = keys_overview(vault, ids).to_dict()
    if as_json:
        print_json(data)
        return
    out = Console(soft_wrap=True)
    out.print(f"[bold]audit key[/] ceremony {data['ceremony_id']}: t={data['t']} of n={data['n']}, "
              f"host {data['host_msp']} at {data['recorded_at']}")
    out.print(f"  public context sha256 {data['public_context_hash']} ({data['public_context_bytes']} bytes)")
    out.print(f"  sealed key sha256     {data['sealed_key_sha256']}")
    out.print(f"  test ciphertext sha256 {data['test_ciphertext_sha256']}")
    table = Table(title="shares")
    for col in ("org", "index", "commitment", "distributed (sha256 of encrypted share)"):
        table.add_column(col)
    for msp, idx in data["share_index"].items():
        dist = data["shares_distributed"].get(msp)
        table.add_row(msp, str(idx), data["commitments"][str(idx)][:16] + "…",
                      dist if dist else "[red]not distributed")
    out.print(table)
    for e in data["extensions"]:
        state = "[green]complete" if e["complete"] else \
            f"[yellow]{len(e['contributed'])}/{len(e['holders'])} contributions"
        out.print(f"  share {e['share_index']} of {e['org']} (joined later) from {', '.join(e['holders'])}: {state}")
    for aid, rel in data["releases"].items():
        who = ", ".join(f"{r['org']} (share {r['share_index']})" for r in rel["released"]) or "nobody"
        state = "[green]can unseal" if rel["unsealable"] else "[yellow]cannot unseal yet"
        out.print(f"  auditor {aid}: {rel['count']}/{rel['t']} released by {who} — {state}")


@app.command()
def release(
    org: Annotated[str, typer.Option("--org", help="Releasing org (MSP ID); acts as its admin.")],
    auditor: Annotated[Path, typer.Option("--auditor", help="The auditor's X25519 public key PEM file.")],
    home: HomeOpt = DEFAULT_HOME,
    as_json: JsonOpt = False,
) -> None:
    """Release ORG's share to an auditor: decrypt it with ORG's key, re-encrypt to the auditor, record it."""
    with cli_errors("keys release"):
        pub = load_auditor_public_key(auditor)
        with registry_admin(home, org) as (vault, org_key):
            report = release_to_auditor(vault, org, org_key, pub)
    if as_json:
        print_json(report.to_dict())
        return
    console.print(f"[green]{report.org} released share {report.share_index}[/] of ceremony "
                  f"{report.ceremony_id} to auditor {report.auditor_id} (tx {report.tx_id[:16]}…)")


OrgOpt = Annotated[str, typer.Option("--org", help="This registry (MSP ID); acts as its admin with its share key.")]


def _print_extension(ext: ExtensionRecord, what: str) -> None:
    missing = sorted(set(ext.holders) - set(ext.contributions))
    state = "complete" if ext.complete else (f"waiting for {', '.join(missing)}" if missing else "ready to complete")
    console.print(f"[green]{what}[/]: share {ext.share_index} of {ext.org} from {', '.join(sorted(ext.holders))} "
                  f"(extension {ext.extension_id[:16]}…): {state}")


@app.command("request-share")
def request_share_cmd(
    org: OrgOpt,
    holder: Annotated[list[str] | None, typer.Option(
        "--holder", help="A share holder to ask (repeat t times; default: the t lowest share indices).")] = None,
    home: HomeOpt = DEFAULT_HOME,
    as_json: JsonOpt = False,
) -> None:
    """A registry that joined after the ceremony asks t share holders for its own share."""
    with cli_errors("keys request-share"), registry_admin(home, org) as (vault, org_key):
        ext = request_share(vault, org, org_key, holder or None)
    if as_json:
        print_json(ext.summary())
        return
    _print_extension(ext, "share requested")
    console.print(f"  each holder runs: synthreg keys contribute-share --org HOLDER --for {org}; "
                  f"then: synthreg keys complete-share --org {org}")


@app.command("contribute-share")
def contribute_share_cmd(
    org: OrgOpt,
    newcomer: Annotated[str, typer.Option("--for", help="The registry (MSP ID) that requested a share.")],
    home: HomeOpt = DEFAULT_HOME,
    as_json: JsonOpt = False,
) -> None:
    """A holder's masked contribution to a newcomer's share, encrypted to the newcomer."""
    with cli_errors("keys contribute-share"), registry_admin(home, org) as (vault, org_key):
        ext = contribute_share(vault, org, org_key, newcomer)
    if as_json:
        print_json(ext.summary())
        return
    _print_extension(ext, f"{org} contributed")


@app.command("complete-share")
def complete_share_cmd(org: OrgOpt, home: HomeOpt = DEFAULT_HOME, as_json: JsonOpt = False) -> None:
    """The newcomer adds the contributions up, stores its share in its collection and commits to it."""
    with cli_errors("keys complete-share"), registry_admin(home, org) as (vault, org_key):
        ext = complete_share(vault, org, org_key)
    if as_json:
        print_json(ext.summary())
        return
    _print_extension(ext, f"{org} holds its share")
