"""CKKS audit context (TenSEAL): create, split public/secret, encrypt, add, decrypt.

Who calls: the key ceremony (:mod:`synthreg.crypto.ceremony`) creates the context
once; merger apps encrypt weight vectors under the *public* context and anyone can
recompute encrypted sums; the auditor decrypts with the *secret* context after
unsealing it.

Where data lives: the public context (~260 KB, no secret key, no Galois/relin keys)
is published on the ledger; the secret context only ever exists in memory — sealed
with AES-256-GCM (:mod:`synthreg.crypto.seal`) before it leaves this module's
callers.

Determinism (checked by ``tests/unit/test_crypto_ckks.py`` across processes):
serialising a public context, a loaded public context, or a loaded ciphertext yields
the same bytes again; the homomorphic sum of the same ciphertexts is byte-identical
in any process with the same TenSEAL version (0.3.18 pinned). Encryption itself is
randomised: encrypting the same vector twice gives different bytes.

Settings (DESIGN.md §5): ring 8192, coefficient moduli [60, 60] (the last one is
SEAL's special key-switching prime, so ciphertexts live at one 60-bit level),
scale 2^40, additions only. Values must stay well below 2^19 in magnitude; divide
after decryption, never multiply ciphertexts.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import tenseal as ts

__all__ = [
    "AUDIT_PARAMS",
    "AuditKeys",
    "CkksError",
    "CkksParams",
    "ContextMismatchError",
    "EncryptedVector",
    "EncryptedVectorFormatError",
    "InvalidContextError",
    "PublicContext",
    "SecretContext",
    "add",
    "create_audit_context",
    "decrypt",
    "encrypt_vector",
    "load_public_context",
    "load_secret_context",
    "public_context_hash",
    "sum_vectors",
]


@dataclass(frozen=True)
class CkksParams:
    """CKKS parameters of the audit context (DESIGN.md §5)."""

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = (60, 60)
    global_scale_bits: int = 40

    @property
    def slot_count(self) -> int:
        """Number of floats packed into one ciphertext."""
        return self.poly_modulus_degree // 2


AUDIT_PARAMS = CkksParams()

_SERIALIZE_PUBLIC = {
    "save_public_key": True,
    "save_secret_key": False,
    "save_galois_keys": False,
    "save_relin_keys": False,
}
_SERIALIZE_SECRET = {**_SERIALIZE_PUBLIC, "save_secret_key": True}

_VECTOR_MAGIC = b"SRCKKS01"
# magic | context sha256 (32 raw bytes) | true length (u64) | chunk count (u32)
_VECTOR_HEADER = struct.Struct(">8s32sQI")
_CHUNK_LEN = struct.Struct(">I")


class CkksError(Exception):
    """Base class of every error raised by this module."""


class InvalidContextError(CkksError):
    """A serialised context is unreadable or does not have the audit parameters.

    ``reason`` says which check failed (e.g. "has a secret key").
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid CKKS audit context: {reason}")
        self.reason = reason


class ContextMismatchError(CkksError):
    """Ciphertexts or keys belong to different public contexts (hashes given)."""

    def __init__(self, expected: str, actual: str, what: str) -> None:
        super().__init__(
            f"{what}: public-context hash {actual[:16]}… does not match expected {expected[:16]}…"
        )
        self.expected = expected
        self.actual = actual


class EncryptedVectorFormatError(CkksError):
    """Serialised encrypted vector is truncated, malformed, or has the wrong shape."""


def public_context_hash(serialized_public_context: bytes) -> str:
    """Hex sha256 of the canonical public-context serialisation (ledger identifier)."""
    return hashlib.sha256(serialized_public_context).hexdigest()


@dataclass(frozen=True)
class PublicContext:
    """Public audit context: encrypt and add only.

    ``serialized`` is the canonical form (public key only, no secret, no Galois or
    relinearisation keys); ``hash`` identifies it on the ledger.
    """

    context: ts.Context
    serialized: bytes
    hash: str

    def serialize(self) -> bytes:
        """Canonical bytes, as published on the ledger."""
        return self.serialized


@dataclass
class SecretContext:
    """Secret audit context: can decrypt. Never written to disk unsealed.

    ``public_context_hash`` is the hash of the public context derived from it, so a
    caller can check that an unsealed key matches the public context on the ledger.
    """

    context: ts.Context
    public_context_hash: str

    def serialize(self) -> bytearray:
        """Serialised secret context (public + secret key) as a wipeable bytearray.

        The caller owns the buffer and should zero it (``buf[:] = bytes(len(buf))``)
        once it is sealed. TenSEAL's own intermediate ``bytes`` cannot be overwritten.
        """
        return bytearray(self.context.serialize(**_SERIALIZE_SECRET))

    def public(self) -> PublicContext:
        """Derive the public context (drops the secret key)."""
        return _derive_public(self.context)


