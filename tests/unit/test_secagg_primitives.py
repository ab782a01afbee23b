"""secagg building blocks: params, fixed point, PRG, blob and record encodings."""

from __future__ import annotations

import hashlib
import math
import struct

import numpy as np
import pytest
from Crypto.Cipher import AES

from synthreg.secagg import (
    Advertisement,
    AdvertisementError,
    BlobLengthError,
    FixedPointRangeError,
    NonFiniteValueError,
    Params,
    ParamsError,
    Reveal,
    RevealFormatError,
    UnknownPartyError,
    VectorShapeError,
    WeightError,
    average_sha256,
    decode_u64,
    default_threshold,
    encode_u64,
    fixedpoint,
    prg,
    seed_commitment,
)

P3 = ("Registry1MSP", "Registry2MSP", "Registry3MSP")


def _params(**kw: object) -> Params:
    base: dict[str, object] = {"run": "run-1", "round": 0, "participants": P3, "threshold": 2, "vector_len": 16}
    base.update(kw)
    return Params(**base)  # type: ignore[arg-type]


# -- params -------------------------------------------------------------------------


def test_share_index_is_one_plus_sorted_position() -> None:
    params = _params()
    assert [params.share_index(m) for m in P3] == [1, 2, 3]
    with pytest.raises(UnknownPartyError) as err:
        params.share_index("OutsiderMSP")
    assert err.value.msp == "OutsiderMSP"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("participants", ("Registry2MSP", "Registry1MSP")),  # unsorted
        ("participants", ("Registry1MSP", "Registry1MSP")),  # duplicate
        ("participants", ("Registry1MSP",)),  # fewer than 2
        ("participants", ("Registry1MSP", "bad/msp")),  # '/' would make ceremony ids ambiguous
        ("participants", ["Registry1MSP", "Registry2MSP"]),  # not a tuple
        ("threshold", 1),  # t <= N/2
        ("threshold", 4),  # t > N
        ("threshold", True),
        ("vector_len", 0),
        ("vector_len", 50_000_001),
        ("scale_bits", 7),
        ("scale_bits", 41),
        ("round", -1),
        ("round", 2**32),
        ("run", ""),
        ("run", "/leading-slash"),
        ("run", "has space"),
    ],
)
def test_params_reject_out_of_spec_values(field: str, value: object) -> None:
    with pytest.raises(ParamsError):
        _params(**{field: value})


def test_params_from_config_and_default_threshold() -> None:
    config = {"participants": list(P3), "threshold": default_threshold(3), "vector_len": 85527,
              "scale_bits": 32, "round_timeout_s": 30}
    params = Params.from_config("run-9", 4, config)
    assert (params.threshold, params.vector_len, params.round, params.n) == (2, 85527, 4, 3)
    assert [default_threshold(n) for n in (2, 3, 4, 5)] == [2, 2, 3, 3]
    with pytest.raises(ParamsError):
        Params.from_config("run-9", 4, {"participants": list(P3), "threshold": 2})  # no vector_len


# -- fixed point --------------------------------------------------------------------


def test_fixed_point_round_trip_within_half_ulp_of_the_scale() -> None:
    params = _params(vector_len=1000, scale_bits=20)
    x = np.random.default_rng(1).uniform(-100, 100, size=1000)
    q = fixedpoint.encode(x, params, weight=1.5)
    assert q.dtype == np.uint64
    back = fixedpoint.decode(q, 20)
    err = np.abs(back - 1.5 * x)
    assert err.max() <= 2.0**-21
    assert err.max() > 0  # the scale really quantises
    # negative values are two's complement
    assert q[np.argmin(x)] >= np.uint64(2**63)


def test_fixed_point_accepts_float32_and_sums_mod_2_64() -> None:
    params = _params(vector_len=4)
    a = np.array([-1.25, 2.5, -3.0, 0.0], dtype=np.float32)
    b = np.array([1.0, -2.5, -4.0, 7.75], dtype=np.float32)
    total = fixedpoint.encode(a, params) + fixedpoint.encode(b, params)  # wraps mod 2^64
    np.testing.assert_array_equal(fixedpoint.decode(total, 32), [-0.25, 0.0, -7.0, 7.75])


def test_fixed_point_range_and_finiteness_errors() -> None:
    params = _params(vector_len=3, scale_bits=32)
    bound = fixedpoint.range_bound(params)
    assert bound == 2.0**30 / 3
    ok = np.array([0.0, math.nextafter(bound, 0), -math.nextafter(bound, 0)])
    fixedpoint.encode(ok, params)
    with pytest.raises(FixedPointRangeError) as err:
        fixedpoint.encode(np.array([0.0, 0.0, -bound]), params)
    assert err.value.index == 2 and err.value.bound == bound
    with pytest.raises(FixedPointRangeError):  # the weight counts
        fixedpoint.encode(np.array([0.0, bound / 2, 0.0]), params, weight=2.0)
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(NonFiniteValueError) as nerr:
            fixedpoint.encode(np.array([0.0, 1.0, bad]), params)
        assert nerr.value.index == 2


