"""Remove the masks from the survivors' vectors (DESIGN.md §4 step 5).

Who calls: every merger's ledger driver after ``Freeze`` and the reveals, with
everything read from the ledger (``GetRound``) and the blob store: advertisements
(A), the masked vectors of U, the reveals of at least ``t`` members of U, D, the
``peers`` each survivor submitted, and the public weights. Every merger computes
bit-identical results from the same ledger data, so the ``average_sha256`` values
agree unless someone is faulty.

Recovery: for each i in U the self-mask seed b_i is recombined from revealed seed
shares, for each j in D the round mask key from revealed key shares. Every revealed
share is first checked against its owner's Feldman commitments (the ``dealings``
posted with ``PostShares``, :mod:`~synthreg.secagg.vss`): a share that fails is
ignored and its revealer reported (:class:`BadRevealError` in
:attr:`Unmasked.bad_reveals`), and the secret is recombined from the ``t`` good
shares of the lowest indices -- every merger picks the same ones from the same
ledger data. The recombined seed must still match i's seed commitment and the key
j's advertised public key; since every share used was on i's (j's) own committed
polynomial, a mismatch is the owner's fault and names it.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from synthreg.crypto.transport import KeyFormatError, derive_pairwise_seed
from synthreg.secagg import vss
from synthreg.secagg.errors import (
    AdvertisementError,
    BadDealingError,
    BadRevealError,
    MaskKeyMismatchError,
    NotEnoughRevealsError,
    PeerSetError,
    RecoveryMismatchError,
    RevealConflictError,
    RevealFormatError,
    SeedCommitmentMismatchError,
    TooFewGoodSharesError,
    TooFewSurvivorsError,
    VectorShapeError,
    WeightError,
)
from synthreg.secagg.fixedpoint import check_weight, decode
from synthreg.secagg.params import Params
from synthreg.secagg.prg import prg_add, prg_sub
from synthreg.secagg.wire import Advertisement, Dealing, Reveal, seed_commitment

__all__ = ["Unmasked", "average", "unmask", "unmask_checked"]


@dataclass(frozen=True)
class Unmasked:
    """What :func:`unmask_checked` recovered: the sum and the revealed shares it ignored."""

    total: npt.NDArray[np.float64]
    bad_reveals: tuple[BadRevealError, ...]

    @property
    def bad_revealers(self) -> tuple[str, ...]:
        """Revealers of at least one share that failed its owner's commitments, sorted."""
        return tuple(sorted({e.revealer for e in self.bad_reveals}))


def unmask(
    params: Params,
    advertised: Mapping[str, Advertisement],
    masked: Mapping[str, npt.NDArray[np.uint64]],
    reveals: Mapping[str, Reveal],
    dropped: Sequence[str],
    peers_of: Mapping[str, Sequence[str]],
    dealings: Mapping[str, Dealing],
) -> npt.NDArray[np.float64]:
    """The sum of :func:`unmask_checked` (revealed shares that fail are ignored there)."""
    return unmask_checked(params, advertised, masked, reveals, dropped, peers_of, dealings).total