@dataclass
class AuditKeys:
    """A freshly created audit key pair, as returned by :func:`create_audit_context`."""

    public: PublicContext
    secret: SecretContext


def _check_params(ctx: ts.Context, params: CkksParams) -> None:
    data = ctx.seal_context().data.key_context_data()
    degree = data.parms().poly_modulus_degree()
    if degree != params.poly_modulus_degree:
        raise InvalidContextError(f"poly modulus degree {degree} != {params.poly_modulus_degree}")
    bits = data.total_coeff_modulus_bit_count()
    if bits != sum(params.coeff_mod_bit_sizes):
        raise InvalidContextError(
            f"total coefficient modulus {bits} bits != {sum(params.coeff_mod_bit_sizes)}"
        )
    if ctx.global_scale != float(2**params.global_scale_bits):
        raise InvalidContextError(f"global scale {ctx.global_scale} != 2^{params.global_scale_bits}")
    if ctx.has_galois_keys() or ctx.has_relin_keys():
        raise InvalidContextError("carries Galois or relinearisation keys (additions only)")
    if not ctx.has_public_key():
        raise InvalidContextError("has no public key")


def _derive_public(ctx: ts.Context) -> PublicContext:
    public = ctx.copy()
    public.make_context_public()
    serialized = public.serialize(**_SERIALIZE_PUBLIC)
    return PublicContext(public, serialized, public_context_hash(serialized))


def create_audit_context(params: CkksParams = AUDIT_PARAMS) -> AuditKeys:
    """Create a fresh CKKS audit key pair (called once, by the key ceremony)."""
    ctx = ts.context(
        ts.SCHEME_TYPE.CKKS,
        poly_modulus_degree=params.poly_modulus_degree,
        coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
    )
    ctx.global_scale = float(2**params.global_scale_bits)
    # TenSEAL generates relinearisation keys by default; additions never need them
    # and they are never serialised (see _SERIALIZE_PUBLIC). Reload without them so
    # the in-memory secret context matches what the auditor will unseal.
    secret_ctx = ts.context_from(ctx.serialize(**_SERIALIZE_SECRET))
    del ctx
    public = _derive_public(secret_ctx)
    return AuditKeys(public=public, secret=SecretContext(secret_ctx, public.hash))


def load_public_context(data: bytes, params: CkksParams = AUDIT_PARAMS) -> PublicContext:
    """Load a public context from the ledger and check it is public with ``params``.

    Raises :class:`InvalidContextError` if unreadable, if it carries a secret key,
    Galois/relin keys, or other parameters. The hash is of ``data`` as given.
    """
    try:
        ctx = ts.context_from(data)
    except Exception as exc:  # TenSEAL raises bare ValueError/RuntimeError
        raise InvalidContextError(f"unreadable ({exc})") from exc
    if ctx.has_secret_key() or not ctx.is_public():
        raise InvalidContextError("has a secret key (a public context must not)")
    _check_params(ctx, params)
    data = bytes(data)
    if ctx.serialize(**_SERIALIZE_PUBLIC) != data:
        raise InvalidContextError("not in canonical serialisation")
    return PublicContext(ctx, data, public_context_hash(data))


def load_secret_context(data: bytes | bytearray, params: CkksParams = AUDIT_PARAMS) -> SecretContext:
    """Load an (unsealed) secret context. Raises :class:`InvalidContextError`."""
    try:
        ctx = ts.context_from(bytes(data))
    except Exception as exc:
        raise InvalidContextError(f"unreadable ({exc})") from exc
    if not ctx.has_secret_key():
        raise InvalidContextError("has no secret key")
    _check_params(ctx, params)
    return SecretContext(ctx, _derive_public(ctx).hash)


