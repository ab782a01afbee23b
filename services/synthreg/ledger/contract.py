"""A chaincode on a channel: evaluate (query) and submit (endorse, order, commit).

Obtained from :meth:`synthreg.ledger.gateway.Network.contract`; apps call
:meth:`Contract.evaluate` for reads and :meth:`Contract.submit` for writes.
Nothing here holds keys or dials sockets: identity, signer and gRPC stub come
from the :class:`~synthreg.ledger.gateway.Gateway`. Each stage that can fail
raises its own error (see :mod:`synthreg.ledger.errors`), always carrying the
transaction id and chained ``from`` the gRPC error; a chaincode verdict is
parsed here once (:class:`~synthreg.ledger.errors.ChaincodeError`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2

from synthreg.ledger.commit import commit_status_from_response, signed_commit_status_request
from synthreg.ledger.errors import (
    ChaincodeError,
    CommitError,
    CommitStatusError,
    EndorseError,
    EvaluateError,
    SubmitError,
)
from synthreg.ledger.proposal import TransactionContext, build_proposal, sign_proposal
from synthreg.ledger.transaction import check_prepared, sign_envelope

if TYPE_CHECKING:
    from synthreg.ledger.gateway import Network


@dataclass(frozen=True)
class SubmitResult:
    """A committed, valid transaction."""

    tx_id: str
    result: bytes
    """The chaincode function's return value (from the endorsement)."""
    block_number: int
    status: int
    """``protos.TxValidationCode`` (always ``VALID`` = 0 here; failures raise)."""
    status_name: str = "VALID"


class Contract:
    """Chaincode ``name`` on the network's channel."""

    def __init__(self, network: Network, name: str) -> None:
        self.network = network
        self.name = name

    def _signed_proposal(
        self,
        fn: str,
        args: Sequence[str | bytes],
        transient: Mapping[str, bytes] | None,
    ) -> tuple[str, proposal_pb2.SignedProposal]:
        gw = self.network.gateway
        ctx = TransactionContext.new(gw.creator)
        proposal = build_proposal(ctx, self.network.name, self.name, fn, args, transient)
        return ctx.tx_id, sign_proposal(proposal, gw.signer)

    def evaluate(
        self,
        fn: str,
        *args: str | bytes,
        transient: Mapping[str, bytes] | None = None,
        endorsing_orgs: Sequence[str] | None = None,
    ) -> bytes:
        """Run ``fn(*args)`` on one peer without ordering; returns the chaincode's payload.

        ``endorsing_orgs`` restricts which organisations' peers may run it (e.g.
        the org owning a private collection). A chaincode error (non-200
        response, e.g. ``access denied``) raises :class:`EvaluateError` with the
        chaincode message in ``str(err)``; when it carries a chaincode error code
        the error is an :class:`~synthreg.ledger.errors.EvaluateChaincodeError`
        with the parsed ``chaincode.code``.
        """
        gw = self.network.gateway
        tx_id, proposed = self._signed_proposal(fn, args, transient)
        request = gateway_pb2.EvaluateRequest(
            transaction_id=tx_id,
            channel_id=self.network.name,
            proposed_transaction=proposed,
            target_organizations=list(endorsing_orgs or ()),
        )
        try:
            response = gw.stub.Evaluate(request, timeout=gw.default_timeout)
        except grpc.RpcError as exc:
            raise EvaluateError.from_rpc_error(exc, tx_id) from exc
        if not 200 <= response.result.status < 400:
            # The Gateway normally turns chaincode errors into gRPC errors; be strict anyway.
            raise EvaluateError.build(
                f"chaincode response {response.result.status}: {response.result.message}", tx_id=tx_id
            )
        return bytes(response.result.payload)

    def submit(
        self,
        fn: str,
        *args: str | bytes,
        transient: Mapping[str, bytes] | None = None,
        endorsing_orgs: Sequence[str] | None = None,
    ) -> SubmitResult:
        """Endorse ``fn(*args)``, sign and submit the transaction, and wait for its commit.

        Stages and their errors: Endorse (:class:`EndorseError`: chaincode error,
        policy not satisfiable, or a prepared transaction that is not ours or
        leaks transient data; a chaincode verdict makes it an
        :class:`~synthreg.ledger.errors.EndorseChaincodeError`), Submit
        (:class:`SubmitError`: orderers refused it), CommitStatus (:class:`CommitStatusError`: the status could not be
        obtained — the transaction may still commit), validation
        (:class:`CommitError` with the validation code, e.g. MVCC_READ_CONFLICT).
        ``transient`` values go to the endorsers only; with private data pass
        ``endorsing_orgs`` so the value is not sent to other organisations.
        Without ``endorsing_orgs`` the Gateway endorses on its own org's peer
        first and lets discovery add peers for the chaincode policy and the
        key-level policies of the keys written (chaincode/README.md,
        "Registry-owned keys"); with it, no policy is checked before commit.
        Blocks for the whole round trip, bounded per call by the gateway's
        ``default_timeout``.
        """
        gw = self.network.gateway
        channel = self.network.name
        tx_id, proposed = self._signed_proposal(fn, args, transient)
        endorse_request = gateway_pb2.EndorseRequest(
            transaction_id=tx_id,
            channel_id=channel,
            proposed_transaction=proposed,
            endorsing_organizations=list(endorsing_orgs or ()),
        )
        try:
            endorsed = gw.stub.Endorse(endorse_request, timeout=gw.default_timeout)
        except grpc.RpcError as exc:
            raise EndorseError.from_rpc_error(exc, tx_id) from exc
        info = check_prepared(endorsed.prepared_transaction, tx_id, channel)
        envelope = sign_envelope(endorsed.prepared_transaction, gw.signer)

        submit_request = gateway_pb2.SubmitRequest(
            transaction_id=tx_id, channel_id=channel, prepared_transaction=envelope
        )
        try:
            gw.stub.Submit(submit_request, timeout=gw.default_timeout)
        except grpc.RpcError as exc:
            raise SubmitError.from_rpc_error(exc, tx_id) from exc

        status_request = signed_commit_status_request(tx_id, channel, gw.creator, gw.signer)
        try:
            response = gw.stub.CommitStatus(status_request, timeout=gw.default_timeout)
        except grpc.RpcError as exc:
            raise CommitStatusError.from_rpc_error(exc, tx_id) from exc
        status = commit_status_from_response(tx_id, response)
        if not status.successful:
            raise CommitError(tx_id, status.code, status.block_number)
        return SubmitResult(
            tx_id=tx_id,
            result=info.result,
            block_number=status.block_number,
            status=status.code,
            status_name=status.name,
        )


def evaluate_or_none(contract: Contract, fn: str, *args: str) -> Any:
    """``contract.evaluate(fn, *args)`` decoded from JSON, or None when the chaincode
    says NOT_FOUND; every other error raises."""
    try:
        return json.loads(contract.evaluate(fn, *args))
    except ChaincodeError as exc:
        if exc.chaincode.code == "NOT_FOUND":
            return None
        raise
