"""Typed errors of the ledger client, one per stage of a Gateway interaction.

Raised by :mod:`synthreg.ledger.contract`, :mod:`synthreg.ledger.events` and
:mod:`synthreg.ledger.identity`; callers (apps, CLIs, integration tests) catch
the stage they care about. Every gRPC failure is raised ``from`` the original
:class:`grpc.RpcError` and carries the transaction id, the gRPC status code,
the message and the per-peer :class:`ErrorDetail` list that the Fabric
Gateway attaches as a rich status (``grpc-status-details-bin`` trailer holding a
``google.rpc.Status`` whose details are ``gateway.ErrorDetail``). The chaincode's
own message (e.g. ``access denied: ...``) usually arrives in those details, so
``str(err)`` always includes them.

Chaincode verdicts are parsed once, here: every synthreg chaincode error
message starts with a stable code (:data:`CHAINCODE_ERROR_CODES`,
``chaincode/README.md``). When the status message or a peer's detail carries
one, the stage error is raised as its chaincode variant —
:class:`EvaluateChaincodeError` (an :class:`EvaluateError`) or
:class:`EndorseChaincodeError` (an :class:`EndorseError`) — both also a
:class:`ChaincodeError` whose ``chaincode`` is the parsed
:class:`ChaincodeInfo` (``code``, ``detail``). So callers catch the stage they
care about *or* ``ChaincodeError`` for "the chaincode said no", and map
``err.chaincode.code`` to their own typed errors without re-reading text.
``GatewayError.code`` stays the gRPC status code. Only the evaluate and endorse
stages run chaincode; the other stages never carry a chaincode verdict.

``grpcio-status`` / ``googleapis-common-protos`` are not dependencies of this
project; when ``google.rpc.status_pb2`` is not importable the ``Status`` message
type is declared here in a private descriptor pool (three fields, stable wire
format). Unparseable details degrade to an empty list, never to a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

import grpc
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import transaction_pb2
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

STATUS_DETAILS_KEY = "grpc-status-details-bin"
"""Trailing-metadata key under which gRPC carries a serialized ``google.rpc.Status``."""

_ERROR_DETAIL_TYPE = "gateway.ErrorDetail"


@dataclass(frozen=True)
class ErrorDetail:
    """What one peer (or orderer) reported for a failed Gateway request."""

    address: str
    msp_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.address} ({self.msp_id}): {self.message}"


class LedgerError(Exception):
    """Base of every error raised by :mod:`synthreg.ledger`."""


class IdentityError(LedgerError):
    """An MSP folder is missing, ambiguous, or its key does not match its certificate."""


class ConnectError(LedgerError):
    """The gRPC channel to a Gateway peer did not become ready in time."""


class CheckpointError(LedgerError):
    """An event-listener checkpoint file exists but cannot be read."""


@dataclass(frozen=True)
class ChaincodeInfo:
    """The chaincode's own verdict inside a failed Gateway request."""

    code: str
    """One of :data:`CHAINCODE_ERROR_CODES`, e.g. ``"PRECONDITION_FAILED"``."""
    detail: str
    """The chaincode's message from its code on (``"ALREADY_EXISTS: key ceremony abc"``)."""


class GatewayError(LedgerError):
    """A Gateway RPC failed; base of the per-stage errors.

    Attributes: ``tx_id`` (empty for stream requests without a transaction),
    ``code`` (:class:`grpc.StatusCode`), ``message`` (the status message) and
    ``details`` (per-peer :class:`ErrorDetail`, possibly empty).
    :meth:`from_rpc_error` and :meth:`build` return the stage's
    :class:`ChaincodeError` variant when the chaincode's verdict is in there.
    """

    stage = "gateway request"

    def __init__(
        self,
        message: str,
        *,
        tx_id: str = "",
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        details: tuple[ErrorDetail, ...] = (),
    ) -> None:
        self.tx_id = tx_id
        self.code = code
        self.message = message
        self.details = details
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{self.stage} failed"
        if self.tx_id:
            head += f" (tx {self.tx_id})"
        text = f"{head}: {self.code.name}: {self.message}"
        if self.details:
            text += " | " + "; ".join(str(d) for d in self.details)
        return text

    @classmethod
    def build(
        cls,
        message: str,
        *,
        tx_id: str = "",
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        details: tuple[ErrorDetail, ...] = (),
    ) -> GatewayError:
        """``cls(...)``, or its :class:`ChaincodeError` variant when ``message``
        or a peer's detail carries a chaincode error code."""
        info = parse_chaincode_error(message, details)
        variant = _CHAINCODE_VARIANTS.get(cls)
        if info is None or variant is None:
            return cls(message, tx_id=tx_id, code=code, details=details)
        return variant(message, info, tx_id=tx_id, code=code, details=details)

    @classmethod
    def from_rpc_error(cls, exc: grpc.RpcError, tx_id: str = "") -> GatewayError:
        """Build the error from a failed call (see :meth:`build`); the caller raises it ``from exc``."""
        code, message, details = parse_rpc_error(exc)
        return cls.build(message, tx_id=tx_id, code=code, details=details)


