"""Added cost of verifiable dealing per round (issue 10, attack 6), no ledger.

Per merger and round, old vs new: dealing = splitting the seed and the mask key
(pycryptodome Shamir over GF(2^128) vs Feldman VSS over P-256 with commitments);
receiving = checking the shares of the n-1 other dealers (new only: the old ones
were not checkable); unmask = recombining the secrets (new: each revealed share
is verified first). Run: ``PYTHONPATH=services python bench/vss_cost.py [n t reps]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from synthreg.crypto import shamir
from synthreg.secagg import vss


def _ms(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main(n: int = 3, t: int = 2, reps: int = 50) -> None:
    seed, key = vss.random_scalar_bytes(), vss.random_scalar_bytes()
    old_deal = _ms(lambda: (shamir.split(seed, t, n), shamir.split(key, t, n)), reps)
    new_deal = _ms(lambda: (vss.deal(seed, t, n), vss.deal(key, t, n)), reps)
    shares, commits = vss.deal(seed, t, n)
    points = [vss.decode_point(c) for c in commits]
    one = vss.decode_share(shares[0])
    # receiving: decode the commitments of one dealer and verify a seed and a key share, x (n-1) dealers
    verify_one = _ms(lambda: ([vss.decode_point(c) for c in commits], vss.verify(*one, points)), reps)
    receive = 2 * (n - 1) * verify_one
    # unmask, everyone survives: n seeds recombined from t verified shares each
    good = [vss.decode_share(s) for s in shares[:t]]
    recombine = _ms(lambda: [vss.verify(i, y, points) for i, y in good] and vss.combine(good), reps)
    print(f"n={n} t={t}, median of {reps}, ms per merger per round")
    print(f"  dealing (seed + key)      old Shamir {old_deal:7.2f}   Feldman VSS {new_deal:7.2f}")
    print(f"  verifying received shares            {'-':>7}               {receive:7.2f}  ({2 * (n - 1)} shares)")
    print(f"  unmask: verify t + combine, x n      {'-':>7}               {n * recombine:7.2f}")
    print(f"  added per merger per round                                 "
          f"{new_deal - old_deal + receive + n * recombine:7.2f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
