"""Local PKI for the development network: per-org CAs, node and app identities.

Called by the network launcher (`synthreg network up`) once per network home;
everything is written below ``<home>/crypto`` and reused on later runs. Each
registry org gets two CAs (identity CA and TLS CA, ECDSA P-256) and Fabric MSP
folders with NodeOUs, so that chaincode and policies can tell peers, orderers,
admins and clients apart. App identities (generator, discriminator, merger,
admin) carry their role as a Fabric-CA style certificate attribute
(``synthreg.role``, OID 1.2.3.4.5.6.7.8.1), readable in chaincode with
``cid.GetAttributeValue``.

Private keys are written with mode 0600 in ``keystore/`` folders (the place
the MSP layout names); they are never logged.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ATTRIBUTE_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
"""Fabric CA's certificate extension for attributes (JSON ``{"attrs": {...}}``)."""

ROLE_ATTRIBUTE = "synthreg.role"
APP_ROLES = ("admin", "generator", "discriminator", "merger", "auditor")
_VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its PKCS#8 private key."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, org: str, ou: str | None = None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
    ]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, *, ca: bool, key_encipherment: bool
) -> x509.CertificateBuilder:
    """The parts every certificate here shares: validity, constraints, key usage, SKI."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=ca, crl_sign=ca, content_commitment=False,
                key_encipherment=key_encipherment, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


_BOTH_AUTH = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])


def make_ca(common_name: str, org: str) -> KeyPair:
    """A self-signed ECDSA P-256 CA (identity or TLS) for one org."""
    key = _new_key()
    name = _name(common_name, org)
    cert = (
        _builder(name, name, key, ca=True, key_encipherment=True)
        .add_extension(_BOTH_AUTH, critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue(
    ca: KeyPair,
    common_name: str,
    org: str,
    *,
    ou: str | None = None,
    hosts: tuple[str, ...] = (),
    tls: bool = False,
    attributes: dict[str, str] | None = None,
) -> KeyPair:
    """Issue a leaf certificate signed by ``ca``.

    ``ou`` is the NodeOU (peer, orderer, admin, client); ``hosts`` become DNS or
    IP subject alternative names (TLS certs); ``attributes`` are embedded as a
    Fabric-CA attribute extension.
    """
    key = _new_key()
    builder = _builder(_name(common_name, org, ou), ca.cert.subject, key, ca=False, key_encipherment=tls)
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
    )
    if tls:
        builder = builder.add_extension(_BOTH_AUTH, critical=False)
    if hosts:
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if attributes:
        payload = json.dumps({"attrs": attributes}, sort_keys=True).encode()
        builder = builder.add_extension(x509.UnrecognizedExtension(ATTRIBUTE_OID, payload), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _node_ous_config() -> bytes:
    ous = {
        "NodeOUs": {
            "Enable": True,
            **{
                f"{role.capitalize()}OUIdentifier": {
                    "Certificate": "cacerts/ca.pem",
                    "OrganizationalUnitIdentifier": role,
                }
                for role in ("client", "peer", "admin", "orderer")
            },
        }
    }
    return yaml.safe_dump(ous, sort_keys=False).encode()


def write_msp(
    msp_dir: Path, ca: KeyPair, tls_ca: KeyPair, identity: KeyPair | None = None
) -> None:
    """Lay out a Fabric MSP folder (verifying MSP when ``identity`` is None)."""
    _write(msp_dir / "cacerts" / "ca.pem", ca.cert_pem)
    _write(msp_dir / "tlscacerts" / "tlsca.pem", tls_ca.cert_pem)
    _write(msp_dir / "config.yaml", _node_ous_config())
    if identity is not None:
        _write(msp_dir / "signcerts" / "cert.pem", identity.cert_pem)
        _write(msp_dir / "keystore" / "priv_sk", identity.key_pem, private=True)


def write_tls(tls_dir: Path, tls_ca: KeyPair, pair: KeyPair) -> None:
    """Lay out a TLS folder: ca.crt, server.crt, server.key."""
    _write(tls_dir / "ca.crt", tls_ca.cert_pem)
    _write(tls_dir / "server.crt", pair.cert_pem)
    _write(tls_dir / "server.key", pair.key_pem, private=True)


def load_pair(cert_path: Path, key_path: Path) -> KeyPair:
    return KeyPair(cert_path.read_bytes(), key_path.read_bytes())


@dataclass(frozen=True)
class OrgCrypto:
    """Paths of one org's generated material (see :func:`generate_org`)."""

    root: Path
    msp_id: str
    domain: str

    @property
    def msp_dir(self) -> Path:
        return self.root / "msp"

    @property
    def tls_ca_cert(self) -> Path:
        return self.root / "tlsca" / "ca.pem"

    def node_dir(self, node: str) -> Path:
        return self.root / "nodes" / f"{node}.{self.domain}"

    def user_msp(self, role: str) -> Path:
        return self.root / "users" / role / "msp"

    @property
    def share_key_dir(self) -> Path:
        """X25519 key pair with which this org receives its audit-key share."""
        return self.root / "users" / "admin" / "share-key"

    def tls_pair(self, name: str) -> KeyPair:
        """A TLS pair issued by this org's TLS CA (e.g. chaincode servers)."""
        d = self.root / "tls-extra" / name
        return load_pair(d / "server.crt", d / "server.key")


