"""Audit-key ceremony, shares, releases and unsealing on the REAL local network (issue 3).

Every call goes to real peers / orderers / keyvault chaincode over TLS with the
network's real identities; nothing is faked. The ceremony can run only once
per network, so ``ceremony`` (module scope) runs it (t=2 of n=3) only if none
is recorded yet; every test is written to pass again on a network where an
earlier run already did the ceremony: releases are keyed per auditor, and
each test uses a fresh auditor key pair.
"""

from __future__ import annotations

import hashlib
import json
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthreg.chain.keyvault import CHAINCODE, CHANNEL, LedgerKeyVault
from synthreg.cli import audit_cmd, keys_cmd
from synthreg.crypto.ceremony import audit_test_vector, open_share, run_ceremony
from synthreg.crypto.ckks import EncryptedVector, decrypt
from synthreg.crypto.shamir import NotEnoughSharesError
from synthreg.crypto.transport import PURPOSE_RELEASE, EnvelopeContext, generate_recipient_keypair, seal_to
from synthreg.keys.audit import SECRET_CONTEXT_FILE, SUMMARY_FILE, load_unsealed_secret, unseal_audit_key
from synthreg.keys.ceremony import CeremonyReport, host_ceremony, read_recipient_keys
from synthreg.keys.errors import (
    CeremonyExistsError,
    NotEnoughReleasesError,
    ReleasedShareError,
    VaultAccessDeniedError,
    VaultAlreadyExistsError,
    VaultPreconditionError,
)
from synthreg.keys.keyfiles import AuditorPublicKey, auditor_id, load_org_keypair
from synthreg.keys.records import CeremonyFacts, decode_envelope
from synthreg.keys.release import release_to_auditor
from synthreg.ledger import EvaluateError
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile

R1, R2, R3 = "Registry1MSP", "Registry2MSP", "Registry3MSP"
runner = CliRunner()


def _vault(gw: object) -> LedgerKeyVault:
    return LedgerKeyVault(gw.network(CHANNEL).contract(CHAINCODE))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Ceremony:
    facts: CeremonyFacts
    report: CeremonyReport | None  # None when an earlier run did the ceremony


@pytest.fixture(scope="module")
def ceremony(profile: Profile) -> Ceremony:
    with open_gateway(profile, R1, "admin") as gw:
        vault = _vault(gw)
        report = None
        try:
            vault.get_ceremony()
        except VaultPreconditionError:
            keys = read_recipient_keys({m: o.share_key_dir for m, o in profile.orgs.items()})
            report = host_ceremony(vault, 2, keys)
        facts = vault.get_ceremony()
    assert facts.n == len(profile.orgs) and 2 <= facts.t <= facts.n
    return Ceremony(facts, report)


def _release(profile: Profile, org: str, auditor_public: bytes) -> None:
    with open_gateway(profile, org, "admin") as gw:
        release_to_auditor(_vault(gw), org, load_org_keypair(profile.org(org).share_key_dir),
                           AuditorPublicKey(auditor_public))


def test_each_share_is_in_its_own_collection(profile: Profile, ceremony: Ceremony) -> None:
    facts = ceremony.facts
    assert sorted(facts.shares) == profile.msp_ids, "every org's share distributed"
    for org in profile.msp_ids:
        with open_gateway(profile, org, "admin") as gw:
            vault = _vault(gw)
            own = vault.get_share(org)
            onchain = vault.get_share_hash(org)
        assert hashlib.sha256(own.share).hexdigest() == own.sha256 == onchain == facts.shares[org]
        assert own.share_index == facts.share_index[org] and own.ceremony_id == facts.ceremony_id
        share = open_share(load_org_keypair(profile.org(org).share_key_dir),
                           decode_envelope(own.share, org), facts.ceremony_id, org)
        facts.commitments.check(share)
        if ceremony.report is not None:  # the envelope we distributed in this run
            sent = {s.org: s.sha256 for s in ceremony.report.shares}
            assert sent[org] == onchain


def test_share_value_is_in_no_block(profile: Profile, ceremony: Ceremony) -> None:
    """The PutShare transactions carry only the private data hash, never the encrypted share."""
    with open_gateway(profile, R1, "admin") as gw:
        share = _vault(gw).get_share(R1).share
        net = gw.network(CHANNEL)
        blocks: dict[str, int] = {}
        with net.chaincode_events(CHAINCODE, start_block=0, timeout=60) as events:
            for ev in events:
                if ev.event_name == "SharePut":
                    blocks[json.loads(ev.payload)["org"]] = ev.block_number
                if len(blocks) == len(profile.orgs):
                    break
        assert sorted(blocks) == profile.msp_ids
        qscc = net.contract("qscc")
        for org, number in blocks.items():
            block = qscc.evaluate("GetBlockByNumber", CHANNEL, str(number))
            assert share not in block, f"share of {R1} visible in the block of {org}'s PutShare"


def test_registry2_cannot_read_registry1_share(profile: Profile, ceremony: Ceremony) -> None:
    with open_gateway(profile, R2, "admin") as gw:
        with pytest.raises(VaultAccessDeniedError, match="ACCESS_DENIED") as err:
            _vault(gw).get_share(R1)
        assert isinstance(err.value.__cause__, EvaluateError)
        # the raw client on Registry2's own peer: typed EvaluateError with the chaincode's code
        with pytest.raises(EvaluateError, match="ACCESS_DENIED"):
            gw.network(CHANNEL).contract(CHAINCODE).evaluate("GetShare", R1)
        # and the release path cannot use another org's share either
        with pytest.raises(VaultAccessDeniedError):
            release_to_auditor(_vault(gw), R1, load_org_keypair(profile.org(R2).share_key_dir),
                               AuditorPublicKey(generate_recipient_keypair().public_raw()))
    with open_gateway(profile, R1, "generator") as gw, pytest.raises(VaultAccessDeniedError):  # own org, not admin
        _vault(gw).get_share(R1)


