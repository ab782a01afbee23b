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
* checks that each record read was written by a VALID transaction of the
  registry and role it is stamped with, holding its key, endorsed by the
  owning registry's peer (:mod:`synthreg.trail.txcheck`);
* on audited rounds, sums the survivors' CKKS ciphertexts homomorphically,
  decrypts the sum, divides by |U| and checks it equals the recorded average
  within ``tolerance`` (1e-6), and that each decrypted update equals the
  plaintext snapshot its registry stored;
* for runs with a privacy budget (``dp_epsilon`` in the config, issue 12),
  trains only the rounds the budget allows and checks each registry's recorded
  privacy spend against the run config and its recorded steps
  (:func:`check_privacy`: Opacus's accountant recomputes every epsilon);
* checks the update bound of the run (``max_update_norm``; issue 10, attack 2,
  :mod:`synthreg.gan.bound`): on audited rounds each decrypted audit copy must
  lie within the bound of the previous agreed average (round 0: the initial
  weights built from the run's schema, model config and seed), else the
  registry is named as one that did not clip; on every round the recorded
  average must too.

What the run is — its registries, rounds and audited rounds — comes from the
run agreed on the ledger (``GetRun``), else from the caller (``registries``,
``rounds``, ``audited``), else from the aggregation (``GetAggregation``);
the header ``run/<id>`` is only a claim, checked against them: it must be
written by the merger of the org that opened the run, name the same
registries and audited rounds, and may not hide what the ledger holds
(secure-aggregation rounds, step records, audit ciphertexts, rounds beyond
its count). A verification that checks no round (or, where the ledger holds
them, no secure-aggregation round or no audited step) fails.

Returns a :class:`TrailReport`; raises nothing for a failed check — failures
are listed, so an auditor sees all of them at once.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthreg.chain.anchor import StatementError, StatementStore, merkle_root, verify_statement
from synthreg.chain.runs import training_fields
from synthreg.crypto.ckks import EncryptedVector, PublicContext, SecretContext, decrypt, sum_vectors
from synthreg.data.schema import Schema
from synthreg.gan.accountant import ACCOUNTANT
from synthreg.gan.bound import UpdateBoundError, check_bound, initial_vector
from synthreg.gan.config import TrainConfig
from synthreg.gan.encoder import TabularEncoder
from synthreg.gan.stoprule import StopRule
from synthreg.ledger import Contract, EvaluateError, evaluate_or_none
from synthreg.trail.record import RoundEntry, round_key, run_key
from synthreg.trail.txcheck import RecordChecker, TxChecker, check_record_transactions
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
    epsilon: dict[str, float] = field(default_factory=dict)
    """registry -> epsilon its discriminator spent (recomputed; DP runs only)"""

    @property
    def ok(self) -> bool:
        return not self.failures and self.records_checked > 0 and self.rounds_checked > 0

    def to_dict(self) -> dict[str, object]:
        return {"run_id": self.run_id, "ok": self.ok, "rounds_checked": self.rounds_checked,
                "records_checked": self.records_checked, "audited_rounds": self.audited_rounds,
                "secagg_rounds_checked": self.secagg_rounds_checked,
                "steps_checked": self.steps_checked, "max_abs_error": self.max_abs_error,
                "missed": self.missed, "epsilon": self.epsilon, "failures": self.failures}


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
    *,
    registries: Sequence[str] | None = None,
    audited: Collection[int] | None = None,
    tx_checker: RecordChecker | None = None,
) -> TrailReport:
    """Check run ``run_id``; ``rounds`` defaults to the rounds the run trained: its
    budget, or for a run agreed with a ``loss_plateau`` stop rule the round the rule
    stops at, recomputed from the recorded losses (so an early stop must be the
    rule's, and every registry's last step must be that round's). ``registries``
    and ``audited`` (rounds) are what the auditor expects, needed for a run without a
    run document (else taken from its aggregation, or failing that the header).
    ``tx_checker`` checks each record's transaction (default: qscc on the
    contract's network, :class:`~synthreg.trail.txcheck.TxChecker`).

    Raises :class:`~synthreg.ledger.EvaluateError` if the run header is not on the ledger.
    """
    rep = TrailReport(run_id)
    record = json.loads(contract.evaluate("GetRecord", run_key(run_id)))
    header = _value(record)
    agreed = _check_header(rep, contract, run_id, record, header, registries, audited)
    dp_config = _dp_config(rep, contract, run_id, header)
    if rounds is None:
        rounds = int(header.get("config", {}).get("rounds", 0))
        if dp_config is not None:  # capped by the privacy budget, as every registry's apps cap it
            rounds = min(rounds, dp_config.trained_rounds())
        if not agreed:
            _check_no_round_after(rep, contract, run_id, list(header["registries"]), rounds)
        rule = StopRule.parse(header.get("stop_rule") or {"kind": "budget"})
        if rule.kind != "budget":
            try:
                rounds = rounds_trained(contract, run_id, list(header["registries"]), rounds,
                                         int(header["config"]["local_iters"]), rule,
                                         anchored=header.get("step_records") == "anchored")
            except (EvaluateError, KeyError, TypeError) as exc:
                rep.failures.append(f"the stop rule cannot be recomputed from the step records: {exc}")
    missing = [m for m in header["registries"] if m not in workspaces]
    if missing:
        rep.failures.append(f"no workspace given for {', '.join(missing)}")
        return rep
    msps: list[str] = list(header["registries"])
    audit_rounds = set(int(r) for r in header.get("audit_rounds", []))
    bound, initial = _update_bound(rep, contract, run_id, header)
    agreed_avgs: dict[int, np.ndarray] = {-1: initial} if initial is not None else {}
    secagg = str(header.get("averaging", "")).startswith("secagg")
    last_in: dict[str, int] = {}
    for rnd in range(rounds):
        entries: dict[str, RoundEntry] = {}
        state, why_absent = _round_state(contract, run_id, rnd) if secagg else (None, "")
        expected = _survivors(state, msps) if secagg else msps
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
        if rnd not in audit_rounds and any(e.audit_ct_sha256 for e in entries.values()):
            rep.failures.append(f"round {rnd}: audit ciphertexts were recorded but the round is not among "
                                f"the audited rounds {sorted(audit_rounds)}")
            audit_rounds.add(rnd)
        averages = {e.average_sha256 for e in entries.values()}
        if len(averages) != 1:
            rep.failures.append(f"round {rnd}: registries disagree on the average ({len(averages)} hashes)")
            continue
        if secagg:
            _check_secagg_round(rep, state, why_absent, rnd, expected, next(iter(averages)),
                                entries if rnd in audit_rounds else None)
        try:
            avg = _vec(workspaces[msps[0]].get(next(iter(averages))))
            snapshots = {m: _vec(workspaces[m].get(e.weights_sha256)) for m, e in entries.items()}
            cts = {m: workspaces[m].get(e.audit_ct_sha256) for m, e in entries.items()
                   if e.audit_ct_sha256 is not None}
        except WorkspaceError as exc:
            rep.failures.append(f"round {rnd}: {exc}")
            continue
        agreed_avgs[rnd] = avg
        decrypted: dict[str, np.ndarray] = {}
        plain_mean = np.mean(np.stack(list(snapshots.values())), axis=0)
        if not np.allclose(plain_mean, avg, atol=tolerance, rtol=0):
            rep.failures.append(f"round {rnd}: recorded average is not the mean of the recorded updates")
        if rnd in audit_rounds:
            if len(cts) != len(expected):
                rep.failures.append(f"round {rnd}: audit round without every survivor's ciphertext")
            else:
                enc = {m: EncryptedVector.from_bytes(public, c) for m, c in cts.items()}
                for m, e in enc.items():
                    decrypted[m] = decrypt(secret, e)
                    err = float(np.max(np.abs(decrypted[m] - snapshots[m])))
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
        _check_update_bound(rep, rnd, bound, agreed_avgs.get(rnd - 1), avg, decrypted, tolerance)
        rep.rounds_checked += 1
    if header.get("step_records") in ("ledger", "anchored"):
        anchored = None
        if header.get("step_records") == "anchored":
            txs = tx_checker if isinstance(tx_checker, TxChecker) else TxChecker(contract.network)
            anchored = AnchoredCheck(run_id, txs)
        _check_steps(rep, contract, run_id, msps, rounds, int(header["config"]["local_iters"]),
                     sorted(audit_rounds), workspaces, last_in, anchored)
    if dp_config is not None:
        rep.epsilon, failures = check_privacy(contract, run_id, dp_config, msps, rounds)
        rep.failures += failures
    rep.failures += _check_transactions(contract, run_id, msps, rounds, sorted(audit_rounds), header, tx_checker)
    if rep.rounds_checked == 0:
        rep.failures.append(f"no round was checked ({rounds} round(s) of {len(msps)} registries expected)")
    if secagg and rep.secagg_rounds_checked == 0:
        rep.failures.append("no secure-aggregation round was checked")
    if header.get("step_records") in ("ledger", "anchored") and audit_rounds and rep.steps_checked == 0:
        rep.failures.append("no step record of an audited round was checked")
    return rep


def _dp_config(rep: TrailReport, contract: Contract, run_id: str, header: Mapping[str, Any]) -> TrainConfig | None:
    """The run's training config when it has a privacy budget: from the run document
    every participant approved, else the header's claim; None without DP."""
    doc = evaluate_or_none(contract, "GetRun", run_id)
    try:
        raw = json.loads(doc["spec_json"])["config"] if doc is not None else header.get("config", {})
        if raw.get("dp_epsilon") is None:
            return None
        return TrainConfig.from_dict(training_fields(raw))
    except (KeyError, TypeError, ValueError) as exc:
        rep.failures.append(f"the privacy budget of run {run_id} cannot be checked: {type(exc).__name__}: {exc}")
        return None


def check_privacy(contract: Contract, run_id: str, config: TrainConfig, msps: Sequence[str],
                  rounds: int) -> tuple[dict[str, float], list[str]]:
    """Issue 12: each registry's recorded privacy spend (``GetPrivacySpend``) per round
    against the run config and its step count. Per registry and round with steps, a
    spend must be recorded by its discriminator, count exactly the discriminator steps
    recorded so far, carry the config's mechanism, hold the epsilon Opacus's RDP
    accountant gives for that count (a tampered epsilon is named) and stay within the
    budget; no step may follow the budget's last round. Returns (registry -> epsilon
    spent, recomputed; failures)."""
    failures: list[str] = []
    spent: dict[str, float] = {}
    want = {"delta": config.dp_delta, "noise_multiplier": config.dp_noise_multiplier,
            "sample_rate": config.dp_sample_rate, "max_grad_norm": config.dp_max_grad_norm, "accountant": ACCOUNTANT}
    for msp in msps:
        steps = 0
        for rnd in range(rounds + 1):
            taken = 0
            for it in range(config.local_iters):
                step = evaluate_or_none(contract, "GetStep", run_id, msp, str(rnd), str(it)) or {}
                taken += bool(step.get("discriminator"))
            if rnd == rounds:
                if taken:
                    failures.append(f"{msp}: {taken} discriminator step(s) in round {rnd}, after the privacy "
                                    f"budget's last round {rounds - 1}")
                break
            steps += taken
            spend = evaluate_or_none(contract, "GetPrivacySpend", run_id, msp, str(rnd))
            if spend is None:
                if taken:
                    failures.append(f"round {rnd} {msp}: {taken} DP step(s) but no privacy spend recorded")
                continue
            expected = config.epsilon_after(steps)
            spent[msp] = expected
            where = f"round {rnd} {msp}: privacy spend"
            if (spend.get("msp"), spend.get("role")) != (msp, "discriminator"):
                failures.append(f"{where} recorded by {spend.get('msp')}/{spend.get('role')}, not its discriminator")
            if int(spend.get("steps", -1)) != steps:
                failures.append(f"{where} counts {spend.get('steps')} steps, the ledger holds {steps}")
            bad = sorted(k for k, v in want.items() if spend.get(k) != v)
            if bad:
                failures.append(f"{where}: {', '.join(bad)} differ from the run config")
            recorded = float(spend.get("epsilon", float("nan")))
            if not abs(recorded - expected) <= 1e-9 * max(1.0, expected):
                failures.append(f"{where}: recorded epsilon {recorded:.6g} is not the accountant's {expected:.6g} "
                                f"for {steps} steps (tampered or miscomputed)")
            if expected > float(config.dp_epsilon or 0.0) or recorded > float(config.dp_epsilon or 0.0):
                failures.append(f"{where}: epsilon {max(expected, recorded):.6g} exceeds the budget "
                                f"{config.dp_epsilon:g}")
    return spent, failures


def _check_transactions(contract: Contract, run_id: str, msps: list[str], rounds: int,
                        audit_rounds: list[int], header: dict[str, Any],
                        checker: RecordChecker | None) -> list[str]:
    """Each record read is vouched for by its transaction (:mod:`synthreg.trail.txcheck`)."""
    stepped = header.get("step_records") == "ledger"
    _, failures = check_record_transactions(
        contract, run_id, msps, rounds, audit_rounds if stepped else (),
        int(header["config"]["local_iters"]) if stepped else 0, checker)
    return failures


def _update_bound(rep: TrailReport, contract: Contract, run_id: str,
                  header: Mapping[str, Any]) -> tuple[float | None, np.ndarray | None]:
    """The run's ``max_update_norm`` and the initial [G ‖ D] weights (``w_prev`` of
    round 0) built, as every registry does, from the run's schema, model config and
    seed. Both from the run document every participant approved; without one the
    bound is the header's claim and round 0 is not checked (no schema text). No
    bound (None): updates are not checked."""
    doc = evaluate_or_none(contract, "GetRun", run_id)
    if doc is None:
        claimed = header.get("config", {}).get("max_update_norm")
        return (None if claimed is None else float(claimed)), None
    try:
        spec = json.loads(doc["spec_json"])
        raw = training_fields(spec["config"])
        config = TrainConfig.from_dict(raw)
        if config.max_update_norm is None:
            return None, None
        schema = Schema.loads(str(spec["schema"]), source="run spec")
        output_dim = TabularEncoder(schema).output_dim
        return config.max_update_norm, initial_vector(output_dim, config.model_config(schema), config.seed,
                                                      config.generator_only)
    except (KeyError, TypeError, ValueError) as exc:
        rep.failures.append(f"the update bound of run {run_id} cannot be checked: {type(exc).__name__}: {exc}")
        return None, None


def _check_update_bound(rep: TrailReport, rnd: int, bound: float | None, prev: np.ndarray | None,
                        avg: np.ndarray, decrypted: Mapping[str, np.ndarray], tolerance: float) -> None:
    """Issue 10, attack 2 (poisoning): every registry's decrypted audit copy of round
    ``rnd`` within ``bound`` of the previous agreed average ``prev`` (a registry
    that did not clip is named), and the recorded average too (on every round;
    it is a mean of clipped updates). Not checked without a bound, or without
    ``prev`` (round 0 of a run without a run document; a round after one whose
    average could not be read, already reported)."""
    if bound is None or prev is None:
        return
    if prev.shape != avg.shape:
        rep.failures.append(f"round {rnd}: the average has {avg.size} weights, its update bound's previous "
                            f"average (round 0: the initial weights of the run's model) {prev.size}")
        return
    for msp, vec in sorted(decrypted.items()):
        try:
            check_bound(vec, prev, bound, rnd, msp, per_coordinate=tolerance)
        except UpdateBoundError as exc:
            rep.failures.append(f"{exc} (decrypted audit copy): it did not clip its update")
    try:
        check_bound(avg, prev, bound, rnd)
    except UpdateBoundError as exc:
        rep.failures.append(str(exc))


def _check_header(rep: TrailReport, contract: Contract, run_id: str, record: dict[str, Any],
                  header: dict[str, Any], registries: Sequence[str] | None,
                  audited: Collection[int] | None) -> bool:
    """Check the run header against what the ledger and the auditor know, then make
    ``header`` say what is expected, so the checks cover the real run. The header
    must be written by the merger of the org that opened the run (proposer of the
    run document, else first participant of the aggregation). Registries and
    audited rounds come from the run document (every participant approved it),
    else from the caller, else registries from the aggregation and audited rounds
    from the header; the aggregation's participants must be those registries. A
    header may not hide secure-aggregation rounds or step records the ledger holds.
    Returns whether the run was agreed on the ledger (its rounds are then known)."""
    doc = evaluate_or_none(contract, "GetRun", run_id)
    agg = evaluate_or_none(contract, "GetAggregation", run_id)
    spec = json.loads(doc["spec_json"]) if doc is not None else None
    if doc is not None:
        owner, how = str(doc.get("proposer", {}).get("msp")), f"the proposer of run {run_id}"
    elif agg is not None:
        owner, how = str(agg["participants"][0]), f"the first participant of aggregation {run_id}"
    else:
        owner, how = "", ""
        rep.failures.append(f"run {run_id} has neither a run document nor an aggregation on the ledger: "
                            "the author of its header cannot be checked")
    if owner and (record.get("msp"), record.get("role")) != (owner, "merger"):
        rep.failures.append(f"run header written by {record.get('msp')}/{record.get('role')}, "
                            f"not by the merger of {owner} ({how})")
    if spec is not None and doc is not None and doc.get("status") not in ("started", "aborted"):
        rep.failures.append(f"run {run_id} was never started (status {doc.get('status')})")

    expected: dict[str, Any] = {}
    if spec is not None:
        expected = {"registries": list(spec["participants"]), "audit_rounds": list(spec["audit_rounds"]),
                    "schema_sha256": spec["schema_sha256"]}
    for key, given in (("registries", None if registries is None else sorted(registries)),
                       ("audit_rounds", None if audited is None else sorted(audited))):
        if given is None:
            continue
        if key in expected and expected[key] != given:
            rep.failures.append(f"the {key} given {given!r} differ from the approved run's {expected[key]!r}")
        expected.setdefault(key, given)
    if "registries" not in expected:
        if agg is not None:
            expected["registries"] = list(agg["participants"])
        else:
            rep.failures.append(f"the registries of run {run_id} are unknown (no run document, no aggregation, "
                                "none given): only the header names them")
    if agg is not None and "registries" in expected and sorted(agg["participants"]) != sorted(expected["registries"]):
        rep.failures.append(f"aggregation participants {agg['participants']!r} differ from the run's "
                            f"registries {expected['registries']!r}")
    for key, value in expected.items():
        if header.get(key) != value:
            what = "the approved run's" if spec is not None else "the expected"
            rep.failures.append(f"run header {key} {header.get(key)!r} differs from {what} {value!r}")
        header[key] = value
    header_regs = header.get("registries")
    if not isinstance(header_regs, list) or not header_regs or len(set(header_regs)) != len(header_regs):
        rep.failures.append(f"run header registries {header_regs!r} are not a list of distinct registries")
        header["registries"] = sorted(set(header_regs)) if isinstance(header_regs, list) else []
    if spec is not None:
        header["config"] = {**header.get("config", {}), "rounds": spec["rounds"], "local_iters": spec["local_iters"]}
        header["stop_rule"] = spec.get("stop_rule", {"kind": "budget"})

    # what the ledger holds cannot be hidden by the header
    if agg is not None and not str(header.get("averaging", "")).startswith("secagg"):
        first = evaluate_or_none(contract, "GetRound", run_id, "0")
        if first is not None and first.get("advertised"):
            rep.failures.append(f"run header averaging {header.get('averaging')!r}, but the ledger holds "
                                f"secure-aggregation rounds of run {run_id}")
            header["averaging"] = "secagg-ledger"
    if spec is not None:  # the mode is the run's agreed one, not the header's claim
        agreed_mode = str(spec.get("config", {}).get("step_records", "ledger"))
        if (header.get("step_records") == "anchored") != (agreed_mode == "anchored"):
            rep.failures.append(f"run header step_records {header.get('step_records')!r}, but the run was agreed "
                                f"with {agreed_mode!r}")
            header["step_records"] = agreed_mode
    if header.get("step_records") == "anchored":
        pass  # roots move the head: checked round by round (AnchoredCheck)
    elif header.get("step_records") != "ledger":
        stepped = [m for m in header["registries"] if evaluate_or_none(contract, "GetStepHead", run_id, m)]
        if stepped:
            rep.failures.append(f"run header step_records {header.get('step_records')!r}, but the ledger holds "
                                f"step records of {', '.join(stepped)}")
            header["step_records"] = "ledger"
    return spec is not None


def _check_no_round_after(rep: TrailReport, contract: Contract, run_id: str, msps: list[str], rounds: int) -> None:
    """Rounds taken from the header alone: the ledger holds no record of a later round."""
    later = [m for m in msps if evaluate_or_none(contract, "GetRecord", round_key(run_id, rounds, m))]
    if later:
        rep.failures.append(f"the header says {rounds} round(s), but round {rounds} was recorded by "
                            f"{', '.join(later)}")


def rounds_trained(contract: Contract, run_id: str, msps: list[str], budget: int, local_iters: int,
                    rule: StopRule, anchored: bool = False) -> int:
    """How many rounds the stop rule lets the run train, recomputed from the generator
    losses the discriminators recorded (what every app decided on): their step records,
    or in an ``anchored`` run the mean their round's root carries (checked against the
    signed statements by :class:`AnchoredCheck`)."""
    cache: dict[int, float] = {}

    def mean_g_loss(rnd: int) -> float:
        if rnd not in cache:
            per = []
            # over the round's survivors, as the apps decide (App.mean_g_loss)
            for msp in sorted(_survivors(_round_state(contract, run_id, rnd)[0], msps)):
                if anchored:
                    root = json.loads(contract.evaluate("GetStepRoot", run_id, msp, str(rnd)))["discriminator"]
                    if int(root["count"]) != local_iters:
                        raise KeyError(f"round {rnd} of {msp}: the discriminator root counts {root['count']} steps")
                    per.append(float(root["g_loss_mean"]))
                    continue
                losses = [json.loads(contract.evaluate("GetStep", run_id, msp, str(rnd), str(it)))
                          ["discriminator"]["g_loss"] for it in range(local_iters)]
                per.append(float(np.mean(losses)))
            cache[rnd] = float(np.mean(per))
        return cache[rnd]

    for rnd in range(budget - 1):
        if rule.stops_after(rnd, mean_g_loss):
            return rnd + 1
    return budget


def _round_state(contract: Contract, run_id: str, rnd: int) -> tuple[dict[str, Any] | None, str]:
    """``GetRound`` of the run's round ``rnd``, or None and why it is not on the ledger."""
    try:
        return dict(json.loads(contract.evaluate("GetRound", run_id, str(rnd)))), ""
    except EvaluateError as exc:
        return None, exc.message


def _survivors(state: Mapping[str, Any] | None, msps: list[str]) -> list[str]:
    """The registries whose update is in the round's average (U of its
    secure-aggregation round ``state``); all of ``msps`` when the round is not on
    the ledger (that failure is reported by :func:`_check_secagg_round`)."""
    survivors = [m for m in (state or {}).get("survivors", []) if m in msps]
    return survivors or msps


def _check_secagg_round(rep: TrailReport, state: Mapping[str, Any] | None, missing: str, rnd: int,
                        msps: list[str], average_sha256: str,
                        audited: Mapping[str, RoundEntry] | None) -> None:
    """The ledger's secure-aggregation round ``state`` (None: not on the ledger,
    ``missing`` says why) agrees with the recorded average; on audited rounds each
    submission carried the audit ciphertext recorded."""
    if state is None:
        rep.failures.append(f"round {rnd}: no secure-aggregation round on the ledger ({missing})")
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
    if audited is None:
        carried = sorted(m for m, sub in state.get("submissions", {}).items() if sub.get("audit_sha256"))
        if carried:
            rep.failures.append(f"round {rnd}: {', '.join(carried)} submitted audit ciphertexts with secure "
                                "aggregation, but the round is not among the audited rounds")
    for msp, entry in (audited or {}).items():
        submitted = state.get("submissions", {}).get(msp, {}).get("audit_sha256")
        if submitted != entry.audit_ct_sha256:
            rep.failures.append(f"round {rnd} {msp}: the audit ciphertext submitted with secure aggregation "
                                f"({submitted or 'none'}) is not the one recorded ({entry.audit_ct_sha256})")


@dataclass
class AnchoredCheck:
    """The auditor's check of an anchored round (``step_records: anchored``): every
    statement of iterations 0..count-1 is in the registry's workspace, verifies under
    the certificate that signed the transaction of its root (so it is the anchoring
    app's), the leaves hash to the root, D's statements name G's fake batches, and
    the artefacts kept match the signed hashes."""

    run: str
    txs: TxChecker

    def round(self, rep: TrailReport, contract: Contract, msp: str, rnd: int, local_iters: int,
              workspace: Workspace) -> None:
        try:
            roots = json.loads(contract.evaluate("GetStepRoot", self.run, msp, str(rnd)))
        except EvaluateError as exc:
            rep.failures.append(f"{msp} round {rnd}: no step roots ({exc.message})")
            return
        store = StatementStore(workspace.root)
        fields: dict[str, list[dict[str, Any]]] = {}
        for role in ("generator", "discriminator"):
            root = roots.get(role)
            if not root or int(root["count"]) != local_iters:
                rep.failures.append(f"{msp} round {rnd}: {role} root missing or not of {local_iters} steps")
                return
            cert = self.txs.facts(str(root["txid"])).creator_cert
            try:
                sts = [store.get(self.run, rnd, it, role) for it in range(local_iters)]
                if cert is None or any(s is None for s in sts):
                    raise StatementError(f"{role} statements or the root's signer certificate missing")
                signed = [s for s in sts if s is not None]
                fields[role] = [verify_statement(s, cert, self.run, msp, role) for s in signed]
            except StatementError as exc:
                rep.failures.append(f"{msp} round {rnd}: {exc}")
                return
            if merkle_root(signed) != root["merkle_root"]:
                rep.failures.append(f"{msp} round {rnd}: the {role} statements are not the leaves of its root")
                return
        for it, (g, d) in enumerate(zip(fields["generator"], fields["discriminator"], strict=True)):
            if (g["round"], g["iter"], d["round"], d["iter"]) != (rnd, it, rnd, it) or (
                    d["fake_sha256"] != g["fake_sha256"]):
                rep.failures.append(f"{msp} round {rnd} iter {it}: inconsistent signed statements")
                continue
            try:
                workspace.get(g["fake_sha256"])
                workspace.get(d["feedback_sha256"])
            except WorkspaceError as exc:
                rep.failures.append(f"{msp} round {rnd} iter {it}: {exc}")
                continue
            rep.steps_checked += 1
        losses = [float(d["g_loss"]) for d in fields["discriminator"]]
        if sum(losses) / len(losses) != float(roots["discriminator"]["g_loss_mean"]):
            rep.failures.append(f"{msp} round {rnd}: g_loss_mean of the root is not the mean of its statements")


def _check_steps(rep: TrailReport, contract: Contract, run_id: str, msps: list[str], rounds: int,
                 local_iters: int, audit_rounds: list[int], workspaces: Mapping[str, Workspace],
                 last_in: Mapping[str, int], anchored: AnchoredCheck | None = None) -> None:
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
        head_round = int(head.get("round", -1))
        left_mid_round = head_round in rep.missed.get(msp, [])  # left a round it was left out of mid-way
        if not (lowest <= head_round <= rounds - 1) or head.get("phase") == "g" or (
                head.get("iter") != local_iters - 1 and not left_mid_round):
            want = f"round {rounds - 1}" if lowest == rounds - 1 else f"a round in {lowest}..{rounds - 1}"
            rep.failures.append(f"{msp}: last recorded step is round {head.get('round')} iter {head.get('iter')} "
                                f"({head.get('phase')}), expected {want} iter {local_iters - 1} completed")
        for f in faults:
            rep.failures.append(f"{msp}: step fault in round {f.get('round')} iter {f.get('iter')}: {f.get('kind')}")
        for rnd in audit_rounds:
            if rnd in rep.missed.get(msp, []):
                continue
            if anchored is not None:
                anchored.round(rep, contract, msp, rnd, local_iters, workspaces[msp])
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
