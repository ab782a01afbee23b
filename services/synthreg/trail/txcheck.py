"""The auditor's check of the transactions behind ledger records (issue 10, attack 5).

Who calls: :func:`synthreg.trail.verify.verify_run` (through
:func:`check_record_transactions`), and tests. The ``msp``/``role`` stamp of a
ganledger record is written by the chaincode that endorsed it; a majority of
registries running modified chaincode could stamp a record with another
registry's name. The key-level endorsement policies (``chaincode/internal/sbe``)
stop them from *changing* a registry's committed key without its peer, not
from *creating* one in its name (creation is validated against the chaincode
policy, MAJORITY). So for every record it reads the auditor fetches the
transaction named by the record's ``txid`` from its own peer (qscc
``GetTransactionByID``) and requires:

* the transaction is VALID;
* its creator (the client that signed it) has the record's MSP and role
  (the role from the certificate's ``synthreg.role`` attribute);
* its write set, in the chaincode's namespace, holds the record's state key;
* it was endorsed by a peer of the owning registry: an endorsement whose
  signature verifies over the proposal response, by a certificate that the
  owning MSP's root CA (from the channel configuration, cscc
  ``GetChannelConfig``) issued with the ``peer`` OU. The committer checked
  only that the endorsements it needed satisfy the policy; an extra,
  unverifiable endorsement would not have invalidated the transaction.

Where data lives: nothing is stored; the peer the auditor's Gateway uses is
trusted for the block contents and the channel configuration.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.msp import identities_pb2, msp_config_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf.message import DecodeError

from synthreg.ledger import Contract, EvaluateError, Network, cert_attributes
from synthreg.ledger.identity import ROLE_ATTRIBUTE
from synthreg.trail.record import round_key, run_key

__all__ = [
    "EndorsementFacts",
    "RecordChecker",
    "RecordRef",
    "TxChecker",
    "TxFacts",
    "check_record_transactions",
    "composite_key",
    "parse_processed_transaction",
    "record_state_key",
    "step_state_key",
]

NAMESPACE = "ganledger"
VALID = transaction_pb2.TxValidationCode.VALID


def composite_key(object_type: str, *attrs: str) -> str:
    """The chaincode's ``CreateCompositeKey``: ``\\0type\\0attr1\\0...attrN\\0``."""
    return "\x00" + object_type + "\x00" + "".join(a + "\x00" for a in attrs)


def record_state_key(key: str) -> str:
    """The state key of a ``PutRecord`` record (``ganledger/contract.go`` objRecord)."""
    return composite_key("record", key)


def step_state_key(obj: str, run: str, msp: str, rnd: int, it: int) -> str:
    """The state key of a step record (``step_g`` / ``step_d``, 10-digit round and iter)."""
    return composite_key(obj, run, msp, f"{rnd:010d}", f"{it:010d}")


@dataclass(frozen=True)
class EndorsementFacts:
    msp_id: str
    cert: x509.Certificate | None
    signature_ok: bool


@dataclass(frozen=True)
class TxFacts:
    """What a committed transaction says, decoded from qscc's ``ProcessedTransaction``."""

    tx_id: str
    validation_code: int
    creator_msp: str
    creator_role: str | None
    writes: frozenset[str]
    """keys written (values or metadata) in the checked namespace"""
    endorsements: tuple[EndorsementFacts, ...]
    creator_cert: x509.Certificate | None = None
    """the certificate that signed the transaction (anchored step statements are checked against it)"""

    @property
    def validation_name(self) -> str:
        return str(transaction_pb2.TxValidationCode.Name(self.validation_code))


def _load_cert(pem: bytes) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None


def _endorsement(prp: bytes, e: proposal_response_pb2.Endorsement) -> EndorsementFacts:
    ident = identities_pb2.SerializedIdentity.FromString(e.endorser)
    cert = _load_cert(ident.id_bytes)
    ok = False
    if cert is not None and isinstance(pub := cert.public_key(), ec.EllipticCurvePublicKey):
        try:
            pub.verify(e.signature, prp + e.endorser, ec.ECDSA(hashes.SHA256()))
            ok = True
        except InvalidSignature:
            ok = False
    return EndorsementFacts(ident.mspid, cert, ok)


