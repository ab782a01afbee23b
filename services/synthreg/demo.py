"""The end-to-end demo pipeline (`synthreg demo`, `make demo`): every real part that exists.

It only orchestrates the commands a consortium would run; nothing here trains
or signs for a registry itself.

1. **Network**: the local 3-registry Fabric network (started if needed).
2. **Audit key**: the key ceremony on channel `keys` (2-of-3), unless one is recorded.
3. **Data**: the bundled Rotterdam cohort, a 20 % real holdout kept aside for
   evaluation, the rest split non-IID by diagnosis period into 3 registries;
   each registry's split is written to *its own* data folder as a CSV, next to
   its copy of the agreed schema.
4. **Registries**: ``registry up`` per registry: its generator, discriminator
   and merger as three separate OS processes (9 in all), each with its own
   identity, meeting the others only on the ledger.
5. **Run**: ``run propose`` by Registry1's admin (schema, training config,
   threshold, audit schedule, stop rule), ``run approve`` by each registry's
   admin after its client checked its own data against the schema; the
   chaincode starts the run, the apps pick it up from the ``RunStarted`` event
   and train (DESIGN.md §3, §4): every local iteration a signed statement the
   counterpart checks, one Merkle root per app per round on the ledger (anchored
   step records, the default), the encoder and every round's average by secure
   aggregation (masked vectors served by the mergers, hashes on the ledger), audit
   copies on audited rounds.
   ``run watch`` shows per-registry progress from chaincode events.
6. **Quality**: synthetic records sampled from Registry1's model bundle (checked
   against the ledger's agreed final average first) + report (SDMetrics
   quality, utility on the holdout, DCR privacy, plots).
7. **Audit**: two registries release their shares to a fresh auditor key; the
   auditor unseals the audit key in memory (never written to disk:
   :func:`unseal_and_verify`) and verifies the whole trail against the run
   every registry approved.

Everything lands in ``out``; nothing here is canned: every number printed is
computed in this run.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.markup import escape

from synthreg.apps import admin
from synthreg.apps.registry import RegistryStack
from synthreg.chain.anchor import StatementStore
from synthreg.chain.keyvault import LedgerKeyVault
from synthreg.cli.sample_cmd import ledger_lookup
from synthreg.crypto.ckks import SecretContext, load_public_context
from synthreg.crypto.transport import RecipientKeyPair
from synthreg.data import dataset_schema, load_dataset, split_registries
from synthreg.eval.report import write_report
from synthreg.eval.utility import holdout_split
from synthreg.gan.bundle import load_bundle, verify_bundle
from synthreg.gan.config import NON_IID_LEVERS, TrainConfig
from synthreg.keys.audit import SUMMARY_FILE, UnsealSummary, unseal_in_memory
from synthreg.keys.ceremony import host_ceremony, read_recipient_keys
from synthreg.keys.errors import NoCeremonyError, VaultPreconditionError
from synthreg.keys.keyfiles import (
    generate_auditor_key,
    load_auditor_keypair,
    load_auditor_public_key,
    load_org_keypair,
    write_private_file,
)
from synthreg.keys.release import release_to_auditor
from synthreg.keys.vault import KeyVault
from synthreg.ledger import evaluate_or_none
from synthreg.network.client import open_gateway
from synthreg.network.launcher import Launcher
from synthreg.network.profile import Profile, load_profile
from synthreg.network.topology import NetworkConfig
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


def unseal_and_verify(vault: KeyVault, auditor: RecipientKeyPair, out_dir: Path,
                      verify: Callable[[SecretContext], TrailReport]) -> tuple[UnsealSummary, TrailReport]:
    """Stage 7's auditor: unseal the audit key from the shares released to ``auditor``
    and run ``verify`` with it; writes only ``out_dir/``:data:`SUMMARY_FILE` (0600).

    The recombined secret context stays in this process's memory and is never
    written, plaintext or sealed (issue 10, item 7c: the demo used to leave it in
    ``auditor/<run>/unsealed/``). Chosen over sealing it to the auditor's key
    because nothing after the verification needs it: the shares stay released to
    the auditor's key on the ledger, so ``synthreg audit unseal --key <auditor>/key``
    recovers it again when an auditor wants it. Raises what
    :func:`~synthreg.keys.audit.unseal_in_memory` and ``verify`` raise.
    """
    secret, summary = unseal_in_memory(vault, auditor)
    try:
        report = verify(secret)
    finally:
        del secret
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private_file(out_dir / SUMMARY_FILE, json.dumps(summary.to_dict(), indent=2).encode("utf-8"))
    return summary, report


def _write_registry_data(out: Path, msps: list[str], frames: list[pd.DataFrame], schema_text: str) -> dict[str, Path]:
    """Each registry's split as its own CSV (and its copy of the schema) in its own folder."""
    paths = {}
    for msp, frame in zip(msps, frames, strict=True):
        folder = out / "registries" / msp
        folder.mkdir(parents=True, exist_ok=True)
        frame.to_csv(folder / "data.csv", index=False)
        (folder / "schema.yaml").write_text(schema_text, encoding="utf-8")
        paths[msp] = folder / "data.csv"
    return paths


