"""The mask PRG: AES-256-CTR keystream read as little-endian uint64 (SPEC "PRG").

Who calls: :meth:`Party.mask` (self mask and pairwise masks) and
:func:`synthreg.secagg.unmask.unmask` (to remove them). ``PRG(seed, L)`` is the
first ``8L`` bytes of AES-256-CTR under key ``seed`` with a 16-byte all-zero
initial counter block (the whole 128-bit block increments big-endian), i.e. the
encryption of ``8L`` zero bytes. Deterministic: both sides must agree bit for bit.
The keystream is produced in chunks so a long vector never needs a second
8L-byte buffer of zeros.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["SEED_BYTES", "prg", "prg_add", "prg_sub"]

SEED_BYTES = 32
_ZERO_COUNTER = bytes(16)
_CHUNK_ELEMS = 1 << 17  # 1 MiB of keystream per AES call


def prg(seed: bytes | bytearray, length: int) -> npt.NDArray[np.uint64]:
    """``length`` pseudo-random uint64 values from a 32-byte ``seed``.

    Raises ``ValueError`` for a seed that is not 32 bytes or a negative length.
    """
    if len(seed) != SEED_BYTES:
        raise ValueError(f"PRG seed must be {SEED_BYTES} bytes, got {len(seed)}")
    if length < 0:
        raise ValueError(f"PRG length must be >= 0, got {length}")
    out = np.empty(length, dtype="<u8")
    view = out.data.cast("B")
    encryptor = Cipher(algorithms.AES(bytes(seed)), modes.CTR(_ZERO_COUNTER)).encryptor()
    zeros = bytes(8 * min(length, _CHUNK_ELEMS))
    for start in range(0, length, _CHUNK_ELEMS):
        n = min(_CHUNK_ELEMS, length - start)
        view[8 * start : 8 * (start + n)] = encryptor.update(zeros[: 8 * n])
    return out.astype(np.uint64, copy=False)


def prg_add(acc: npt.NDArray[np.uint64], seed: bytes | bytearray) -> None:
    """``acc += PRG(seed, len(acc))`` in place, mod 2^64."""
    np.add(acc, prg(seed, acc.shape[0]), out=acc)


def prg_sub(acc: npt.NDArray[np.uint64], seed: bytes | bytearray) -> None:
    """``acc -= PRG(seed, len(acc))`` in place, mod 2^64."""
    np.subtract(acc, prg(seed, acc.shape[0]), out=acc)
