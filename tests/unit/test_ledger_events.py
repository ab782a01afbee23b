"""Chaincode event requests, client-side resume logic and checkpoints (fake stream, no network)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from fabric_protos.gateway import gateway_pb2

from synthreg.ledger import (
    ChaincodeEvent,
    ChaincodeEventsError,
    Checkpoint,
    CheckpointError,
    ErrorDetail,
    Gateway,
    Network,
    ecdsa_signer,
)
from synthreg.ledger.events import _ResumeFilter
from synthreg.ledger.signing import digest
from synthreg.ledger.testing import FakeFailure, FakeGatewayServicer, make_test_identity, serve_fake

IDENTITY, KEY = make_test_identity("Registry2MSP", role="discriminator")
CC = "ganledger"


def _ev(block: int, tx: str, cc: str = CC) -> ChaincodeEvent:
    return ChaincodeEvent(block, tx, cc, "StepRecorded", f"{block}:{tx}".encode())


# Several events per block, a foreign chaincode interleaved, gaps between blocks.
HISTORY: list[tuple[int, list[ChaincodeEvent]]] = [
    (3, [_ev(3, "a1"), _ev(3, "x1", "keyvault"), _ev(3, "a2")]),
    (4, [_ev(4, "b1")]),
    (6, [_ev(6, "c1"), _ev(6, "c2"), _ev(6, "c3")]),
    (9, [_ev(9, "x2", "keyvault"), _ev(9, "d1")]),
]
EXPECTED = [e for _, evs in HISTORY for e in evs if e.chaincode_name == CC]


@pytest.fixture
def servicer() -> FakeGatewayServicer:
    return FakeGatewayServicer(event_blocks=HISTORY)


@pytest.fixture
def network(servicer: FakeGatewayServicer) -> Iterator[Network]:
    with serve_fake(servicer) as running:
        yield Gateway(IDENTITY, ecdsa_signer(KEY), running.channel, default_timeout=5.0).network("gan")


def _last_request(servicer: FakeGatewayServicer) -> gateway_pb2.ChaincodeEventsRequest:
    signed = servicer.requests["ChaincodeEvents"][-1]
    assert isinstance(signed, gateway_pb2.SignedChaincodeEventsRequest)
    KEY.public_key().verify(signed.signature, digest(signed.request), ec.ECDSA(Prehashed(hashes.SHA256())))
    return gateway_pb2.ChaincodeEventsRequest.FromString(signed.request)


def test_request_defaults_to_next_commit(network: Network, servicer: FakeGatewayServicer) -> None:
    with network.chaincode_events(CC) as stream:
        assert list(stream) == EXPECTED
    req = _last_request(servicer)
    assert (req.channel_id, req.chaincode_id, req.identity) == ("gan", CC, IDENTITY.serialize())
    assert req.start_position.HasField("next_commit") and req.after_transaction_id == ""


def test_request_carries_start_block_and_after_tx_id(network: Network, servicer: FakeGatewayServicer) -> None:
    with network.chaincode_events(CC, start_block=6, after_tx_id="c1") as stream:
        assert [e.tx_id for e in stream] == ["c2", "c3", "d1"]
    req = _last_request(servicer)
    assert req.start_position.specified.number == 6 and req.after_transaction_id == "c1"


def _listen(network: Network, checkpoint: Checkpoint, limit: int) -> list[ChaincodeEvent]:
    """A listener that handles at most ``limit`` events, checkpointing each, then 'crashes'."""
    handled: list[ChaincodeEvent] = []
    with network.chaincode_events(CC, start_block=checkpoint.block_number, after_tx_id=checkpoint.tx_id) as stream:
        for event in stream:
            handled.append(event)
            checkpoint.record(event)
            if len(handled) == limit:
                break
    return handled


@pytest.mark.parametrize("server_filters", [True, False], ids=["server-filters", "client-filters"])
@pytest.mark.parametrize("limit", [1, 2, 4])
def test_restarted_listener_sees_nothing_twice_and_misses_nothing(
    servicer: FakeGatewayServicer, network: Network, tmp_path: Path, server_filters: bool, limit: int
) -> None:
    servicer.apply_after_tx_id = server_filters
    seen: list[ChaincodeEvent] = []
    for _ in range(len(EXPECTED) + 2):
        batch = _listen(network, Checkpoint(tmp_path / "cp.json"), limit)  # reloaded from disk each restart
        if not batch:
            break
        seen.extend(batch)
    assert seen == EXPECTED
    assert Checkpoint(tmp_path / "cp.json").tx_id == EXPECTED[-1].tx_id


def test_resume_filter_keeps_events_when_server_already_skipped() -> None:
    flt = _ResumeFilter(start_block=6, after_tx_id="c1")
    assert [e.tx_id for e in flt.apply(6, [_ev(6, "c2"), _ev(6, "c3")])] == ["c2", "c3"]
    assert [e.tx_id for e in flt.apply(9, [_ev(9, "d1")])] == ["d1"]


def test_resume_filter_drops_through_after_tx_and_earlier_blocks() -> None:
    flt = _ResumeFilter(start_block=6, after_tx_id="c2")
    assert flt.apply(4, [_ev(4, "b1")]) == []
    assert [e.tx_id for e in flt.apply(6, [_ev(6, "c1"), _ev(6, "c2"), _ev(6, "c3")])] == ["c3"]
    # Once past the anchor, a repeated id is not filtered again.
    assert [e.tx_id for e in flt.apply(9, [_ev(9, "c2")])] == ["c2"]


def test_stream_failure_is_typed_with_details(network: Network, servicer: FakeGatewayServicer) -> None:
    detail = ErrorDetail("peer0.registry2:8051", "Registry2MSP", "access denied: not a channel reader")
    servicer.failures["ChaincodeEvents"] = FakeFailure(grpc.StatusCode.PERMISSION_DENIED, "denied", (detail,))
    with network.chaincode_events(CC) as stream, pytest.raises(ChaincodeEventsError) as info:
        next(stream)
    assert info.value.code == grpc.StatusCode.PERMISSION_DENIED and info.value.details == (detail,)
    assert "not a channel reader" in str(info.value)
    assert isinstance(info.value.__cause__, grpc.RpcError)


def test_close_from_another_thread_ends_a_blocked_stream(network: Network, servicer: FakeGatewayServicer) -> None:
    servicer.hold_open = True
    stream = network.chaincode_events(CC)
    got = [next(stream) for _ in EXPECTED]
    assert got == EXPECTED
    timer = threading.Timer(0.2, stream.close)
    timer.start()
    with pytest.raises(StopIteration):
        next(stream)  # blocks until close() cancels the call
    timer.join()


def test_checkpoint_persists_atomically(tmp_path: Path) -> None:
    path = tmp_path / "listener" / "cp.json"
    cp = Checkpoint(path)
    assert (cp.block_number, cp.tx_id) == (None, None)
    cp.record(_ev(6, "c2"))
    cp.save(9, "d1")
    again = Checkpoint(path)
    assert (again.block_number, again.tx_id) == (9, "d1")
    assert sorted(p.name for p in path.parent.iterdir()) == ["cp.json"]  # no temp files left


@pytest.mark.parametrize("content", ["{", '{"block_number": "9", "tx_id": "d1"}', '{"tx_id": "d1"}', "[]"])
def test_corrupt_checkpoint_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "cp.json"
    path.write_text(content)
    with pytest.raises(CheckpointError):
        Checkpoint(path)