def run_demo(out: Path, network_home: Path, fabric_bin: Path, repo_root: Path, *,
             rounds: int = TrainConfig.rounds, local_iters: int = TrainConfig.local_iters, seed: int = 0,
             audit_every: int = 40, threads: int = 1, keep_network: bool = True,
             log: Log = print, watch: Callable[[Profile, str, str], dict[str, int]] | None = None) -> DemoResult:
    out.mkdir(parents=True, exist_ok=True)
    run_id = f"demo-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    res = DemoResult(out, run_id)
    report = None
    stacks: list[RegistryStack] = []

    cfg = NetworkConfig(home=network_home, fabric_bin=fabric_bin, repo_root=repo_root)
    try:
        done = _stage(res, "1. local Fabric network (3 registries)", log)
        Launcher(cfg, log=lambda m: log(f"  {escape(m)}")).up(fabric_bin.parent / "config")
        profile = load_profile(network_home)
        msps = list(profile.msp_ids)
        done()

        done = _stage(res, "2. audit key ceremony on channel 'keys'", log)
        res.facts["ceremony"] = ensure_ceremony(profile, t=2, log=log)
        with open_gateway(profile, msps[0], "admin") as gw:
            record = LedgerKeyVault(gw.network("keys").contract("keyvault")).get_ceremony_record()
        public = load_public_context(record.public_context)
        done()

        done = _stage(res, "3. data: Rotterdam cohort → holdout + 3 non-IID registries, each in its own folder", log)
        schema = dataset_schema("rotterdam")
        real = load_dataset("rotterdam")
        train_pool, holdout = holdout_split(real, 0.2, seed)
        frames = split_registries(train_pool, len(msps), "non-iid", seed=seed, by=schema.partition)
        data = _write_registry_data(out, msps, frames, schema.dump())
        log(f"  registries: {', '.join(f'{m}={len(f)}' for m, f in zip(msps, frames, strict=True))} rows "
            f"(in {out / 'registries'}/<MSP>/data.csv); holdout {len(holdout)} rows")
        done()

        done = _stage(res, "4. registry up: each registry's generator, discriminator and merger processes", log)
        for m in msps:
            stack = RegistryStack(network_home, m, out / "registries" / m / "state")
            stacks.append(stack)
            pids = stack.up(data[m], exit_after=1)
            log(f"  {m}: " + ", ".join(f"{r} pid {p}" for r, p in pids.items()))
        done()

        done = _stage(res, f"5. run agreed on the ledger and trained ({rounds} rounds x {local_iters} "
                           "local iterations)", log)
        raw = {"run": run_id, "schema": "schema.yaml", "audit_every": audit_every, "threshold": 2,
               "training": {"rounds": rounds, "local_iters": local_iters, "seed": seed, "num_threads": threads,
                            **NON_IID_LEVERS}}  # the registries are split by period: local critics
        ceremony = admin.ceremony_id(profile, msps[0])
        assert ceremony is not None
        run_id, spec = admin.spec_from_config(raw, profile, ceremony, out / "registries" / msps[0])
        sha = admin.propose_run(profile, msps[0], run_id, spec)
        log(f"  {msps[0]} proposed run {run_id} (spec sha256 {sha[:16]}…, audited rounds {list(spec.audit_rounds)})")
        t0 = time.perf_counter()
        for m in msps:
            rec = admin.approve_run(profile, m, run_id, data[m], out / "registries" / m / "schema.yaml")
            log(f"  {m} checked its data and schema and approved: run {rec.status}")
        counts = watch(profile, msps[0], run_id) if watch is not None else {}
        outcomes = {s.msp: s.wait_idle(run_id, timeout=4 * 3600) for s in stacks}
        res.facts["train_seconds"] = round(time.perf_counter() - t0, 1)
        failed = {m: o for m, o in outcomes.items() if set(o.values()) != {"done"}}
        if failed:
            raise RuntimeError(f"apps did not finish run {run_id}: {failed} (see registry logs)")
        res.facts["ledger_events"] = counts
        res.facts["ledger_transactions"] = sum(counts.values())
        res.facts["step_transactions"] = sum(counts.get(k, 0) for k in (
            "GeneratorStep", "DiscriminatorStep", "GeneratorRoot", "DiscriminatorRoot", "LocalUpdate",
            "TrainingStopped"))
        res.facts["secagg_transactions"] = sum(v for k, v in counts.items() if k.startswith("Agg"))
        res.facts["secagg_rounds_agreed"] = admin.run_status(profile, msps[0], run_id).agreed_rounds
        res.facts["step_records"], res.facts["blobs"] = spec.step_records, spec.blobs
        log(f"  {sum(counts.values())} transactions with events on 'gan' ({res.facts['step_transactions']} step "
            f"records, {res.facts['secagg_transactions']} secure aggregation); "
            f"{res.facts['secagg_rounds_agreed']} rounds agreed; {res.facts['train_seconds']} s")
        done()

        done = _stage(res, "6. synthetic data from the model bundle, and the quality report", log)
        bundle = load_bundle(stacks[0].state / "bundles" / run_id)
        with open_gateway(profile, msps[0], "admin") as gw:
            contract = gw.network("gan").contract("ganledger")
            verify_bundle(bundle, ledger_lookup(contract))
        log(f"  bundle {bundle.path} verified against the ledger's agreed final average")
        synthetic = bundle.sample(len(train_pool), seed)
        synthetic.to_csv(out / "synthetic.csv", index=False)
        history = _history(profile, msps[0], run_id, spec, {s.msp: s.state / "workspace" for s in stacks})
        (out / "history.json").write_text(json.dumps({"history": history}, indent=1))
        report_path = write_report(train_pool, synthetic, schema, out / "report", history=history,
                                   holdout=holdout, seed=seed)
        metrics = json.loads((out / "report" / "metrics.json").read_text())
        res.facts["report"] = str(report_path)
        res.facts["metrics"] = metrics
        done()

        done = _stage(res, "7. audit: release 2 shares, unseal, verify the trail", log)
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
            workspaces = {m: Workspace(s.state / "workspace") for m, s in zip(msps, stacks, strict=True)}
            contract = gw.network("gan").contract("ganledger")
            summary, report = unseal_and_verify(
                vault, load_auditor_keypair(auditor_dir / "key"), auditor_dir / "unsealed",
                lambda secret: verify_run(run_id, contract, secret, public, workspaces))
            log(f"  audit key unsealed in memory from shares {summary.shares_used}; ceremony test ciphertext "
                f"decrypted (max error {summary.proof_max_abs_error:.1e}); not written to disk")
        (out / "audit_report.json").write_text(json.dumps(report.to_dict(), indent=2))
        res.audit = report
        done()

    finally:
        for stack in stacks:
            stack.down(grace=5)
        if not keep_network:
            stopped = Launcher(cfg, log=lambda m: log(f"  {escape(m)}")).down()
            log(f"  network stopped ({len(stopped)} processes); rerun with --keep-network to keep it")
    (out / "demo.json").write_text(json.dumps({"run_id": run_id, "timings_s": res.timings, **res.facts,
                                               "audit": report.to_dict() if report else None},
                                              indent=2, default=str))
    return res


