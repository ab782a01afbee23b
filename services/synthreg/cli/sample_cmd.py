"""`synthreg sample`: synthetic records from a model bundle, optionally verified on the ledger.

Thin wiring over :mod:`synthreg.gan.bundle`: load the bundle (file hashes and
shapes checked), with ``--verify`` check its weights against the average the
consortium agreed on, then sample and write a CSV. The only ledger access is
here: :func:`open_ledger_lookup` evaluates ``GetRound(aggregation_run, round)``
on chaincode ``ganledger`` of channel ``gan`` as ``--org``'s ``admin`` identity
(network profile from ``--home``, default ``SYNTHREG_NETWORK_HOME``, read here at
the process edge) and :func:`agreed_average_sha256` reads the agreed hash out of
the round state (shape: chaincode/spec/secagg.md). :func:`synthreg.gan.bundle.verify_bundle`
stays pure; tests inject a lookup.

Refusals and failures (bundle damaged, hash differs from ``bundle.json`` or
from the ledger, round not agreed, network not reachable) print one red line
naming what differs (both hashes for a mismatch) and exit 1; nothing is written
then. ``--json`` prints the summary (or the error) as JSON on stdout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, Protocol

import typer
from rich.console import Console
from rich.markup import escape

from synthreg.data.hashing import sha256_hex
from synthreg.gan.bundle import AgreedHashLookup, BundleError, BundleVerification, load_bundle, verify_bundle

CHANNEL = "gan"
CHAINCODE = "ganledger"
DEFAULT_HOME = Path(".synthreg/network")
DEFAULT_ORG = "Registry1MSP"
_FAILED = 1

console = Console(stderr=True, soft_wrap=True)


class AgreedHashError(RuntimeError):
    """The ledger holds no single agreed average hash for that round."""

    def __init__(self, run: str, rnd: int, detail: str) -> None:
        self.run = run
        self.round = rnd
        self.detail = detail
        super().__init__(f"aggregation run {run!r} round {rnd}: {detail}")


class _Evaluator(Protocol):
    def evaluate(self, fn: str, *args: str | bytes) -> bytes: ...


def agreed_average_sha256(state: Any, run: str, rnd: int) -> str:
    """The agreed ``average_sha256`` of a ``GetRound`` result.

    ``agreed`` must be ``true``; the hash is ``average_sha256`` (the one t
    survivors posted), or for a ``GetRound`` without that field the survivors'
    ``results`` ({msp: hex}, or {msp: {"average_sha256": hex}}) must hold
    exactly one hash; else :class:`AgreedHashError`.
    """
    if not isinstance(state, Mapping):
        raise AgreedHashError(run, rnd, f"GetRound returned {type(state).__name__}, not a JSON object")
    if state.get("agreed") is not True:
        raise AgreedHashError(run, rnd, f"no agreed average on the ledger (status {state.get('status')!r}, "
                                        f"agreed {state.get('agreed')!r}, mismatched {state.get('mismatched') or []})")
    agreed = state.get("average_sha256")
    if isinstance(agreed, str) and agreed:  # the hash t survivors agreed on (t of n)
        return agreed
    results = state.get("results")
    if not isinstance(results, Mapping) or not results:
        raise AgreedHashError(run, rnd, "agreed, but GetRound has no results")
    hashes = {v if isinstance(v, str) else v.get("average_sha256") if isinstance(v, Mapping) else None
              for v in results.values()}
    if len(hashes) != 1 or not isinstance(next(iter(hashes)), str):
        raise AgreedHashError(run, rnd, f"results do not hold one hash: {dict(results)}")
    return str(next(iter(hashes)))


def ledger_lookup(contract: _Evaluator) -> AgreedHashLookup:
    """An :data:`~synthreg.gan.bundle.AgreedHashLookup` reading ``GetRound`` through ``contract``."""

    def lookup(run: str, rnd: int) -> str:
        raw = contract.evaluate("GetRound", run, str(rnd))
        try:
            state = json.loads(raw)
        except ValueError as exc:
            raise AgreedHashError(run, rnd, f"GetRound returned non-JSON: {exc}") from exc
        return agreed_average_sha256(state, run, rnd)

    return lookup


@contextmanager
def open_ledger_lookup(home: Path, org: str) -> Iterator[AgreedHashLookup]:
    """A lookup on ``org``'s own peer, as its ``admin`` identity; the connection closes on exit."""
    from synthreg.ledger import ConnectError
    from synthreg.network.client import open_gateway
    from synthreg.network.profile import load_profile

    profile = load_profile(home)
    try:
        with open_gateway(profile, org, "admin") as gw:
            yield ledger_lookup(gw.network(CHANNEL).contract(CHAINCODE))
    except ConnectError as exc:
        raise ConnectError(f"{org} peer {profile.org(org).peer_endpoint}: {exc} "
                           f"(is the network up? `synthreg network status --home {home}`)") from exc


