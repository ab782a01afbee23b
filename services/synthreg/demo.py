"""The end-to-end demo pipeline (`synthreg demo`, `make demo`): every real part that exists.

1. **Network**: the local 3-registry Fabric network (started if needed).
2. **Audit key**: the key ceremony on channel `keys` (2-of-3), unless one is recorded.
3. **Data**: the bundled Rotterdam cohort, a 20 % real holdout kept aside for
   evaluation, the rest split non-IID by diagnosis period into 3 registries,
   each validated against the agreed schema; the schema hash and run
   configuration are recorded on `gan`.
4. **Training**: federated GAN training in which every local iteration is
   recorded (DESIGN.md §3): each registry's generator records its fake batch's
   hash, its discriminator trains only on the batch matching that ledger hash
   and records the feedback's hash, which the generator checks before applying
   it (each app with its own identity); every round's average is computed by
   secure aggregation over `gan` (DESIGN.md §4: each registry's merger posts
   only a masked update; the mergers unmask the sum together and agree on the
   hash of the average; on audited rounds each submission also carries the
   registry's CKKS audit copy of its update); each registry's merger then
   records the hashes of its update and of the agreed average on `gan`.
5. **Quality**: synthetic records + report (SDMetrics quality, utility on the
   holdout, DCR privacy, plots).
6. **Audit**: two registries release their shares to a fresh auditor key; the
   auditor unseals the audit key and verifies the whole trail: ledger records
   vs workspace artefacts, agreement on averages, and the decrypted sum of the
   encrypted updates against the agreed average.

Everything lands in ``out``; nothing here is canned: every number printed is
computed in this run.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.markup import escape

from synthreg.chain.keyvault import LedgerKeyVault
from synthreg.chain.secagg import LedgerAggregator, secure_sum
from synthreg.chain.steps import LedgerSteps, RegistryStepClients
from synthreg.crypto.ckks import encrypt_vector, load_public_context
from synthreg.data import dataset_schema, load_dataset, split_registries
from synthreg.eval.report import write_report
from synthreg.eval.utility import holdout_split
from synthreg.gan.federated import TrainConfig, build_encoder, train_federated
from synthreg.keys.audit import load_unsealed_secret, unseal_audit_key
from synthreg.keys.ceremony import host_ceremony, read_recipient_keys
from synthreg.keys.errors import NoCeremonyError, VaultPreconditionError
from synthreg.keys.keyfiles import (
    generate_auditor_key,
    load_auditor_keypair,
    load_auditor_public_key,
    load_org_keypair,
)
from synthreg.keys.release import release_to_auditor
from synthreg.ledger import Contract
from synthreg.network.client import open_gateway
from synthreg.network.launcher import Launcher
from synthreg.network.profile import Profile, load_profile
from synthreg.network.topology import NetworkConfig
from synthreg.trail.record import TrailRecorder
from synthreg.trail.verify import TrailReport, verify_run
from synthreg.workspace import Workspace

Log = Callable[[str], None]


@dataclass
class DemoResult:
    out: Path
    run_id: str
    timings: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    audit: TrailReport | None = None


def _stage(result: DemoResult, name: str, log: Log) -> Callable[[], None]:
    t0 = time.perf_counter()
    log(f"[bold]▶ {name}[/]")

    def done() -> None:
        result.timings[name] = round(time.perf_counter() - t0, 2)
    return done


def ensure_ceremony(profile: Profile, t: int, log: Log) -> dict[str, Any]:
    host = profile.msp_ids[0]
    with open_gateway(profile, host, "admin") as gw:
        vault = LedgerKeyVault(gw.network("keys").contract("keyvault"))
        try:
            facts = vault.get_ceremony()
            log(f"  audit key ceremony already recorded ({facts.ceremony_id}, {facts.t}-of-{facts.n})")
            return {"ceremony_id": facts.ceremony_id, "t": facts.t, "n": facts.n, "new": False}
        except (VaultPreconditionError, NoCeremonyError):
            pass
        keys = read_recipient_keys({m: profile.org(m).share_key_dir for m in profile.msp_ids})
        report = host_ceremony(vault, t, keys)
        log(f"  ceremony {report.ceremony_id}: {t}-of-{len(keys)} shares sealed into each registry's "
            f"private collection; secret wiped")
        return {"ceremony_id": report.ceremony_id, "t": t, "n": len(keys), "new": True}


def run_demo(out: Path, network_home: Path, fabric_bin: Path, repo_root: Path, *,
             rounds: int = TrainConfig.rounds, local_iters: int = TrainConfig.local_iters, seed: int = 0,
             audit_every: int = 40, threads: int = 1, keep_network: bool = True,
             log: Log = print) -> DemoResult:
    out.mkdir(parents=True, exist_ok=True)
    run_id = f"demo-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    res = DemoResult(out, run_id)

    cfg = NetworkConfig(home=network_home, fabric_bin=fabric_bin, repo_root=repo_root)
    try:
        done = _stage(res, "1. local Fabric network (3 registries)", log)
        Launcher(cfg, log=lambda m: log(f"  {escape(m)}")).up(fabric_bin.parent / "config")
        profile = load_profile(network_home)
        msps = profile.msp_ids
        done()

        done = _stage(res, "2. audit key ceremony on channel 'keys'", log)
        res.facts["ceremony"] = ensure_ceremony(profile, t=2, log=log)
        with open_gateway(profile, msps[0], "admin") as gw:
            record = LedgerKeyVault(gw.network("keys").contract("keyvault")).get_ceremony_record()
        public = load_public_context(record.public_context)
        done()

        done = _stage(res, "3. data: Rotterdam cohort → holdout + 3 non-IID registries", log)
        schema = dataset_schema("rotterdam")
        real = load_dataset("rotterdam")
        train_pool, holdout = holdout_split(real, 0.2, seed)
        frames = split_registries(train_pool, len(msps), "non-iid", seed=seed, by=schema.partition)
        config = TrainConfig(rounds=rounds, local_iters=local_iters, seed=seed, num_threads=threads)
        audit_rounds = set(range(audit_every - 1, rounds, audit_every)) | {rounds - 1}
        workspaces = {m: Workspace(out / "workspaces" / m) for m in msps}
        log(f"  registries: {', '.join(f'{m}={len(f)}' for m, f in zip(msps, frames, strict=True))} rows; "
            f"holdout {len(holdout)} rows")
        done()

        done = _stage(res, f"4. federated training ({rounds} rounds x {local_iters} local iterations), "
                           f"recorded on channel 'gan'", log)
        from contextlib import ExitStack

        with ExitStack() as stack:
            def app(msp: str, role: str) -> Contract:
                """ganledger as ``msp``'s ``role`` app (one Gateway per app identity)."""
                return stack.enter_context(open_gateway(profile, msp, role)).network("gan").contract("ganledger")

            contracts = {m: app(m, "merger") for m in msps}
            recorder = TrailRecorder(run_id, msps, contracts, workspaces, public, audit_rounds)
            recorder.record_run({"schema_sha256": schema.hash(), "config": config.to_dict(),
                                 "registry_sizes": [len(f) for f in frames], "dataset": "rotterdam",
                                 "ceremony_id": record.ceremony_id, "averaging": "secagg-ledger-uniform",
                                 "step_records": "ledger"})
            aggregator = LedgerAggregator(
                contracts, msps, run_id, audit_rounds=audit_rounds,
                audit=lambda vec: encrypt_vector(public, vec.astype(np.float64)).to_bytes())
            recorder.ciphertext_source = aggregator.audit_ciphertext
            steps = LedgerSteps(run_id, [RegistryStepClients(m, app(m, "generator"), app(m, "discriminator"),
                                                             workspaces[m]) for m in msps],
                                msps, keep_rounds=audit_rounds)
            # the encoder's pooled histograms, summed by secure aggregation too
            encoder = build_encoder(frames, schema, config, secure_sum=lambda vecs: secure_sum(
                contracts, msps, f"{run_id}/encoder", vecs))
            log(f"  encoder agreed: registries' histograms summed by secure aggregation "
                f"(aggregation run {run_id}/encoder), encoder {encoder.hash()[:16]}")
            result = train_federated(frames, schema, config, progress=True, on_round=recorder.on_round,
                                     aggregate=aggregator, step=steps, encoder=encoder)
            last = {msps[h.registry]: h.g_loss for h in result.history if h.round == rounds - 1}
            steps.stop(rounds - 1, local_iters - 1, last, reason="budget")
        step_txs = sum(steps.tx_counts.values())
        res.facts["step_transactions"] = step_txs
        res.facts["ledger_transactions"] = len(recorder.tx_ids) + len(aggregator.tx_ids) + step_txs
        res.facts["secagg_transactions"] = len(aggregator.tx_ids)
        res.facts["secagg_rounds_agreed"] = len(aggregator.outcomes)
        res.facts["train_seconds"] = round(result.wall_seconds, 1)
        log(f"  {res.facts['ledger_transactions']} transactions committed ({step_txs} generator/discriminator "
            f"step records; {len(aggregator.tx_ids)} secure aggregation: {len(aggregator.outcomes)} rounds agreed); "
            f"{len(audit_rounds)} audited rounds ({sorted(audit_rounds)})")
        done()

        done = _stage(res, "5. synthetic data and quality report", log)
        synthetic = result.sample(len(train_pool), seed)
        synthetic.to_csv(out / "synthetic.csv", index=False)
        (out / "history.json").write_text(json.dumps({"history": result.history_records()}, indent=1))
        report_path = write_report(train_pool, synthetic, schema, out / "report", history=result.history_records(),
                                   holdout=holdout, seed=seed)
        metrics = json.loads((out / "report" / "metrics.json").read_text())
        res.facts["report"] = str(report_path)
        res.facts["metrics"] = metrics
        done()

        done = _stage(res, "6. audit: release 2 shares, unseal, verify the trail", log)
        auditor_dir = out / "auditor" / run_id  # a fresh auditor key per run
        files = generate_auditor_key(auditor_dir / "key")
        auditor_pub = load_auditor_public_key(files.public_key_file)
        for m in msps[:2]:
            with open_gateway(profile, m, "admin") as gw:
                vault = LedgerKeyVault(gw.network("keys").contract("keyvault"))
                release_to_auditor(vault, m, load_org_keypair(profile.org(m).share_key_dir), auditor_pub)
            log(f"  {m} released its share to auditor {auditor_pub.id}")
        with open_gateway(profile, msps[0], "auditor") as gw:
            vault = LedgerKeyVault(gw.network("keys").contract("keyvault"))
            summary = unseal_audit_key(vault, load_auditor_keypair(auditor_dir / "key"), auditor_dir / "unsealed")
            secret = load_unsealed_secret(auditor_dir / "unsealed", record.public_context_hash)
            log(f"  audit key unsealed from shares {summary.shares_used}; ceremony test ciphertext decrypted "
                f"(max error {summary.proof_max_abs_error:.1e})")
            report = verify_run(run_id, gw.network("gan").contract("ganledger"), secret, public, workspaces, rounds)
        (out / "audit_report.json").write_text(json.dumps(report.to_dict(), indent=2))
        res.audit = report
        done()

    finally:
        if not keep_network:
            stopped = Launcher(cfg, log=lambda m: log(f"  {escape(m)}")).down()
            log(f"  network stopped ({len(stopped)} processes); rerun with --keep-network to keep it")
    (out / "demo.json").write_text(json.dumps({"run_id": run_id, "timings_s": res.timings, **res.facts,
                                               "audit": report.to_dict()}, indent=2, default=str))
    return res


