"""Remove the masks from the survivors' vectors (DESIGN.md §4 step 5).

Who calls: every merger's ledger driver after ``Freeze`` and the reveals, with
everything read from the ledger (``GetRound``) and the blob store: advertisements
(A), the masked vectors of U, the reveals of at least ``t`` members of U, D, the
``peers`` each survivor submitted, and the public weights. Every merger computes
bit-identical results from the same ledger data, so the ``average_sha256`` values
agree unless someone is faulty.

Recovery: for each i in U the self-mask seed b_i is recombined from the revealed
seed shares and must match i's seed commitment; for each j in D the round mask key
is recombined from the revealed key shares and must match j's advertised public
key. ``crypto.shamir.combine`` is reused for the recombination; secagg has no
per-share commitments (the shares are read from the ledger, where every revealer
signed its own), so the commitments it checks are computed locally from the
presented shares, and the real integrity check is the ``verify`` callback against
the advertisement. When recombination fails and more than ``t`` shares exist, the
inconsistent revealers are identified and reported as ``suspects``; the call still
fails (loudly, naming the party and share indices) -- the driver may retry without
the suspects' reveals, which every honest merger can do identically.
"""

from __future__ import annotations

import hmac
import itertools
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from synthreg.crypto import shamir
from synthreg.crypto.transport import KeyFormatError, derive_pairwise_seed
from synthreg.secagg.errors import (
    AdvertisementError,
    MaskKeyMismatchError,
    NotEnoughRevealsError,
    PeerSetError,
    RecoveryMismatchError,
    RevealConflictError,
    RevealFormatError,
    SeedCommitmentMismatchError,
    TooFewSurvivorsError,
    VectorShapeError,
    WeightError,
)
from synthreg.secagg.fixedpoint import check_weight, decode
from synthreg.secagg.params import Params
from synthreg.secagg.prg import prg_add, prg_sub
from synthreg.secagg.wire import Advertisement, Reveal, seed_commitment

__all__ = ["MAX_SUSPECT_SEARCH", "average", "unmask"]

MAX_SUSPECT_SEARCH = 256  # t-subsets tried when looking for the inconsistent revealers
_LOCAL_CEREMONY = "synthreg/secagg/ledger-shares"