def _read_agreed(home: Path, org: str, run: str, rnd: int) -> str:
    with open_ledger_lookup(home, org) as lookup:
        return lookup(run, rnd)


def sample(
    model: Annotated[Path, typer.Option("--model", exists=True, file_okay=False,
                                        help="Model bundle directory (e.g. out/train-local/model).")],
    rows: Annotated[int, typer.Option("--rows", min=1, help="Number of synthetic records.")],
    out: Annotated[Path, typer.Option("--out", help="Output CSV.")],
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed (same seed, same records).")] = 0,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Refuse unless the weights' hash equals the average agreed on the ledger.")] = False,
    home: Annotated[Path, typer.Option("--home", envvar="SYNTHREG_NETWORK_HOME",
                                       help="Network state folder (holds profile.json); with --verify.")]
    = DEFAULT_HOME,
    org: Annotated[str, typer.Option("--org", help="MSP whose peer and admin identity read the ledger.")]
    = DEFAULT_ORG,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
) -> None:
    """Sample synthetic records from a model bundle (optionally verified against the ledger)."""
    expected: tuple[type[Exception], ...] = (BundleError, AgreedHashError, OSError)
    if verify:  # the ledger client is imported only when it is used
        from synthreg.ledger import LedgerError
        from synthreg.network.profile import ProfileError

        expected += (LedgerError, ProfileError)
    try:
        bundle = load_bundle(model)
        verification: BundleVerification | None = None
        if verify:  # the bundle's own checks come first; the ledger is read only if they pass
            verification = verify_bundle(bundle, lambda run, rnd: _read_agreed(home, org, run, rnd))
        synthetic = bundle.sample(rows, seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        synthetic.to_csv(out, index=False)
    except expected as exc:
        _fail(exc, as_json)
    summary: dict[str, Any] = {
        "out": str(out), "rows": len(synthetic), "seed": seed, "synthetic_sha256": sha256_hex(synthetic),
        "model": str(model), "run_id": bundle.run_id, "aggregation_run": bundle.aggregation_run,
        "round": bundle.round, "average_sha256": bundle.average_sha256_computed(),
        "schema_sha256": bundle.schema.hash(), "encoder_sha256": bundle.encoder.hash(),
        "verified": None if verification is None else verification.to_dict(),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
        return
    checked = (f"; verified: weights = agreed average of aggregation run {bundle.aggregation_run!r} "
               f"round {bundle.round} ({summary['average_sha256'][:16]}...)" if verification else "")
    console.print(f"wrote {len(synthetic)} synthetic records to {escape(str(out))} "
                  f"(model {escape(bundle.run_id)}, seed {seed}){escape(checked)}")


def _fail(exc: Exception, as_json: bool) -> NoReturn:
    message = str(exc)
    if isinstance(exc, OSError) and exc.filename:
        message = f"{exc.strerror or exc}: {exc.filename}"
    if as_json:
        typer.echo(json.dumps({"error": {"type": type(exc).__name__, "message": message}}))
    else:
        what = "refused" if isinstance(exc, BundleError) else "failed"
        console.print(f"[bold red]sample {what}:[/] {escape(message)}")
    raise typer.Exit(_FAILED) from exc
