"""AES-256-GCM sealing of the secret audit context."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from synthreg.crypto.seal import SealedKey, SealedKeyFormatError, UnsealError, seal, unseal

HASH = "ab" * 32
SECRET = b"secret context bytes " * 50


@pytest.fixture()
def key() -> bytes:
    return os.urandom(32)


def test_round_trip_via_json(key: bytes) -> None:
    sealed = seal(bytearray(SECRET), bytearray(key), HASH, 2, 3)
    again = SealedKey.from_dict(json.loads(json.dumps(sealed.to_dict())))
    assert again == sealed
    out = unseal(again, key, expected_public_context_hash=HASH, expected_t=2, expected_n=3)
    assert isinstance(out, bytearray) and bytes(out) == SECRET


def test_wrong_key_fails(key: bytes) -> None:
    sealed = seal(SECRET, key, HASH, 2, 3)
    with pytest.raises(UnsealError, match="GCM tag"):
        unseal(sealed, os.urandom(32))
    with pytest.raises(UnsealError, match="32 bytes"):
        unseal(sealed, key[:16])


@pytest.mark.parametrize(
    "change",
    [
        {"t": 3},
        {"n": 4},
        {"public_context_hash": "cd" * 32},
    ],
)
def test_relabelled_blob_fails_tag(key: bytes, change: dict[str, object]) -> None:
    sealed = dataclasses.replace(seal(SECRET, key, HASH, 2, 3), **change)  # type: ignore[arg-type]
    with pytest.raises(UnsealError, match="GCM tag"):
        unseal(sealed, key)


def test_tampered_ciphertext_or_nonce_fails(key: bytes) -> None:
    sealed = seal(SECRET, key, HASH, 2, 3)
    ct = bytearray(sealed.ciphertext)
    ct[5] ^= 1
    with pytest.raises(UnsealError):
        unseal(dataclasses.replace(sealed, ciphertext=bytes(ct)), key)
    with pytest.raises(UnsealError):
        unseal(dataclasses.replace(sealed, nonce=bytes(12)), key)


def test_expected_labels_are_checked_first(key: bytes) -> None:
    sealed = seal(SECRET, key, HASH, 2, 3)
    with pytest.raises(UnsealError, match="t=2, caller expects 3"):
        unseal(sealed, key, expected_t=3)


def test_malformed_dict_names_field(key: bytes) -> None:
    d = seal(SECRET, key, HASH, 2, 3).to_dict()
    with pytest.raises(SealedKeyFormatError) as err:
        SealedKey.from_dict({**d, "nonce": "%%%"})
    assert err.value.field == "nonce"
    with pytest.raises(SealedKeyFormatError):
        SealedKey.from_dict({**d, "t": 5})  # t > n
    with pytest.raises(SealedKeyFormatError):
        SealedKey.from_dict({**d, "version": 2})


def test_seal_rejects_bad_inputs(key: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        seal(SECRET, key[:31], HASH, 2, 3)
    with pytest.raises(ValueError, match="threshold"):
        seal(SECRET, key, HASH, 4, 3)
    with pytest.raises(ValueError, match="sha256"):
        seal(SECRET, key, "abcd", 2, 3)
