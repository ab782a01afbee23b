"""secagg rounds end to end in memory: correctness, dropout recovery, loud failures, hiding.

No ledger here: the dicts below stand in for what the driver reads from GetRound.
These tests are about the arithmetic and the refusal rules of synthreg.secagg only.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from synthreg.crypto.transport import derive_pairwise_seed
from synthreg.secagg import (
    Advertisement,
    AdvertisementError,
    AlreadyUsedError,
    BadDealingError,
    Dealing,
    DuplicateSharesError,
    ErasedError,
    MissingShareError,
    NotEnoughAdvertisedError,
    NotEnoughRevealsError,
    Params,
    Party,
    PeerSetError,
    PhaseError,
    Reveal,
    RevealConflictError,
    RevealFormatError,
    SeedCommitmentMismatchError,
    ShareEnvelopeError,
    TooFewGoodSharesError,
    TooFewSurvivorsError,
    average,
    average_sha256,
    fixedpoint,
    prg,
    seed_commitment,
    unmask,
    unmask_checked,
    vss,
)

L = 257


def _msps(n: int) -> tuple[str, ...]:
    return tuple(sorted(f"Registry{i}MSP" for i in range(1, n + 1)))


@dataclasses.dataclass
class Round:
    """One in-memory round after advertise + share, as the driver would hold it."""

    params: Params
    parties: dict[str, Party]
    advertised: dict[str, Advertisement]
    envelopes: dict[str, dict[str, bytes]]  # sender -> recipient -> envelope
    xs: dict[str, np.ndarray]

    def peers(self, msp: str, posted: Sequence[str] | None = None) -> list[str]:
        return [m for m in (posted or self.params.participants) if m != msp]

    def masked(self, survivors: Sequence[str], weights: dict[str, float] | None = None) -> dict[str, np.ndarray]:
        w = weights or {}
        return {m: self.parties[m].mask(self.xs[m], w.get(m, 1.0), self.peers(m)) for m in survivors}

    def reveals(self, revealers: Sequence[str], survivors: Sequence[str], dropped: Sequence[str]) -> dict[str, Reveal]:
        return {m: self.parties[m].reveal(survivors, dropped) for m in revealers}

    def peers_of(self, survivors: Sequence[str]) -> dict[str, list[str]]:
        return {m: self.peers(m) for m in survivors}

    @property
    def dealings(self) -> dict[str, Dealing]:
        return {m: p.dealing for m, p in self.parties.items()}


def _round(n: int, t: int | None = None, length: int = L, seed: int = 0, scale_bits: int = 32) -> Round:
    msps = _msps(n)
    params = Params("run-test", 3, msps, t if t is not None else n // 2 + 1, length, scale_bits)
    parties = {m: Party.new(params, m) for m in msps}
    advertised = {m: p.advertisement() for m, p in parties.items()}
    envelopes = {m: p.make_shares(advertised) for m, p in parties.items()}
    for sender, out in envelopes.items():
        for recipient, env in out.items():
            parties[recipient].receive_shares(sender, env, parties[sender].dealing)
    rng = np.random.default_rng(seed)
    xs = {m: rng.normal(0, 10, size=length).astype(np.float32) for m in msps}
    return Round(params, parties, advertised, envelopes, xs)


def _plain_sum(r: Round, members: Sequence[str], weights: dict[str, float] | None = None) -> np.ndarray:
    w = weights or {}
    return np.sum([w.get(m, 1.0) * r.xs[m].astype(np.float64) for m in members], axis=0)


# -- correctness --------------------------------------------------------------------


@pytest.mark.parametrize(("n", "scale_bits"), [(3, 32), (5, 32), (3, 12), (5, 12)])
def test_sum_equals_plain_sum_within_fixed_point_error(n: int, scale_bits: int) -> None:
    r = _round(n, scale_bits=scale_bits)
    everyone = list(r.params.participants)
    masked = r.masked(everyone)
    reveals = r.reveals(everyone, everyone, [])
    total = unmask(r.params, r.advertised, masked, reveals, [], r.peers_of(everyone), r.dealings)
    err = np.abs(total - _plain_sum(r, everyone))
    assert err.max() <= 2.0**-scale_bits * n
    if scale_bits == 12:
        assert err.max() > 0  # the tolerance is not vacuous: quantisation is visible


def test_dropout_after_sharing_is_recovered_and_sums_only_survivors() -> None:
    r = _round(5, t=3)
    survivors = ["Registry4MSP", "Registry1MSP", "Registry3MSP"]  # submission order, not sorted
    dropped = ["Registry2MSP", "Registry5MSP"]  # shared, then never submitted
    masked = r.masked(survivors)
    reveals = r.reveals(survivors, survivors, dropped)
    assert set(reveals["Registry1MSP"].key_shares) == set(dropped)
    total = unmask(r.params, r.advertised, masked, reveals, dropped, r.peers_of(survivors), r.dealings)
    np.testing.assert_allclose(total, _plain_sum(r, survivors), rtol=0, atol=2.0**-32 * 5)
    assert np.abs(total - _plain_sum(r, list(r.params.participants))).max() > 1.0


def test_exactly_t_reveals_suffice() -> None:
    r = _round(5, t=3)
    survivors = ["Registry1MSP", "Registry2MSP", "Registry3MSP", "Registry5MSP"]
    masked = r.masked(survivors)
    reveals = r.reveals(survivors[:3], survivors, ["Registry4MSP"])
    total = unmask(r.params, r.advertised, masked, reveals, ["Registry4MSP"], r.peers_of(survivors), r.dealings)
    np.testing.assert_allclose(total, _plain_sum(r, survivors), rtol=0, atol=2.0**-32 * 5)


def test_weighted_average_matches_numpy_and_hash_is_reproducible() -> None:
    r = _round(3)
    everyone = list(r.params.participants)
    weights = {"Registry1MSP": 120.0, "Registry2MSP": 30.5, "Registry3MSP": 7.0}
    masked = r.masked(everyone, weights)
    reveals = r.reveals(everyone, everyone, [])
    avg = average(r.params, r.advertised, masked, reveals, [], r.peers_of(everyone), r.dealings, weights)
    assert avg.dtype == np.float32
    expected = np.average(np.stack([r.xs[m] for m in everyone]), axis=0, weights=[weights[m] for m in everyone])
    np.testing.assert_allclose(avg, expected, rtol=1e-6, atol=1e-6)
    again = average(r.params, r.advertised, masked, reveals, [], r.peers_of(everyone), r.dealings, weights)
    assert average_sha256(avg) == average_sha256(again)
    unweighted = average(
        r.params, r.advertised, r.masked(everyone, weights), reveals, [], r.peers_of(everyone), r.dealings
    )
    np.testing.assert_allclose(unweighted, _plain_sum(r, everyone, weights) / 3, rtol=1e-6)


# -- masks cancel -------------------------------------------------------------------


def test_pairwise_seeds_agree_and_pairwise_masks_cancel_exactly() -> None:
    msps = _msps(4)
    params = Params("run-x", 0, msps, 3, 1000)
    keys = {m: bytearray(hashlib.sha256(m.encode()).digest()) for m in msps}
    seeds = {m: bytearray(hashlib.sha256(b"seed" + m.encode()).digest()) for m in msps}
    parties = {m: Party(params, m, bytearray(keys[m]), bytearray(seeds[m])) for m in msps}
    advertised = {m: p.advertisement() for m, p in parties.items()}
    privs = {m: X25519PrivateKey.from_private_bytes(bytes(k)) for m, k in keys.items()}
    for a in msps:
        for b in msps:
            if a < b:
                ctx = params.pairwise_context
                assert derive_pairwise_seed(privs[a], advertised[b].public_key, ctx) == derive_pairwise_seed(
                    privs[b], advertised[a].public_key, ctx
                )
    envelopes = {m: p.make_shares(advertised) for m, p in parties.items()}
    for sender, out in envelopes.items():
        for recipient, env in out.items():
            parties[recipient].receive_shares(sender, env, parties[sender].dealing)
    zeros = np.zeros(1000, dtype=np.float64)
    ys = [parties[m].mask(zeros, 1.0, [p for p in msps if p != m]) for m in msps]
    acc = np.sum(ys, axis=0, dtype=np.uint64)  # wraps mod 2^64
    for m in msps:
        prg.prg_sub(acc, seeds[m])
    np.testing.assert_array_equal(acc, np.zeros(1000, dtype=np.uint64))  # exact, not approximate
    # and each y_i alone is not just its self mask: pairwise terms are present
    assert not np.array_equal(ys[0], prg.prg(seeds[msps[0]], 1000))


# -- hiding ---------------------------------------------------------------------------


def test_one_masked_vector_looks_uniform_even_after_its_seed_is_revealed() -> None:
    n_elems = 10_000
    r = _round(3, length=n_elems, seed=3)
    me = "Registry2MSP"
    r.xs[me] = np.full(n_elems, 0.5, dtype=np.float32)  # highly structured input
    q = fixedpoint.encode(r.xs[me], r.params)
    y = r.masked([me])[me]
    # the self seed as every survivor's reveal would expose it
    everyone = list(r.params.participants)
    r.masked([m for m in everyone if m != me])
    reveals = r.reveals(everyone, everyone, [])
    shares = [vss.decode_share(rv.seed_shares[me]) for rv in reveals.values()]
    seed = vss.combine(shares[: r.params.threshold])
    assert r.advertised[me].seed_commit == seed_commitment(r.params, me, seed)
    without_self = y.copy()
    prg.prg_sub(without_self, seed)
    for vec in (y, without_self):
        assert abs(float(np.mean(vec >> np.uint64(63))) - 0.5) < 0.05
        assert abs(float(np.mean(vec & np.uint64(1))) - 0.5) < 0.05
        assert int(np.sum(vec == q)) == 0
        decoded = fixedpoint.decode(vec, r.params.scale_bits)
        assert float(np.mean(np.abs(decoded - 0.5))) > 1e6  # nowhere near the input
    # the unmasked input really is q: the pairwise masks are what is left
    for peer in r.peers(me):
        s = derive_pairwise_seed(
            X25519PrivateKey.from_private_bytes(bytes(r.parties[me]._key_raw)), r.advertised[peer].public_key,
            r.params.pairwise_context,
        )
        (prg.prg_sub if peer > me else prg.prg_add)(without_self, s)
    np.testing.assert_array_equal(without_self, q)


# -- loud failures --------------------------------------------------------------------


def test_too_few_survivors_is_void() -> None:
    r = _round(5, t=3)
    survivors = ["Registry1MSP", "Registry2MSP"]
    masked = r.masked(survivors)
    dropped = ["Registry3MSP", "Registry4MSP", "Registry5MSP"]
    with pytest.raises(TooFewSurvivorsError) as err:
        unmask(r.params, r.advertised, masked, {}, dropped, r.peers_of(survivors), r.dealings)
    assert (err.value.have, err.value.need) == (2, 3)


def test_fewer_than_t_reveals_fails() -> None:
    r = _round(5, t=3)
    everyone = list(r.params.participants)
    masked = r.masked(everyone)
    reveals = r.reveals(everyone[:2], everyone, [])
    with pytest.raises(NotEnoughRevealsError) as err:
        unmask(r.params, r.advertised, masked, reveals, [], r.peers_of(everyone), r.dealings)
    assert (err.value.have, err.value.need) == (2, 3)


def _tamper(share: bytes) -> bytes:
    out = bytearray(share)
    out[-1] ^= 0x5A
    return bytes(out)


def test_unmask_ignores_a_tampered_revealed_share_and_names_the_revealer() -> None:
    r = _round(5, t=3)
    everyone = list(r.params.participants)
    masked = r.masked(everyone)
    reveals = r.reveals(everyone, everyone, [])
    liar, victim = "Registry1MSP", "Registry4MSP"
    bad = reveals[liar].seed_shares | {victim: _tamper(reveals[liar].seed_shares[victim])}
    reveals[liar] = Reveal(bad, {})
    # the liar's share of the victim's seed fails the victim's Feldman commitments: it is skipped,
    # the seed is recombined from the next t good shares, and the liar (not the victim) is named
    res = unmask_checked(r.params, r.advertised, masked, reveals, [], r.peers_of(everyone), r.dealings)
    np.testing.assert_allclose(res.total, _plain_sum(r, everyone), rtol=0, atol=2.0**-32 * 5)
    assert res.bad_revealers == (liar,)
    (err,) = res.bad_reveals
    assert (err.revealer, err.owner, err.kind) == (liar, victim, "seed")


def test_unmask_with_exactly_t_reveals_one_tampered_names_the_revealer() -> None:
    r = _round(3)
    survivors, dropped = ["Registry1MSP", "Registry3MSP"], ["Registry2MSP"]
    masked = r.masked(survivors)
    reveals = r.reveals(survivors, survivors, dropped)
    rv = reveals["Registry3MSP"]
    reveals["Registry3MSP"] = Reveal(rv.seed_shares, {"Registry2MSP": _tamper(rv.key_shares["Registry2MSP"])})
    with pytest.raises(TooFewGoodSharesError) as err:  # only t shares: one bad is one too many, said loudly
        unmask(r.params, r.advertised, masked, reveals, dropped, r.peers_of(survivors), r.dealings)
    assert (err.value.owner, err.value.kind, err.value.have, err.value.need) == ("Registry2MSP", "key", 1, 2)
    assert err.value.bad_revealers == ("Registry3MSP",)


def _deal_bad_share(r: Round, dealer: str, recipient: str) -> bytes:
    """``dealer``'s envelope for ``recipient`` re-sealed around a seed share off its polynomial:
    a valid envelope (right keys, right context, right index), a wrong share."""
    from synthreg.crypto.transport import load_public_key, seal_to
    from synthreg.secagg.party import encode_envelope
    from synthreg.secagg.wire import share_context

    d = r.parties[dealer]
    seed_shares, key_shares = d._split()
    i = r.params.share_index(recipient) - 1
    index, value = vss.decode_share(seed_shares[i])
    forged = vss.encode_share(index, (value + 1) % vss.ORDER)
    env = seal_to(load_public_key(r.advertised[recipient].public_key), forged + key_shares[i],
                  share_context(r.params, dealer, recipient))
    return encode_envelope(env)


def test_attack_bad_share_dealing_names_the_dealer() -> None:
    msps = _msps(3)
    params = Params("run-test", 3, msps, 2, L)
    parties = {m: Party.new(params, m) for m in msps}
    advertised = {m: p.advertisement() for m, p in parties.items()}
    envelopes = {m: p.make_shares(advertised) for m, p in parties.items()}
    r = Round(params, parties, advertised, envelopes, {})
    dealer, victim, other = "Registry1MSP", "Registry2MSP", "Registry3MSP"
    bad_env = _deal_bad_share(r, dealer, victim)
    with pytest.raises(BadDealingError) as err:
        parties[victim].receive_shares(dealer, bad_env, parties[dealer].dealing)
    assert (err.value.dealer, err.value.recipient, err.value.kind) == (dealer, victim, "seed")
    assert dealer in str(err.value)
    assert parties[victim].rejected == (dealer,)  # goes into its Submit's "rejected"
    assert dealer not in parties[victim].share_senders  # nothing of the dealer's is kept or revealed
    with pytest.raises(BadDealingError):  # a re-delivery cannot sneak it back in
        parties[victim].receive_shares(dealer, envelopes[dealer][victim], parties[dealer].dealing)
    # the other recipient got a good share from the same dealer and accepts it
    parties[other].receive_shares(dealer, envelopes[dealer][other], parties[dealer].dealing)
    assert parties[other].rejected == ()
    # the victim still masks with the dealer (its public key suffices): no MissingShareError
    parties[victim].receive_shares(other, envelopes[other][victim], parties[other].dealing)
    y = parties[victim].mask(np.zeros(L), 1.0, [dealer, other])
    assert y.shape == (L,)


def test_malformed_commitments_name_the_dealer() -> None:
    r = _round(3)
    fresh = Party.new(r.params, "Registry2MSP")
    adv = dict(r.advertised) | {"Registry2MSP": fresh.advertisement()}
    env = r.parties["Registry1MSP"].make_shares(adv)["Registry2MSP"]
    good = r.dealings["Registry1MSP"]
    for dealing in (Dealing(good.seed[:1], good.key), Dealing((b"\x02" + b"\xff" * 32, *good.seed[1:]), good.key)):
        p = Party.new(r.params, "Registry2MSP")
        with pytest.raises(BadDealingError) as err:
            p.receive_shares("Registry1MSP", env, dealing)
        assert (err.value.dealer, err.value.kind) == ("Registry1MSP", "commitments")
    # commitments of another polynomial (here: another dealer's) fail the share check
    with pytest.raises(BadDealingError) as err2:
        fresh.receive_shares("Registry1MSP", env, r.dealings["Registry3MSP"])
    assert err2.value.dealer == "Registry1MSP" and fresh.rejected == ("Registry1MSP",)


def test_vss_shares_verify_and_any_t_recombine() -> None:
    secret = vss.random_scalar_bytes()
    shares, commits = vss.deal(secret, 3, 5)
    points = [vss.decode_point(c) for c in commits]
    decoded = [vss.decode_share(s) for s in shares]
    assert all(vss.verify(i, y, points) for i, y in decoded)
    assert not vss.verify(decoded[0][0], (decoded[0][1] + 1) % vss.ORDER, points)
    assert not vss.verify(2, decoded[0][1], points)  # right value, wrong index
    for subset in ([0, 1, 2], [2, 3, 4], [0, 2, 4]):
        assert vss.combine([decoded[k] for k in subset]) == secret
    assert vss.combine(decoded[:2]) != secret  # t - 1 shares do not determine it


def test_wrong_seed_commitment_is_named() -> None:
    r = _round(3)
    everyone = list(r.params.participants)
    masked = r.masked(everyone)
    reveals = r.reveals(everyone, everyone, [])
    forged = dict(r.advertised)
    forged["Registry3MSP"] = Advertisement(r.advertised["Registry3MSP"].public_key, "00" * 32)
    with pytest.raises(SeedCommitmentMismatchError) as err:
        unmask(r.params, forged, masked, reveals, [], r.peers_of(everyone), r.dealings)
    assert err.value.party == "Registry3MSP" and err.value.indices == (1, 2)
    assert "Registry3MSP" in str(err.value) and "[1, 2]" in str(err.value)


def test_tampered_envelope_names_the_sender() -> None:
    r = _round(3)
    env = bytearray(r.envelopes["Registry1MSP"]["Registry2MSP"])
    pos = env.index(b'"ciphertext":"') + len(b'"ciphertext":"')
    env[pos] = ord("A") if env[pos] != ord("A") else ord("B")
    fresh = Party.new(r.params, "Registry2MSP")  # a recipient that has no shares yet
    with pytest.raises(ShareEnvelopeError) as err:
        r.parties["Registry2MSP"].receive_shares("Registry1MSP", bytes(env), r.dealings["Registry1MSP"])
    assert err.value.sender == "Registry1MSP"
    with pytest.raises(ShareEnvelopeError) as err2:
        fresh.receive_shares("Registry1MSP", b"not json", r.dealings["Registry1MSP"])
    assert err2.value.sender == "Registry1MSP"


def test_envelope_from_wrong_sender_or_for_wrong_recipient_fails() -> None:
    r = _round(3)
    env_1_to_2 = r.envelopes["Registry1MSP"]["Registry2MSP"]
    with pytest.raises(ShareEnvelopeError) as err:  # claimed sender differs from the sealing sender
        r.parties["Registry2MSP"].receive_shares("Registry3MSP", env_1_to_2, r.dealings["Registry3MSP"])
    assert err.value.sender == "Registry3MSP"
    with pytest.raises(ShareEnvelopeError) as err2:  # sealed for Registry2, opened by Registry3
        r.parties["Registry3MSP"].receive_shares("Registry1MSP", env_1_to_2, r.dealings["Registry1MSP"])
    assert err2.value.sender == "Registry1MSP"
    # an identical re-delivery is a no-op, a different envelope from the same sender is refused
    r.parties["Registry2MSP"].receive_shares("Registry1MSP", env_1_to_2, r.dealings["Registry1MSP"])
    resent = r.parties["Registry1MSP"].make_shares(r.advertised)["Registry2MSP"]  # same split, fresh envelope
    # same shares inside: accepted
    r.parties["Registry2MSP"].receive_shares("Registry1MSP", resent, r.dealings["Registry1MSP"])


def test_envelope_from_another_round_fails() -> None:
    r = _round(3)
    other = Params("run-test", 4, r.params.participants, 2, L)
    sender = Party.new(other, "Registry1MSP")
    adv = dict(r.advertised)
    adv["Registry1MSP"] = sender.advertisement()
    env = sender.make_shares(adv)["Registry2MSP"]
    with pytest.raises(ShareEnvelopeError):
        r.parties["Registry2MSP"].receive_shares("Registry1MSP", env, sender.dealing)


def test_different_shares_from_the_same_sender_are_refused() -> None:
    r = _round(3)
    impostor = Party.new(r.params, "Registry1MSP")
    adv = dict(r.advertised)
    adv["Registry1MSP"] = impostor.advertisement()
    env = impostor.make_shares(adv)["Registry2MSP"]
    with pytest.raises(DuplicateSharesError) as err:
        r.parties["Registry2MSP"].receive_shares("Registry1MSP", env, impostor.dealing)
    assert err.value.sender == "Registry1MSP"


def test_make_shares_needs_threshold_advertisers_and_own_advertisement() -> None:
    r = _round(5, t=3)
    me = r.parties["Registry1MSP"]
    fresh = Party.new(r.params, "Registry1MSP")
    with pytest.raises(NotEnoughAdvertisedError) as err:
        fresh.make_shares({"Registry1MSP": fresh.advertisement(), "Registry2MSP": r.advertised["Registry2MSP"]})
    assert (err.value.have, err.value.need) == (2, 3)
    with pytest.raises(AdvertisementError):
        fresh.make_shares(r.advertised)  # carries the other Registry1 key, not fresh's
    out = me.make_shares(r.advertised)
    assert set(out) == {"Registry2MSP", "Registry3MSP", "Registry4MSP", "Registry5MSP"}
    assert all(len(e) <= 4096 for e in out.values())


# -- refusal rules of a party ---------------------------------------------------------


def test_reveal_never_exposes_both_shares_of_one_party() -> None:
    r = _round(3)
    everyone = list(r.params.participants)
    p1 = r.parties["Registry1MSP"]
    r.masked(everyone)
    with pytest.raises(RevealConflictError) as err:
        p1.reveal(everyone, ["Registry3MSP"])
    assert err.value.msp == "Registry3MSP"
    p1.reveal(everyone, [])  # reveals the seed share of Registry3 ...
    with pytest.raises(RevealConflictError) as err2:  # ... so never its key share afterwards
        p1.reveal(["Registry1MSP", "Registry2MSP"], ["Registry3MSP"])
    assert err2.value.msp == "Registry3MSP"
    # and the other direction
    p2 = r.parties["Registry2MSP"]
    p2.reveal(["Registry1MSP", "Registry2MSP"], ["Registry3MSP"])
    with pytest.raises(RevealConflictError):
        p2.reveal(everyone, [])


def test_reveal_preconditions() -> None:
    r = _round(3)
    everyone = list(r.params.participants)
    p1 = r.parties["Registry1MSP"]
    with pytest.raises(PhaseError):
        p1.reveal(everyone, [])  # not masked, so not in U
    r.masked(["Registry1MSP"])
    with pytest.raises(PhaseError):
        p1.reveal(["Registry2MSP", "Registry3MSP"], ["Registry1MSP"])  # self dropped
    with pytest.raises(PeerSetError):
        p1.reveal(["Registry1MSP", "Registry2MSP"], [])  # U ∪ D != P
    with pytest.raises(PeerSetError):
        p1.reveal(["Registry1MSP", "Registry1MSP", "Registry2MSP"], ["Registry3MSP"])


def test_unmask_refuses_a_reveal_with_both_shares_or_wrong_sets() -> None:
    r = _round(3)
    survivors, dropped = ["Registry1MSP", "Registry3MSP"], ["Registry2MSP"]
    masked = r.masked(survivors)
    reveals = r.reveals(survivors, survivors, dropped)
    good = reveals["Registry1MSP"]
    bad = dict(reveals)
    bad["Registry1MSP"] = Reveal(good.seed_shares | {"Registry2MSP": good.key_shares["Registry2MSP"]}, good.key_shares)
    with pytest.raises(RevealConflictError):
        unmask(r.params, r.advertised, masked, bad, dropped, r.peers_of(survivors), r.dealings)
    bad["Registry1MSP"] = Reveal(good.seed_shares, {})
    with pytest.raises(RevealFormatError) as err:
        unmask(r.params, r.advertised, masked, bad, dropped, r.peers_of(survivors), r.dealings)
    assert err.value.revealer == "Registry1MSP"
    bad["Registry1MSP"] = reveals["Registry3MSP"]  # Registry3's shares posted as Registry1's: wrong index
    with pytest.raises(RevealFormatError):
        unmask(r.params, r.advertised, masked, bad, dropped, r.peers_of(survivors), r.dealings)
    with pytest.raises(PeerSetError):
        peers_of = {m: ["Registry2MSP"] for m in survivors}
        unmask(r.params, r.advertised, masked, reveals, dropped, peers_of, r.dealings)
    with pytest.raises(PeerSetError):
        unmask(r.params, r.advertised, masked, reveals, ["Registry1MSP"], r.peers_of(survivors), r.dealings)


def test_mask_once_per_round_and_peer_checks() -> None:
    r = _round(3)
    p1 = r.parties["Registry1MSP"]
    peers = r.peers("Registry1MSP")
    y = p1.mask(r.xs["Registry1MSP"], 2.0, peers)
    np.testing.assert_array_equal(y, p1.mask(r.xs["Registry1MSP"], 2.0, list(reversed(peers))))
    with pytest.raises(AlreadyUsedError):
        p1.mask(r.xs["Registry2MSP"], 2.0, peers)
    with pytest.raises(AlreadyUsedError):
        p1.mask(r.xs["Registry1MSP"], 1.0, peers)
    p2 = r.parties["Registry2MSP"]
    with pytest.raises(PeerSetError):
        p2.mask(r.xs["Registry2MSP"], 1.0, ["Registry1MSP", "Registry2MSP"])
    with pytest.raises(PeerSetError):
        p2.mask(r.xs["Registry2MSP"], 1.0, ["Registry1MSP", "Registry1MSP"])
    lonely = Party.new(r.params, "Registry3MSP")
    with pytest.raises(PhaseError):
        lonely.mask(r.xs["Registry3MSP"], 1.0, ["Registry1MSP", "Registry2MSP"])
    adv = dict(r.advertised) | {"Registry3MSP": lonely.advertisement()}
    lonely.make_shares(adv)
    with pytest.raises(MissingShareError) as err:  # nobody sent lonely its shares
        lonely.mask(r.xs["Registry3MSP"], 1.0, ["Registry1MSP", "Registry2MSP"])
    assert err.value.owner == "Registry1MSP"
    with pytest.raises(PhaseError):
        p1.make_shares(r.advertised)  # after mask the share set is fixed


def test_erase_zeroes_secrets_and_blocks_further_use() -> None:
    r = _round(3)
    p = r.parties["Registry1MSP"]
    buffers = [p._key_raw, p._seed, *p._held_seed.values(), *p._held_key.values()]
    assert all(any(b) for b in buffers)
    p.erase()
    assert p.erased and all(not any(b) for b in buffers)
    with pytest.raises(ErasedError):
        p.mask(r.xs["Registry1MSP"], 1.0, r.peers("Registry1MSP"))
    with pytest.raises(ErasedError):
        p.receive_shares("Registry2MSP", r.envelopes["Registry2MSP"]["Registry1MSP"], r.parties["Registry2MSP"].dealing)
    assert "erased" in repr(p)