def parse_processed_transaction(tx_id: str, raw: bytes, namespace: str = NAMESPACE) -> TxFacts:
    """Decode a ``ProcessedTransaction``; raises ``DecodeError``/``ValueError`` when it is
    not an endorser transaction with one chaincode action."""
    processed = transaction_pb2.ProcessedTransaction.FromString(raw)
    payload = common_pb2.Payload.FromString(processed.transactionEnvelope.payload)
    channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    if channel_header.tx_id != tx_id or channel_header.type != common_pb2.ENDORSER_TRANSACTION:
        raise ValueError(f"block holds transaction {channel_header.tx_id!r} of type {channel_header.type}")
    creator = identities_pb2.SerializedIdentity.FromString(
        common_pb2.SignatureHeader.FromString(payload.header.signature_header).creator)
    creator_cert = _load_cert(creator.id_bytes)
    role = cert_attributes(creator_cert).get(ROLE_ATTRIBUTE) if creator_cert is not None else None
    tx = transaction_pb2.Transaction.FromString(payload.data)
    if len(tx.actions) != 1:
        raise ValueError(f"{len(tx.actions)} actions, expected 1")
    action = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload).action
    prp = action.proposal_response_payload
    cc_action = proposal_pb2.ChaincodeAction.FromString(
        proposal_response_pb2.ProposalResponsePayload.FromString(prp).extension)
    writes: set[str] = set()
    for ns in rwset_pb2.TxReadWriteSet.FromString(cc_action.results).ns_rwset:
        if ns.namespace == namespace:
            kv = kv_rwset_pb2.KVRWSet.FromString(ns.rwset)
            writes.update(w.key for w in kv.writes)
            writes.update(w.key for w in kv.metadata_writes)
    return TxFacts(
        tx_id=tx_id,
        validation_code=int(processed.validationCode),
        creator_msp=creator.mspid,
        creator_role=role,
        writes=frozenset(writes),
        endorsements=tuple(_endorsement(prp, e) for e in action.endorsements),
        creator_cert=creator_cert,
    )


def channel_msp_roots(network: Network) -> dict[str, list[x509.Certificate]]:
    """Each application org's root and intermediate CA certificates, from the channel
    configuration on the Gateway's peer (cscc ``GetChannelConfig``)."""
    config = configtx_pb2.Config.FromString(
        network.contract("cscc").evaluate("GetChannelConfig", network.name))
    roots: dict[str, list[x509.Certificate]] = {}
    for name, group in config.channel_group.groups["Application"].groups.items():
        msp = msp_config_pb2.FabricMSPConfig.FromString(
            msp_config_pb2.MSPConfig.FromString(group.values["MSP"].value).config)
        certs = [_load_cert(pem) for pem in [*msp.root_certs, *msp.intermediate_certs]]
        roots[msp.name or name] = [c for c in certs if c is not None]
    return roots


def _issued_by(cert: x509.Certificate, cas: Iterable[x509.Certificate]) -> bool:
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
            return True
        except (ValueError, TypeError, InvalidSignature):
            continue
    return False


def _is_peer(cert: x509.Certificate) -> bool:
    return "peer" in {str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)}


@dataclass(frozen=True)
class RecordRef:
    """A record the auditor read: what it claims and where it lives."""

    what: str
    """how failures name it, e.g. ``round 3 Registry2MSP``"""
    tx_id: str
    state_key: str
    msp: str
    role: str
    owner: str
    """the registry whose peer must have endorsed it"""


class RecordChecker(Protocol):
    """What :func:`check_record_transactions` needs: the failures of one record."""

    def check(self, ref: RecordRef) -> list[str]: ...


