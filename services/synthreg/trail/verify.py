"""The auditor's check of a recorded training run (DESIGN.md §5, last bullet).

Who calls: ``synthreg demo`` and ``synthreg audit verify`` after unsealing, with a
ganledger Contract readable by the auditor, the unsealed CKKS secret context
and the registries' workspaces it was given. For every round and registry it:

* reads the ledger record (the source of truth) and checks that the workspace
  artefacts hash to what was recorded (a tampered artefact is named);
* checks that all registries recorded the same average;
* for runs averaged by secure aggregation over the ledger (header
  ``averaging`` starting with ``secagg``), checks that each round was frozen
  with at least t registries surviving (t of n: a registry left out of a
  round, e.g. while its peer was down, is listed in ``missed`` and must have
  no entry for it; every survivor must have one), that t survivors agreed,
  and that the hash they agreed on is the recorded average, and on audited
  rounds that each survivor's submission carried the audit ciphertext it
  recorded;
* for runs with per-iteration step records (header ``step_records`` =
  ``ledger``), checks that every registry completed its last step without a
  recorded fault, and on audited rounds that each survivor's step records
  agree and the kept fake batches and feedback match their ledger hashes;
* on audited rounds, sums the survivors' CKKS ciphertexts homomorphically,
  decrypts the sum, divides by |U| and checks it equals the recorded average
  within ``tolerance`` (1e-6), and that each decrypted update equals the
  plaintext snapshot its registry stored.

Returns a :class:`TrailReport`; raises nothing for a failed check — failures
are listed, so an auditor sees all of them at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthreg.crypto.ckks import EncryptedVector, PublicContext, SecretContext, decrypt, sum_vectors
from synthreg.gan.stoprule import StopRule
from synthreg.ledger import Contract, EvaluateError
from synthreg.trail.record import RoundEntry, round_key, run_key
from synthreg.workspace import Workspace, WorkspaceError


@dataclass
class TrailReport:
    run_id: str
    rounds_checked: int = 0
    records_checked: int = 0
    audited_rounds: list[int] = field(default_factory=list)
    secagg_rounds_checked: int = 0
    steps_checked: int = 0
    max_abs_error: float = 0.0
    failures: list[str] = field(default_factory=list)
    missed: dict[str, list[int]] = field(default_factory=dict)
    """registry -> rounds it was left out of (t of n), from the ledger's survivors"""

    @property
    def ok(self) -> bool:
        return not self.failures and self.records_checked > 0

    def to_dict(self) -> dict[str, object]:
        return {"run_id": self.run_id, "ok": self.ok, "rounds_checked": self.rounds_checked,
                "records_checked": self.records_checked, "audited_rounds": self.audited_rounds,
                "secagg_rounds_checked": self.secagg_rounds_checked,
                "steps_checked": self.steps_checked, "max_abs_error": self.max_abs_error,
                "missed": self.missed, "failures": self.failures}


def _value(record: dict[str, Any]) -> dict[str, Any]:
    """A ganledger record's value (a JSON object; tolerate a JSON string)."""
    value = record["value"]
    return value if isinstance(value, dict) else json.loads(value)


