"""CKKS audit context: parameters, public/secret split, chunking, accuracy, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tenseal as ts

from synthreg.crypto import ckks


@pytest.fixture(scope="module")
def keys() -> ckks.AuditKeys:
    return ckks.create_audit_context()


@pytest.fixture(scope="module")
def other_keys() -> ckks.AuditKeys:
    return ckks.create_audit_context()


def test_public_context_has_no_secret_nor_galois_relin_keys(keys: ckks.AuditKeys) -> None:
    pub = ckks.load_public_context(keys.public.serialized)
    assert pub.context.is_public()
    assert not pub.context.has_secret_key()
    assert not pub.context.has_galois_keys()
    assert not pub.context.has_relin_keys()
    assert pub.context.global_scale == 2.0**40
    assert 200_000 < len(keys.public.serialized) < 320_000  # ~260 KB (DESIGN.md §5)


def test_public_context_hash_is_sha256_of_canonical_bytes_and_stable(keys: ckks.AuditKeys) -> None:
    import hashlib

    assert keys.public.hash == hashlib.sha256(keys.public.serialized).hexdigest()
    reloaded = ckks.load_public_context(keys.public.serialized)
    assert reloaded.context.serialize(save_relin_keys=False, save_galois_keys=False) == keys.public.serialized
    assert keys.secret.public().hash == keys.public.hash


def test_secret_context_round_trip_keeps_public_hash(keys: ckks.AuditKeys) -> None:
    buf = keys.secret.serialize()
    secret = ckks.load_secret_context(buf)
    assert secret.public_context_hash == keys.public.hash
    assert isinstance(buf, bytearray)


def test_load_public_rejects_secret_context(keys: ckks.AuditKeys) -> None:
    with pytest.raises(ckks.InvalidContextError, match="secret key"):
        ckks.load_public_context(bytes(keys.secret.serialize()))


def test_load_public_rejects_relin_keys_and_other_params() -> None:
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 60])
    ctx.global_scale = 2.0**40
    pub = ctx.copy()
    pub.make_context_public()
    with pytest.raises(ckks.InvalidContextError, match="relinearisation"):
        ckks.load_public_context(pub.serialize())  # TenSEAL default keeps relin keys
    small = ts.context(ts.SCHEME_TYPE.CKKS, 4096, coeff_mod_bit_sizes=[40, 40])
    small.global_scale = 2.0**40
    small.make_context_public()
    with pytest.raises(ckks.InvalidContextError, match="degree 4096"):
        ckks.load_public_context(small.serialize(save_relin_keys=False))
    with pytest.raises(ckks.InvalidContextError, match="unreadable"):
        ckks.load_public_context(b"not a context")


def test_load_secret_rejects_public_context(keys: ckks.AuditKeys) -> None:
    with pytest.raises(ckks.InvalidContextError, match="no secret key"):
        ckks.load_secret_context(keys.public.serialized)


@pytest.mark.parametrize("length", [1, 4095, 4096, 4097, 10_000])
def test_encrypt_decrypt_any_length_within_1e6(keys: ckks.AuditKeys, length: int) -> None:
    rng = np.random.default_rng(length)
    vec = rng.uniform(-10, 10, length)
    enc = ckks.encrypt_vector(keys.public, vec)
    assert len(enc.chunks) == -(-length // 4096)
    out = ckks.decrypt(keys.secret, enc)
    assert out.shape == (length,)
    assert np.max(np.abs(out - vec)) < 1e-6


def test_sum_of_encrypted_vectors_decrypts_to_sum(keys: ckks.AuditKeys) -> None:
    rng = np.random.default_rng(7)
    vecs = [rng.uniform(-10, 10, 5000) for _ in range(3)]
    total = ckks.sum_vectors(ckks.encrypt_vector(keys.public, v) for v in vecs)
    assert np.max(np.abs(ckks.decrypt(keys.secret, total) - np.sum(vecs, axis=0))) < 1e-6
    pair = ckks.add(ckks.encrypt_vector(keys.public, vecs[0]), ckks.encrypt_vector(keys.public, vecs[1]))
    assert np.max(np.abs(ckks.decrypt(keys.secret, pair) - vecs[0] - vecs[1])) < 1e-6


def test_encryption_is_randomised_but_sum_is_order_independent(keys: ckks.AuditKeys) -> None:
    vec = np.linspace(-10, 10, 100)
    a = ckks.encrypt_vector(keys.public, vec)
    b = ckks.encrypt_vector(keys.public, vec)
    c = ckks.encrypt_vector(keys.public, -vec)
    assert a.sha256() != b.sha256()
    assert ckks.sum_vectors([a, b, c]).sha256() == ckks.sum_vectors([c, a, b]).sha256()


def test_serialisation_round_trip_is_byte_identical(keys: ckks.AuditKeys) -> None:
    enc = ckks.encrypt_vector(keys.public, np.arange(5000, dtype=float) / 1000)
    data = enc.to_bytes()
    again = ckks.EncryptedVector.from_bytes(keys.public, data)
    assert again.length == 5000 and again.to_bytes() == data


def test_malformed_encrypted_vector_is_rejected(keys: ckks.AuditKeys) -> None:
    data = ckks.encrypt_vector(keys.public, np.ones(10)).to_bytes()
    with pytest.raises(ckks.EncryptedVectorFormatError, match="truncated"):
        ckks.EncryptedVector.from_bytes(keys.public, data[:-10])
    with pytest.raises(ckks.EncryptedVectorFormatError, match="trailing"):
        ckks.EncryptedVector.from_bytes(keys.public, data + b"x")
    with pytest.raises(ckks.EncryptedVectorFormatError, match="magic"):
        ckks.EncryptedVector.from_bytes(keys.public, b"X" + data[1:])


def test_other_context_is_refused_everywhere(keys: ckks.AuditKeys, other_keys: ckks.AuditKeys) -> None:
    mine = ckks.encrypt_vector(keys.public, np.ones(10))
    theirs = ckks.encrypt_vector(other_keys.public, np.ones(10))
    with pytest.raises(ckks.ContextMismatchError):
        ckks.add(mine, theirs)
    with pytest.raises(ckks.ContextMismatchError):
        ckks.decrypt(other_keys.secret, mine)
    with pytest.raises(ckks.ContextMismatchError):
        ckks.EncryptedVector.from_bytes(other_keys.public, mine.to_bytes())


def test_bad_input_vectors_are_rejected(keys: ckks.AuditKeys) -> None:
    with pytest.raises(ValueError, match="NaN"):
        ckks.encrypt_vector(keys.public, np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="1-D"):
        ckks.encrypt_vector(keys.public, np.ones((2, 2)))
    with pytest.raises(ValueError, match="length"):
        ckks.add(ckks.encrypt_vector(keys.public, np.ones(3)), ckks.encrypt_vector(keys.public, np.ones(4)))
    with pytest.raises(ValueError):
        ckks.sum_vectors([])


_CHILD = textwrap.dedent(
    """
    import hashlib, json, sys
    from pathlib import Path
    from synthreg.crypto import ckks
    d = Path(sys.argv[1])
    pub = ckks.load_public_context((d / "public.ctx").read_bytes())
    vecs = [ckks.EncryptedVector.from_bytes(pub, (d / f"v{i}.bin").read_bytes()) for i in range(3)]
    total = ckks.sum_vectors(vecs)
    print(json.dumps({"sum": total.sha256(), "ctx": pub.hash}))
    """
)


def test_homomorphic_sum_is_byte_identical_in_another_process(keys: ckks.AuditKeys, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    vecs = [ckks.encrypt_vector(keys.public, rng.uniform(-10, 10, 6000)) for _ in range(3)]
    (tmp_path / "public.ctx").write_bytes(keys.public.serialized)
    for i, v in enumerate(vecs):
        (tmp_path / f"v{i}.bin").write_bytes(v.to_bytes())
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    child = json.loads(proc.stdout)
    assert child["ctx"] == keys.public.hash
    assert child["sum"] == ckks.sum_vectors(vecs).sha256()
