"""A newcomer's audit-key share (synthreg.keys.extension) against the in-memory vault.

Logic only: the fake enforces no endorsement and stores no private
collections. tests/integration/test_hosts.py runs the same steps on the real
network, across hosts, for a fourth registry.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from synthreg.crypto.transport import RecipientKeyPair, generate_recipient_keypair
from synthreg.keys.audit import unseal_in_memory
from synthreg.keys.ceremony import host_ceremony
from synthreg.keys.errors import (
    ExtensionStateError,
    ReleasedShareError,
    UnsealFailedError,
    VaultInvalidArgumentError,
    VaultNotFoundError,
    VaultPreconditionError,
)
from synthreg.keys.extension import complete_share, contribute_share, request_share
from synthreg.keys.keyfiles import AuditorPublicKey
from synthreg.keys.memory import InMemoryKeyLedger, InMemoryKeyVault
from synthreg.keys.release import release_to_auditor

FOUNDERS = ("Registry1MSP", "Registry2MSP", "Registry3MSP")
NEW = "Registry4MSP"


class Net:
    """A 2-of-3 ceremony among the founders, and a fourth registry with its own share key."""

    def __init__(self) -> None:
        self.ledger = InMemoryKeyLedger()
        self.keys = {o: generate_recipient_keypair() for o in (*FOUNDERS, NEW, "Registry5MSP")}
        host_ceremony(self.admin(FOUNDERS[0]), 2, {o: self.keys[o].public_raw() for o in FOUNDERS})

    def admin(self, org: str) -> InMemoryKeyVault:
        return self.ledger.vault(org, "admin")

    def extend(self, org: str, holders: list[str] | None = None) -> None:
        ext = request_share(self.admin(org), org, self.keys[org], holders)
        for h in ext.holders:
            contribute_share(self.admin(h), h, self.keys[h], org)
        complete_share(self.admin(org), org, self.keys[org])

    def release(self, org: str, auditor: RecipientKeyPair) -> None:
        release_to_auditor(self.admin(org), org, self.keys[org], AuditorPublicKey(auditor.public_raw()))


def test_newcomer_share_unseals_with_a_founder_share() -> None:
    net = Net()
    ext = request_share(net.admin(NEW), NEW, net.keys[NEW])
    assert ext.share_index == 4 and sorted(ext.holders) == ["Registry1MSP", "Registry2MSP"]
    # Re-running the request returns the same extension (a lost reply is not a second request).
    assert request_share(net.admin(NEW), NEW, net.keys[NEW]).extension_id == ext.extension_id
    with pytest.raises(ExtensionStateError, match=r"waiting for contributions from \['Registry1MSP', 'Registry2MSP'\]"):
        complete_share(net.admin(NEW), NEW, net.keys[NEW])
    with pytest.raises(ExtensionStateError, match="Registry3MSP is not one of the chosen holders"):
        contribute_share(net.admin("Registry3MSP"), "Registry3MSP", net.keys["Registry3MSP"], NEW)
    contribute_share(net.admin("Registry1MSP"), "Registry1MSP", net.keys["Registry1MSP"], NEW)
    contribute_share(net.admin("Registry1MSP"), "Registry1MSP", net.keys["Registry1MSP"], NEW)  # idempotent
    contribute_share(net.admin("Registry2MSP"), "Registry2MSP", net.keys["Registry2MSP"], NEW)
    done = complete_share(net.admin(NEW), NEW, net.keys[NEW])
    assert done.complete and len(done.commitment) == 64
    assert complete_share(net.admin(NEW), NEW, net.keys[NEW]).completed_tx_id == done.completed_tx_id

    auditor = generate_recipient_keypair()
    net.release(NEW, auditor)
    net.release("Registry3MSP", auditor)
    _, summary = unseal_in_memory(net.admin("Registry3MSP"), auditor)
    assert summary.shares_used == [3, 4] and summary.n == 3


def test_an_extended_holder_can_serve_the_next_newcomer() -> None:
    net = Net()
    net.extend(NEW)
    net.extend("Registry5MSP", ["Registry3MSP", NEW])
    auditor = generate_recipient_keypair()
    net.release(NEW, auditor)
    net.release("Registry5MSP", auditor)
    _, summary = unseal_in_memory(net.admin(NEW), auditor)
    assert summary.shares_used == [4, 5]


def test_complete_after_a_crash_between_its_two_writes_reuses_the_stored_share() -> None:
    net = Net()
    ext = request_share(net.admin(NEW), NEW, net.keys[NEW])
    for h in ext.holders:
        contribute_share(net.admin(h), h, net.keys[h], NEW)
    vault = net.admin(NEW)
    real_complete = vault.complete_share

    def crash(commitment: str) -> None:
        raise ConnectionError("host lost power")

    vault.complete_share = crash  # type: ignore[method-assign,assignment]
    with pytest.raises(ConnectionError):
        complete_share(vault, NEW, net.keys[NEW])
    assert NEW in net.ledger.shares  # PutOwnShare landed
    vault.complete_share = real_complete  # type: ignore[method-assign]
    assert complete_share(vault, NEW, net.keys[NEW]).complete


def test_a_holder_sending_a_wrong_term_is_caught_by_the_auditor(tmp_path: Path) -> None:
    net = Net()
    ext = request_share(net.admin(NEW), NEW, net.keys[NEW])
    from synthreg.crypto.extension import contribute
    from synthreg.crypto.shamir import Share
    from synthreg.keys.extension import extension_plan

    liar = Share(1, bytes(16), bytes(16))
    plan = extension_plan(ext)
    net.admin("Registry1MSP").contribute_share(NEW, contribute(plan, "Registry1MSP", net.keys["Registry1MSP"],
                                                               liar).to_dict())
    contribute_share(net.admin("Registry2MSP"), "Registry2MSP", net.keys["Registry2MSP"], NEW)
    complete_share(net.admin(NEW), NEW, net.keys[NEW])
    auditor = generate_recipient_keypair()
    net.release(NEW, auditor)
    net.release("Registry3MSP", auditor)
    with pytest.raises(UnsealFailedError, match=r"shares \[3, 4\]"):
        unseal_in_memory(net.admin(NEW), auditor)


def test_refusals_before_the_share_is_usable() -> None:
    net = Net()
    auditor = generate_recipient_keypair()
    with pytest.raises(ExtensionStateError, match="no share extension requested"):
        contribute_share(net.admin("Registry1MSP"), "Registry1MSP", net.keys["Registry1MSP"], NEW)
    with pytest.raises(VaultInvalidArgumentError, match="need exactly t = 2"):
        request_share(net.admin(NEW), NEW, net.keys[NEW], ["Registry1MSP"])
    request_share(net.admin(NEW), NEW, net.keys[NEW])
    with pytest.raises(ExtensionStateError, match="another share key"):
        request_share(net.admin(NEW), NEW, net.keys["Registry5MSP"])
    with pytest.raises(VaultNotFoundError, match="share for Registry4MSP"):
        net.release(NEW, auditor)
    with pytest.raises(VaultPreconditionError, match="no usable share"):
        net.admin(NEW).release_share("aud", {"version": 1})
    # The auditor does not count a release claiming the unfinished newcomer's index.
    net.release("Registry1MSP", auditor)
    (aid, _), rel = next(iter(net.ledger.releases.items()))
    net.ledger.releases[(aid, NEW)] = dict(rel, org=NEW, share_index=4)
    with pytest.raises(ReleasedShareError, match="Registry4MSP holds share None"):
        unseal_in_memory(net.admin(NEW), auditor)
