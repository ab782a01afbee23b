"""synthreg.keys service logic against the in-memory vault (fast; logic only).

Policies, privacy and endorsement are NOT tested here (the fake enforces no
endorsement and stores no private collections): see
tests/integration/test_keys_ledger.py for those, on the real network.
"""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from synthreg.crypto.ceremony import audit_test_vector
from synthreg.crypto.ckks import EncryptedVector, decrypt
from synthreg.crypto.shamir import NotEnoughSharesError, Share
from synthreg.crypto.transport import (
    PURPOSE_RELEASE,
    EnvelopeContext,
    RecipientKeyPair,
    generate_recipient_keypair,
    seal_to,
)
from synthreg.keys.audit import SECRET_CONTEXT_FILE, SUMMARY_FILE, load_unsealed_secret, unseal_audit_key
from synthreg.keys.ceremony import CeremonyInputError, host_ceremony
from synthreg.keys.errors import (
    CeremonyExistsError,
    DistributionError,
    NoCeremonyError,
    NotEnoughReleasesError,
    OutputExistsError,
    ReleasedShareError,
    ShareIntegrityError,
    VaultAccessDeniedError,
    VaultAlreadyExistsError,
    VaultUnavailableError,
)
from synthreg.keys.keyfiles import AuditorPublicKey, auditor_id
from synthreg.keys.memory import InMemoryKeyLedger, InMemoryKeyVault
from synthreg.keys.records import decode_envelope, encode_envelope
from synthreg.keys.release import release_to_auditor
from synthreg.keys.show import keys_overview

ORGS = ("Registry1MSP", "Registry2MSP", "Registry3MSP")


class Net:
    """An in-memory ledger after a 2-of-3 ceremony hosted by Registry1MSP."""

    def __init__(self) -> None:
        self.ledger = InMemoryKeyLedger()
        self.org_keys = {o: generate_recipient_keypair() for o in ORGS}
        self.report = host_ceremony(self.admin(ORGS[0]), 2, {o: k.public_raw() for o, k in self.org_keys.items()})

    def admin(self, org: str) -> InMemoryKeyVault:
        return self.ledger.vault(org, "admin")

    def release(self, org: str, auditor: RecipientKeyPair) -> None:
        release_to_auditor(self.admin(org), org, self.org_keys[org], AuditorPublicKey(auditor.public_raw()))


@pytest.fixture(scope="module")
def net() -> Net:
    return Net()


def test_ceremony_distributes_one_share_per_org_matching_envelope_hash(net: Net) -> None:
    r = net.report
    assert (r.t, r.n, r.host_msp) == (2, 3, ORGS[0])
    assert [s.org for s in r.shares] == list(ORGS) and [s.share_index for s in r.shares] == [1, 2, 3]
    for s in r.shares:
        stored = net.ledger.shares[s.org]
        assert hashlib.sha256(stored).hexdigest() == s.sha256
        decode_envelope(stored, "share")  # canonical envelope JSON
        assert encode_envelope(decode_envelope(stored, "share")) == stored


def test_second_ceremony_is_refused_before_any_work(net: Net) -> None:
    with pytest.raises(CeremonyExistsError) as err:
        host_ceremony(net.admin(ORGS[1]), 2, {o: k.public_raw() for o, k in net.org_keys.items()})
    assert net.report.ceremony_id in str(err.value) and err.value.host_msp == ORGS[0]


def test_bad_threshold_is_a_typed_input_error() -> None:
    ledger = InMemoryKeyLedger()
    keys = {o: generate_recipient_keypair().public_raw() for o in ORGS}
    with pytest.raises(CeremonyInputError, match="t=4"):
        host_ceremony(ledger.vault(ORGS[0], "admin"), 4, keys)
    assert ledger.record is None


