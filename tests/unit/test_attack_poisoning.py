"""Issue 10, attack 2 "Poisoning": nothing bounded an update.

Honest updates of 0.1 and -0.1 plus one of 3.5e8 averaged to 1.17e8 through secure
aggregation, and no merger could tell. Now each update (the delta from the previous
agreed average) is bounded by the run's ``max_update_norm`` (:mod:`synthreg.gan.bound`):
an honest merger clips its own before masking, and every merger checks the agreed
average after the agreement. The masking here is the real secure-aggregation protocol
in memory (:mod:`synthreg.secagg`, as the merger apps run it over the ledger).
"""

from __future__ import annotations

import numpy as np
import pytest

from synthreg.gan.bound import UpdateBoundError, check_bound, clip_update, update_norm
from synthreg.gan.federated import TrainConfig
from synthreg.secagg import Params, Party, average

MSPS = ("Registry1MSP", "Registry2MSP", "Registry3MSP")
L = 64  # an honest delta of 0.1 per weight has norm 0.8, within the default bound
C = TrainConfig().max_update_norm
ROUND = 7


def _secure_averages(vectors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One secure-aggregation round of the three registries: the average each merger computes."""
    params = Params("run-poison", ROUND, MSPS, 2, L, 32)
    parties = {m: Party.new(params, m) for m in MSPS}
    advertised = {m: p.advertisement() for m, p in parties.items()}
    envelopes = {m: p.make_shares(advertised) for m, p in parties.items()}
    dealings = {m: p.dealing for m, p in parties.items()}
    for sender, per_recipient in envelopes.items():
        for recipient, env in per_recipient.items():
            parties[recipient].receive_shares(sender, env, dealings[sender])
    peers = {m: [o for o in MSPS if o != m] for m in MSPS}
    masked = {m: parties[m].mask(vectors[m], 1.0, peers[m]) for m in MSPS}
    reveals = {m: parties[m].reveal(list(MSPS), []) for m in MSPS}
    return {m: average(params, advertised, masked, reveals, [], peers, dealings) for m in MSPS}


def test_attack_poisoned_update_is_bounded() -> None:
    assert C == 1.0
    prev = np.random.default_rng(0).normal(0, 0.1, L).astype(np.float32)  # the previous agreed average
    deltas = {MSPS[0]: 0.1, MSPS[1]: -0.1, MSPS[2]: 3.5e8}
    raw = {m: (prev.astype(np.float64) + d).astype(np.float32) for m, d in deltas.items()}

    # the attack as it was: the average moves by 1.17e8 per weight, and nothing bounds it
    before = _secure_averages(raw)
    assert np.allclose(before[MSPS[0]] - prev, 3.5e8 / 3, rtol=1e-6)
    check_bound(before[MSPS[0]], prev, None, ROUND)  # unbounded: accepted

    # honest mergers clip before masking: honest updates keep their bits, the big one is cut to C
    clipped = {m: clip_update(v, prev, C) for m, v in raw.items()}
    assert all(clipped[m] is raw[m] for m in MSPS[:2])
    assert update_norm(clipped[MSPS[2]], prev) == pytest.approx(C, rel=1e-6)
    for m, avg in _secure_averages(clipped).items():  # every merger's check holds
        assert check_bound(avg, prev, C, ROUND) <= C + 1e-6, m

    # a malicious merger skips the clipping: every merger's check after the agreement names the round
    poisoned = {**clipped, MSPS[2]: raw[MSPS[2]]}
    for avg in _secure_averages(poisoned).values():
        with pytest.raises(UpdateBoundError, match=f"round {ROUND}: the agreed average moved") as info:
            check_bound(avg, prev, C, ROUND)
        assert info.value.round == ROUND and info.value.registry is None
        assert info.value.norm == pytest.approx(3.5e8 / 3 * np.sqrt(L), rel=1e-3)


def test_update_bound_clipping_and_slack() -> None:
    prev = np.linspace(-1, 1, L, dtype=np.float32)
    big = prev + np.float32(1.0)  # delta norm 8
    out = clip_update(big, prev, 2.0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out - prev, (big - prev) / 4, rtol=1e-5)
    assert clip_update(big, prev, None) is big and clip_update(big, prev, 8.5) is big
    nan = big.copy()
    nan[3] = np.nan
    assert clip_update(nan, prev, 2.0) is nan  # left to the fixed-point encoder, which refuses it
    check_bound(out, prev, 2.0, 0)
    with pytest.raises(UpdateBoundError, match="round 3: Registry2MSP's update has norm 8"):
        check_bound(big, prev, 2.0, 3, "Registry2MSP")
    with pytest.raises(ValueError, match="shape"):
        clip_update(big[:-1], prev, 2.0)
