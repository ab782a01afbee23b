"""X25519 + HKDF + AES-GCM envelopes and pairwise seeds."""

from __future__ import annotations

import dataclasses
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from synthreg.crypto.transport import (
    PURPOSE_RELEASE,
    PURPOSE_SHARE,
    Envelope,
    EnvelopeContext,
    EnvelopeError,
    KeyFormatError,
    RecipientKeyPair,
    derive_pairwise_seed,
    generate_recipient_keypair,
    load_public_key,
    open_envelope,
    seal_to,
)

CTX = EnvelopeContext(PURPOSE_SHARE, "cer-1", "Registry1MSP")
SECRET = b"\x07" * 34


@pytest.fixture()
def alice() -> RecipientKeyPair:
    return generate_recipient_keypair()


def test_round_trip_raw_and_pem_keys_and_json(alice: RecipientKeyPair) -> None:
    for pub in (alice.public_raw(), alice.public_pem()):
        env = seal_to(pub, SECRET, CTX)
        again = Envelope.from_dict(json.loads(json.dumps(env.to_dict())))
        assert bytes(open_envelope(alice, again, CTX)) == SECRET


def test_wrong_private_key_fails(alice: RecipientKeyPair) -> None:
    env = seal_to(alice.public_raw(), SECRET, CTX)
    with pytest.raises(EnvelopeError) as err:
        open_envelope(generate_recipient_keypair(), env, CTX)
    assert err.value.recipient_id == "Registry1MSP"


@pytest.mark.parametrize(
    "other",
    [
        EnvelopeContext(PURPOSE_RELEASE, "cer-1", "Registry1MSP"),
        EnvelopeContext(PURPOSE_SHARE, "cer-2", "Registry1MSP"),
        EnvelopeContext(PURPOSE_SHARE, "cer-1", "Registry2MSP"),
        EnvelopeContext(PURPOSE_SHARE, "cer-1Registry1MSP", ""),  # same concatenation, other fields
    ],
)
def test_wrong_context_fails(alice: RecipientKeyPair, other: EnvelopeContext) -> None:
    env = seal_to(alice.public_raw(), SECRET, CTX)
    with pytest.raises(EnvelopeError, match="GCM tag"):
        open_envelope(alice, env, other)


@pytest.mark.parametrize("field", ["ephemeral_public", "nonce", "ciphertext"])
def test_tampering_fails(alice: RecipientKeyPair, field: str) -> None:
    env = seal_to(alice.public_raw(), SECRET, CTX)
    raw = bytearray(getattr(env, field))
    raw[3] ^= 0x10
    with pytest.raises(EnvelopeError):
        open_envelope(alice, dataclasses.replace(env, **{field: bytes(raw)}), CTX)


def test_private_key_pem_round_trip(alice: RecipientKeyPair) -> None:
    again = RecipientKeyPair.from_private_pem(alice.private_pem())
    assert again.public_raw() == alice.public_raw()
    env = seal_to(alice.public_raw(), SECRET, CTX)
    assert bytes(open_envelope(again.private_key, env, CTX)) == SECRET


def test_key_loading_rejects_non_x25519() -> None:
    ed = Ed25519PrivateKey.generate()
    pem = ed.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KeyFormatError, match="X25519"):
        load_public_key(pem)
    with pytest.raises(KeyFormatError):
        load_public_key(b"garbage")
    priv_pem = ed.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFormatError):
        RecipientKeyPair.from_private_pem(priv_pem)
    with pytest.raises(KeyFormatError):
        Envelope.from_dict({"version": 1, "epk": "AA==", "nonce": "AA==", "ciphertext": ""})


def test_pairwise_seed_is_symmetric_and_context_separated(alice: RecipientKeyPair) -> None:
    bob = generate_recipient_keypair()
    carol = generate_recipient_keypair()
    ab = derive_pairwise_seed(alice, bob.public_raw(), b"gan/round/1")
    assert ab == derive_pairwise_seed(bob, alice.public_raw(), b"gan/round/1")
    assert len(ab) == 32
    assert ab != derive_pairwise_seed(alice, bob.public_raw(), b"gan/round/2")
    assert ab != derive_pairwise_seed(alice, carol.public_raw(), b"gan/round/1")
    with pytest.raises(KeyFormatError):
        derive_pairwise_seed(alice, bytes(32), b"x")  # low-order point: all-zero shared secret