def test_non_admin_cannot_host() -> None:
    ledger = InMemoryKeyLedger()
    keys = {o: generate_recipient_keypair().public_raw() for o in ORGS}
    with pytest.raises(VaultAccessDeniedError):
        host_ceremony(ledger.vault(ORGS[0], "generator"), 2, keys)


class _FailingPut(InMemoryKeyVault):
    def put_share(self, org: str, share: bytes) -> dict[str, object]:
        if org == ORGS[1]:
            raise VaultUnavailableError("PutShare", "peer down")
        return super().put_share(org, share)


def test_distribution_failure_names_org_and_what_was_distributed() -> None:
    ledger = InMemoryKeyLedger()
    keys = {o: generate_recipient_keypair().public_raw() for o in ORGS}
    with pytest.raises(DistributionError) as err:
        host_ceremony(_FailingPut(ledger, ORGS[0], "admin"), 2, keys)
    assert err.value.failed == ORGS[1] and err.value.distributed == (ORGS[0],)
    assert isinstance(err.value.__cause__, VaultUnavailableError)


def test_t_releases_unseal_and_decrypt_test_ciphertext(net: Net, tmp_path: Path) -> None:
    auditor = generate_recipient_keypair()
    net.release(ORGS[0], auditor)
    net.release(ORGS[2], auditor)
    out = tmp_path / "unsealed"
    summary = unseal_audit_key(net.ledger.vault(ORGS[0], "auditor"), auditor, out)
    assert summary.shares_used == [1, 3] and summary.auditor_id == auditor_id(auditor.public_raw())
    assert summary.proof_max_abs_error < 1e-6
    assert sorted(p.name for p in out.iterdir()) == sorted([SECRET_CONTEXT_FILE, SUMMARY_FILE])
    for p in out.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert json.loads((out / SUMMARY_FILE).read_text())["ceremony_id"] == net.report.ceremony_id
    # the file really is the secret key: it decrypts the recorded test ciphertext again
    record = net.admin(ORGS[0]).get_ceremony_record()
    secret = load_unsealed_secret(out, record.public_context_hash)
    got = decrypt(secret, EncryptedVector.from_bytes(secret.public(), record.test_ciphertext))
    assert abs(got - audit_test_vector(record.ceremony_id)).max() < 1e-6
    with pytest.raises(OutputExistsError):
        unseal_audit_key(net.ledger.vault(ORGS[0], "auditor"), auditor, out)


def test_t_minus_1_releases_fail_loudly_and_write_nothing(net: Net, tmp_path: Path) -> None:
    auditor = generate_recipient_keypair()
    net.release(ORGS[1], auditor)
    with pytest.raises(NotEnoughSharesError) as err:
        unseal_audit_key(net.ledger.vault(ORGS[0], "auditor"), auditor, tmp_path / "out")
    assert isinstance(err.value, NotEnoughReleasesError)
    assert (err.value.have, err.value.need, err.value.released_by) == (1, 2, (ORGS[1],))
    assert not (tmp_path / "out").exists()


def _release_raw(net: Net, org: str, auditor: RecipientKeyPair, payload: bytes) -> None:
    """A misbehaving registry: records a release whose content it chose."""
    cid = net.report.ceremony_id
    aid = auditor_id(auditor.public_raw())
    env = seal_to(auditor.public_raw(), payload, EnvelopeContext(PURPOSE_RELEASE, cid, aid))
    net.admin(org).release_share(aid, env.to_dict())