def unmask_checked(
    params: Params,
    advertised: Mapping[str, Advertisement],
    masked: Mapping[str, npt.NDArray[np.uint64]],
    reveals: Mapping[str, Reveal],
    dropped: Sequence[str],
    peers_of: Mapping[str, Sequence[str]],
    dealings: Mapping[str, Dealing],
) -> Unmasked:
    """Σ_{i in U} w_i x_i (float64, length L) from the masked vectors of U = ``masked``' keys.

    ``dealings`` holds the Feldman commitments of every member of U ∪ D (read from
    ``GetRound`` "dealings"); revealed shares failing them are skipped and reported.

    Fails with: :class:`TooFewSurvivorsError` (|U| < t), :class:`NotEnoughRevealsError`
    (fewer than t reveals), :class:`PeerSetError` (U and D overlap or a survivor's
    ``peers`` != (U ∪ D) minus itself), :class:`AdvertisementError` (a member of U ∪ D
    did not advertise), :class:`VectorShapeError` (a masked vector is not 1-D uint64
    of length L), :class:`RevealFormatError` (a reveal from a non-survivor, with the
    wrong key sets, a malformed share or a share index other than the revealer's),
    :class:`~synthreg.secagg.errors.BadDealingError` (a member of U ∪ D has no or
    malformed commitments), :class:`TooFewGoodSharesError` (fewer than t revealed
    shares of a party verify; names the bad revealers),
    :class:`SeedCommitmentMismatchError` / :class:`MaskKeyMismatchError` (verified
    shares recombine to something the owner did not advertise; names the owner and
    the share indices), and :class:`~synthreg.secagg.errors.UnknownPartyError` for
    non-participants.
    """
    survivors = list(masked)
    u_set, d_set = set(survivors), set(dropped)
    _check_sets(params, survivors, list(dropped), advertised, peers_of)
    acc = np.zeros(params.vector_len, dtype=np.uint64)
    for msp in survivors:
        y = masked[msp]
        if not isinstance(y, np.ndarray) or y.dtype != np.uint64 or y.shape != (params.vector_len,):
            got = (getattr(y, "dtype", type(y).__name__), getattr(y, "shape", None))
            raise VectorShapeError(f"masked vector of {msp!r}", got, ("uint64", (params.vector_len,)))
        np.add(acc, y, out=acc)
    seed_shares, key_shares = _collect_shares(params, reveals, u_set, d_set)
    points = {}
    for msp in sorted(u_set | d_set):
        if msp not in dealings:
            raise BadDealingError(msp, "*", "commitments", "missing (every member of U and D posted a dealing)")
        points[msp] = dealings[msp].points(msp, "*", params.threshold)
    bad: list[BadRevealError] = []

    for msp in sorted(u_set):
        check = _seed_check(params, msp, advertised[msp].seed_commit)
        seed = _recover(params, msp, "seed", seed_shares[msp], points[msp]["seed"], check,
                        SeedCommitmentMismatchError, bad)
        try:
            prg_sub(acc, seed)
        finally:
            seed[:] = bytes(len(seed))

    context = params.pairwise_context
    for gone in sorted(d_set):
        check = _key_check(advertised[gone].public_key)
        raw = _recover(params, gone, "key", key_shares[gone], points[gone]["key"], check, MaskKeyMismatchError, bad)
        try:
            key = X25519PrivateKey.from_private_bytes(bytes(raw))
        finally:
            raw[:] = bytes(len(raw))
        for msp in survivors:
            try:
                pair_seed = derive_pairwise_seed(key, advertised[msp].public_key, context)
            except KeyFormatError as exc:
                raise AdvertisementError(msp, f"key agreement failed: {exc}") from exc
            # y_msp carries +PRG(s) if gone > msp, -PRG(s) otherwise; gone's own y is absent.
            if gone > msp:
                prg_sub(acc, pair_seed)
            else:
                prg_add(acc, pair_seed)
    return Unmasked(decode(acc, params.scale_bits), tuple(bad))


def average(
    params: Params,
    advertised: Mapping[str, Advertisement],
    masked: Mapping[str, npt.NDArray[np.uint64]],
    reveals: Mapping[str, Reveal],
    dropped: Sequence[str],
    peers_of: Mapping[str, Sequence[str]],
    dealings: Mapping[str, Dealing],
    weights: Mapping[str, float] | None = None,
    bad_reveals: list[BadRevealError] | None = None,
) -> npt.NDArray[np.float32]:
    """float32 ( :func:`unmask` / Σ_{i in U} weights[i] ); weights default to 1 each.

    ``weights`` must hold the weight each survivor masked with (finite, > 0;
    :class:`WeightError` otherwise). Hash the result with
    :func:`~synthreg.secagg.wire.average_sha256`. Revealed shares that failed their
    commitments (and were ignored) are appended to ``bad_reveals`` when given.
    """
    res = unmask_checked(params, advertised, masked, reveals, dropped, peers_of, dealings)
    if bad_reveals is not None:
        bad_reveals.extend(res.bad_reveals)
    total = res.total
    weight_sum = 0.0
    for msp in masked:
        if weights is None:
            weight_sum += 1.0
        elif msp not in weights:
            raise WeightError(msp, "missing")
        else:
            weight_sum += check_weight(msp, weights[msp])
    return (total / weight_sum).astype(np.float32)


