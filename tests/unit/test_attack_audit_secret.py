"""Issue 10, item 7c: the demo left the recombined audit secret on disk, unsealed.

Stage 7 of ``synthreg demo`` (:func:`synthreg.demo.unseal_and_verify`) on an
in-memory key ledger after a real 2-of-3 ceremony (the cryptography is real, only
the ledger is in memory): the auditor's verification gets a working secret, and
afterwards nothing below the demo's output folder can decrypt.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from synthreg.crypto.ceremony import audit_test_vector
from synthreg.crypto.ckks import CkksError, EncryptedVector, SecretContext, decrypt, load_secret_context
from synthreg.crypto.transport import generate_recipient_keypair
from synthreg.demo import unseal_and_verify
from synthreg.keys.audit import SECRET_CONTEXT_FILE, SUMMARY_FILE
from synthreg.keys.ceremony import host_ceremony
from synthreg.keys.keyfiles import AuditorPublicKey
from synthreg.keys.memory import InMemoryKeyLedger
from synthreg.keys.release import release_to_auditor
from synthreg.trail.verify import TrailReport

ORGS = ("Registry1MSP", "Registry2MSP", "Registry3MSP")


def test_attack_demo_leaves_unsealed_audit_secret_on_disk(tmp_path: Path) -> None:
    ledger = InMemoryKeyLedger()
    org_keys = {o: generate_recipient_keypair() for o in ORGS}
    host_ceremony(ledger.vault(ORGS[0], "admin"), 2, {o: k.public_raw() for o, k in org_keys.items()})
    auditor = generate_recipient_keypair()
    for org in ORGS[:2]:  # as the demo does: two registries release
        release_to_auditor(ledger.vault(org, "admin"), org, org_keys[org], AuditorPublicKey(auditor.public_raw()))
    record = ledger.vault(ORGS[0], "admin").get_ceremony_record()
    seen: list[bytes] = []

    def verify(secret: SecretContext) -> TrailReport:  # stands in for trail.verify_run: uses the key
        got = decrypt(secret, EncryptedVector.from_bytes(secret.public(), record.test_ciphertext))
        assert abs(got - audit_test_vector(record.ceremony_id)).max() < 1e-6
        seen.append(bytes(secret.serialize()))
        return TrailReport(run_id="r", rounds_checked=1, records_checked=1)

    out = tmp_path / "auditor" / "run"
    summary, report = unseal_and_verify(ledger.vault(ORGS[0], "auditor"), auditor, out / "unsealed", verify)
    assert report.ok and summary.shares_used == [1, 2] and seen

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert [p.name for p in files] == [SUMMARY_FILE]  # no SECRET_CONTEXT_FILE, nothing else
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert json.loads(files[0].read_text())["secret_context_file"] == ""
    secret_bytes = seen[0]
    for path in files:
        data = path.read_bytes()
        assert secret_bytes not in data and secret_bytes[:4096] not in data
        try:
            load_secret_context(bytearray(data))
        except CkksError:  # not a secret context: what we want
            continue
        raise AssertionError(f"{path} holds a loadable secret context")
    assert not (out / "unsealed" / SECRET_CONTEXT_FILE).exists()
