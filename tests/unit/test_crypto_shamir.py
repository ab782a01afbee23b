"""t-of-n Shamir over the 32-byte sealing key: recovery, loud failures, encodings."""

from __future__ import annotations

import dataclasses
import itertools
import os

import pytest

from synthreg.crypto import shamir
from synthreg.crypto.seal import seal, unseal
from synthreg.crypto.shamir import (
    DuplicateShareError,
    KeyVerificationError,
    NotEnoughSharesError,
    Share,
    ShareCommitments,
    ShareFormatError,
    TamperedShareError,
    combine,
    make_commitments,
    split,
)

CID = "ceremony-test"
HASH = "11" * 32


def _flip(b: bytes, i: int = 0) -> bytes:
    out = bytearray(b)
    out[i] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize(("t", "n"), [(3, 5), (2, 3)])
def test_every_t_subset_recovers_and_unseals(t: int, n: int) -> None:
    key = os.urandom(32)
    sealed = seal(b"the secret context", key, HASH, t, n)
    shares = split(key, t, n)
    commitments = make_commitments(shares, CID)
    for size in range(t, n + 1):
        for subset in itertools.combinations(shares, size):
            got = combine(list(subset), commitments, t, verify=lambda k: unseal(sealed, k))
            assert bytes(got) == key, [s.index for s in subset]


@pytest.mark.parametrize(("t", "n"), [(3, 5), (2, 3)])
def test_every_smaller_subset_fails_loudly(t: int, n: int) -> None:
    shares = split(os.urandom(32), t, n)
    commitments = make_commitments(shares, CID)
    for size in range(0, t):
        for subset in itertools.combinations(shares, size):
            with pytest.raises(NotEnoughSharesError) as err:
                combine(list(subset), commitments, t)
            assert (err.value.have, err.value.need) == (size, t)
            assert f"have {size}, need {t}" in str(err.value)


def test_tampered_share_is_named() -> None:
    shares = split(os.urandom(32), 3, 5)
    commitments = make_commitments(shares, CID)
    bad = dataclasses.replace(shares[3], half_b=_flip(shares[3].half_b, 7))
    with pytest.raises(TamperedShareError) as err:
        combine([shares[0], bad, shares[1]], commitments, 3)
    assert err.value.index == 4 and "share 4" in str(err.value)
    # a share moved to another index is caught by that index's commitment
    moved = Share(2, shares[0].half_a, shares[0].half_b)
    with pytest.raises(TamperedShareError) as err:
        combine([shares[0], moved, shares[2]], commitments, 3)
    assert err.value.index == 2
    # an index with no commitment
    with pytest.raises(TamperedShareError, match="no commitment"):
        combine([shares[0], shares[1], Share(9, shares[2].half_a, shares[2].half_b)], commitments, 3)


def test_duplicate_index_is_refused() -> None:
    shares = split(os.urandom(32), 2, 3)
    commitments = make_commitments(shares, CID)
    with pytest.raises(DuplicateShareError) as err:
        combine([shares[1], shares[1]], commitments, 2)
    assert err.value.index == 2


def test_forged_share_with_forged_commitment_is_caught_by_gcm_tag() -> None:
    key = os.urandom(32)
    sealed = seal(b"the secret context", key, HASH, 2, 3)
    shares = split(key, 2, 3)
    forged = dataclasses.replace(shares[1], half_a=_flip(shares[1].half_a))
    forged_commitments = make_commitments([shares[0], forged, shares[2]], CID)
    # pycryptodome alone returns a wrong key silently ...
    assert bytes(combine([shares[0], forged], forged_commitments, 2)) != key
    # ... the GCM tag does not.
    with pytest.raises(KeyVerificationError) as err:
        combine([shares[0], forged], forged_commitments, 2, verify=lambda k: unseal(sealed, k))
    assert err.value.indices == (1, 2)
    assert err.value.__cause__ is not None
    with pytest.raises(KeyVerificationError, match="returned False"):
        combine([shares[0], shares[2]], forged_commitments, 2, verify=lambda k: False)


def test_commitments_are_ceremony_bound_and_json_round_trip() -> None:
    shares = split(os.urandom(32), 2, 3)
    a = make_commitments(shares, "A")
    b = make_commitments(shares, "B")
    assert set(a.digests.values()).isdisjoint(b.digests.values())
    again = ShareCommitments.from_dict(a.to_dict())
    assert again.digests == a.digests and again.ceremony_id == "A"
    with pytest.raises(TamperedShareError):
        b.check(Share(1, shares[1].half_a, shares[1].half_b))
    with pytest.raises(ShareFormatError):
        ShareCommitments.from_dict({"ceremony_id": "A", "digests": {"1": "zz"}})


def test_share_encodings_round_trip_and_hide_secret() -> None:
    share = split(os.urandom(32), 2, 3)[2]
    assert Share.from_bytes(share.to_bytes()) == share
    assert Share.from_str(share.to_str()) == share
    assert share.half_a.hex() not in repr(share)
    for bad in ("3", "x:00", "3:" + "00" * 31):
        with pytest.raises(ShareFormatError):
            Share.from_str(bad)
    with pytest.raises(ShareFormatError):
        Share.from_bytes(b"\x00" * 10)
    with pytest.raises(ShareFormatError):
        Share(0, bytes(16), bytes(16))


def test_split_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        split(os.urandom(16), 2, 3)
    with pytest.raises(ValueError, match="threshold"):
        split(os.urandom(32), 4, 3)
    with pytest.raises(ValueError, match="threshold"):
        combine([], make_commitments(split(os.urandom(32), 2, 3), CID), 4)
    assert shamir.SECRET_BYTES == 32
