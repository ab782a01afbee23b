"""Chaincode event streams and file-backed checkpoints for resumable listeners.

Called by :meth:`synthreg.ledger.gateway.Network.chaincode_events`; apps
(discriminator waiting for a generator step, merger waiting for a round) iterate
the returned :class:`ChaincodeEventStream`. Events arrive in ledger order, only
from transactions that committed as valid.

Resuming: a listener persists the ``(block_number, tx_id)`` of the last event
it *finished handling* (:class:`Checkpoint`, JSON file, atomic replace) and on
restart asks for ``start_block=block_number, after_tx_id=tx_id``. The Gateway
then replays that block but skips events up to and including ``tx_id``; this
client applies the same rule itself as well (it drops, in the anchor block,
every event up to and including ``after_tx_id`` if the server sent them), so a
restarted listener sees nothing twice and misses nothing, whichever side did
the filtering. Note the Gateway's rule: ``after_tx_id`` must be the id of a
transaction that emitted an event (always true for a checkpointed event).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.orderer import ab_pb2

from synthreg.ledger.errors import ChaincodeEventsError, CheckpointError
from synthreg.ledger.signing import Signer, digest


@dataclass(frozen=True)
class ChaincodeEvent:
    """One event set by a committed transaction (``stub.SetEvent`` in chaincode)."""

    block_number: int
    tx_id: str
    chaincode_name: str
    event_name: str
    payload: bytes


def signed_events_request(
    channel_name: str,
    chaincode_name: str,
    creator: bytes,
    signer: Signer,
    start_block: int | None = None,
    after_tx_id: str | None = None,
) -> gateway_pb2.SignedChaincodeEventsRequest:
    """The signed request; without ``start_block`` the stream starts at the next commit."""
    if start_block is not None:
        if start_block < 0:
            raise ValueError(f"start_block must be >= 0, got {start_block}")
        position = ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start_block))
    else:
        position = ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit())
    request = gateway_pb2.ChaincodeEventsRequest(
        channel_id=channel_name,
        chaincode_id=chaincode_name,
        identity=creator,
        start_position=position,
        after_transaction_id=after_tx_id or "",
    ).SerializeToString()
    return gateway_pb2.SignedChaincodeEventsRequest(request=request, signature=signer(digest(request)))


class _ResumeFilter:
    """Client-side replay of the Gateway's ``after_transaction_id`` rule.

    The anchor block is ``start_block`` if given, else the first block the
    server sends. In blocks up to the anchor, events up to and including
    ``after_tx_id`` are dropped (if present at all); blocks before
    ``start_block`` are dropped entirely.
    """

    def __init__(self, start_block: int | None, after_tx_id: str | None) -> None:
        self._start_block = start_block
        self._anchor = start_block
        self._after = after_tx_id or None

    def apply(self, block_number: int, events: list[ChaincodeEvent]) -> list[ChaincodeEvent]:
        if self._start_block is not None and block_number < self._start_block:
            return []
        if self._after is None:
            return events
        if self._anchor is None:
            self._anchor = block_number
        if block_number > self._anchor:
            self._after = None
            return events
        ids = [e.tx_id for e in events]
        if self._after in ids:
            cut = len(ids) - ids[::-1].index(self._after)
            self._after = None
            return events[cut:]
        return events


class ChaincodeEventStream(Iterator[ChaincodeEvent]):
    """Iterator over chaincode events; blocks while waiting for new commits.

    Ends when :meth:`close` is called (from any thread) or the server ends the
    stream; a server or network failure raises
    :class:`~synthreg.ledger.errors.ChaincodeEventsError` from the gRPC error.
    Use as a context manager so the server-side stream is always cancelled.
    """

    def __init__(
        self,
        stub: gateway_pb2_grpc.GatewayStub,
        request: gateway_pb2.SignedChaincodeEventsRequest,
        start_block: int | None,
        after_tx_id: str | None,
        timeout: float | None = None,
    ) -> None:
        self._call: Any = stub.ChaincodeEvents(request, timeout=timeout)
        self._filter = _ResumeFilter(start_block, after_tx_id)
        self._pending: list[ChaincodeEvent] = []
        self._closed = False

    def __next__(self) -> ChaincodeEvent:
        while not self._pending:
            if self._closed:
                raise StopIteration
            try:
                response = next(self._call)
            except StopIteration:
                self._closed = True
                raise
            except grpc.RpcError as exc:
                if self._closed:
                    raise StopIteration from None
                self._closed = True
                raise ChaincodeEventsError.from_rpc_error(exc) from exc
            block = int(response.block_number)
            events = [
                ChaincodeEvent(
                    block_number=block,
                    tx_id=e.tx_id,
                    chaincode_name=e.chaincode_id,
                    event_name=e.event_name,
                    payload=bytes(e.payload),
                )
                for e in response.events
            ]
            self._pending = self._filter.apply(block, events)
        return self._pending.pop(0)

    def close(self) -> None:
        """Cancel the server stream; iteration then stops (no error)."""
        self._closed = True
        self._pending = []
        self._call.cancel()

    def __enter__(self) -> ChaincodeEventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Checkpoint:
    """Last handled event position of one listener, persisted as JSON at ``path``.

    Call :meth:`record` *after* an event has been fully handled; on restart pass
    :attr:`block_number` / :attr:`tx_id` as ``start_block`` / ``after_tx_id``
    (both ``None`` for a fresh listener). Writes are atomic (temp file, fsync,
    rename), so a crash leaves either the old or the new position. A file that
    exists but is not a valid checkpoint raises :class:`CheckpointError`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.block_number: int | None = None
        self.tx_id: str | None = None
        if path.exists():
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                block, tx_id = doc["block_number"], doc["tx_id"]
            except (ValueError, KeyError, TypeError) as exc:
                raise CheckpointError(f"unreadable checkpoint {path}: {exc}") from exc
            if not isinstance(block, int) or not isinstance(tx_id, str) or block < 0:
                raise CheckpointError(f"invalid checkpoint {path}: {doc!r}")
            self.block_number, self.tx_id = block, tx_id

    def record(self, event: ChaincodeEvent) -> None:
        """Persist ``event`` as the last handled one."""
        self.save(event.block_number, event.tx_id)

    def save(self, block_number: int, tx_id: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"block_number": block_number, "tx_id": tx_id}).encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.block_number, self.tx_id = block_number, tx_id
