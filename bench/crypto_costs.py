"""Cost of the audit-key crypto: CKKS encrypt/add/decrypt, sizes, seal+split+combine.

Run: ``/root/.cache/synthreg/venv/bin/python bench/crypto_costs.py [--sizes 100000 1000000]``

Every figure is measured in this run (wall clock, ``time.perf_counter``); nothing
is cached. Times are single runs unless ``--repeats`` > 1 (then the median).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import tenseal as ts

from synthreg.crypto import ckks
from synthreg.crypto.seal import seal, unseal
from synthreg.crypto.shamir import combine, make_commitments, split

T = TypeVar("T")


@dataclass(frozen=True)
class CkksRow:
    n_floats: int
    chunks: int
    encrypt_s: float
    add_s: float
    decrypt_s: float
    serialize_s: float
    ciphertext_bytes: int
    max_abs_error: float

    @property
    def bytes_per_float(self) -> float:
        return self.ciphertext_bytes / self.n_floats


@dataclass(frozen=True)
class KeyRow:
    t: int
    n: int
    secret_bytes: int
    seal_s: float
    split_s: float
    combine_s: float


def _timed(fn: Callable[[], T], repeats: int) -> tuple[T, float]:
    times: list[float] = []
    result: T | None = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    assert result is not None
    return result, statistics.median(times)


def bench_ckks(keys: ckks.AuditKeys, n_floats: int, repeats: int, seed: int) -> CkksRow:
    rng = np.random.default_rng(seed)
    a = rng.uniform(-10, 10, n_floats)
    b = rng.uniform(-10, 10, n_floats)
    enc_a, t_enc = _timed(lambda: ckks.encrypt_vector(keys.public, a), repeats)
    enc_b = ckks.encrypt_vector(keys.public, b)
    total, t_add = _timed(lambda: ckks.add(enc_a, enc_b), repeats)
    blob, t_ser = _timed(total.to_bytes, repeats)
    out, t_dec = _timed(lambda: ckks.decrypt(keys.secret, total), repeats)
    return CkksRow(
        n_floats=n_floats,
        chunks=len(total.chunks),
        encrypt_s=t_enc,
        add_s=t_add,
        decrypt_s=t_dec,
        serialize_s=t_ser,
        ciphertext_bytes=len(blob),
        max_abs_error=float(np.max(np.abs(out - (a + b)))),
    )


def bench_keys(keys: ckks.AuditKeys, t: int, n: int, repeats: int) -> KeyRow:
    secret = keys.secret.serialize()
    key = bytearray(os.urandom(32))
    sealed, t_seal = _timed(lambda: seal(secret, key, keys.public.hash, t, n), repeats)
    shares, t_split = _timed(lambda: split(key, t, n), repeats)
    commitments = make_commitments(shares, "bench")
    got, t_comb = _timed(lambda: combine(shares[:t], commitments, t, verify=lambda k: unseal(sealed, k)), repeats)
    if bytes(got) != bytes(key):
        raise RuntimeError("combine returned a different key")
    size = len(secret)
    secret[:] = bytes(size)
    key[:] = bytes(32)
    return KeyRow(t, n, size, t_seal, t_split, t_comb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    p = ckks.AUDIT_PARAMS
    print("# synthreg crypto costs")
    print(
        f"machine: {platform.machine()} {platform.system()} {platform.release()}, "
        f"os.cpu_count()={os.cpu_count()}, sched_getaffinity={len(os.sched_getaffinity(0))}, "
        f"python {platform.python_version()}, tenseal {ts.__version__}"
    )
    print(
        f"CKKS: ring {p.poly_modulus_degree}, coeff moduli {list(p.coeff_mod_bit_sizes)}, "
        f"scale 2^{p.global_scale_bits}, {p.slot_count} slots/ciphertext, values U(-10,10), "
        f"repeats={args.repeats} (median)"
    )
    start = time.perf_counter()
    keys = ckks.create_audit_context()
    t_ctx = time.perf_counter() - start
    print(
        f"context creation {t_ctx * 1e3:.1f} ms; public context {len(keys.public.serialized):,} bytes; "
        f"secret context {len(keys.secret.serialize()):,} bytes"
    )
    print()
    print("| floats | ciphertexts | encrypt s | add s | decrypt s | serialize s | ciphertext MB | bytes/float "
          "| max abs err |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, size in enumerate(args.sizes):
        r = bench_ckks(keys, size, args.repeats, args.seed + i)
        print(
            f"| {r.n_floats:,} | {r.chunks} | {r.encrypt_s:.3f} | {r.add_s:.4f} | {r.decrypt_s:.3f} | "
            f"{r.serialize_s:.3f} | {r.ciphertext_bytes / 1e6:.1f} | {r.bytes_per_float:.1f} | {r.max_abs_error:.1e} |"
        )
    print()
    print("AES-256-GCM seal of the secret context, Shamir split of the 32-byte key, combine of t shares")
    print("(combine includes commitment checks and the GCM-unseal verification):")
    print()
    print("| t-of-n | secret bytes | seal ms | split ms | combine+unseal ms |")
    print("|---|---:|---:|---:|---:|")
    for t, n in ((2, 3), (3, 5)):
        k = bench_keys(keys, t, n, max(args.repeats, 5))
        print(f"| {k.t}-of-{k.n} | {k.secret_bytes:,} | {k.seal_s * 1e3:.2f} | {k.split_s * 1e3:.2f} "
              f"| {k.combine_s * 1e3:.2f} |")


if __name__ == "__main__":
    main()
