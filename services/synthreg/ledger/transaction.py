"""The endorsed ("prepared") transaction returned by the Gateway's Endorse call.

Called by :meth:`synthreg.ledger.contract.Contract.submit` between Endorse and
Submit. Before the client signs the envelope it decodes it and checks that it
is the transaction it proposed (same tx id and channel) and that no transient
data made it into the transaction payload — the endorsers strip the transient
map when they assemble the transaction, so a non-empty map here means a broken
or hostile Gateway and the client refuses to sign. Failures raise
:class:`~synthreg.ledger.errors.EndorseError` (the transaction was never sent
for ordering).
"""

from __future__ import annotations

from dataclasses import dataclass

from fabric_protos.common import common_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf.message import DecodeError

from synthreg.ledger.errors import EndorseError
from synthreg.ledger.signing import Signer, digest


@dataclass(frozen=True)
class PreparedInfo:
    """Decoded essentials of a prepared transaction envelope."""

    tx_id: str
    channel_name: str
    result: bytes
    """The chaincode's response payload (what ``fn`` returned)."""


def parse_prepared(envelope: common_pb2.Envelope) -> PreparedInfo:
    """Decode tx id, channel and chaincode result; ``EndorseError`` if malformed or leaking transient data."""
    try:
        payload = common_pb2.Payload.FromString(envelope.payload)
        channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        tx = transaction_pb2.Transaction.FromString(payload.data)
        if not tx.actions:
            raise EndorseError("prepared transaction has no actions", tx_id=channel_header.tx_id)
        action_payload = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
        proposal_payload = proposal_pb2.ChaincodeProposalPayload.FromString(
            action_payload.chaincode_proposal_payload
        )
        response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(
            action_payload.action.proposal_response_payload
        )
        action = proposal_pb2.ChaincodeAction.FromString(response_payload.extension)
    except DecodeError as exc:
        raise EndorseError(f"cannot decode prepared transaction: {exc}") from exc
    if proposal_payload.TransientMap:
        raise EndorseError(
            "prepared transaction carries transient data "
            f"(keys {sorted(proposal_payload.TransientMap)}); refusing to sign it",
            tx_id=channel_header.tx_id,
        )
    return PreparedInfo(
        tx_id=channel_header.tx_id,
        channel_name=channel_header.channel_id,
        result=action.response.payload,
    )


def check_prepared(envelope: common_pb2.Envelope, tx_id: str, channel_name: str) -> PreparedInfo:
    """:func:`parse_prepared` plus: it must be *our* transaction on *our* channel."""
    info = parse_prepared(envelope)
    if info.tx_id != tx_id or info.channel_name != channel_name:
        raise EndorseError(
            f"Gateway returned transaction {info.tx_id!r} on channel {info.channel_name!r}, "
            f"expected {tx_id!r} on {channel_name!r}",
            tx_id=tx_id,
        )
    return info


def sign_envelope(envelope: common_pb2.Envelope, signer: Signer) -> common_pb2.Envelope:
    """A copy of ``envelope`` with the creator's signature over its payload bytes."""
    return common_pb2.Envelope(payload=envelope.payload, signature=signer(digest(envelope.payload)))
