"""Share extension: a newcomer's share from t holders, the key never rebuilt."""

from __future__ import annotations

import itertools
import os

import pytest
from Crypto.Protocol.SecretSharing import Shamir

from synthreg.crypto.extension import ExtensionError, ExtensionPlan, assemble, contribute
from synthreg.crypto.shamir import HALF_BYTES, KeyVerificationError, Share, combine, make_commitments, split
from synthreg.crypto.transport import RecipientKeyPair, generate_recipient_keypair

CID = "ceremony-ext"


def _setup(t: int, n: int) -> tuple[bytes, list[Share], dict[str, RecipientKeyPair]]:
    key = os.urandom(32)
    shares = split(key, t, n)
    keys = {f"R{s.index}": generate_recipient_keypair() for s in shares}
    return key, shares, keys


def _plan(shares: list[Share], keys: dict[str, RecipientKeyPair], holders: list[str], newcomer: str,
          new_index: int, newcomer_key: RecipientKeyPair) -> ExtensionPlan:
    by_id = {f"R{s.index}": s for s in shares}
    return ExtensionPlan(CID, "tx-1", newcomer, new_index, newcomer_key.public_raw(),
                         {h: (by_id[h].index, keys[h].public_raw()) for h in holders})


def _extend(shares: list[Share], keys: dict[str, RecipientKeyPair], holders: list[str], new_index: int) -> Share:
    nk = generate_recipient_keypair()
    plan = _plan(shares, keys, holders, f"R{new_index}", new_index, nk)
    by_id = {f"R{s.index}": s for s in shares}
    contributions = {h: contribute(plan, h, keys[h], by_id[h]) for h in holders}
    return assemble(plan, nk, contributions)


@pytest.mark.parametrize(("t", "n"), [(2, 3), (3, 5)])
def test_new_share_recovers_the_key_with_any_t_minus_one_old_shares(t: int, n: int) -> None:
    key, shares, keys = _setup(t, n)
    new = _extend(shares, keys, [f"R{i}" for i in range(n - t + 1, n + 1)], n + 1)
    assert new.index == n + 1
    # Same as evaluating the polynomial directly (reference: pycryptodome interpolation of all points).
    expected_a = Shamir.combine([(s.index ^ new.index, s.half_a) for s in shares[:t]])
    assert new.half_a == expected_a
    everyone = [*shares, new]
    commitments = make_commitments(everyone, CID)
    for subset in itertools.combinations(everyone, t):
        if new in subset:
            assert bytes(combine(list(subset), commitments, t)) == key


def test_extended_share_can_itself_be_a_holder() -> None:
    key, shares, keys = _setup(2, 3)
    fourth = _extend(shares, keys, ["R1", "R2"], 4)
    shares4 = [*shares, fourth]
    keys["R4"] = generate_recipient_keypair()
    fifth = _extend(shares4, keys, ["R3", "R4"], 5)
    assert bytes(combine([fourth, fifth], make_commitments([fourth, fifth], CID), 2)) == key


def test_a_single_contribution_reveals_nothing_of_the_holders_share() -> None:
    """The newcomer alone opens one contribution: it is not λ·f(i) (the mask hides it)."""
    _, shares, keys = _setup(2, 3)
    nk = generate_recipient_keypair()
    plan = _plan(shares, keys, ["R1", "R2"], "R4", 4, nk)
    env = contribute(plan, "R1", keys["R1"], shares[0])
    from synthreg.crypto.transport import open_envelope

    opened = bytes(open_envelope(nk, env, plan.context("R1")))
    unmasked = Shamir.combine([(1 ^ 4, shares[0].half_a), (2 ^ 4, bytes(HALF_BYTES))])
    assert opened[:HALF_BYTES] != unmasked


def test_a_wrong_contribution_gives_a_share_the_auditor_refuses() -> None:
    key, shares, keys = _setup(2, 3)
    nk = generate_recipient_keypair()
    plan = _plan(shares, keys, ["R1", "R2"], "R4", 4, nk)
    liar = Share(1, os.urandom(16), os.urandom(16))
    contributions = {"R1": contribute(plan, "R1", keys["R1"], liar),
                     "R2": contribute(plan, "R2", keys["R2"], shares[1])}
    bad = assemble(plan, nk, contributions)
    commitments = make_commitments([*shares, bad], CID)

    def must_be_key(k: bytearray) -> bool:
        return bytes(k) == key

    with pytest.raises(KeyVerificationError) as err:
        combine([bad, shares[2]], commitments, 2, verify=must_be_key)
    assert err.value.indices == (3, 4)


def test_holder_errors_are_named() -> None:
    _, shares, keys = _setup(2, 3)
    nk = generate_recipient_keypair()
    plan = _plan(shares, keys, ["R1", "R2"], "R4", 4, nk)
    with pytest.raises(ExtensionError, match="R3: not one of the chosen holders"):
        contribute(plan, "R3", keys["R3"], shares[2])
    with pytest.raises(ExtensionError, match="R1: own share has index 2"):
        contribute(plan, "R1", keys["R1"], shares[1])
    with pytest.raises(ExtensionError, match="R1: own share key is not the one"):
        contribute(plan, "R1", keys["R2"], shares[0])
    envs = {h: contribute(plan, h, keys[h], s) for h, s in (("R1", shares[0]), ("R2", shares[1]))}
    with pytest.raises(ExtensionError, match=r"missing from \['R2'\]"):
        assemble(plan, nk, {"R1": envs["R1"]})
    with pytest.raises(ExtensionError, match="R4: this share key"):
        assemble(plan, generate_recipient_keypair(), envs)
    swapped = {"R1": envs["R2"], "R2": envs["R1"]}
    with pytest.raises(ExtensionError, match="R1: contribution cannot be opened"):
        assemble(plan, nk, swapped)


def test_plan_is_checked() -> None:
    k = generate_recipient_keypair().public_raw()
    with pytest.raises(ExtensionError, match="at least t >= 2"):
        ExtensionPlan(CID, "x", "R4", 4, k, {"R1": (1, k)})
    with pytest.raises(ExtensionError, match="already a holder's index"):
        ExtensionPlan(CID, "x", "R4", 2, k, {"R1": (1, k), "R2": (2, k)})
    with pytest.raises(ExtensionError, match="duplicate share index"):
        ExtensionPlan(CID, "x", "R4", 4, k, {"R1": (1, k), "R2": (1, k)})
    with pytest.raises(ExtensionError, match="R2: bad share public key"):
        ExtensionPlan(CID, "x", "R4", 4, k, {"R1": (1, k), "R2": (2, b"short")})
    with pytest.raises(ExtensionError, match="outside"):
        ExtensionPlan(CID, "x", "R4", 0, k, {"R1": (1, k), "R2": (2, k)})