@dataclass(frozen=True)
class EncryptedVector:
    """A float vector of any length, encrypted as ``ceil(length / slots)`` ciphertexts.

    ``context_hash`` binds it to the public context it was encrypted under; the last
    chunk is zero-padded implicitly (TenSEAL encodes only the given values).
    """

    length: int
    context_hash: str
    chunks: tuple[ts.CKKSVector, ...]

    def to_bytes(self) -> bytes:
        """Canonical serialisation: header (magic, context hash, length, chunk count),
        then each ciphertext prefixed by its u32 byte length."""
        parts = [
            _VECTOR_HEADER.pack(
                _VECTOR_MAGIC, bytes.fromhex(self.context_hash), self.length, len(self.chunks)
            )
        ]
        for chunk in self.chunks:
            blob = chunk.serialize()
            parts.append(_CHUNK_LEN.pack(len(blob)))
            parts.append(blob)
        return b"".join(parts)

    def sha256(self) -> str:
        """Hex sha256 of :meth:`to_bytes` (what goes on the ledger)."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @classmethod
    def from_bytes(cls, public: PublicContext, data: bytes) -> EncryptedVector:
        """Parse :meth:`to_bytes` output under ``public``.

        Raises :class:`EncryptedVectorFormatError` on malformed input and
        :class:`ContextMismatchError` if it was made under another public context.
        """
        view = memoryview(data)
        if len(view) < _VECTOR_HEADER.size:
            raise EncryptedVectorFormatError("truncated header")
        magic, ctx_hash, length, count = _VECTOR_HEADER.unpack_from(view, 0)
        if magic != _VECTOR_MAGIC:
            raise EncryptedVectorFormatError(f"bad magic {magic!r}")
        if ctx_hash.hex() != public.hash:
            raise ContextMismatchError(public.hash, ctx_hash.hex(), "encrypted vector")
        slots = _slots(public)
        if count != -(-length // slots):
            raise EncryptedVectorFormatError(f"{count} chunks cannot hold {length} values")
        offset = _VECTOR_HEADER.size
        chunks: list[ts.CKKSVector] = []
        for i in range(count):
            if offset + _CHUNK_LEN.size > len(view):
                raise EncryptedVectorFormatError(f"truncated at chunk {i}")
            (size,) = _CHUNK_LEN.unpack_from(view, offset)
            offset += _CHUNK_LEN.size
            if offset + size > len(view):
                raise EncryptedVectorFormatError(f"truncated in chunk {i}")
            try:
                chunks.append(ts.ckks_vector_from(public.context, bytes(view[offset : offset + size])))
            except Exception as exc:
                raise EncryptedVectorFormatError(f"chunk {i} unreadable ({exc})") from exc
            offset += size
        if offset != len(view):
            raise EncryptedVectorFormatError(f"{len(view) - offset} trailing bytes")
        return cls(length, public.hash, tuple(chunks))


def _slots(public: PublicContext) -> int:
    slots: int = public.context.seal_context().data.key_context_data().parms().poly_modulus_degree() // 2
    return slots


def encrypt_vector(public: PublicContext, vec: np.ndarray) -> EncryptedVector:
    """Encrypt a 1-D float vector of any length under the public audit context.

    Raises ``ValueError`` for a non-1-D, empty, or non-finite vector (NaN/Inf would
    silently poison every sum that includes it).
    """
    arr = np.asarray(vec, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"expected a non-empty 1-D vector, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("vector contains NaN or Inf")
    slots = _slots(public)
    chunks = tuple(
        ts.ckks_vector(public.context, arr[start : start + slots].tolist())
        for start in range(0, arr.size, slots)
    )
    return EncryptedVector(int(arr.size), public.hash, chunks)


def add(a: EncryptedVector, b: EncryptedVector) -> EncryptedVector:
    """Homomorphic element-wise sum (deterministic: same inputs, same bytes).

    Raises :class:`ContextMismatchError` for different contexts and ``ValueError``
    for different lengths.
    """
    if a.context_hash != b.context_hash:
        raise ContextMismatchError(a.context_hash, b.context_hash, "add")
    if a.length != b.length:
        raise ValueError(f"cannot add encrypted vectors of length {a.length} and {b.length}")
    return EncryptedVector(a.length, a.context_hash, tuple(x + y for x, y in zip(a.chunks, b.chunks, strict=True)))


def sum_vectors(vectors: Iterable[EncryptedVector]) -> EncryptedVector:
    """Left-to-right homomorphic sum of one or more encrypted vectors.

    Ciphertext addition is exact modular arithmetic, so the result's bytes do not
    depend on the order (checked in the unit tests); anyone holding the same
    ciphertexts can recompute the sum and compare :meth:`EncryptedVector.sha256`.
    Raises ``ValueError`` for an empty input.
    """
    it = iter(vectors)
    try:
        total = next(it)
    except StopIteration:
        raise ValueError("sum_vectors needs at least one encrypted vector") from None
    for vec in it:
        total = add(total, vec)
    return total


def decrypt(secret: SecretContext, enc: EncryptedVector) -> np.ndarray:
    """Decrypt to a float64 vector of the true length (auditor only).

    Raises :class:`ContextMismatchError` if ``enc`` was not made under this key's
    public context.
    """
    if enc.context_hash != secret.public_context_hash:
        raise ContextMismatchError(secret.public_context_hash, enc.context_hash, "decrypt")
    key = secret.context.secret_key()
    parts = [np.asarray(chunk.decrypt(key), dtype=np.float64) for chunk in enc.chunks]
    out = np.concatenate(parts)
    if out.size != enc.length:
        raise EncryptedVectorFormatError(f"decrypted {out.size} values, expected {enc.length}")
    return out