def _history(profile: Profile, org: str, run: str, spec: Any,
             workspaces: Mapping[str, Path]) -> list[dict[str, float | int]]:
    """Per round and registry, the mean D and G losses of the discriminator's steps: its
    step records on the ledger, or in an anchored run its signed statements in the
    registry's workspace (stage 7's auditor checks them against the roots on the ledger).

    A registry voted out of a round (the round went on with t of n) moves on to the
    next round and records no further steps of it: its row for that round averages
    the steps it did record, and there is none if it recorded none."""
    rows: list[dict[str, float | int]] = []
    with open_gateway(profile, org, "auditor") as gw:
        contract = gw.network("gan").contract("ganledger")
        for r, msp in enumerate(spec.participants):
            store = StatementStore(workspaces[msp])
            for rnd in range(spec.rounds):
                if spec.step_records == "anchored":
                    d = [s.fields for s in store.round(run, rnd, "discriminator", spec.local_iters) if s is not None]
                else:
                    steps = (evaluate_or_none(contract, "GetStep", run, msp, str(rnd), str(it))
                             for it in range(spec.local_iters))
                    d = [s["discriminator"] for s in steps if s is not None and s.get("discriminator")]
                if d:
                    rows.append({"round": rnd, "registry": r, "d_loss": float(np.mean([x["d_loss"] for x in d])),
                                 "g_loss": float(np.mean([x["g_loss"] for x in d]))})
    return rows


def summarize(res: DemoResult) -> list[tuple[str, str]]:
    m = res.facts.get("metrics", {})
    q = m.get("quality", {})
    u = m.get("utility", {})
    p = m.get("privacy") or {}
    rows = [
        ("run id", res.run_id),
        ("ledger transactions (gan)", str(res.facts.get("ledger_transactions"))),
        ("training wall time", f"{res.facts.get('train_seconds')} s"),
        ("step records (G/D hand-overs)", f"{res.facts.get('step_transactions')} transactions "
                                          f"({res.facts.get('step_records')})"),
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
