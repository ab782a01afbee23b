"""A registry's local, content-addressed workspace (DESIGN.md §2).

Shared by one registry's apps only (generator, discriminator, merger): fake
batches, discriminator feedback, weight snapshots, CKKS audit ciphertexts.
Artefacts are stored under their SHA-256; the ledger records only the hash, so
the ledger stays the source of truth and a tampered file is detected on read.
Arrays (batches, feedback, weight vectors) are stored as
:func:`synthreg.data.hashing.array_bytes`, so their name here is
:func:`~synthreg.data.hashing.array_sha256` — the hash the ledger records.
Writes are atomic (temp file + rename): a crash never leaves a half artefact.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path


class WorkspaceError(RuntimeError):
    """Base of workspace failures."""


class ArtefactNotFoundError(WorkspaceError):
    def __init__(self, root: Path, digest: str) -> None:
        self.root, self.digest = root, digest
        super().__init__(f"artefact {digest} not in workspace {root}")


class TamperedArtefactError(WorkspaceError):
    """The bytes stored under a hash no longer hash to it."""

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(f"artefact {path} is tampered: expected sha256 {expected}, found {actual}")


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (folders made) through a temp file beside it and a
    rename: a reader, or another app of the registry, never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Workspace:
    """Content-addressed blobs below ``root`` (``<root>/<h[:2]>/<h>``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise WorkspaceError(f"not a sha256 hex digest: {digest!r}")
        return self.root / digest[:2] / digest

    def put(self, data: bytes) -> str:
        """Store ``data``; return its sha256 (idempotent)."""
        digest = sha256_hex(data)
        path = self._path(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{digest}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return digest

    def get(self, digest: str) -> bytes:
        """The bytes stored under ``digest``, verified against it."""
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtefactNotFoundError(self.root, digest) from None
        actual = sha256_hex(data)
        if actual != digest:
            raise TamperedArtefactError(path, digest, actual)
        return data

    def discard(self, digest: str) -> None:
        """Remove the artefact stored under ``digest`` if present (its hash stays
        wherever it was recorded)."""
        self._path(digest).unlink(missing_ok=True)

    def __contains__(self, digest: str) -> bool:
        return self._path(digest).exists()
