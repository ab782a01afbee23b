"""Anchored step records, off-ledger half: signed statements, Merkle roots, the store."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from synthreg.chain.anchor import (
    SignedStatement,
    StatementError,
    StatementStore,
    merkle_root,
    sign_statement,
    verify_statement,
)
from synthreg.ledger.identity import ATTRIBUTE_OID
from synthreg.ledger.signing import ecdsa_signer


def _identity(role: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, role)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.UnrecognizedExtension(ATTRIBUTE_OID, json.dumps(
                {"attrs": {"synthreg.role": role}}).encode()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


STEP = {"round": 0, "iter": 1, "fake_sha256": "a" * 64, "g_weights_sha256": "b" * 64, "noise_seed": 7,
        "batch_size": 20}


def test_a_signed_statement_verifies_and_is_the_strict_json() -> None:
    key, cert = _identity("generator")
    st = sign_statement("run-1", "Registry1MSP", "generator", STEP, ecdsa_signer(key))
    assert st.statement == json.dumps(STEP, sort_keys=True)  # what RecordGeneratorStep would carry
    again = SignedStatement.from_json(st.to_json())
    assert verify_statement(again, cert, "run-1", "Registry1MSP", "generator") == STEP


def test_altered_replayed_or_foreign_statements_are_refused() -> None:
    key, cert = _identity("generator")
    _dkey, dcert = _identity("discriminator")
    st = sign_statement("run-1", "Registry1MSP", "generator", STEP, ecdsa_signer(key))
    forged = SignedStatement(st.run, st.msp, st.role, st.statement.replace("a" * 64, "c" * 64), st.signature)
    with pytest.raises(StatementError, match="bad signature"):
        verify_statement(forged, cert, "run-1", "Registry1MSP", "generator")
    with pytest.raises(StatementError, match="expected run-2"):  # another run: not replayable
        verify_statement(st, cert, "run-2", "Registry1MSP", "generator")
    with pytest.raises(StatementError, match="not a generator identity"):
        verify_statement(st, dcert, "run-1", "Registry1MSP", "generator")
    rebound = SignedStatement("run-2", st.msp, st.role, st.statement, st.signature)  # the signature binds the run
    with pytest.raises(StatementError, match="bad signature"):
        verify_statement(rebound, cert, "run-2", "Registry1MSP", "generator")
    with pytest.raises(StatementError, match="malformed"):
        SignedStatement.from_json('{"run": "r"}')


def test_merkle_root_is_rfc6962_and_order_sensitive() -> None:
    key, _cert = _identity("generator")
    sts = [sign_statement("r", "M", "generator", {**STEP, "iter": i}, ecdsa_signer(key)) for i in range(5)]
    leaves = [hashlib.sha256(b"\x00" + s.message()).digest() for s in sts]

    def node(a: bytes, b: bytes) -> bytes:
        return hashlib.sha256(b"\x01" + a + b).digest()
    want = node(node(node(leaves[0], leaves[1]), node(leaves[2], leaves[3])), leaves[4])
    assert merkle_root(sts) == want.hex()
    assert merkle_root(sts[:1]) == leaves[0].hex()
    assert merkle_root(sts[::-1]) != merkle_root(sts)
    with pytest.raises(ValueError):
        merkle_root([])


def test_store_round_trip(tmp_path: Path) -> None:
    key, _cert = _identity("discriminator")
    store = StatementStore(tmp_path)
    st = sign_statement("run/1", "M", "discriminator", {"round": 2, "iter": 0}, ecdsa_signer(key))
    assert store.get("run/1", 2, 0, "discriminator") is None
    store.put(st, 2, 0)
    assert store.exists("run/1", 2, 0, "discriminator")
    assert store.get("run/1", 2, 0, "discriminator") == st
    assert store.round("run/1", 2, "discriminator", 2) == [st, None]


def test_a_generator_that_left_a_round_says_so_beside_its_statements(tmp_path: Path) -> None:
    """In an anchored run no per-step record moves G's head, so D, waiting for G's next
    statement of a round G left (t of n), learns it from this marker (a CI host-cut run
    once hung with G waiting for D's statement of the next round and D for G's)."""
    store = StatementStore(tmp_path)
    assert not store.left("run/1", 4, "generator")
    store.mark_left("run/1", 4, "generator")
    store.mark_left("run/1", 4, "generator")  # a restarted G decides it again
    assert store.left("run/1", 4, "generator")
    assert not store.left("run/1", 5, "generator") and not store.left("run/1", 4, "discriminator")
    assert store.round("run/1", 4, "generator", 3) == [None, None, None]  # not a statement
