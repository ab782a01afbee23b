"""Attack (issue 10, attack 6): "bad share dealing blames the honest", on the real `gan` channel.

A malicious merger deals one recipient a share off its committed polynomial inside
a perfectly valid envelope (right key, right context, right index). Before
verifiable dealing the round failed at unmask time and named the honest holder;
now the recipient checks the share against the dealer's Feldman commitments on
the ledger, names the dealer (BadDealingError) and rejects it in its Submit, and
Freeze takes both out of the round: with 3 registries and t = 2 the round is void
with the dealer named, and no honest merger is ever blamed or exposed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pytest
from secagg_support import opened_aggregation

from synthreg.chain.secagg import LedgerMerger, RoundVoidError, secure_average
from synthreg.crypto.transport import load_public_key, seal_to
from synthreg.network.profile import Profile
from synthreg.secagg import Advertisement, BadDealingError, Party, vss
from synthreg.secagg.party import encode_envelope
from synthreg.secagg.wire import share_context

VECTOR_LEN = 1000


class BadDealer(LedgerMerger):
    """A merger that corrupts ``victim``'s seed share before encrypting it."""

    victim = ""

    def _envelopes(self, party: Party, advertised: Mapping[str, Advertisement]) -> dict[str, bytes]:
        out = super()._envelopes(party, advertised)
        seed_shares, key_shares = party._split()
        i = party.params.share_index(self.victim) - 1
        index, value = vss.decode_share(seed_shares[i])
        forged = vss.encode_share(index, (value + 1) % vss.ORDER) + key_shares[i]
        env = seal_to(load_public_key(advertised[self.victim].public_key), forged,
                      share_context(party.params, self.msp, self.victim))
        out[self.victim] = encode_envelope(env)
        return out


@pytest.fixture
def mergers(profile: Profile, unique: str) -> Iterator[list[LedgerMerger]]:
    run = f"sa-bad-dealing-{unique}"
    with opened_aggregation(profile, run, VECTOR_LEN) as (contracts, config):
        msps = sorted(contracts)
        dealer = BadDealer(contracts[msps[0]], msps[0], run, config)
        dealer.victim = msps[1]
        yield [dealer] + [LedgerMerger(contracts[m], m, run, config) for m in msps[1:]]


def test_attack_bad_share_dealing_names_the_dealer_on_the_ledger(mergers: list[LedgerMerger]) -> None:
    dealer, victim, other = (m.msp for m in mergers[:3])
    rng = np.random.default_rng(6)
    vectors = {m.msp: rng.normal(size=VECTOR_LEN).astype(np.float32) for m in mergers}
    with pytest.raises(RoundVoidError):
        secure_average(mergers, 0, vectors)

    # the recipient named the dealer, not itself, on receipt
    (err,) = mergers[1].bad_dealings[0]
    assert isinstance(err, BadDealingError)
    assert (err.dealer, err.recipient, err.kind) == (dealer, victim, "seed")
    assert not mergers[2].bad_dealings  # the same dealer's share to the other registry is fine
    # the ledger says who was rejected by whom, and Freeze took both out
    state = mergers[2].state(0)
    assert state["submissions"][victim]["rejected"] == [dealer]
    assert state["submissions"][other]["rejected"] == []
    assert state["excluded"] == sorted([dealer, victim])
    assert state["status"] == "void" and state["survivors"] == [other]
    assert len(state["dealings"][dealer]["seed"]) == mergers[0].config.threshold
