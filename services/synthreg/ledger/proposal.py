"""Building (and parsing back) signed chaincode proposals.

Called by :class:`~synthreg.ledger.contract.Contract` for every evaluate and
submit. A proposal is bound to a fresh transaction context: a 24-byte random
nonce and ``tx_id = hex(sha256(nonce || serialized creator))``, which peers
recompute and check. The proposal's ``ChaincodeProposalPayload`` carries the
invocation (``[fn, *args]``) *and* the transient map: the endorsing peers read
transient data from the proposal, and strip it when they build the transaction
that the Gateway returns for ordering (see
:func:`synthreg.ledger.transaction.parse_prepared`, which checks that).
So transient values reach the endorsers but never the ledger or the orderers.

:func:`parse_signed_proposal` is the inverse, used by tests and the fake server.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fabric_protos.common import common_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2
from google.protobuf import timestamp_pb2

from synthreg.ledger.signing import Signer, digest

NONCE_SIZE = 24


@dataclass(frozen=True)
class TransactionContext:
    """Nonce, creator and the transaction id derived from them."""

    nonce: bytes
    creator: bytes
    tx_id: str

    @classmethod
    def new(cls, creator: bytes, nonce: bytes | None = None) -> TransactionContext:
        """A fresh context (random nonce unless one is given, e.g. in tests)."""
        nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
        if len(nonce) != NONCE_SIZE:
            raise ValueError(f"nonce must be {NONCE_SIZE} bytes, got {len(nonce)}")
        return cls(nonce=nonce, creator=creator, tx_id=compute_tx_id(nonce, creator))

    def signature_header(self) -> bytes:
        header: bytes = common_pb2.SignatureHeader(creator=self.creator, nonce=self.nonce).SerializeToString()
        return header


def compute_tx_id(nonce: bytes, creator: bytes) -> str:
    """Fabric's transaction id: lowercase hex of ``sha256(nonce || creator)``."""
    return hashlib.sha256(nonce + creator).hexdigest()


def as_bytes(value: str | bytes) -> bytes:
    """Chaincode arguments are bytes on the wire; strings are UTF-8 encoded."""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def build_proposal(
    ctx: TransactionContext,
    channel_name: str,
    chaincode_name: str,
    fn: str,
    args: Sequence[str | bytes] = (),
    transient: Mapping[str, bytes] | None = None,
) -> proposal_pb2.Proposal:
    """The unsigned ``protos.Proposal`` for invoking ``fn(*args)`` on a chaincode."""
    timestamp = timestamp_pb2.Timestamp()
    timestamp.GetCurrentTime()
    extension = proposal_pb2.ChaincodeHeaderExtension(
        chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode_name)
    )
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION,
        timestamp=timestamp,
        channel_id=channel_name,
        tx_id=ctx.tx_id,
        epoch=0,
        extension=extension.SerializeToString(),
    )
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=ctx.signature_header(),
    )
    invocation = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            type=chaincode_pb2.ChaincodeSpec.GOLANG,
            chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode_name),
            input=chaincode_pb2.ChaincodeInput(args=[as_bytes(fn), *(as_bytes(a) for a in args)]),
        )
    )
    payload = proposal_pb2.ChaincodeProposalPayload(
        input=invocation.SerializeToString(),
        TransientMap={k: bytes(v) for k, v in (transient or {}).items()},
    )
    return proposal_pb2.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString()
    )


def sign_proposal(proposal: proposal_pb2.Proposal, signer: Signer) -> proposal_pb2.SignedProposal:
    """Serialize ``proposal`` once and sign exactly those bytes."""
    proposal_bytes = proposal.SerializeToString()
    return proposal_pb2.SignedProposal(
        proposal_bytes=proposal_bytes, signature=signer(digest(proposal_bytes))
    )


@dataclass(frozen=True)
class ProposalInfo:
    """What a signed proposal says, decoded (for tests, fakes and diagnostics)."""

    tx_id: str
    channel_name: str
    chaincode_name: str
    header_type: int
    fn: str
    args: tuple[bytes, ...]
    transient: dict[str, bytes]
    msp_id: str
    creator: bytes
    nonce: bytes
    proposal_bytes: bytes
    signature: bytes


def parse_signed_proposal(signed: proposal_pb2.SignedProposal) -> ProposalInfo:
    """Decode a ``SignedProposal``; raises ``google.protobuf.message.DecodeError`` if malformed."""
    proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
    header = common_pb2.Header.FromString(proposal.header)
    channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
    extension = proposal_pb2.ChaincodeHeaderExtension.FromString(channel_header.extension)
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    invocation = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input)
    raw_args = list(invocation.chaincode_spec.input.args)
    creator = identities_pb2.SerializedIdentity.FromString(signature_header.creator)
    return ProposalInfo(
        tx_id=channel_header.tx_id,
        channel_name=channel_header.channel_id,
        chaincode_name=extension.chaincode_id.name,
        header_type=channel_header.type,
        fn=raw_args[0].decode("utf-8") if raw_args else "",
        args=tuple(raw_args[1:]),
        transient=dict(payload.TransientMap),
        msp_id=creator.mspid,
        creator=signature_header.creator,
        nonce=signature_header.nonce,
        proposal_bytes=signed.proposal_bytes,
        signature=signed.signature,
    )
