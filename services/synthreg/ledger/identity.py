"""Client identities: an MSP id plus an X.509 certificate, and loading them from MSP folders.

Called at a process edge (an app's ``main``, a CLI command, a test fixture):
:func:`load_msp_identity` reads ``<msp_dir>/signcerts/*.pem`` and
``<msp_dir>/keystore/*`` (PKCS#8 EC key, unencrypted) and returns the
:class:`Identity` together with a low-S :data:`~synthreg.ledger.signing.Signer`;
both are then injected into :class:`~synthreg.ledger.gateway.Gateway`.
The app role (``synthreg.role``) travels in a Fabric-CA attribute extension
(OID 1.2.3.4.5.6.7.8.1, JSON ``{"attrs": {...}}``); :attr:`Identity.role`
reads it for display only — authorisation is the chaincode's job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.msp import identities_pb2

from synthreg.ledger.errors import IdentityError
from synthreg.ledger.signing import Signer, ecdsa_signer

ATTRIBUTE_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
"""Fabric CA's attribute extension (value: JSON ``{"attrs": {name: value}}``)."""

ROLE_ATTRIBUTE = "synthreg.role"


@dataclass(frozen=True)
class Identity:
    """An MSP member as Fabric sees it: ``msp_id`` and a PEM certificate."""

    msp_id: str
    cert_pem: bytes

    def serialize(self) -> bytes:
        """``msp.SerializedIdentity`` bytes: the ``creator`` of proposals and requests."""
        data: bytes = identities_pb2.SerializedIdentity(
            mspid=self.msp_id, id_bytes=self.cert_pem
        ).SerializeToString()
        return data

    @cached_property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def attributes(self) -> dict[str, str]:
        """Fabric-CA attributes embedded in the certificate (``{}`` if none)."""
        return cert_attributes(self.certificate)

    @property
    def role(self) -> str | None:
        """The ``synthreg.role`` attribute (``generator``, ``merger``, ...), if present."""
        return self.attributes.get(ROLE_ATTRIBUTE)

    def __str__(self) -> str:
        subject = self.certificate.subject.rfc4514_string()
        role = self.role
        return f"{self.msp_id}:{subject}" + (f" [{role}]" if role else "")


def cert_attributes(cert: x509.Certificate) -> dict[str, str]:
    """Attributes from the Fabric-CA extension; ``{}`` if absent or malformed."""
    try:
        ext = cert.extensions.get_extension_for_oid(ATTRIBUTE_OID)
    except x509.ExtensionNotFound:
        return {}
    value = ext.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    attrs = doc.get("attrs") if isinstance(doc, dict) else None
    if not isinstance(attrs, dict):
        return {}
    return {str(k): str(v) for k, v in attrs.items()}


def _single_file(folder: Path, pattern: str) -> Path:
    if not folder.is_dir():
        raise IdentityError(f"MSP folder {folder} does not exist")
    matches = sorted(p for p in folder.glob(pattern) if p.is_file())
    if len(matches) != 1:
        raise IdentityError(f"expected exactly one {pattern} in {folder}, found {len(matches)}")
    return matches[0]


def load_msp_identity(msp_id: str, msp_dir: Path) -> tuple[Identity, Signer]:
    """Load the identity and a low-S signer from a Fabric MSP folder.

    Raises :class:`IdentityError` if ``signcerts``/``keystore`` are missing or
    hold more than one file, the key is not an unencrypted EC key, or the key
    does not belong to the certificate. The key stays inside the returned
    signer's closure.
    """
    cert_path = _single_file(msp_dir / "signcerts", "*.pem")
    key_path = _single_file(msp_dir / "keystore", "*")
    cert_pem = cert_path.read_bytes()
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise IdentityError(f"cannot read identity in {msp_dir}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise IdentityError(f"{key_path} is not an EC private key")
    cert_key = cert.public_key()
    if (not isinstance(cert_key, ec.EllipticCurvePublicKey)
            or key.public_key().public_numbers() != cert_key.public_numbers()):
        raise IdentityError(f"{key_path} does not match certificate {cert_path}")
    return Identity(msp_id=msp_id, cert_pem=cert_pem), ecdsa_signer(key)