def test_tampered_released_share_is_named(net: Net, tmp_path: Path) -> None:
    auditor = generate_recipient_keypair()
    net.release(ORGS[0], auditor)
    net.release(ORGS[1], auditor)
    _release_raw(net, ORGS[2], auditor, Share(3, b"\x01" * 16, b"\x02" * 16).to_bytes())
    with pytest.raises(ReleasedShareError) as err:
        unseal_audit_key(net.ledger.vault(ORGS[0], "auditor"), auditor, tmp_path / "out")
    assert (err.value.org, err.value.share_index) == (ORGS[2], 3)
    assert "commitment" in str(err.value) and "share 3" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_release_under_wrong_index_and_unopenable_release_are_named(net: Net, tmp_path: Path) -> None:
    auditor = generate_recipient_keypair()
    _release_raw(net, ORGS[0], auditor, Share(2, b"\x01" * 16, b"\x02" * 16).to_bytes())
    with pytest.raises(ReleasedShareError, match="decrypts to share index 2") as err:
        unseal_audit_key(net.ledger.vault(ORGS[0], "auditor"), auditor, tmp_path / "a")
    assert err.value.org == ORGS[0]
    other = generate_recipient_keypair()  # encrypted to someone else's key, filed under this auditor
    aid = auditor_id(auditor.public_raw())
    env = seal_to(other.public_raw(), b"x" * 34, EnvelopeContext(PURPOSE_RELEASE, net.report.ceremony_id, aid))
    net.admin(ORGS[1]).release_share(aid, env.to_dict())
    with pytest.raises(ReleasedShareError):
        unseal_audit_key(net.ledger.vault(ORGS[0], "auditor"), auditor, tmp_path / "b")


def test_release_is_once_per_auditor_and_only_own_share(net: Net) -> None:
    auditor = generate_recipient_keypair()
    net.release(ORGS[0], auditor)
    with pytest.raises(VaultAlreadyExistsError):
        net.release(ORGS[0], auditor)
    pub = AuditorPublicKey(auditor.public_raw())
    with pytest.raises(VaultAccessDeniedError):  # Registry2 admin asking for Registry1's share
        release_to_auditor(net.admin(ORGS[1]), ORGS[0], net.org_keys[ORGS[1]], pub)


def test_release_with_wrong_org_key_fails_before_recording(net: Net) -> None:
    auditor = generate_recipient_keypair()
    with pytest.raises(ShareIntegrityError, match="cannot open own share"):
        release_to_auditor(net.admin(ORGS[2]), ORGS[2], net.org_keys[ORGS[0]], AuditorPublicKey(auditor.public_raw()))
    assert net.admin(ORGS[2]).list_releases(auditor_id(auditor.public_raw())).releases == ()


def test_release_refuses_a_share_whose_collection_value_differs(net: Net) -> None:
    class Lying(InMemoryKeyVault):
        def get_share_hash(self, org: str) -> str:
            return "0" * 64

    auditor = generate_recipient_keypair()
    with pytest.raises(ShareIntegrityError, match="on-chain hash"):
        release_to_auditor(Lying(net.ledger, ORGS[1], "admin"), ORGS[1], net.org_keys[ORGS[1]],
                           AuditorPublicKey(auditor.public_raw()))


def test_show_lists_distribution_and_releases_per_auditor(net: Net) -> None:
    auditor = generate_recipient_keypair()
    aid = auditor_id(auditor.public_raw())
    net.release(ORGS[1], auditor)
    data = keys_overview(net.ledger.vault(ORGS[2], "generator"), [aid, "nobody0000000000"]).to_dict()
    assert (data["t"], data["n"], data["host_msp"]) == (2, 3, ORGS[0])
    assert data["shares_distributed"] == {s.org: s.sha256 for s in net.report.shares}
    assert data["releases"][aid]["count"] == 1 and not data["releases"][aid]["unsealable"]
    assert data["releases"][aid]["released"][0]["org"] == ORGS[1]
    assert data["releases"]["nobody0000000000"]["count"] == 0


def test_before_ceremony_show_and_unseal_say_so(tmp_path: Path) -> None:
    ledger = InMemoryKeyLedger()
    with pytest.raises(NoCeremonyError):
        keys_overview(ledger.vault(ORGS[0], "admin"))
    with pytest.raises(NoCeremonyError):
        unseal_audit_key(ledger.vault(ORGS[0], "auditor"), generate_recipient_keypair(), tmp_path)