class ChaincodeError(GatewayError):
    """The chaincode refused the request with a stable error code.

    Never raised bare: the stage variants below are what :class:`Contract`
    raises. ``chaincode`` is the parsed :class:`ChaincodeInfo`; the gRPC
    ``code``, ``message``, ``details`` and ``tx_id`` are those of the stage error.
    """

    def __init__(
        self,
        message: str,
        chaincode: ChaincodeInfo,
        *,
        tx_id: str = "",
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        details: tuple[ErrorDetail, ...] = (),
    ) -> None:
        self.chaincode = chaincode
        super().__init__(message, tx_id=tx_id, code=code, details=details)


class EvaluateError(GatewayError):
    """Evaluating (querying) a transaction failed, e.g. chaincode returned an error."""

    stage = "evaluate"


class EndorseError(GatewayError):
    """Endorsing a proposal failed, or the Gateway returned an unusable prepared transaction."""

    stage = "endorse"


class EvaluateChaincodeError(ChaincodeError, EvaluateError):
    """The chaincode refused an evaluation (an :class:`EvaluateError` and a :class:`ChaincodeError`)."""


class EndorseChaincodeError(ChaincodeError, EndorseError):
    """The chaincode refused to endorse (an :class:`EndorseError` and a :class:`ChaincodeError`)."""


_CHAINCODE_VARIANTS: dict[type[GatewayError], type[ChaincodeError]] = {
    EvaluateError: EvaluateChaincodeError,
    EndorseError: EndorseChaincodeError,
}


class SubmitError(GatewayError):
    """Submitting the signed, endorsed transaction to the orderers failed."""

    stage = "submit"


class CommitStatusError(GatewayError):
    """Obtaining the commit status of a submitted transaction failed (it may still commit)."""

    stage = "commit status"


class ChaincodeEventsError(GatewayError):
    """The chaincode event stream failed (opening it or while reading it)."""

    stage = "chaincode events"


class CommitError(LedgerError):
    """The transaction was ordered into a block but marked invalid by the peers."""

    def __init__(self, tx_id: str, validation_code: int, block_number: int) -> None:
        self.tx_id = tx_id
        self.validation_code = validation_code
        self.name = validation_code_name(validation_code)
        self.block_number = block_number
        super().__init__(
            f"transaction {tx_id} failed to commit in block {block_number}: "
            f"validation code {validation_code} ({self.name})"
        )


def validation_code_name(code: int) -> str:
    """Name of a ``protos.TxValidationCode`` value (``UNKNOWN_<n>`` if not in the enum)."""
    try:
        return cast(str, transaction_pb2.TxValidationCode.Name(code))
    except ValueError:
        return f"UNKNOWN_{code}"