def summarize(res: DemoResult) -> list[tuple[str, str]]:
    m = res.facts.get("metrics", {})
    q = m.get("quality", {})
    u = m.get("utility", {})
    p = m.get("privacy") or {}
    rows = [
        ("run id", res.run_id),
        ("ledger transactions (gan)", str(res.facts.get("ledger_transactions"))),
        ("training wall time", f"{res.facts.get('train_seconds')} s"),
        ("step records (G/D hand-overs)", f"{res.facts.get('step_transactions')} transactions"),
        ("secure aggregation", f"{res.facts.get('secagg_rounds_agreed')} rounds agreed on the ledger, "
                               f"{res.facts.get('secagg_transactions')} transactions"),
        ("SDMetrics quality score", _fmt(q.get("score"))),
        ("  column shapes / pair trends", f"{_fmt(q.get('column_shapes'))} / {_fmt(q.get('column_pair_trends'))}"),
        ("utility AUC synthetic→real / real→real", f"{_fmt(u.get('tstr_auc'))} / {_fmt(u.get('trtr_auc'))}"),
        ("privacy DCR median synth / holdout", f"{_fmt(p.get('dcr_synthetic_median'))} / "
                                                f"{_fmt(p.get('dcr_holdout_median'))}"),
        ("audit", ("[green]verified[/]" if res.audit and res.audit.ok else "[red]FAILED[/]") +
         (f": {res.audit.records_checked} records, {res.audit.secagg_rounds_checked} secure-aggregation "
          f"rounds, {res.audit.steps_checked} steps, rounds {res.audit.audited_rounds} decrypted, "
          f"max error {res.audit.max_abs_error:.1e}" if res.audit else "")),
        ("outputs", str(res.out)),
    ]
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float) and np.isfinite(v):
        return f"{v:.3f}"
    return "-" if v is None else str(v)
