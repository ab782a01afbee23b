"""X25519 key files: a registry's share key pair and the auditor's key pair.

Where keys live:

- Registry share keys: ``OrgProfile.share_key_dir`` (written by the network
  launcher): ``x25519_pk.pem`` (public, read by the ceremony host) and
  ``x25519_sk.pem`` (org-private, read only by that org's ``keys release``).
- The auditor's key pair: a directory the auditor owns, created by
  ``synthreg audit keygen --out DIR``: :data:`AUDITOR_SECRET_FILE` (mode 0600,
  never leaves the auditor) and :data:`AUDITOR_PUBLIC_FILE` (handed to the
  registries for ``keys release --auditor FILE``).

Auditor id: the first 16 hex characters (64 bits) of sha256 of the auditor's
32 raw X25519 public-key bytes (:func:`auditor_id`). Releases are keyed by it
on the ledger. It is a label, not the security boundary: every released share
is encrypted to the full public key, and the envelope context binds the id, so
another key with a colliding id (a 2^64 search) could still not open them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from synthreg.crypto.transport import (
    KeyFormatError,
    RecipientKeyPair,
    generate_recipient_keypair,
    load_public_key,
)
from synthreg.keys.errors import AuditKeyError, OutputExistsError

__all__ = [
    "AUDITOR_PUBLIC_FILE",
    "AUDITOR_SECRET_FILE",
    "ORG_PUBLIC_FILE",
    "ORG_SECRET_FILE",
    "AuditorKeyFiles",
    "AuditorPublicKey",
    "auditor_id",
    "generate_auditor_key",
    "load_auditor_keypair",
    "load_auditor_public_key",
    "load_org_keypair",
    "load_org_public_key",
    "write_private_file",
]

ORG_PUBLIC_FILE = "x25519_pk.pem"
ORG_SECRET_FILE = "x25519_sk.pem"
AUDITOR_PUBLIC_FILE = "auditor_x25519_pk.pem"
AUDITOR_SECRET_FILE = "auditor_x25519_sk.pem"
AUDITOR_ID_HEX = 16


def auditor_id(public_key: bytes | X25519PublicKey) -> str:
    """16 hex chars of sha256(raw 32-byte X25519 public key); PEM or raw accepted."""
    try:
        key = public_key if isinstance(public_key, X25519PublicKey) else load_public_key(public_key)
    except KeyFormatError as exc:
        raise AuditKeyError(f"not an X25519 public key: {exc}") from exc
    return hashlib.sha256(key.public_bytes_raw()).hexdigest()[:AUDITOR_ID_HEX]


@dataclass(frozen=True)
class AuditorPublicKey:
    """The auditor's public key as a registry sees it (raw bytes + derived id)."""

    raw: bytes

    @property
    def id(self) -> str:
        return auditor_id(self.raw)


@dataclass(frozen=True)
class AuditorKeyFiles:
    """What :func:`generate_auditor_key` wrote."""

    auditor_id: str
    public_key_file: Path
    secret_key_file: Path


def write_private_file(path: Path, data: bytes | bytearray) -> None:
    """Create ``path`` with mode 0600 (never overwriting) and write ``data``.

    Raises :class:`OutputExistsError` if it exists, ``OSError`` otherwise.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise OutputExistsError(str(path)) from exc
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def generate_auditor_key(out_dir: Path) -> AuditorKeyFiles:
    """Create a fresh auditor key pair in ``out_dir`` (created 0700 if missing).

    Refuses (:class:`OutputExistsError`) to overwrite an existing key file.
    """
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    sk_path, pk_path = out_dir / AUDITOR_SECRET_FILE, out_dir / AUDITOR_PUBLIC_FILE
    for p in (sk_path, pk_path):
        if p.exists():
            raise OutputExistsError(str(p))
    kp = generate_recipient_keypair()
    pem = bytearray(kp.private_pem())
    try:
        write_private_file(sk_path, pem)
    finally:
        pem[:] = bytes(len(pem))
    pk_path.write_bytes(kp.public_pem())
    return AuditorKeyFiles(auditor_id(kp.public_raw()), pk_path, sk_path)


def _load_keypair(path: Path, whose: str) -> RecipientKeyPair:
    try:
        return RecipientKeyPair.from_private_pem(path.read_bytes())
    except FileNotFoundError as exc:
        raise AuditKeyError(f"{whose} private key not found: {path}") from exc
    except KeyFormatError as exc:
        raise AuditKeyError(f"{whose} private key {path}: {exc}") from exc


def _load_public_raw(path: Path, whose: str) -> bytes:
    try:
        return load_public_key(path.read_bytes()).public_bytes_raw()
    except FileNotFoundError as exc:
        raise AuditKeyError(f"{whose} public key not found: {path}") from exc
    except KeyFormatError as exc:
        raise AuditKeyError(f"{whose} public key {path}: {exc}") from exc


def load_auditor_keypair(key_dir: Path) -> RecipientKeyPair:
    """The auditor's key pair from a ``keygen`` directory. Raises :class:`AuditKeyError`."""
    return _load_keypair(key_dir / AUDITOR_SECRET_FILE, "auditor")


def load_auditor_public_key(path: Path) -> AuditorPublicKey:
    """An auditor's public key from a PEM file (or a ``keygen`` directory)."""
    if path.is_dir():
        path = path / AUDITOR_PUBLIC_FILE
    return AuditorPublicKey(_load_public_raw(path, "auditor"))


def load_org_public_key(share_key_dir: Path) -> bytes:
    """A registry's 32 raw share-key bytes from its ``share_key_dir``."""
    return _load_public_raw(share_key_dir / ORG_PUBLIC_FILE, "registry share")


def load_org_keypair(share_key_dir: Path) -> RecipientKeyPair:
    """A registry's share key pair (org-private file) from its ``share_key_dir``."""
    return _load_keypair(share_key_dir / ORG_SECRET_FILE, "registry share")