def unmask(
    params: Params,
    advertised: Mapping[str, Advertisement],
    masked: Mapping[str, npt.NDArray[np.uint64]],
    reveals: Mapping[str, Reveal],
    dropped: Sequence[str],
    peers_of: Mapping[str, Sequence[str]],
) -> npt.NDArray[np.float64]:
    """Σ_{i in U} w_i x_i (float64, length L) from the masked vectors of U = ``masked``' keys.

    Fails with: :class:`TooFewSurvivorsError` (|U| < t), :class:`NotEnoughRevealsError`
    (fewer than t reveals), :class:`PeerSetError` (U and D overlap or a survivor's
    ``peers`` != (U ∪ D) minus itself), :class:`AdvertisementError` (a member of U ∪ D
    did not advertise), :class:`VectorShapeError` (a masked vector is not 1-D uint64
    of length L), :class:`RevealFormatError` (a reveal from a non-survivor, with the
    wrong key sets, a bad share or a share index other than the revealer's),
    :class:`SeedCommitmentMismatchError` / :class:`MaskKeyMismatchError` (recovery
    failed its check; names the party, the share indices and any suspects), and
    :class:`~synthreg.secagg.errors.UnknownPartyError` for non-participants.
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

    for msp in sorted(u_set):
        check = _seed_check(params, msp, advertised[msp].seed_commit)
        seed = _recover(params, msp, seed_shares[msp], check, SeedCommitmentMismatchError)
        try:
            prg_sub(acc, seed)
        finally:
            seed[:] = bytes(len(seed))

    context = params.pairwise_context
    for gone in sorted(d_set):
        check = _key_check(advertised[gone].public_key)
        raw = _recover(params, gone, key_shares[gone], check, MaskKeyMismatchError)
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
    return decode(acc, params.scale_bits)


def average(
    params: Params,
    advertised: Mapping[str, Advertisement],
    masked: Mapping[str, npt.NDArray[np.uint64]],
    reveals: Mapping[str, Reveal],
    dropped: Sequence[str],
    peers_of: Mapping[str, Sequence[str]],
    weights: Mapping[str, float] | None = None,
) -> npt.NDArray[np.float32]:
    """float32 ( :func:`unmask` / Σ_{i in U} weights[i] ); weights default to 1 each.

    ``weights`` must hold the weight each survivor masked with (finite, > 0;
    :class:`WeightError` otherwise). Hash the result with
    :func:`~synthreg.secagg.wire.average_sha256`.
    """
    total = unmask(params, advertised, masked, reveals, dropped, peers_of)
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


def _collect_shares(
    params: Params, reveals: Mapping[str, Reveal], u_set: set[str], d_set: set[str]
) -> tuple[dict[str, dict[str, shamir.Share]], dict[str, dict[str, shamir.Share]]]:
    """``(seed[owner][revealer], key[owner][revealer])`` after checking every reveal."""
    if len(reveals) < params.threshold:
        raise NotEnoughRevealsError(len(reveals), params.threshold)
    seed: dict[str, dict[str, shamir.Share]] = {u: {} for u in u_set}
    key: dict[str, dict[str, shamir.Share]] = {d: {} for d in d_set}
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
                    share = shamir.Share.from_bytes(raw)
                except shamir.ShareFormatError as exc:
                    raise RevealFormatError(revealer, f"{kind} share of {owner!r}: {exc}") from exc
                if share.index != index:
                    raise RevealFormatError(
                        revealer, f"{kind} share of {owner!r} has index {share.index}, revealer's is {index}"
                    )
                out[owner][revealer] = share
    return seed, key


def _recover(
    params: Params,
    owner: str,
    by_revealer: Mapping[str, shamir.Share],
    check: Callable[[bytearray], bool],
    error: type[RecoveryMismatchError],
) -> bytearray:
    """Recombine ``owner``'s 32-byte secret; raise ``error`` naming indices and suspects."""
    shares = list(by_revealer.values())
    t = params.threshold
    commitments = shamir.make_commitments(shares, _LOCAL_CEREMONY)
    try:
        return shamir.combine(shares, commitments, t, verify=check)
    except shamir.KeyVerificationError as exc:
        suspects = _find_suspects(by_revealer, commitments, t, check)
        raise error(owner, exc.indices, suspects) from exc


def _find_suspects(
    by_revealer: Mapping[str, shamir.Share],
    commitments: shamir.ShareCommitments,
    t: int,
    check: Callable[[bytearray], bool],
) -> list[str]:
    """Revealers whose share is inconsistent with a t-subset that passes ``check``.

    Empty when only t shares exist or no passing subset is found within
    :data:`MAX_SUSPECT_SEARCH` tries (then the culprit cannot be told apart).
    """
    revealers = sorted(by_revealer, key=lambda r: by_revealer[r].index)
    if len(revealers) <= t:
        return []
    for subset in itertools.islice(itertools.combinations(revealers, t), MAX_SUSPECT_SEARCH):
        if _passes([by_revealer[r] for r in subset], commitments, t, check):
            base = [by_revealer[r] for r in subset[: t - 1]]
            return [
                r
                for r in revealers
                if r not in subset and not _passes([*base, by_revealer[r]], commitments, t, check)
            ]
    return []


def _passes(
    shares: list[shamir.Share], commitments: shamir.ShareCommitments, t: int, check: Callable[[bytearray], bool]
) -> bool:
    try:
        secret = shamir.combine(shares, commitments, t, verify=check)
    except shamir.KeyVerificationError:
        return False
    secret[:] = bytes(len(secret))
    return True


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
