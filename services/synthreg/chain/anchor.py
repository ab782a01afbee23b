"""Anchored step records: signed step statements off-ledger, one Merkle root per app per round.

The default run mode ``step_records: anchored`` (:attr:`synthreg.chain.runs.RunSpec.step_records`;
wire spec ``chaincode/spec/steps.md`` "Anchored step records"). Instead of submitting
``RecordGeneratorStep`` / ``RecordDiscriminatorStep`` per local iteration, each app
signs the same statement JSON with its own identity key (:data:`synthreg.ledger.Signer`,
injected) and hands it to its counterpart through the registry's workspace; the
counterpart verifies the signature with the signer's certificate and the artefact
against the statement's hash before using it. At the end of the round each app
commits the Merkle root of its statements (``RecordGeneratorRoot`` /
``RecordDiscriminatorRoot``).

Who calls: :mod:`synthreg.apps.anchored` (the generator and discriminator apps) and
the auditor (:mod:`synthreg.trail.verify`).

Where data lives: ``<workspace>/statements/<run>/<round>/<iter>.<role>.json`` (one
:class:`SignedStatement` each; kept for the auditor, never discarded with the
artefacts they name).

Merkle tree: RFC 6962 (leaf = sha256(0x00 || message), node = sha256(0x01 || l || r),
an unbalanced tree splits at the largest power of two below n), over the signed
messages of iterations 0..count-1 in order.

What fails when: :class:`StatementError` for a bad signature, a certificate of the
wrong role, or a malformed statement file.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from synthreg.ledger import Signer, cert_attributes
from synthreg.ledger.identity import ROLE_ATTRIBUTE
from synthreg.workspace import atomic_write

__all__ = ["SignedStatement", "StatementError", "StatementStore", "merkle_root", "sign_statement",
           "verify_statement"]

DOMAIN = b"synthreg step statement v1\n"


class StatementError(ValueError):
    """A signed step statement cannot be trusted (signature, signer's role, format)."""


@dataclass(frozen=True)
class SignedStatement:
    """One app's statement of one local iteration, signed by that app.

    ``statement`` is the canonical JSON (sorted keys) the strict mode submits;
    the signature covers :meth:`message`, which also binds the run, the
    registry and the role, so a statement cannot be replayed elsewhere."""

    run: str
    msp: str
    role: str
    statement: str
    signature: bytes

    def message(self) -> bytes:
        return DOMAIN + "\n".join((self.run, self.msp, self.role, self.statement)).encode()

    def leaf(self) -> bytes:
        return hashlib.sha256(b"\x00" + self.message()).digest()

    @property
    def fields(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.statement)
        return value

    def to_json(self) -> str:
        return json.dumps({"run": self.run, "msp": self.msp, "role": self.role, "statement": self.statement,
                           "signature": base64.b64encode(self.signature).decode()}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SignedStatement:
        try:
            d = json.loads(text)
            return cls(str(d["run"]), str(d["msp"]), str(d["role"]), str(d["statement"]),
                       base64.b64decode(d["signature"], validate=True))
        except (KeyError, TypeError, ValueError) as exc:
            raise StatementError(f"malformed signed statement: {exc}") from exc

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def sign_statement(run: str, msp: str, role: str, payload: Mapping[str, Any], signer: Signer) -> SignedStatement:
    """Sign ``payload`` (serialised exactly as the strict mode submits it)."""
    unsigned = SignedStatement(run, msp, role, json.dumps(payload, sort_keys=True), b"")
    return SignedStatement(run, msp, role, unsigned.statement,
                           signer(hashlib.sha256(unsigned.message()).digest()))


def verify_statement(st: SignedStatement, cert: x509.Certificate, run: str, msp: str, role: str) -> dict[str, Any]:
    """The statement's fields once ``st`` is ``role``'s statement of ``msp`` in ``run``,
    signed by ``cert``'s key, and ``cert`` carries that role; else :class:`StatementError`."""
    if (st.run, st.msp, st.role) != (run, msp, role):
        raise StatementError(f"statement of {st.run}/{st.msp}/{st.role}, expected {run}/{msp}/{role}")
    if cert_attributes(cert).get(ROLE_ATTRIBUTE) != role:
        raise StatementError(f"signer certificate is not a {role} identity")
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise StatementError("signer certificate has no EC key")
    try:
        key.verify(st.signature, hashlib.sha256(st.message()).digest(), ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        raise StatementError(f"bad signature on the {role} statement {st.statement[:120]}") from None
    try:
        return st.fields
    except ValueError as exc:
        raise StatementError(f"statement is not JSON: {exc}") from exc


def _mth(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def merkle_root(statements: Sequence[SignedStatement]) -> str:
    """Hex RFC 6962 Merkle tree head over the statements' leaves (at least one)."""
    if not statements:
        raise ValueError("a Merkle root needs at least one statement")
    return _mth([s.leaf() for s in statements]).hex()


class StatementStore:
    """Signed statements of one registry below ``<workspace root>/statements``."""

    def __init__(self, workspace_root: Path) -> None:
        self.root = workspace_root / "statements"

    def round_dir(self, run: str, rnd: int) -> Path:
        """The folder of round ``rnd``'s statements (and left-round markers)."""
        return self.root / quote(run, safe="") / str(rnd)

    def _path(self, run: str, rnd: int, it: int, role: str) -> Path:
        return self.round_dir(run, rnd) / f"{it}.{role}.json"

    def put(self, st: SignedStatement, rnd: int, it: int) -> None:
        atomic_write(self._path(st.run, rnd, it, st.role), st.to_json())

    def exists(self, run: str, rnd: int, it: int, role: str) -> bool:
        return self._path(run, rnd, it, role).exists()

    def get(self, run: str, rnd: int, it: int, role: str) -> SignedStatement | None:
        try:
            text = self._path(run, rnd, it, role).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return SignedStatement.from_json(text)

    def round(self, run: str, rnd: int, role: str, count: int) -> list[SignedStatement | None]:
        return [self.get(run, rnd, it, role) for it in range(count)]

    def put_update(self, run: str, rnd: int, fields: dict[str, Any]) -> None:
        """The generator's local update of round ``rnd`` (round and the two weight
        hashes): the registry's merger masks it and records it with its ``Submit``."""
        atomic_write(self.round_dir(run, rnd) / "update.json", json.dumps(fields, sort_keys=True))

    def update(self, run: str, rnd: int) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self.round_dir(run, rnd) / "update.json").read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None

    def _left_path(self, run: str, rnd: int, role: str) -> Path:
        return self.round_dir(run, rnd) / f"left.{role}"

    def mark_left(self, run: str, rnd: int, role: str) -> None:
        """``role`` left round ``rnd`` (it went on without the registry: t of n) and goes
        on to the next: its counterpart, waiting for its next statement, learns it here,
        since an anchored run has no per-step record that would move its head."""
        atomic_write(self._left_path(run, rnd, role), json.dumps({"round": rnd, "left": True}))

    def left(self, run: str, rnd: int, role: str) -> bool:
        return self._left_path(run, rnd, role).exists()
