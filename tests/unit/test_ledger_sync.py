"""wait_for_block: polls every organisation's peer height (fake qscc, no network)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from fabric_protos.common import ledger_pb2

from synthreg.ledger.sync import PeerLagError, wait_for_block


@dataclass
class _Qscc:
    heights: dict[str, list[int]]  # successive heights each org's peer reports
    calls: list[str] = field(default_factory=list)

    def evaluate(self, fn: str, channel: str, endorsing_orgs: list[str]) -> bytes:
        assert (fn, channel) == ("GetChainInfo", "gan")
        (org,) = endorsing_orgs
        self.calls.append(org)
        seq = self.heights[org]
        height = seq.pop(0) if len(seq) > 1 else seq[0]
        return ledger_pb2.BlockchainInfo(height=height).SerializeToString()


@dataclass
class _Network:
    qscc: _Qscc
    name: str = "gan"

    def contract(self, name: str) -> _Qscc:
        assert name == "qscc"
        return self.qscc


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += dt


def test_returns_once_every_peer_has_the_block() -> None:
    qscc = _Qscc({"A": [5, 6], "B": [4, 5, 7]})
    clock = _Clock()
    wait_for_block(_Network(qscc), ["A", "B"], block=5, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    # A: height 5 (no block 5 yet) then 6; B: 4, 5, then 7
    assert qscc.calls == ["A", "A", "B", "B", "B"]


def test_a_lagging_peer_is_named_after_the_timeout() -> None:
    qscc = _Qscc({"A": [9], "B": [3]})
    clock = _Clock()
    with pytest.raises(PeerLagError) as err:
        wait_for_block(_Network(qscc), ["A", "B"], block=5, timeout=1.0, clock=clock,  # type: ignore[arg-type]
                       sleep=clock.sleep)
    assert (err.value.org, err.value.block, err.value.height) == ("B", 5, 3)
    assert "peer of B" in str(err.value) and "block 5" in str(err.value)