def _vec(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").astype(np.float64)


def verify_run(
    run_id: str,
    contract: Contract,
    secret: SecretContext,
    public: PublicContext,
    workspaces: Mapping[str, Workspace],
    rounds: int | None = None,
    tolerance: float = 1e-6,
) -> TrailReport:
    """Check run ``run_id``; ``rounds`` defaults to the rounds the run trained: its
    budget, or for a run agreed with a ``loss_plateau`` stop rule the round the rule
    stops at, recomputed from the recorded losses (so an early stop must be the
    rule's, and every registry's last step must be that round's).

    Raises :class:`~synthreg.ledger.EvaluateError` if the run header is not on the ledger.
    """
    rep = TrailReport(run_id)
    header = _value(json.loads(contract.evaluate("GetRecord", run_key(run_id))))
    _check_against_agreed_run(rep, contract, run_id, header)
    if rounds is None:
        rounds = int(header["config"]["rounds"])
        rule = StopRule.parse(header.get("stop_rule") or {"kind": "budget"})
        if rule.kind != "budget":
            try:
                rounds = rounds_trained(contract, run_id, list(header["registries"]), rounds,
                                         int(header["config"]["local_iters"]), rule)
            except (EvaluateError, KeyError, TypeError) as exc:
                rep.failures.append(f"the stop rule cannot be recomputed from the step records: {exc}")
    missing = [m for m in header["registries"] if m not in workspaces]
    if missing:
        rep.failures.append(f"no workspace given for {', '.join(missing)}")
        return rep
    msps: list[str] = list(header["registries"])
    audit_rounds = set(int(r) for r in header.get("audit_rounds", []))
    secagg = str(header.get("averaging", "")).startswith("secagg")
    last_in: dict[str, int] = {}
    for rnd in range(rounds):
        entries: dict[str, RoundEntry] = {}
        expected = _survivors(rep, contract, run_id, rnd, msps) if secagg else msps
        for msp in msps:
            if msp not in expected:
                rep.missed.setdefault(msp, []).append(rnd)
            else:
                last_in[msp] = rnd
        for msp in msps:
            try:
                rec = json.loads(contract.evaluate("GetRecord", round_key(run_id, rnd, msp)))
            except EvaluateError as exc:
                if msp in expected:
                    rep.failures.append(f"round {rnd} {msp}: no ledger record ({exc.message})")
                continue
            if msp not in expected:
                rep.failures.append(f"round {rnd} {msp}: recorded an update for a round it was left out of")
                continue
            if rec["msp"] != msp or rec["role"] != "merger":
                rep.failures.append(f"round {rnd} {msp}: recorded by {rec['msp']}/{rec['role']}, not its merger")
            entries[msp] = RoundEntry.from_json(_value(rec))
            rep.records_checked += 1
        if len(entries) != len(expected):
            continue
        averages = {e.average_sha256 for e in entries.values()}
        if len(averages) != 1:
            rep.failures.append(f"round {rnd}: registries disagree on the average ({len(averages)} hashes)")
            continue
        if secagg:
            _check_secagg_round(rep, contract, run_id, rnd, expected, next(iter(averages)),
                                entries if rnd in audit_rounds else None)
        try:
            avg = _vec(workspaces[msps[0]].get(next(iter(averages))))
            snapshots = {m: _vec(workspaces[m].get(e.weights_sha256)) for m, e in entries.items()}
            cts = {m: workspaces[m].get(e.audit_ct_sha256) for m, e in entries.items()
                   if e.audit_ct_sha256 is not None}
        except WorkspaceError as exc:
            rep.failures.append(f"round {rnd}: {exc}")
            continue
        plain_mean = np.mean(np.stack(list(snapshots.values())), axis=0)
        if not np.allclose(plain_mean, avg, atol=tolerance, rtol=0):
            rep.failures.append(f"round {rnd}: recorded average is not the mean of the recorded updates")
        if rnd in audit_rounds:
            if len(cts) != len(expected):
                rep.failures.append(f"round {rnd}: audit round without every survivor's ciphertext")
            else:
                enc = {m: EncryptedVector.from_bytes(public, c) for m, c in cts.items()}
                for m, e in enc.items():
                    err = float(np.max(np.abs(decrypt(secret, e) - snapshots[m])))
                    rep.max_abs_error = max(rep.max_abs_error, err)
                    if err > tolerance:
                        rep.failures.append(f"round {rnd} {m}: audit ciphertext does not match its update "
                                            f"(max error {err:.2e})")
                mean = decrypt(secret, sum_vectors(enc.values())) / len(enc)
                err = float(np.max(np.abs(mean - avg)))
                rep.max_abs_error = max(rep.max_abs_error, err)
                if err > tolerance:
                    rep.failures.append(f"round {rnd}: decrypted mean differs from the agreed average "
                                        f"(max error {err:.2e} > {tolerance})")
                rep.audited_rounds.append(rnd)
        rep.rounds_checked += 1
    if header.get("step_records") == "ledger":
        _check_steps(rep, contract, run_id, msps, rounds, int(header["config"]["local_iters"]),
                     sorted(audit_rounds), workspaces, last_in)
    return rep


def _check_against_agreed_run(rep: TrailReport, contract: Contract, run_id: str, header: dict[str, Any]) -> None:
    """For a run agreed on the ledger (``GetRun``), the expected registries, audited
    rounds and config are the ones every participant approved: the header a merger
    wrote must say the same, or the check names the difference and the approved
    values are used."""
    try:
        doc = json.loads(contract.evaluate("GetRun", run_id))
    except EvaluateError:
        return  # a run recorded before runs were agreed on the ledger: only its header
    spec = json.loads(doc["spec_json"])
    if doc.get("status") not in ("started", "aborted"):
        rep.failures.append(f"run {run_id} was never started (status {doc.get('status')})")
    expected = {"registries": list(spec["participants"]), "audit_rounds": list(spec["audit_rounds"]),
                "schema_sha256": spec["schema_sha256"]}
    for key, value in expected.items():
        if header.get(key) != value:
            rep.failures.append(f"run header {key} {header.get(key)!r} differs from the approved run's {value!r}")
        header[key] = value
    header["config"] = {**header.get("config", {}), "rounds": spec["rounds"], "local_iters": spec["local_iters"]}
    header["stop_rule"] = spec.get("stop_rule", {"kind": "budget"})


def rounds_trained(contract: Contract, run_id: str, msps: list[str], budget: int, local_iters: int,
                    rule: StopRule) -> int:
    """How many rounds the stop rule lets the run train, recomputed from the generator
    losses the discriminators recorded (what every app decided on)."""
    cache: dict[int, float] = {}

    def mean_g_loss(rnd: int) -> float:
        if rnd not in cache:
            per = []
            try:  # over the round's survivors, as the apps decide (Apps.mean_g_loss)
                survivors = json.loads(contract.evaluate("GetRound", run_id, str(rnd))).get("survivors") or msps
            except EvaluateError:
                survivors = msps
            for msp in sorted(survivors):
                losses = [json.loads(contract.evaluate("GetStep", run_id, msp, str(rnd), str(it)))
                          ["discriminator"]["g_loss"] for it in range(local_iters)]
                per.append(float(np.mean(losses)))
            cache[rnd] = float(np.mean(per))
        return cache[rnd]

    for rnd in range(budget - 1):
        if rule.stops_after(rnd, mean_g_loss):
            return rnd + 1
    return budget


def _survivors(rep: TrailReport, contract: Contract, run_id: str, rnd: int, msps: list[str]) -> list[str]:
    """The registries whose update is in round ``rnd``'s average (U of its
    secure-aggregation round); all of ``msps`` when the round is not on the
    ledger (that failure is reported by :func:`_check_secagg_round`)."""
    try:
        state = json.loads(contract.evaluate("GetRound", run_id, str(rnd)))
    except EvaluateError:
        return msps
    survivors = [m for m in state.get("survivors", []) if m in msps]
    return survivors or msps


def _check_secagg_round(rep: TrailReport, contract: Contract, run_id: str, rnd: int,
                        msps: list[str], average_sha256: str,
                        audited: Mapping[str, RoundEntry] | None) -> None:
    """The ledger's secure-aggregation round agrees with the recorded average;
    on audited rounds each submission carried the audit ciphertext recorded."""
    try:
        state = json.loads(contract.evaluate("GetRound", run_id, str(rnd)))
    except EvaluateError as exc:
        rep.failures.append(f"round {rnd}: no secure-aggregation round on the ledger ({exc.message})")
        return
    if state.get("status") != "frozen" or state.get("agreed") is not True:
        rep.failures.append(f"round {rnd}: secure aggregation not concluded "
                            f"(status {state.get('status')}, agreed {state.get('agreed')})")
    elif sorted(state.get("survivors", [])) != sorted(msps):
        rep.failures.append(f"round {rnd}: secure aggregation survivors {state.get('survivors')} "
                            f"are not the registries that recorded the round {msps}")
    elif state.get("average_sha256") != average_sha256:
        rep.failures.append(f"round {rnd}: the average agreed by secure aggregation is not the recorded average")
    else:
        rep.secagg_rounds_checked += 1
    for msp, entry in (audited or {}).items():
        submitted = state.get("submissions", {}).get(msp, {}).get("audit_sha256")
        if submitted != entry.audit_ct_sha256:
            rep.failures.append(f"round {rnd} {msp}: the audit ciphertext submitted with secure aggregation "
                                f"({submitted or 'none'}) is not the one recorded ({entry.audit_ct_sha256})")


def _check_steps(rep: TrailReport, contract: Contract, run_id: str, msps: list[str], rounds: int,
                 local_iters: int, audit_rounds: list[int], workspaces: Mapping[str, Workspace],
                 last_in: Mapping[str, int]) -> None:
    """Per-iteration step records (DESIGN.md §3): every registry completed its
    last step (of the last round, or of a later round than the last one it was
    a survivor of, when it was left out of the final rounds) and recorded no
    fault; on audited rounds every survivor's step records agree on the fake
    batch, and the batch and the feedback kept in the workspace match their
    ledger hashes."""
    for msp in msps:
        try:
            head = json.loads(contract.evaluate("GetStepHead", run_id, msp))
            faults = json.loads(contract.evaluate("ListFaults", run_id, msp))
        except EvaluateError as exc:
            rep.failures.append(f"{msp}: no step records on the ledger ({exc.message})")
            continue
        lowest = last_in.get(msp, rounds - 1)
        if not (lowest <= int(head.get("round", -1)) <= rounds - 1) or head.get("iter") != local_iters - 1 \
                or head.get("phase") == "g":
            want = f"round {rounds - 1}" if lowest == rounds - 1 else f"a round in {lowest}..{rounds - 1}"
            rep.failures.append(f"{msp}: last recorded step is round {head.get('round')} iter {head.get('iter')} "
                                f"({head.get('phase')}), expected {want} iter {local_iters - 1} completed")
        for f in faults:
            rep.failures.append(f"{msp}: step fault in round {f.get('round')} iter {f.get('iter')}: {f.get('kind')}")
        for rnd in audit_rounds:
            if rnd in rep.missed.get(msp, []):
                continue
            for it in range(local_iters):
                try:
                    step = json.loads(contract.evaluate("GetStep", run_id, msp, str(rnd), str(it)))
                except EvaluateError as exc:
                    rep.failures.append(f"{msp} round {rnd} iter {it}: no step record ({exc.message})")
                    continue
                g, d = step.get("generator"), step.get("discriminator")
                if not g or not d or d["fake_sha256"] != g["fake_sha256"]:
                    rep.failures.append(f"{msp} round {rnd} iter {it}: incomplete or inconsistent step records")
                    continue
                try:
                    workspaces[msp].get(g["fake_sha256"])
                    workspaces[msp].get(d["feedback_sha256"])
                except WorkspaceError as exc:
                    rep.failures.append(f"{msp} round {rnd} iter {it}: {exc}")
                    continue
                rep.steps_checked += 1