@pytest.mark.parametrize(
    "value",
    [np.zeros(4), np.zeros(3, dtype=np.int64), np.zeros((3, 1)), [0.0, 0.0, 0.0]],
    ids=["length", "dtype", "ndim", "list"],
)
def test_fixed_point_shape_errors(value: object) -> None:
    with pytest.raises(VectorShapeError):
        fixedpoint.encode(value, _params(vector_len=3))  # type: ignore[arg-type]


@pytest.mark.parametrize("weight", [0.0, -1.0, math.nan, math.inf, "1", True])
def test_bad_weights_rejected(weight: object) -> None:
    with pytest.raises(WeightError) as err:
        fixedpoint.check_weight("Registry1MSP", weight)  # type: ignore[arg-type]
    assert err.value.msp == "Registry1MSP"


# -- PRG ----------------------------------------------------------------------------


def test_prg_matches_an_independent_aes_ctr() -> None:
    seed = bytes(range(32))
    expected = AES.new(seed, AES.MODE_CTR, nonce=b"", initial_value=0).encrypt(bytes(8 * 1000))
    got = prg.prg(seed, 1000)
    assert got.dtype == np.uint64
    assert got.astype("<u8").tobytes() == expected
    assert int(got[0]) == struct.unpack("<Q", expected[:8])[0]


def test_prg_deterministic_distinct_and_prefix_consistent_across_chunks() -> None:
    a, b = bytes(32), b"\x01" + bytes(31)
    long = prg.prg(a, prg._CHUNK_ELEMS + 5)
    np.testing.assert_array_equal(long, prg.prg(a, prg._CHUNK_ELEMS + 5))
    np.testing.assert_array_equal(long[:7], prg.prg(a, 7))
    assert not np.array_equal(prg.prg(a, 64), prg.prg(b, 64))
    assert (prg.prg(a, 10_000) == prg.prg(b, 10_000)).sum() == 0
    assert prg.prg(a, 0).shape == (0,)
    with pytest.raises(ValueError):
        prg.prg(bytes(16), 4)


def test_prg_add_and_sub_cancel_mod_2_64() -> None:
    acc = np.arange(100, dtype=np.uint64)
    prg.prg_add(acc, b"k" * 32)
    assert not np.array_equal(acc, np.arange(100, dtype=np.uint64))
    prg.prg_sub(acc, b"k" * 32)
    np.testing.assert_array_equal(acc, np.arange(100, dtype=np.uint64))


# -- encodings ----------------------------------------------------------------------


def test_u64_blob_round_trip_and_length_check() -> None:
    arr = np.array([0, 1, 2**64 - 1, 2**63], dtype=np.uint64)
    data = encode_u64(arr)
    assert data[:8] == bytes(8) and data[8:16] == b"\x01" + bytes(7) and len(data) == 32
    back = decode_u64(data, 4)
    np.testing.assert_array_equal(back, arr)
    back[0] = 5  # writable copy, not a view of the blob
    with pytest.raises(BlobLengthError) as err:
        decode_u64(data[:-1], 4)
    assert (err.value.got, err.value.expected) == (31, 32)
    with pytest.raises(VectorShapeError):
        encode_u64(np.zeros(3, dtype=np.int64))  # type: ignore[arg-type]


def test_seed_commitment_layout_and_binding() -> None:
    params = _params(run="r", round=7)
    seed = bytes(range(32))
    msg = b"synthreg/secagg/seed/v1\x00" + b"\x00\x01r" + b"\x00\x00\x00\x07" + b"\x00\x0cRegistry1MSP" + seed
    assert seed_commitment(params, "Registry1MSP", seed) == hashlib.sha256(msg).hexdigest()
    assert seed_commitment(params, "Registry2MSP", seed) != seed_commitment(params, "Registry1MSP", seed)
    assert seed_commitment(_params(run="r", round=8), "Registry1MSP", seed) != seed_commitment(
        params, "Registry1MSP", seed
    )


def test_average_sha256_hashes_float32_little_endian_bytes() -> None:
    avg = np.array([1.0, -2.5], dtype=np.float32)
    assert average_sha256(avg) == hashlib.sha256(struct.pack("<ff", 1.0, -2.5)).hexdigest()
    with pytest.raises(VectorShapeError):
        average_sha256(avg.astype(np.float64))  # type: ignore[arg-type]


def test_advertisement_and_reveal_json_round_trip() -> None:
    adv = Advertisement(bytes(range(32)), "ab" * 32)
    assert Advertisement.from_json("Registry1MSP", {**adv.to_json(), "txid": "x"}) == adv
    with pytest.raises(AdvertisementError) as err:
        Advertisement.from_json("Registry2MSP", {"public_key": "AAAA", "seed_commit": "ab" * 32})
    assert err.value.msp == "Registry2MSP"
    with pytest.raises(AdvertisementError):
        Advertisement(bytes(32), "AB" * 32)  # uppercase hex is not canonical
    rev = Reveal({"Registry1MSP": b"\x00\x01" + bytes(32)}, {"Registry3MSP": b"\x00\x01" + b"\x07" * 32})
    assert Reveal.from_json("Registry1MSP", rev.to_json()) == rev
    with pytest.raises(RevealFormatError) as rerr:
        Reveal.from_json("Registry2MSP", {"seed_shares": {"Registry1MSP": "AAAA"}, "key_shares": {}})
    assert rerr.value.revealer == "Registry2MSP"
