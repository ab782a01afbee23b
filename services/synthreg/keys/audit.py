"""Auditor side: collect released shares from the ledger, unseal, prove it.

Who calls: ``synthreg audit unseal --key DIR --out DIR [--as-org MSP]`` with a
:class:`~synthreg.keys.vault.KeyVault` that can *read* channel ``keys``
(``GetCeremonyRecord``, ``ListReleases``, both open to any consortium role)
and the auditor's own X25519 key pair (``synthreg audit keygen``).

On the local dev network the auditor reads through the ``auditor`` app
identity of a registry org (default Registry1MSP). That is this network's
stand-in for an external auditor's read access (its own MSP or a read-only
peer in production): the identity only reads public state — the releases
are encrypted to the auditor's key, which no registry holds.

:func:`unseal_audit_key`:

1. ``GetCeremonyRecord``, ``ListExtensions`` (a registry that joined later holds
   a share once its extension is complete: its index and commitment join the
   ceremony's) and ``ListReleases(auditor_id)``; the public context and test
   ciphertext must match their recorded hashes;
2. every release is opened with the auditor's private key, its index must be
   the org's recorded index, and it must match its published commitment —
   otherwise :class:`~synthreg.keys.errors.ReleasedShareError` names the org
   and share (strict: one bad release fails the unseal, even if t good ones
   exist, so a misbehaving registry is never silently skipped);
3. fewer than t valid releases: :class:`~synthreg.keys.errors.NotEnoughReleasesError`
   (have / need / who released) — nothing is recombined, no garbage key;
4. recombine, unseal (the GCM tag checks the key), check the secret context
   belongs to the recorded public context, decrypt the ceremony's test
   ciphertext (:func:`synthreg.crypto.ceremony.verify_audit_proof`); a failure
   is :class:`~synthreg.keys.errors.UnsealFailedError`;
5. only then write :data:`SECRET_CONTEXT_FILE` (mode 0600) and
   :data:`SUMMARY_FILE` into ``out_dir`` (created 0700) — nowhere else. An
   existing file is never overwritten (:class:`~synthreg.keys.errors.OutputExistsError`,
   checked before any work).

:func:`unseal_in_memory` is steps 1–4 alone: the secret context is returned,
never written. ``synthreg demo`` uses it (the recombined secret is only needed
for the verification that follows; issue 10, item 7c); ``synthreg audit unseal``
writes the file because an auditor verifies in a later command.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from synthreg.crypto.ceremony import AuditProofError, open_released_share, recover_audit_key, verify_audit_proof
from synthreg.crypto.ckks import (
    AUDIT_PARAMS,
    CkksError,
    CkksParams,
    SecretContext,
    load_public_context,
    load_secret_context,
)
from synthreg.crypto.seal import UnsealError
from synthreg.crypto.shamir import ShamirError, Share
from synthreg.crypto.transport import EnvelopeError, RecipientKeyPair
from synthreg.keys.errors import (
    NoCeremonyError,
    NotEnoughReleasesError,
    OutputExistsError,
    RecordFormatError,
    ReleasedShareError,
    UnsealFailedError,
    VaultPreconditionError,
)
from synthreg.keys.keyfiles import auditor_id, write_private_file
from synthreg.keys.records import CeremonyRecord, ReleaseRecord
from synthreg.keys.vault import KeyVault

__all__ = [
    "SECRET_CONTEXT_FILE",
    "SUMMARY_FILE",
    "UnsealSummary",
    "collect_released_shares",
    "load_unsealed_secret",
    "unseal_audit_key",
    "unseal_in_memory",
]

SECRET_CONTEXT_FILE = "audit_secret_context.bin"
SUMMARY_FILE = "unseal_summary.json"


@dataclass(frozen=True)
class UnsealSummary:
    """What the auditor proved (written as :data:`SUMMARY_FILE`, printed with ``--json``)."""

    ceremony_id: str
    auditor_id: str
    t: int
    n: int
    public_context_hash: str
    releases: list[dict[str, Any]]
    shares_used: list[int]
    test_ciphertext_sha256: str
    proof_max_abs_error: float
    secret_context_file: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_record(record: CeremonyRecord) -> None:
    if hashlib.sha256(record.test_ciphertext).hexdigest() != record.test_ciphertext_sha256:
        raise RecordFormatError("ceremony record", "test ciphertext does not match its recorded sha256")
    try:
        public = load_public_context(record.public_context)
    except CkksError as exc:
        raise RecordFormatError("ceremony record", f"public context: {exc}") from exc
    if public.hash != record.public_context_hash:
        raise RecordFormatError("ceremony record", "public context does not match its recorded hash")


def collect_released_shares(
    record: CeremonyRecord, releases: tuple[ReleaseRecord, ...], auditor: RecipientKeyPair
) -> list[tuple[ReleaseRecord, Share]]:
    """Open and check every release to ``auditor`` (steps 2–3 of the module doc).

    Raises :class:`ReleasedShareError` for the first bad release (by org order)
    and :class:`NotEnoughReleasesError` for fewer than ``record.t``.
    """
    aid = auditor_id(auditor.public_raw())
    out: list[tuple[ReleaseRecord, Share]] = []
    for rel in releases:
        expected_index = record.share_index.get(rel.org)

        def bad(reason: str, rel: ReleaseRecord = rel) -> ReleasedShareError:
            return ReleasedShareError(aid, rel.org, rel.share_index, reason)

        if rel.ceremony_id != record.ceremony_id or rel.auditor != aid:
            raise bad(f"recorded for ceremony {rel.ceremony_id} / auditor {rel.auditor}")
        if expected_index is None or expected_index != rel.share_index:
            raise bad(f"{rel.org} holds share {expected_index} of the ceremony, release says {rel.share_index}")
        try:
            share = open_released_share(auditor, rel.envelope, record.ceremony_id, aid)
        except EnvelopeError as exc:
            raise bad(f"cannot open with this auditor's key ({exc.reason})") from exc
        if share.index != expected_index:
            raise bad(f"decrypts to share index {share.index}")
        try:
            record.commitments.check(share)
        except ShamirError as exc:
            raise bad("does not match its published commitment") from exc
        out.append((rel, share))
    if len(out) < record.t:
        raise NotEnoughReleasesError(aid, len(out), record.t, [rel.org for rel, _ in out])
    return out


def _check_out_dir(out_dir: Path) -> None:
    for name in (SECRET_CONTEXT_FILE, SUMMARY_FILE):
        if (out_dir / name).exists():
            raise OutputExistsError(str(out_dir / name))


def unseal_in_memory(
    vault: KeyVault, auditor: RecipientKeyPair, *, params: CkksParams = AUDIT_PARAMS
) -> tuple[SecretContext, UnsealSummary]:
    """Steps 1–4 of the module docstring: the audit key's secret context, in memory only.

    The summary's ``secret_context_file`` is empty: nothing is written. Raises the
    errors of those steps.
    """
    aid = auditor_id(auditor.public_raw())
    try:
        record = vault.get_ceremony_record()
    except VaultPreconditionError as exc:
        raise NoCeremonyError(exc.detail) from exc
    _check_record(record)
    commitments, share_index = vault.list_extensions().widen(record.commitments, record.share_index)
    record = replace(record, commitments=commitments, share_index=share_index)
    listed = vault.list_releases(aid)
    if listed.ceremony_id != record.ceremony_id:
        raise RecordFormatError("release list", f"for ceremony {listed.ceremony_id}, recorded {record.ceremony_id}")
    collected = collect_released_shares(record, listed.releases, auditor)
    shares = [s for _, s in collected]
    try:
        secret = recover_audit_key(shares, record.commitments, record.sealed_key, record.public_context_hash,
                                   record.t, record.n, params=params)
        max_err = verify_audit_proof(secret, record.test_ciphertext, record.ceremony_id)
    except (ShamirError, UnsealError, CkksError, AuditProofError, ValueError) as exc:
        raise UnsealFailedError(record.ceremony_id, str(exc)) from exc
    collected.clear()
    del shares
    summary = UnsealSummary(
        ceremony_id=record.ceremony_id,
        auditor_id=aid,
        t=record.t,
        n=record.n,
        public_context_hash=record.public_context_hash,
        releases=[rel.summary() for rel in listed.releases],
        shares_used=sorted(rel.share_index for rel in listed.releases)[: record.t],
        test_ciphertext_sha256=record.test_ciphertext_sha256,
        proof_max_abs_error=max_err,
        secret_context_file="",
    )
    return secret, summary


def unseal_audit_key(
    vault: KeyVault, auditor: RecipientKeyPair, out_dir: Path, *, params: CkksParams = AUDIT_PARAMS
) -> UnsealSummary:
    """Unseal the audit key from the shares released to ``auditor`` into ``out_dir``.

    See the module docstring for the steps and the error of each.
    """
    _check_out_dir(out_dir)
    secret, summary = unseal_in_memory(vault, auditor, params=params)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret_path = out_dir / SECRET_CONTEXT_FILE
    buf = secret.serialize()
    try:
        write_private_file(secret_path, buf)
    finally:
        buf[:] = bytes(len(buf))
    del secret
    summary = replace(summary, secret_context_file=str(secret_path))
    write_private_file(out_dir / SUMMARY_FILE, json.dumps(summary.to_dict(), indent=2).encode("utf-8"))
    return summary


def load_unsealed_secret(out_dir: Path, public_context_hash: str, params: CkksParams = AUDIT_PARAMS) -> SecretContext:
    """The secret context an earlier :func:`unseal_audit_key` wrote to ``out_dir``.

    For the audit replay (decrypt every recorded update). Checks it belongs to
    ``public_context_hash`` (from the ledger); raises :class:`UnsealFailedError`
    otherwise, ``FileNotFoundError`` if never unsealed there.
    """
    buf = bytearray((out_dir / SECRET_CONTEXT_FILE).read_bytes())
    try:
        secret = load_secret_context(buf, params)
    except CkksError as exc:
        raise UnsealFailedError("?", f"{out_dir / SECRET_CONTEXT_FILE}: {exc}") from exc
    finally:
        buf[:] = bytes(len(buf))
    if secret.public_context_hash != public_context_hash:
        raise UnsealFailedError("?", f"{out_dir / SECRET_CONTEXT_FILE} belongs to public context "
                                     f"{secret.public_context_hash}, not {public_context_hash}")
    return secret
