"""Record a federated training run on the `gan` channel (accountability + audit copies).

Who calls: the single-process reference path (tests,
``bench/services_overhead.py``) through :class:`TrailRecorder.on_round`, once
per merge round, with every registry's pre-average weight vector and the
agreed average; each merger app (:mod:`synthreg.apps.merger`) writes the same
:class:`RoundEntry` for its own registry with :func:`round_key`. For each
registry it:

1. stores the weight vector and the average in that registry's own workspace
   as :func:`synthreg.data.hashing.array_bytes` (float32, little endian), so
   their names there are their :func:`~synthreg.data.hashing.array_sha256`;
2. on audited rounds, encrypts the weight vector under the consortium's CKKS
   audit public key and stores the ciphertext in the workspace;
3. submits ``PutRecord("run/<id>/round/<r>/<MSP>", {hashes})`` signed by that
   registry's *merger* identity, so each registry is accountable for its own
   contribution. Only hashes go on the ledger.

Where data lives: weights and ciphertexts in the registries' workspaces; the
hashes, sizes and the run's configuration on the ledger.

What fails when: the chaincode binds these keys (chaincode/README.md "Record
keys"): ``round_key(run, r, msp)`` is written only by ``msp``'s apps, and
``run_key(run)`` only by the merger of the org that opened the run (the
proposer of its run document, else the first participant of its aggregation),
once the run is proposed or its aggregation opened (else ``PRECONDITION_FAILED``);
a run id may not contain a ``/round/`` segment.

The averages themselves are agreed by secure aggregation over the ledger
(DESIGN.md §4); this record ties each registry's update, its audit copy and the
agreed average together for the auditor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthreg.crypto.ckks import PublicContext, encrypt_vector
from synthreg.data.hashing import array_bytes
from synthreg.ledger import Contract
from synthreg.workspace import Workspace


def run_key(run_id: str) -> str:
    return f"run/{run_id}"


def round_key(run_id: str, rnd: int, msp_id: str) -> str:
    return f"run/{run_id}/round/{rnd}/{msp_id}"


@dataclass(frozen=True)
class RoundEntry:
    """What one registry recorded for one round (the ledger record's value)."""

    round: int
    msp_id: str
    n_params: int
    weights_sha256: str
    average_sha256: str
    audit_ct_sha256: str | None

    def to_json(self) -> str:
        return json.dumps({
            "round": self.round, "msp": self.msp_id, "n_params": self.n_params,
            "weights_sha256": self.weights_sha256, "average_sha256": self.average_sha256,
            "audit_ct_sha256": self.audit_ct_sha256,
        }, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any]) -> RoundEntry:
        """From the record's value (the ledger returns it as a JSON object)."""
        d = text if isinstance(text, dict) else json.loads(text)
        return cls(int(d["round"]), str(d["msp"]), int(d["n_params"]), str(d["weights_sha256"]),
                   str(d["average_sha256"]), d.get("audit_ct_sha256"))


@dataclass
class TrailRecorder:
    """Records one run. ``contracts[msp]`` is a ganledger Contract signing as that
    registry's merger; ``workspaces[msp]`` that registry's workspace."""

    run_id: str
    msp_ids: Sequence[str]
    contracts: Mapping[str, Contract]
    workspaces: Mapping[str, Workspace]
    audit_public: PublicContext
    audit_rounds: set[int]
    entries: list[RoundEntry] = field(default_factory=list)
    tx_ids: list[str] = field(default_factory=list)
    ciphertext_source: Callable[[int, str], bytes | None] | None = None
    """Where audit ciphertexts already made this round come from (e.g. the ones
    submitted with secure aggregation, so the ledger and the workspace hold the
    same bytes); when it returns None the recorder encrypts itself."""

    def record_run(self, info: Mapping[str, object]) -> str:
        """The run's header (schema hash, config, registries), by the first registry's
        merger: the run must already have a run document proposed by it or an
        aggregation whose first participant it is (the chaincode refuses otherwise)."""
        value = json.dumps({**info, "registries": list(self.msp_ids),
                            "audit_rounds": sorted(self.audit_rounds)}, sort_keys=True)
        res = self.contracts[self.msp_ids[0]].submit("PutRecord", run_key(self.run_id), value)
        self.tx_ids.append(res.tx_id)
        return res.tx_id

    def on_round(self, rnd: int, vectors: Sequence[np.ndarray], average: np.ndarray) -> None:
        if len(vectors) != len(self.msp_ids):
            raise ValueError(f"{len(vectors)} weight vectors for {len(self.msp_ids)} registries")
        avg_bytes = array_bytes(average)
        entries = []
        for msp, vec in zip(self.msp_ids, vectors, strict=True):
            ws = self.workspaces[msp]
            w_hash = ws.put(array_bytes(vec))
            a_hash = ws.put(avg_bytes)
            ct_hash = None
            if rnd in self.audit_rounds:
                ct = self.ciphertext_source(rnd, msp) if self.ciphertext_source is not None else None
                if ct is None:
                    ct = encrypt_vector(self.audit_public, vec.astype(np.float64)).to_bytes()
                ct_hash = ws.put(ct)
            entries.append(RoundEntry(rnd, msp, int(vec.size), w_hash, a_hash, ct_hash))

        def submit(entry: RoundEntry) -> str:
            key = round_key(self.run_id, rnd, entry.msp_id)
            return self.contracts[entry.msp_id].submit("PutRecord", key, entry.to_json()).tx_id

        # each registry submits its own record, concurrently (one Gateway each)
        with ThreadPoolExecutor(max_workers=len(entries)) as pool:
            tx_ids = list(pool.map(submit, entries))
        self.entries.extend(entries)
        self.tx_ids.extend(tx_ids)
