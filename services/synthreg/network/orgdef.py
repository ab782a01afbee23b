"""Public org definitions: what one registry gives the others to form or join a consortium.

``synthreg registry init`` writes one (``<home>/org-def.json``) from the registry's own,
freshly made CAs; it holds certificates, the host address, the port base and the X25519
public key the registry's audit-key share is encrypted to. No private key is ever in it.

:func:`load_org_defs` checks a set of definitions before anything is built from them and
raises :class:`OrgDefError` naming the file and the field: malformed or missing fields,
MSP IDs outside the consortium pattern, certificates that are not CAs or not issued by
the definition's own TLS CA, a host missing from a node certificate, two definitions
with the same MSP ID, CA or endpoint, and (``reachable=True``) a node endpoint that does
not complete a TLS handshake against the definition's TLS CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from synthreg.network.topology import ORG_PATTERN, Org

FORMAT = "synthreg-org-def/1"
FIELDS = ("format", "msp_id", "host", "base_port", "ca_cert", "tls_ca_cert", "orderer_tls_cert",
          "peer_tls_cert", "share_public_key")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                       r"[A-Za-z0-9])?)*$")


class OrgDefError(ValueError):
    """An org definition is refused; ``source`` is its file, ``field`` the offending field."""

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source, self.field, self.reason = source, field, reason
        super().__init__(f"{source}: field '{field}': {reason}")


@dataclass(frozen=True)
class OrgDef:
    msp_id: str
    host: str
    base_port: int
    ca_cert: str
    tls_ca_cert: str
    orderer_tls_cert: str
    peer_tls_cert: str
    share_public_key: str
    source: str = "<memory>"

    @property
    def org(self) -> Org:
        return Org.from_msp_id(self.msp_id, self.base_port, self.host)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "msp_id": self.msp_id, "host": self.host, "base_port": self.base_port,
                "ca_cert": self.ca_cert, "tls_ca_cert": self.tls_ca_cert,
                "orderer_tls_cert": self.orderer_tls_cert, "peer_tls_cert": self.peer_tls_cert,
                "share_public_key": self.share_public_key}

    @classmethod
    def from_dict(cls, data: Any, source: str) -> OrgDef:
        """Parse and check one definition on its own (see :func:`load_org_defs` for the set)."""
        if not isinstance(data, dict):
            raise OrgDefError(source, "(document)", "not a JSON object")
        for name in FIELDS:
            if name not in data:
                raise OrgDefError(source, name, "missing")
        extra = sorted(set(data) - set(FIELDS))
        if extra:
            raise OrgDefError(source, extra[0], "unknown field")
        if data["format"] != FORMAT:
            raise OrgDefError(source, "format", f"{data['format']!r} is not {FORMAT!r}")
        for name in FIELDS[1:]:
            if name != "base_port" and not isinstance(data[name], str):
                raise OrgDefError(source, name, "must be a string")
        if not ORG_PATTERN.match(data["msp_id"]):
            raise OrgDefError(source, "msp_id", f"{data['msp_id']!r} is not Registry<N>MSP (N in 1..99), "
                                                "the pattern the chaincodes admit")
        host = data["host"]
        if not is_host(host):
            raise OrgDefError(source, "host", f"{host!r} is neither an IP address nor a host name")
        port = data["base_port"]
        if not isinstance(port, int) or isinstance(port, bool) or port < 1024:
            raise OrgDefError(source, "base_port", f"{port!r} is not an integer >= 1024")
        d = cls(data["msp_id"], host, port, data["ca_cert"], data["tls_ca_cert"], data["orderer_tls_cert"],
                data["peer_tls_cert"], data["share_public_key"], source)
        if d.org.port("cc_keyvault") > 65535:
            raise OrgDefError(source, "base_port", f"{port} puts this org's ports above 65535")
        ca = _ca(d, "ca_cert")
        tls_ca = _ca(d, "tls_ca_cert")
        if ca.public_key() == tls_ca.public_key():
            raise OrgDefError(source, "tls_ca_cert", "is the identity CA; a separate TLS CA is expected")
        for name in ("orderer_tls_cert", "peer_tls_cert"):
            _leaf(d, name, tls_ca)
        try:
            key = serialization.load_pem_public_key(d.share_public_key.encode())
        except ValueError as exc:
            raise OrgDefError(source, "share_public_key", f"not a PEM public key ({exc})") from None
        if not isinstance(key, x25519.X25519PublicKey):
            raise OrgDefError(source, "share_public_key", "not an X25519 public key")
        return d


def is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOSTNAME.match(host))


def _cert(d: OrgDef, name: str) -> x509.Certificate:
    pem = getattr(d, name)
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise OrgDefError(d.source, name, f"not a PEM certificate ({exc})") from None
    if len(certs) != 1:
        raise OrgDefError(d.source, name, f"holds {len(certs)} certificates, expected 1")
    cert = certs[0]
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise OrgDefError(d.source, name, f"not valid now (valid {cert.not_valid_before_utc:%Y-%m-%d} to "
                                          f"{cert.not_valid_after_utc:%Y-%m-%d})")
    return cert


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _ca(d: OrgDef, name: str) -> x509.Certificate:
    cert = _cert(d, name)
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise OrgDefError(d.source, name, "not a CA certificate (basic constraints CA:TRUE missing)")
    if not _signed_by(cert, cert):
        raise OrgDefError(d.source, name, "not a self-signed ECDSA root")
    return cert


def _leaf(d: OrgDef, name: str, tls_ca: x509.Certificate) -> x509.Certificate:
    cert = _cert(d, name)
    if not _signed_by(cert, tls_ca):
        raise OrgDefError(d.source, name, "wrong certificate chain: not issued by this definition's tls_ca_cert")
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise OrgDefError(d.source, name, "has no subject alternative names") from None
    names = {str(v) for v in sans.get_values_for_type(x509.IPAddress)} | set(sans.get_values_for_type(x509.DNSName))
    if d.host not in names:
        raise OrgDefError(d.source, name, f"does not name host {d.host!r} (names: {sorted(names)})")
    return cert


def check_distinct(defs: list[OrgDef]) -> None:
    """No two definitions share an MSP ID, a CA, or a node endpoint."""
    seen: dict[tuple[str, str], str] = {}
    for d in defs:
        org = d.org
        keys = [("msp_id", d.msp_id), ("ca_cert", d.ca_cert.strip()), ("tls_ca_cert", d.tls_ca_cert.strip()),
                ("host", org.peer_endpoint), ("host", org.orderer_endpoint)]
        for name, value in keys:
            if (name, value) in seen:
                shown = value if name in ("msp_id", "host") else "the same certificate"
                raise OrgDefError(d.source, name, f"duplicate: {shown} is also in {seen[(name, value)]}")
            seen[(name, value)] = d.source


def check_reachable(d: OrgDef, timeout: float = 5.0) -> None:
    """The peer's and orderer's endpoints complete a TLS handshake and present a
    certificate of the definition's TLS CA for its host."""
    org = d.org
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as ca:
        ca.write(d.tls_ca_cert)
        ca.flush()
        ctx = ssl.create_default_context(cafile=ca.name)
        ctx.set_alpn_protocols(["h2"])
        for node, port in (("orderer", org.port("orderer")), ("peer", org.port("peer"))):
            try:
                with socket.create_connection((d.host, port), timeout=timeout) as sock, \
                        ctx.wrap_socket(sock, server_hostname=d.host):
                    pass
            except (OSError, ssl.SSLError) as exc:
                raise OrgDefError(d.source, "host", f"{node} endpoint {d.host}:{port} unreachable: {exc}") from None


def load_org_def(path: Path) -> OrgDef:
    import json

    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise OrgDefError(str(path), "(file)", "no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OrgDefError(str(path), "(document)", f"not JSON: {exc}") from None
    return OrgDef.from_dict(data, str(path))


def load_org_defs(paths: list[Path], *, reachable: bool = False) -> list[OrgDef]:
    """Every definition parsed and checked, then checked as a set; sorted by MSP ID."""
    defs = [load_org_def(p) for p in paths]
    check_distinct(defs)
    if reachable:
        for d in defs:
            check_reachable(d)
    return sorted(defs, key=lambda d: d.msp_id)
