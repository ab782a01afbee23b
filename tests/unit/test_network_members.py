"""Member registration from the Python side (fast, no network).

The fake Gateway runs no chaincode: these tests check which transactions are sent,
on which channels, concurrently, and how the chaincode's verdicts are read
(ALREADY_EXISTS = registered; other verdicts raise; failures without a verdict are
retried). That the chaincodes enforce membership is proven by the Go tests and
tests/integration/test_network_lifecycle.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import grpc
import pytest

from synthreg.ledger import Gateway, ecdsa_signer
from synthreg.ledger.errors import ErrorDetail
from synthreg.ledger.proposal import ProposalInfo, parse_signed_proposal
from synthreg.ledger.testing import FakeFailure, FakeGateway, FakeGatewayServicer, make_test_identity, serve_fake
from synthreg.network.launcher import NetworkError
from synthreg.network.members import RegistrationError, list_members, register_on, register_org

MSP = "Registry2MSP"
IDENTITY, KEY = make_test_identity(MSP, role="admin")
CHAINCODES = {"gan": "ganledger", "keys": "keyvault"}


def _record(info: ProposalInfo) -> bytes:
    return json.dumps({"msp": MSP, "admin_subject": "CN=admin", "txid": "t", "timestamp": "2026"}).encode()


def _verdict(text: str) -> FakeFailure:
    detail = ErrorDetail("127.0.0.1:8211", MSP, f"chaincode response 500, {text}")
    return FakeFailure(grpc.StatusCode.ABORTED, "failed to endorse transaction", (detail,))


@pytest.fixture
def fake() -> Iterator[FakeGateway]:
    with serve_fake(FakeGatewayServicer(result=_record)) as f:
        yield f


def _gateway(fake: FakeGateway) -> Gateway:
    return Gateway(IDENTITY, ecdsa_signer(KEY), fake.channel, default_timeout=5.0)


def test_registers_on_both_channels_concurrently_with_no_argument(fake: FakeGateway) -> None:
    # Each Endorse waits until the other channel's has arrived: serial submits would
    # break the barrier and fail.
    barrier = threading.Barrier(2, timeout=5)

    def both_at_once(info: ProposalInfo) -> bytes:
        barrier.wait()
        return _record(info)

    fake.servicer.result = both_at_once
    regs = register_org(_gateway(fake), MSP, CHAINCODES)
    assert [(r.channel, r.msp_id, r.already) for r in regs] == [("gan", MSP, False), ("keys", MSP, False)]
    assert all(len(r.tx_id) == 64 for r in regs)
    sent = sorted((i.channel_name, i.chaincode_name, i.fn, i.args) for i in
                  (parse_signed_proposal(req.proposed_transaction)  # type: ignore[attr-defined]
                   for req in fake.servicer.requests["Endorse"]))
    assert sent == [("gan", "ganledger", "RegisterMember", ()), ("keys", "keyvault", "RegisterMember", ())]
    assert len(fake.servicer.requests["CommitStatus"]) == 2


def test_already_exists_counts_as_registered(fake: FakeGateway) -> None:
    fake.servicer.failures["Endorse"] = _verdict('ALREADY_EXISTS: member of channel gan "Registry2MSP" already exists')
    reg = register_on(_gateway(fake).network("gan").contract("ganledger"), MSP)
    assert reg.already and reg.tx_id == "" and reg.channel == "gan"
    assert "Submit" not in fake.servicer.requests


def test_other_verdict_raises_at_once(fake: FakeGateway) -> None:
    fake.servicer.failures["Endorse"] = _verdict('ACCESS_DENIED: caller Registry2MSP role "merger" not allowed')
    with pytest.raises(RegistrationError, match="ACCESS_DENIED") as err:
        register_on(_gateway(fake).network("keys").contract("keyvault"), MSP, sleep=pytest.fail)
    assert isinstance(err.value, NetworkError) and err.value.channel == "keys" and err.value.msp_id == MSP
    assert len(fake.servicer.requests["Endorse"]) == 1


def test_failure_without_verdict_is_retried_then_lands(fake: FakeGateway) -> None:
    fake.servicer.failures["Endorse"] = FakeFailure(grpc.StatusCode.UNAVAILABLE, "no peers available")
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        if len(slept) == 2:  # the peer starts serving the new definition
            del fake.servicer.failures["Endorse"]

    reg = register_on(_gateway(fake).network("gan").contract("ganledger"), MSP, sleep=sleep)
    assert not reg.already and len(slept) == 2 and len(fake.servicer.requests["Endorse"]) == 3


def test_lost_commit_answer_then_already_exists_is_success(fake: FakeGateway) -> None:
    # The first attempt's commit status is lost (it may have landed): the retry is told
    # ALREADY_EXISTS, which means registered.
    fake.servicer.failures["CommitStatus"] = FakeFailure(grpc.StatusCode.UNAVAILABLE, "connection reset")

    def sleep(_s: float) -> None:
        del fake.servicer.failures["CommitStatus"]
        fake.servicer.failures["Endorse"] = _verdict('ALREADY_EXISTS: member "Registry2MSP" already exists')

    reg = register_on(_gateway(fake).network("gan").contract("ganledger"), MSP, sleep=sleep)
    assert reg.already


def test_retries_stop_at_timeout(fake: FakeGateway) -> None:
    fake.servicer.failures["Endorse"] = FakeFailure(grpc.StatusCode.UNAVAILABLE, "no peers available")
    with pytest.raises(RegistrationError, match="retried for 0s"):
        register_on(_gateway(fake).network("gan").contract("ganledger"), MSP, timeout=0, sleep=pytest.fail)


def test_record_of_another_org_is_refused(fake: FakeGateway) -> None:
    fake.servicer.result = lambda _i: json.dumps({"msp": "Registry9MSP"}).encode()
    with pytest.raises(RegistrationError, match="Registry9MSP"):
        register_on(_gateway(fake).network("gan").contract("ganledger"), MSP)


def test_list_members_evaluates(fake: FakeGateway) -> None:
    fake.servicer.result = lambda _i: b'[{"msp":"Registry1MSP"},{"msp":"Registry2MSP"}]'
    assert [m["msp"] for m in list_members(_gateway(fake).network("keys").contract("keyvault"))] == \
        ["Registry1MSP", "Registry2MSP"]
    info = parse_signed_proposal(fake.servicer.requests["Evaluate"][0].proposed_transaction)  # type: ignore[attr-defined]
    assert info.fn == "ListMembers"