def _check_sets(
    params: Params,
    survivors: list[str],
    dropped: list[str],
    advertised: Mapping[str, Advertisement],
    peers_of: Mapping[str, Sequence[str]],
) -> None:
    for msp in survivors:
        params.require_participant(msp, "survivor")
    for msp in dropped:
        params.require_participant(msp, "dropped party")
    if len(set(dropped)) != len(dropped):
        raise PeerSetError(sorted(dropped)[0], "dropped list has duplicates")
    both = sorted(set(survivors) & set(dropped))
    if both:
        raise PeerSetError(both[0], "listed both as survivor and as dropped")
    if len(survivors) < params.threshold:
        raise TooFewSurvivorsError(len(survivors), params.threshold)
    posted = set(survivors) | set(dropped)
    for msp in sorted(posted):
        if msp not in advertised:
            raise AdvertisementError(msp, "missing (every member of U and D must have advertised)")
    for msp in survivors:
        if msp not in peers_of:
            raise PeerSetError(msp, "no peers list")
        peers = peers_of[msp]
        if isinstance(peers, str) or len(set(peers)) != len(peers) or set(peers) != posted - {msp}:
            raise PeerSetError(msp, f"peers {list(peers)} != (U ∪ D) minus itself = {sorted(posted - {msp})}")


_Shares = dict[str, dict[str, tuple[int, int]]]  # owner -> revealer -> (index, value)


def _collect_shares(
    params: Params, reveals: Mapping[str, Reveal], u_set: set[str], d_set: set[str]
) -> tuple[_Shares, _Shares]:
    """``(seed[owner][revealer], key[owner][revealer])`` after checking every reveal's format."""
    if len(reveals) < params.threshold:
        raise NotEnoughRevealsError(len(reveals), params.threshold)
    seed: _Shares = {u: {} for u in u_set}
    key: _Shares = {d: {} for d in d_set}
    for revealer, rev in sorted(reveals.items()):
        if revealer not in u_set:
            raise RevealFormatError(revealer, "is not a survivor")
        both = sorted(set(rev.seed_shares) & set(rev.key_shares))
        if both:
            raise RevealConflictError(both[0])
        if set(rev.seed_shares) != u_set:
            raise RevealFormatError(revealer,
                                    f"seed shares for {sorted(rev.seed_shares)}, expected U = {sorted(u_set)}")
        if set(rev.key_shares) != d_set:
            raise RevealFormatError(revealer, f"key shares for {sorted(rev.key_shares)}, expected D = {sorted(d_set)}")
        index = params.share_index(revealer)
        for kind, raw_map, out in (("seed", rev.seed_shares, seed), ("key", rev.key_shares, key)):
            for owner, raw in raw_map.items():
                try:
                    share = vss.decode_share(raw)
                except vss.VSSFormatError as exc:
                    raise RevealFormatError(revealer, f"{kind} share of {owner!r}: {exc}") from exc
                if share[0] != index:
                    raise RevealFormatError(
                        revealer, f"{kind} share of {owner!r} has index {share[0]}, revealer's is {index}"
                    )
                out[owner][revealer] = share
    return seed, key


def _recover(
    params: Params,
    owner: str,
    kind: str,
    by_revealer: Mapping[str, tuple[int, int]],
    commitments: Sequence[vss.EccPoint],
    check: Callable[[bytearray], bool],
    error: type[RecoveryMismatchError],
    bad: list[BadRevealError],
) -> bytearray:
    """``owner``'s 32-byte secret from the t lowest-index revealed shares that verify
    against its commitments; failing shares go to ``bad``; ``error`` if ``check`` fails."""
    t = params.threshold
    good: list[tuple[int, int]] = []
    bad_here: list[str] = []
    for revealer in sorted(by_revealer, key=lambda r: by_revealer[r][0]):
        if len(good) == t:
            break
        index, value = by_revealer[revealer]
        if vss.verify(index, value, commitments):
            good.append((index, value))
        else:
            bad_here.append(revealer)
            bad.append(BadRevealError(revealer, owner, kind))
    if len(good) < t:  # every share was checked (the loop stops only at t good ones)
        raise TooFewGoodSharesError(owner, kind, len(good), t, bad_here)
    secret = vss.combine(good)
    if not check(secret):
        secret[:] = bytes(len(secret))
        raise error(owner, [i for i, _ in good], [])
    return secret


def _seed_check(params: Params, owner: str, commit: str) -> Callable[[bytearray], bool]:
    """Check of a recombined self-mask seed: its commitment equals the advertised one."""

    def check(seed: bytearray) -> bool:
        return hmac.compare_digest(seed_commitment(params, owner, seed), commit)

    return check


def _key_check(public: bytes) -> Callable[[bytearray], bool]:
    """Check of a recombined mask private key: it belongs to the advertised public key."""

    def check(raw: bytearray) -> bool:
        derived = X25519PrivateKey.from_private_bytes(bytes(raw)).public_key()
        return hmac.compare_digest(derived.public_bytes(Encoding.Raw, PublicFormat.Raw), public)

    return check
