"""Key ceremony and auditor recovery (pure logic), incl. 'no secret touches disk'."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from synthreg.crypto import ckks
from synthreg.crypto.ceremony import (
    AuditProofError,
    CeremonyOutput,
    InvalidCeremonyError,
    audit_test_vector,
    open_released_share,
    open_share,
    recover_audit_key,
    release_share,
    run_ceremony,
    verify_audit_proof,
)
from synthreg.crypto.seal import UnsealError
from synthreg.crypto.shamir import KeyVerificationError, NotEnoughSharesError, Share, TamperedShareError
from synthreg.crypto.transport import EnvelopeError, RecipientKeyPair, generate_recipient_keypair


def _registries(n: int) -> dict[str, RecipientKeyPair]:
    return {f"Registry{i}MSP": generate_recipient_keypair() for i in range(1, n + 1)}


def _run(t: int, kps: dict[str, RecipientKeyPair]) -> tuple[CeremonyOutput, list[Share]]:
    out = run_ceremony(t, len(kps), {r: kp.public_raw() for r, kp in kps.items()})
    shares = [open_share(kps[r], out.envelopes[r], out.ceremony_id, r) for r in sorted(kps)]
    return out, shares


@pytest.fixture(scope="module")
def five() -> tuple[dict[str, RecipientKeyPair], CeremonyOutput, list[Share]]:
    kps = _registries(5)
    out, shares = _run(3, kps)
    return kps, out, shares


def _recover(out: CeremonyOutput, shares: list[Share]) -> ckks.SecretContext:
    return recover_audit_key(shares, out.commitments, out.sealed_key, out.public_context_hash, out.t, out.n)


def test_every_t_subset_unseals_and_proves_and_every_smaller_fails(
    five: tuple[dict[str, RecipientKeyPair], CeremonyOutput, list[Share]],
) -> None:
    _, out, shares = five
    for subset in itertools.combinations(shares, 3):
        secret = _recover(out, list(subset))
        assert secret.public_context_hash == out.public_context_hash
        assert verify_audit_proof(secret, out.test_ciphertext, out.ceremony_id) < 1e-6
    for subset in itertools.combinations(shares, 2):
        with pytest.raises(NotEnoughSharesError, match="have 2, need 3"):
            _recover(out, list(subset))


def test_two_of_three_with_release_to_auditor() -> None:
    kps = _registries(3)
    out, _ = _run(2, kps)
    auditor = generate_recipient_keypair()
    released = [
        release_share(open_share(kps[r], out.envelopes[r], out.ceremony_id, r), out.ceremony_id, "Auditor1",
                      auditor.public_raw())
        for r in ("Registry1MSP", "Registry3MSP")
    ]
    shares = [open_released_share(auditor, env, out.ceremony_id, "Auditor1") for env in released]
    secret = _recover(out, shares)
    assert verify_audit_proof(secret, out.test_ciphertext, out.ceremony_id) < 1e-6
    # the auditor can now read data encrypted under the published public context
    pub = ckks.load_public_context(out.public_context)
    vec = np.linspace(-10, 10, 50)
    assert np.max(np.abs(ckks.decrypt(secret, ckks.encrypt_vector(pub, vec)) - vec)) < 1e-6
    # a registry's envelope does not open for another registry, nor for the auditor
    with pytest.raises(EnvelopeError):
        open_share(kps["Registry2MSP"], out.envelopes["Registry1MSP"], out.ceremony_id, "Registry1MSP")
    with pytest.raises(EnvelopeError):
        open_released_share(generate_recipient_keypair(), released[0], out.ceremony_id, "Auditor1")


def test_tampered_share_is_named_by_recovery(
    five: tuple[dict[str, RecipientKeyPair], CeremonyOutput, list[Share]],
) -> None:
    _, out, shares = five
    bad = dataclasses.replace(shares[4], half_a=bytes(16))
    with pytest.raises(TamperedShareError) as err:
        _recover(out, [shares[0], shares[2], bad])
    assert err.value.index == 5


def test_wrong_sealed_blob_or_labels_fail_loudly(
    five: tuple[dict[str, RecipientKeyPair], CeremonyOutput, list[Share]],
) -> None:
    _, out, shares = five
    with pytest.raises(UnsealError, match="t=3, ledger records 2"):
        recover_audit_key(shares[:3], out.commitments, out.sealed_key, out.public_context_hash, 2, 5)
    other, _ = _run(2, _registries(2))
    with pytest.raises(UnsealError, match="public_context_hash"):
        recover_audit_key(shares[:3], out.commitments, other.sealed_key, out.public_context_hash, 3, 5)
    # a blob from another ceremony relabelled to look like ours: the GCM tag fails
    relabelled = dataclasses.replace(other.sealed_key, public_context_hash=out.public_context_hash, t=3, n=5)
    with pytest.raises(KeyVerificationError):
        recover_audit_key(shares[:3], out.commitments, relabelled, out.public_context_hash, 3, 5)


def test_audit_proof_rejects_other_ceremony(
    five: tuple[dict[str, RecipientKeyPair], CeremonyOutput, list[Share]],
) -> None:
    _, out, shares = five
    secret = _recover(out, shares[:3])
    with pytest.raises(AuditProofError):
        verify_audit_proof(secret, out.test_ciphertext, "another-ceremony-id")
    other, _ = _run(2, _registries(2))
    with pytest.raises(ckks.ContextMismatchError):
        verify_audit_proof(secret, other.test_ciphertext, other.ceremony_id)


def test_public_record_is_json_and_holds_no_share_or_secret(
    five: tuple[dict[str, RecipientKeyPair], CeremonyOutput, list[Share]],
) -> None:
    _, out, shares = five
    text = json.dumps(out.public_record())
    for share in shares:
        assert share.value().hex() not in text
    rec = json.loads(text)
    assert rec["t"] == 3 and rec["n"] == 5 and rec["share_index"]["Registry1MSP"] == 1
    assert set(out.envelopes) == set(rec["share_index"])
    assert len(audit_test_vector(out.ceremony_id)) == 32
    assert np.array_equal(audit_test_vector(out.ceremony_id), audit_test_vector(out.ceremony_id))


def test_invalid_inputs_are_refused() -> None:
    kps = {r: kp.public_raw() for r, kp in _registries(3).items()}
    with pytest.raises(InvalidCeremonyError, match="t=1"):
        run_ceremony(1, 3, kps)
    with pytest.raises(InvalidCeremonyError, match="t=4"):
        run_ceremony(4, 3, kps)
    with pytest.raises(InvalidCeremonyError, match="n=4"):
        run_ceremony(2, 4, kps)
    with pytest.raises(InvalidCeremonyError, match="same public key"):
        run_ceremony(2, 3, {**kps, "Registry3MSP": kps["Registry1MSP"]})
    with pytest.raises(InvalidCeremonyError, match="Registry2MSP"):
        run_ceremony(2, 3, {**kps, "Registry2MSP": b"short"})


# The child installs an audit hook (it sees every open/rename/mkdir/tempfile event
# of the Python runtime, including those of libraries) after its imports, runs the
# ceremony in an empty cwd with HOME and TMPDIR pointing at empty directories, then
# writes one control file to prove the hook really records writes.
_CHILD = textwrap.dedent(
    """
    import json, os, sys
    from synthreg.crypto.ceremony import run_ceremony
    from synthreg.crypto.transport import generate_recipient_keypair

    events = []
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    WRITE_EVENTS = {"os.rename", "os.replace", "os.mkdir", "os.link", "os.symlink",
                    "os.truncate", "shutil.copyfile", "shutil.move",
                    "tempfile.mkstemp", "tempfile.mkdtemp"}

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & WRITE_FLAGS)
            if writes:
                events.append(["open", str(path), str(mode), flags])
        elif event in WRITE_EVENTS:
            events.append([event, repr(args)])

    kps = {f"Registry{i}MSP": generate_recipient_keypair() for i in (1, 2, 3)}
    pubs = {r: k.public_raw() for r, k in kps.items()}
    sys.addaudithook(hook)
    out = run_ceremony(2, 3, pubs)
    during = list(events)
    with open("control.bin", "wb") as fh:
        fh.write(b"control")
    print(json.dumps({"during": during, "after": events[len(during):],
                      "hash": out.public_context_hash}))
    """
)


def test_ceremony_writes_nothing_to_disk(tmp_path: Path) -> None:
    cwd, home, tmp = tmp_path / "cwd", tmp_path / "home", tmp_path / "tmp"
    for d in (cwd, home, tmp):
        d.mkdir()
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmp), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["during"] == [], report["during"]
    assert report["after"] and report["after"][0][1].endswith("control.bin")  # the hook works
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["cwd/control.bin"]
    assert len(report["hash"]) == 64
