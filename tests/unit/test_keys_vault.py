"""LedgerKeyVault wiring and error mapping, key files (fast, no network).

The fake Gateway checks only how requests are built and errors parsed; it runs
no chaincode and enforces no policy (real behaviour: tests/integration/).
"""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from synthreg.chain.keyvault import LedgerKeyVault
from synthreg.crypto.transport import generate_recipient_keypair
from synthreg.keys.errors import (
    AuditKeyError,
    OutputExistsError,
    VaultAccessDeniedError,
    VaultAlreadyExistsError,
    VaultInvalidArgumentError,
    VaultPreconditionError,
    VaultUnavailableError,
    vault_error,
)
from synthreg.keys.keyfiles import (
    AUDITOR_PUBLIC_FILE,
    AUDITOR_SECRET_FILE,
    auditor_id,
    generate_auditor_key,
    load_auditor_keypair,
    load_auditor_public_key,
)
from synthreg.keys.records import CeremonyRecord, RecordFormatError
from synthreg.ledger import EvaluateError, Gateway, ecdsa_signer
from synthreg.ledger.errors import ErrorDetail
from synthreg.ledger.proposal import parse_signed_proposal
from synthreg.ledger.testing import FakeFailure, FakeGateway, FakeGatewayServicer, make_test_identity, serve_fake


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("ACCESS_DENIED", VaultAccessDeniedError),
        ("ALREADY_EXISTS", VaultAlreadyExistsError),
        ("PRECONDITION_FAILED", VaultPreconditionError),
        ("INVALID_ARGUMENT", VaultInvalidArgumentError),
        ("", VaultUnavailableError),  # no chaincode verdict (timeout, ordering, MVCC)
    ],
)
def test_vault_error_maps_chaincode_codes(code: str, cls: type) -> None:
    detail = f"{code}: key ceremony abc" if code else "evaluate failed: DEADLINE_EXCEEDED: Deadline Exceeded"
    err = vault_error("GetShare", code, detail, tx_id="t1")
    assert type(err) is cls and err.detail == detail and err.fn == "GetShare" and err.tx_id == "t1"
    assert str(err) == f"keyvault GetShare failed: {detail}"


IDENTITY, KEY = make_test_identity("Registry1MSP", role="admin")


@pytest.fixture
def fake() -> Iterator[FakeGateway]:
    with serve_fake(FakeGatewayServicer(result=lambda info: json.dumps({"sha256": "ab", "org": "x"}).encode())) as f:
        yield f


@pytest.fixture
def vault(fake: FakeGateway) -> LedgerKeyVault:
    gw = Gateway(IDENTITY, ecdsa_signer(KEY), fake.channel, default_timeout=5.0)
    return LedgerKeyVault(gw.network("keys").contract("keyvault"))


def test_put_share_is_endorsed_by_target_org_only_with_transient_share(
        fake: FakeGateway, vault: LedgerKeyVault) -> None:
    vault.put_share("Registry2MSP", b'{"env":1}')
    req = fake.servicer.requests["Endorse"][0]
    assert list(req.endorsing_organizations) == ["Registry2MSP"]  # type: ignore[attr-defined]
    info = parse_signed_proposal(req.proposed_transaction)  # type: ignore[attr-defined]
    assert info.channel_name == "keys" and info.chaincode_name == "keyvault"
    assert info.fn == "PutShare" and info.args == (b"Registry2MSP",)
    assert info.transient == {"share": b'{"env":1}'}


def test_get_share_is_evaluated_on_owner_peer(fake: FakeGateway, vault: LedgerKeyVault) -> None:
    assert vault.get_share_hash("Registry3MSP") == "ab"
    with pytest.raises(RecordFormatError):  # the fake's payload is not a share record
        vault.get_share("Registry3MSP")
    req = fake.servicer.requests["Evaluate"][-1]
    assert list(req.target_organizations) == ["Registry3MSP"]  # type: ignore[attr-defined]


def test_rich_gateway_error_becomes_typed_vault_error(fake: FakeGateway, vault: LedgerKeyVault) -> None:
    detail = ErrorDetail("127.0.0.1:8211", "Registry2MSP",
                         'chaincode response 500, INVALID_ARGUMENT: argument "org": "X" is not a consortium MSP ID')
    fake.servicer.failures["Evaluate"] = FakeFailure(grpc.StatusCode.UNKNOWN, "evaluate call returned error", (detail,))
    with pytest.raises(VaultInvalidArgumentError) as err:
        vault.get_share_hash("X")
    assert isinstance(err.value.__cause__, EvaluateError) and err.value.tx_id
    assert "not a consortium MSP ID" in str(err.value)


def test_auditor_keygen_modes_id_and_no_overwrite(tmp_path: Path) -> None:
    files = generate_auditor_key(tmp_path / "aud")
    assert stat.S_IMODE((tmp_path / "aud").stat().st_mode) == 0o700
    assert stat.S_IMODE(files.secret_key_file.stat().st_mode) == 0o600
    assert files.secret_key_file.name == AUDITOR_SECRET_FILE and files.public_key_file.name == AUDITOR_PUBLIC_FILE
    kp = load_auditor_keypair(tmp_path / "aud")
    raw = kp.public_raw()
    assert files.auditor_id == hashlib.sha256(raw).hexdigest()[:16] == auditor_id(raw) == auditor_id(kp.public_pem())
    assert load_auditor_public_key(files.public_key_file).raw == raw
    assert load_auditor_public_key(tmp_path / "aud").id == files.auditor_id  # directory accepted
    with pytest.raises(OutputExistsError):
        generate_auditor_key(tmp_path / "aud")
    assert auditor_id(generate_recipient_keypair().public_raw()) != files.auditor_id


def test_bad_key_files_are_typed(tmp_path: Path) -> None:
    with pytest.raises(AuditKeyError, match="not found"):
        load_auditor_keypair(tmp_path)
    (tmp_path / "pk.pem").write_text("not a key")
    with pytest.raises(AuditKeyError):
        load_auditor_public_key(tmp_path / "pk.pem")


def test_ceremony_record_parse_rejects_bad_shapes() -> None:
    with pytest.raises(RecordFormatError, match="not JSON"):
        CeremonyRecord.parse(b"{")
    with pytest.raises(RecordFormatError, match=r"ceremony_id|sealed_key"):
        CeremonyRecord.parse(b'{"t": 2}')
