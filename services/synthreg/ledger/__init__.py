"""synthreg.ledger: a small Fabric Gateway client (evaluate, submit, chaincode events).

Wiring happens at the process edge: :func:`load_msp_identity` gives an
:class:`Identity` and a low-S :data:`Signer`, :func:`connect` a TLS gRPC channel;
both are injected into :class:`Gateway`. See ``gateway.py`` for an example.
"""

from synthreg.ledger.commit import CommitStatus
from synthreg.ledger.connection import connect, wait_ready
from synthreg.ledger.contract import Contract, SubmitResult, evaluate_or_none
from synthreg.ledger.errors import (
    ChaincodeError,
    ChaincodeEventsError,
    ChaincodeInfo,
    CheckpointError,
    CommitError,
    CommitStatusError,
    ConnectError,
    EndorseChaincodeError,
    EndorseError,
    ErrorDetail,
    EvaluateChaincodeError,
    EvaluateError,
    GatewayError,
    IdentityError,
    LedgerError,
    SubmitError,
)
from synthreg.ledger.events import ChaincodeEvent, ChaincodeEventStream, Checkpoint
from synthreg.ledger.gateway import Gateway, Network
from synthreg.ledger.identity import Identity, cert_attributes, load_msp_identity
from synthreg.ledger.signing import Signer, ecdsa_signer, high_s, is_low_s

__all__ = [
    "ChaincodeError",
    "ChaincodeEvent",
    "ChaincodeEventStream",
    "ChaincodeEventsError",
    "ChaincodeInfo",
    "Checkpoint",
    "CheckpointError",
    "CommitError",
    "CommitStatus",
    "CommitStatusError",
    "ConnectError",
    "Contract",
    "EndorseChaincodeError",
    "EndorseError",
    "ErrorDetail",
    "EvaluateChaincodeError",
    "EvaluateError",
    "Gateway",
    "GatewayError",
    "Identity",
    "IdentityError",
    "LedgerError",
    "Network",
    "Signer",
    "SubmitError",
    "SubmitResult",
    "cert_attributes",
    "connect",
    "ecdsa_signer",
    "evaluate_or_none",
    "high_s",
    "is_low_s",
    "load_msp_identity",
    "wait_ready",
]