@dataclass
class TxChecker:
    """Checks records against their transactions on the Gateway's peer (qscc, cscc)."""

    network: Network
    namespace: str = NAMESPACE
    _roots: dict[str, list[x509.Certificate]] | None = field(default=None, repr=False)

    def roots(self) -> dict[str, list[x509.Certificate]]:
        if self._roots is None:
            self._roots = channel_msp_roots(self.network)
        return self._roots

    def facts(self, tx_id: str) -> TxFacts:
        """Raises :class:`EvaluateError` when the peer holds no such transaction,
        ``DecodeError``/``ValueError`` when it is malformed."""
        raw = self.network.contract("qscc").evaluate("GetTransactionByID", self.network.name, tx_id)
        return parse_processed_transaction(tx_id, raw, self.namespace)

    def endorsed_by_peer_of(self, facts: TxFacts, msp: str) -> bool:
        cas = self.roots().get(msp, [])
        return any(e.msp_id == msp and e.signature_ok and e.cert is not None and _is_peer(e.cert)
                   and _issued_by(e.cert, cas) for e in facts.endorsements)

    def check(self, ref: RecordRef) -> list[str]:
        """The failures of one record (``[]`` when its transaction vouches for it)."""
        try:
            facts = self.facts(ref.tx_id)
        except EvaluateError as exc:
            return [f"{ref.what}: transaction {ref.tx_id} is not on the ledger ({exc.message})"]
        except (DecodeError, ValueError) as exc:
            return [f"{ref.what}: transaction {ref.tx_id} cannot be read: {exc}"]
        failures = []
        if facts.validation_code != VALID:
            failures.append(f"{ref.what}: transaction {ref.tx_id} is {facts.validation_name}, not VALID")
        if (facts.creator_msp, facts.creator_role) != (ref.msp, ref.role):
            failures.append(f"{ref.what}: stamped {ref.msp}/{ref.role}, but transaction {ref.tx_id} was "
                            f"created by {facts.creator_msp}/{facts.creator_role}")
        if ref.state_key not in facts.writes:
            failures.append(f"{ref.what}: transaction {ref.tx_id} does not write the record's key")
        if not self.endorsed_by_peer_of(facts, ref.owner):
            endorsers = sorted({e.msp_id for e in facts.endorsements})
            failures.append(f"{ref.what}: transaction {ref.tx_id} was not endorsed by a peer of {ref.owner} "
                            f"(endorsers {', '.join(endorsers) or 'none'})")
        return failures


def _record_ref(contract: Contract, what: str, key: str, owner: str | None = None) -> RecordRef | None:
    try:
        rec = json.loads(contract.evaluate("GetRecord", key))
    except EvaluateError:
        return None  # a missing record is verify_run's failure
    msp = str(rec.get("msp"))
    return RecordRef(what, str(rec.get("txid")), record_state_key(key), msp, str(rec.get("role")), owner or msp)


def _step_refs(contract: Contract, run_id: str, msp: str, rnd: int, it: int) -> list[RecordRef]:
    try:
        step = json.loads(contract.evaluate("GetStep", run_id, msp, str(rnd), str(it)))
    except EvaluateError:
        return []
    refs = []
    for side, obj in (("generator", "step_g"), ("discriminator", "step_d")):
        rec = step.get(side)
        if rec:
            refs.append(RecordRef(f"{msp} round {rnd} iter {it} {side} step", str(rec.get("txid")),
                                  step_state_key(obj, run_id, msp, rnd, it), str(rec.get("msp")),
                                  str(rec.get("role")), msp))
    return refs


def _fault_refs(contract: Contract, run_id: str, msp: str) -> list[RecordRef]:
    try:
        faults = json.loads(contract.evaluate("ListFaults", run_id, msp))
    except EvaluateError:
        return []
    return [RecordRef(f"{msp} fault {f.get('txid')}", str(f.get("txid")),
                      composite_key("step_fault", run_id, msp, str(f.get("txid"))), str(f.get("msp")),
                      str(f.get("role")), msp) for f in faults]


def check_record_transactions(contract: Contract, run_id: str, msps: Sequence[str], rounds: int,
                              step_rounds: Iterable[int] = (), local_iters: int = 0,
                              checker: RecordChecker | None = None) -> tuple[int, list[str]]:
    """Check the transactions of run ``run_id``'s header, of every registry's round
    records of rounds ``0..rounds-1``, and, for runs with step records
    (``local_iters`` > 0), of the step records of ``step_rounds`` and of every
    recorded fault (a forged fault would frame its registry) that the ledger
    holds. A round, step or fault record must be endorsed by a peer of the
    registry it is keyed by, the header by a peer of the registry that wrote it. Returns (records checked,
    failures); absent records are not this check's failures."""
    refs: list[RecordRef] = []
    if (header := _record_ref(contract, "run header", run_key(run_id))) is not None:
        refs.append(header)
    for rnd in range(rounds):
        for msp in msps:
            if (ref := _record_ref(contract, f"round {rnd} {msp}", round_key(run_id, rnd, msp), msp)) is not None:
                refs.append(ref)
    for rnd in step_rounds:
        for msp in msps:
            for it in range(local_iters):
                refs.extend(_step_refs(contract, run_id, msp, rnd, it))
    if local_iters:
        for msp in msps:
            refs.extend(_fault_refs(contract, run_id, msp))
    checker = checker or TxChecker(contract.network)
    failures = [f for ref in refs for f in checker.check(ref)]
    return len(refs), failures
