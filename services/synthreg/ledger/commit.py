"""Commit status: asking the Gateway how a submitted transaction was validated.

Called by :meth:`synthreg.ledger.contract.Contract.submit` after Submit. The
request names the transaction and channel and carries the caller's serialized
identity; it is signed (SHA-256 digest of the request bytes) because the peer
only answers to an identity allowed to read the channel. The peer blocks the
call until the transaction is in a block (or the deadline passes). A
validation code other than ``VALID`` becomes
:class:`~synthreg.ledger.errors.CommitError` in the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import transaction_pb2

from synthreg.ledger.errors import validation_code_name
from synthreg.ledger.signing import Signer, digest

VALID: int = transaction_pb2.VALID


@dataclass(frozen=True)
class CommitStatus:
    """Outcome of one transaction: validation code and the block it landed in."""

    tx_id: str
    code: int
    block_number: int

    @property
    def name(self) -> str:
        return validation_code_name(self.code)

    @property
    def successful(self) -> bool:
        return self.code == VALID


def signed_commit_status_request(
    tx_id: str, channel_name: str, creator: bytes, signer: Signer
) -> gateway_pb2.SignedCommitStatusRequest:
    """The signed ``gateway.SignedCommitStatusRequest`` for ``tx_id``."""
    request = gateway_pb2.CommitStatusRequest(
        transaction_id=tx_id, channel_id=channel_name, identity=creator
    ).SerializeToString()
    return gateway_pb2.SignedCommitStatusRequest(request=request, signature=signer(digest(request)))


def commit_status_from_response(tx_id: str, response: gateway_pb2.CommitStatusResponse) -> CommitStatus:
    return CommitStatus(tx_id=tx_id, code=int(response.result), block_number=int(response.block_number))