def generate_org(root: Path, msp_id: str, domain: str, nodes: tuple[str, ...] = ("peer0", "orderer0"),
                 extra_tls: dict[str, tuple[str, ...]] | None = None,
                 node_hosts: tuple[str, ...] = ()) -> OrgCrypto:
    """Create (or reuse) all material for one org below ``root``.

    ``node_hosts`` are extra subject alternative names of the peer's and orderer's TLS
    certificates: the address of the registry's host, which the others dial.

    Idempotent: an org whose CA already exists is left as it is, so restarting
    the network keeps identities stable.
    """
    org = OrgCrypto(root, msp_id, domain)
    ca_dir = root / "ca"
    if (ca_dir / "ca.pem").exists():
        return org
    ca = make_ca(f"ca.{domain}", msp_id)
    tls_ca = make_ca(f"tlsca.{domain}", msp_id)
    write_msp(org.msp_dir, ca, tls_ca)
    for name in nodes:
        host = f"{name}.{domain}"
        ou = "orderer" if name.startswith("orderer") else "peer"
        node_dir = org.node_dir(name)
        write_msp(node_dir / "msp", ca, tls_ca, issue(ca, host, msp_id, ou=ou))
        write_tls(node_dir / "tls", tls_ca,
                  issue(tls_ca, host, msp_id, tls=True,
                        hosts=tuple(dict.fromkeys((host, "localhost", "127.0.0.1", *node_hosts)))))
    # Fabric admin (OU=admin) for lifecycle and channel operations.
    write_msp(root / "users" / "fabric-admin" / "msp", ca, tls_ca,
              issue(ca, f"Admin@{domain}", msp_id, ou="admin"))
    for role in APP_ROLES:
        write_msp(org.user_msp(role), ca, tls_ca,
                  issue(ca, f"{role}@{domain}", msp_id, ou="client",
                        attributes={ROLE_ATTRIBUTE: role, "hf.EnrollmentID": f"{role}@{domain}"}))
    # The org's X25519 key for receiving its audit-key share (DESIGN.md §5):
    # private half beside the admin's MSP keystore, mode 0600.
    from synthreg.crypto.transport import generate_recipient_keypair

    share_key = generate_recipient_keypair()
    _write(org.share_key_dir / "x25519_sk.pem", share_key.private_pem(), private=True)
    _write(org.share_key_dir / "x25519_pk.pem", share_key.public_pem())
    for name, hosts in (extra_tls or {}).items():
        write_tls(root / "tls-extra" / name, tls_ca,
                  issue(tls_ca, name, msp_id, hosts=hosts, tls=True))
    _write(org.tls_ca_cert, tls_ca.cert_pem)
    # The CA keys stay in the org's own folder (like cryptogen's ca/priv_sk) so
    # more identities can be issued later; written last: its presence marks
    # the org as complete.
    _write(root / "tlsca" / "priv_sk", tls_ca.key_pem, private=True)
    _write(ca_dir / "priv_sk", ca.key_pem, private=True)
    _write(ca_dir / "ca.pem", ca.cert_pem)
    return org