def _declared_status_class() -> type[Message]:
    """``google.rpc.Status`` declared in a private pool (no googleapis protos installed)."""
    pool = descriptor_pool.DescriptorPool()
    any_file = descriptor_pb2.FileDescriptorProto()
    any_pb2.DESCRIPTOR.CopyToProto(any_file)
    pool.Add(any_file)
    status_file = descriptor_pb2.FileDescriptorProto(
        name="google/rpc/status.proto",
        package="google.rpc",
        dependency=["google/protobuf/any.proto"],
        syntax="proto3",
    )
    msg = status_file.message_type.add(name="Status")
    fdp = descriptor_pb2.FieldDescriptorProto
    msg.field.add(name="code", number=1, type=fdp.TYPE_INT32, label=fdp.LABEL_OPTIONAL)
    msg.field.add(name="message", number=2, type=fdp.TYPE_STRING, label=fdp.LABEL_OPTIONAL)
    msg.field.add(
        name="details", number=3, type=fdp.TYPE_MESSAGE, label=fdp.LABEL_REPEATED,
        type_name=".google.protobuf.Any",
    )
    pool.Add(status_file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


def _status_class() -> type[Message]:
    try:
        from google.rpc import status_pb2  # type: ignore[import-not-found, unused-ignore]

        return cast(type[Message], status_pb2.Status)
    except ImportError:
        return _declared_status_class()


RpcStatus: type[Message] = _status_class()
"""The ``google.rpc.Status`` message class (installed or privately declared)."""


def encode_status(code: grpc.StatusCode, message: str, details: tuple[ErrorDetail, ...]) -> bytes:
    """Serialize a rich status with ``gateway.ErrorDetail`` entries (used by the fake server)."""
    status: Any = RpcStatus(code=code.value[0], message=message)
    for d in details:
        proto = gateway_pb2.ErrorDetail(address=d.address, msp_id=d.msp_id, message=d.message)
        status.details.add(
            type_url=f"type.googleapis.com/{_ERROR_DETAIL_TYPE}", value=proto.SerializeToString()
        )
    return cast(bytes, status.SerializeToString())


def decode_status_details(raw: bytes) -> tuple[ErrorDetail, ...]:
    """Per-peer details from a serialized ``google.rpc.Status``; ``()`` if unparseable."""
    try:
        status: Any = RpcStatus.FromString(raw)
    except DecodeError:
        return ()
    out: list[ErrorDetail] = []
    for item in status.details:
        if item.type_url.rsplit("/", 1)[-1] != _ERROR_DETAIL_TYPE:
            continue
        try:
            d = gateway_pb2.ErrorDetail.FromString(item.value)
        except DecodeError:
            continue
        out.append(ErrorDetail(address=d.address, msp_id=d.msp_id, message=d.message))
    return tuple(out)


def parse_rpc_error(exc: grpc.RpcError) -> tuple[grpc.StatusCode, str, tuple[ErrorDetail, ...]]:
    """Status code, message and per-peer details of a failed gRPC call.

    Works for unary and streaming call errors (both are ``grpc.Call``); objects
    that lack the call interface yield ``UNKNOWN`` and ``str(exc)``.
    """
    call = cast(Any, exc)
    try:
        code = call.code()
        message = call.details() or ""
        trailers = call.trailing_metadata() or ()
    except AttributeError:
        return grpc.StatusCode.UNKNOWN, str(exc), ()
    details: tuple[ErrorDetail, ...] = ()
    for key, value in trailers:
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            details = decode_status_details(value)
    return code or grpc.StatusCode.UNKNOWN, message, details


CHAINCODE_ERROR_CODES = (
    "ACCESS_DENIED", "ALREADY_EXISTS", "NOT_FOUND", "PRECONDITION_FAILED", "INVALID_ARGUMENT", "INTERNAL",
)
"""The stable codes every synthreg chaincode error message starts with (chaincode/README.md)."""

_CHAINCODE_CODE_RE = re.compile(r"\b(" + "|".join(CHAINCODE_ERROR_CODES) + r"): ")


def parse_chaincode_error(message: str, details: tuple[ErrorDetail, ...] = ()) -> ChaincodeInfo | None:
    """The chaincode's verdict in a Gateway status, or None (connection, timeout,
    ordering, policy failure: no chaincode code anywhere).

    The Gateway wraps the chaincode message (``evaluate call to endorser
    returned error: chaincode response 500, ACCESS_DENIED: ...``) in the status
    message and/or in each peer's :class:`ErrorDetail` (``Endorse``: ``failed to
    endorse transaction, see attached details``). The status message is searched
    first, then the details in order; ``detail`` runs from the code to the end of
    that message.
    """
    for text in (message, *(d.message for d in details)):
        match = _CHAINCODE_CODE_RE.search(text)
        if match is not None:
            return ChaincodeInfo(match.group(1), text[match.start():])
    return None

