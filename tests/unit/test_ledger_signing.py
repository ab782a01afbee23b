"""Signer and identity tests: low-S DER ECDSA, high-S helper, MSP folder loading."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from fabric_protos.msp import identities_pb2

from synthreg.ledger import IdentityError, cert_attributes, ecdsa_signer, high_s, is_low_s, load_msp_identity
from synthreg.ledger.identity import ATTRIBUTE_OID
from synthreg.ledger.signing import P256_ORDER, curve_order, digest, to_low_s
from synthreg.ledger.testing import make_test_identity

PREHASHED = ec.ECDSA(Prehashed(hashes.SHA256()))


def _verify(public_key: ec.EllipticCurvePublicKey, signature: bytes, message_digest: bytes) -> None:
    public_key.verify(signature, message_digest, PREHASHED)


def test_signatures_verify_with_cert_key_and_are_always_low_s() -> None:
    identity, key = make_test_identity()
    sign = ecdsa_signer(key)
    public_key = identity.certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    raw_high = 0
    for i in range(500):
        d = digest(f"message {i}".encode())
        sig = sign(d)
        _verify(public_key, sig, d)
        assert is_low_s(sig)
        # The unnormalised library output is high-S about half the time, so the
        # normalisation is really exercised.
        raw_high += not is_low_s(key.sign(d, PREHASHED))
    assert 150 < raw_high < 350


def test_high_s_is_valid_ecdsa_but_not_low_s() -> None:
    identity, key = make_test_identity()
    public_key = identity.certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    d = digest(b"payload")
    low = ecdsa_signer(key)(d)
    high = high_s(low)
    assert not is_low_s(high)
    _verify(public_key, high, d)  # still a valid signature: only Fabric's rule rejects it
    r_low, s_low = decode_dss_signature(low)
    r_high, s_high = decode_dss_signature(high)
    assert r_low == r_high and s_low + s_high == P256_ORDER
    assert to_low_s(high) == low
    assert high_s(high) == high


def test_p384_orders_normalise_to_valid_signatures() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    order = curve_order(key.curve)
    d = digest(b"x")
    for _ in range(40):
        sig = ecdsa_signer(key)(d)
        assert is_low_s(sig, order)
        key.public_key().verify(sig, d, PREHASHED)
        key.public_key().verify(high_s(sig, order), d, PREHASHED)


def test_signer_rejects_non_digest_and_tampered_digest_fails() -> None:
    identity, key = make_test_identity()
    sign = ecdsa_signer(key)
    with pytest.raises(ValueError, match="32-byte"):
        sign(b"not a digest")
    sig = sign(digest(b"a"))
    public_key = identity.certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    with pytest.raises(InvalidSignature):
        _verify(public_key, sig, digest(b"b"))


def test_serialize_is_msp_serialized_identity_and_role_is_read() -> None:
    identity, _ = make_test_identity("Registry2MSP", role="merger")
    parsed = identities_pb2.SerializedIdentity.FromString(identity.serialize())
    assert parsed.mspid == "Registry2MSP" and parsed.id_bytes == identity.cert_pem
    assert identity.role == "merger"
    assert "Registry2MSP" in str(identity) and "[merger]" in str(identity)
    no_role, _ = make_test_identity(role=None)
    assert no_role.role is None and no_role.attributes == {}


def test_malformed_attribute_extension_yields_no_attributes() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "x")])
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.UnrecognizedExtension(ATTRIBUTE_OID, b"{not json"), critical=False)
        .sign(key, hashes.SHA256())
    )
    assert cert_attributes(cert) == {}


def _write_msp(msp_dir: Path, cert_pem: bytes, key: ec.EllipticCurvePrivateKey) -> None:
    (msp_dir / "signcerts").mkdir(parents=True)
    (msp_dir / "keystore").mkdir()
    (msp_dir / "signcerts" / "cert.pem").write_bytes(cert_pem)
    (msp_dir / "keystore" / "priv_sk").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    )


def test_load_msp_identity_round_trip(tmp_path: Path) -> None:
    identity, key = make_test_identity("Registry3MSP", role="discriminator")
    _write_msp(tmp_path / "msp", identity.cert_pem, key)
    loaded, sign = load_msp_identity("Registry3MSP", tmp_path / "msp")
    assert loaded == identity and loaded.role == "discriminator"
    d = digest(b"hello")
    key.public_key().verify(sign(d), d, PREHASHED)


def test_load_msp_identity_rejects_mismatched_key_and_missing_files(tmp_path: Path) -> None:
    identity, _ = make_test_identity()
    _, other_key = make_test_identity()
    _write_msp(tmp_path / "msp", identity.cert_pem, other_key)
    with pytest.raises(IdentityError, match="does not match"):
        load_msp_identity("Registry1MSP", tmp_path / "msp")
    with pytest.raises(IdentityError, match="does not exist"):
        load_msp_identity("Registry1MSP", tmp_path / "nothing")
    (tmp_path / "msp" / "keystore" / "second_sk").write_text("x")
    with pytest.raises(IdentityError, match="exactly one"):
        load_msp_identity("Registry1MSP", tmp_path / "msp")