def test_second_ceremony_is_refused(profile: Profile, ceremony: Ceremony) -> None:
    keys = read_recipient_keys({m: o.share_key_dir for m, o in profile.orgs.items()})
    with open_gateway(profile, R2, "admin") as gw:
        vault = _vault(gw)
        with pytest.raises(CeremonyExistsError) as err:
            host_ceremony(vault, 2, keys)
        assert ceremony.facts.ceremony_id in str(err.value)
        # the chaincode itself refuses a complete, valid second record
        with pytest.raises(VaultAlreadyExistsError, match=ceremony.facts.ceremony_id):
            vault.record_ceremony(run_ceremony(2, len(keys), keys).public_record())
    res = runner.invoke(keys_cmd.app, ["ceremony", "--threshold", "2", "--home", str(profile.home)])
    assert res.exit_code == 1 and "already recorded" in res.stderr and "Traceback" not in res.output


def test_t_releases_unseal_and_decrypt_the_test_ciphertext(
    profile: Profile, ceremony: Ceremony, tmp_path: Path
) -> None:
    """Through the CLI commands (in-process, real network): keygen, release x t, show, unseal."""
    home = ["--home", str(profile.home)]
    res = runner.invoke(audit_cmd.app, ["keygen", "--out", str(tmp_path / "aud"), "--json"])
    assert res.exit_code == 0, res.output
    pk_file, aid = json.loads(res.stdout)["public_key_file"], json.loads(res.stdout)["auditor_id"]
    t = ceremony.facts.t
    for org in profile.msp_ids[:t]:
        res = runner.invoke(keys_cmd.app, ["release", "--org", org, "--auditor", pk_file, "--json", *home])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["auditor_id"] == aid
    again = runner.invoke(keys_cmd.app, ["release", "--org", profile.msp_ids[0], "--auditor", pk_file, *home])
    assert again.exit_code == 1 and "ALREADY_EXISTS" in again.stderr
    shown = runner.invoke(keys_cmd.app, ["show", "--json", "--auditor", pk_file, *home])
    assert shown.exit_code == 0, shown.output
    rel = json.loads(shown.stdout)["releases"][aid]
    assert rel["count"] == t and rel["unsealable"]
    assert [r["org"] for r in rel["released"]] == profile.msp_ids[:t]

    out = tmp_path / "unsealed"
    res = runner.invoke(audit_cmd.app, ["unseal", "--key", str(tmp_path / "aud"), "--out", str(out), "--json", *home])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["ceremony_id"] == ceremony.facts.ceremony_id and summary["proof_max_abs_error"] < 1e-6
    assert sorted(p.name for p in out.iterdir()) == sorted([SECRET_CONTEXT_FILE, SUMMARY_FILE])
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.iterdir())
    # independent check: the written secret decrypts the test ciphertext read from the ledger
    with open_gateway(profile, R3, "auditor") as gw:
        record = _vault(gw).get_ceremony_record()
    secret = load_unsealed_secret(out, record.public_context_hash)
    got = decrypt(secret, EncryptedVector.from_bytes(secret.public(), record.test_ciphertext))
    assert abs(got - audit_test_vector(record.ceremony_id)).max() < 1e-6


def test_t_minus_1_releases_fail_loudly(profile: Profile, ceremony: Ceremony, tmp_path: Path) -> None:
    auditor = generate_recipient_keypair()
    t = ceremony.facts.t
    for org in profile.msp_ids[-(t - 1):]:
        _release(profile, org, auditor.public_raw())
    with open_gateway(profile, R1, "auditor") as gw, pytest.raises(NotEnoughSharesError) as err:
        unseal_audit_key(_vault(gw), auditor, tmp_path / "out")
    assert isinstance(err.value, NotEnoughReleasesError)
    assert (err.value.have, err.value.need) == (t - 1, t)
    assert err.value.auditor_id == auditor_id(auditor.public_raw())
    assert f"have {t - 1}, need {t}" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_tampered_released_share_is_named(profile: Profile, ceremony: Ceremony, tmp_path: Path) -> None:
    """Registry3 misbehaves: it releases its share with one flipped bit, properly encrypted."""
    facts = ceremony.facts
    auditor = generate_recipient_keypair()
    aid = auditor_id(auditor.public_raw())
    _release(profile, R1, auditor.public_raw())
    with open_gateway(profile, R3, "admin") as gw:
        vault = _vault(gw)
        own = vault.get_share(R3)
        share = open_share(load_org_keypair(profile.org(R3).share_key_dir),
                           decode_envelope(own.share, R3), facts.ceremony_id, R3)
        raw = bytearray(share.to_bytes())
        raw[-1] ^= 0x01
        bad = seal_to(auditor.public_raw(), raw, EnvelopeContext(PURPOSE_RELEASE, facts.ceremony_id, aid))
        vault.release_share(aid, bad.to_dict())
    with open_gateway(profile, R1, "auditor") as gw, pytest.raises(ReleasedShareError) as err:
        unseal_audit_key(_vault(gw), auditor, tmp_path / "out")
    assert (err.value.org, err.value.share_index) == (R3, facts.share_index[R3])
    assert f"share {facts.share_index[R3]} released by {R3}" in str(err.value)
    assert "commitment" in str(err.value)
    assert not (tmp_path / "out").exists()
