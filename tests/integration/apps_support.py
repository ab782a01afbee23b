"""What the integration tests of the registries' apps share: each registry's data on
disk, proposing and approving a run, and the single-process ledger path as reference."""

from __future__ import annotations

import contextlib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthreg.apps import admin
from synthreg.apps.base import ROLES
from synthreg.apps.registry import RegistryStack
from synthreg.chain.runs import RunSpec
from synthreg.chain.secagg import LedgerAggregator
from synthreg.chain.steps import LedgerSteps, RegistryStepClients
from synthreg.data import load_dataset, split_registries
from synthreg.data.datasets import dataset_schema
from synthreg.data.schema import load_registry_csv
from synthreg.demo import ensure_ceremony
from synthreg.gan.federated import build_encoder, train_federated
from synthreg.ledger import Contract
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile
from synthreg.trail.verify import TrailReport
from synthreg.workspace import Workspace

CONFIG = {"rounds": 2, "local_iters": 2, "batch_size": 20, "noise_dim": 8, "gen_dims": [16, 16],
          "dis_dims": [16], "pac": 5, "seed": 5, "num_threads": 1}


@dataclass
class Consortium:
    profile: Profile
    base: Path
    schema_file: Path
    data: dict[str, Path]

    def propose(self, run: str, **overrides: object) -> RunSpec:
        """Registry1's admin proposes ``run`` (CONFIG, audit round 1 unless overridden)."""
        ceremony = admin.ceremony_id(self.profile, self.profile.msp_ids[0])
        assert ceremony is not None
        raw = {"run": run, "schema": self.schema_file.name, "training": CONFIG, "audit_rounds": [1], **overrides}
        run_id, spec = admin.spec_from_config(raw, self.profile, ceremony, self.base)
        admin.propose_run(self.profile, self.profile.msp_ids[0], run_id, spec)
        return spec

    def approve_all(self, run: str) -> None:
        for m in self.profile.msp_ids:
            admin.approve_run(self.profile, m, run, self.data[m], self.schema_file)

    def run_through_apps(self, run: str, states: dict[str, Path], timeout: float = 600,
                         **overrides: object) -> RunSpec:
        """Every registry's stack (3 apps each, state folder ``states[msp]``) up, ``run``
        proposed (see :meth:`propose`) and approved by all, trained until every app is
        done, the stacks down. A failure shows each app's log tail and aborts the run,
        so no started run is left behind for later apps on this ledger."""
        stacks = [RegistryStack(self.profile.home, m, states[m]) for m in self.profile.msp_ids]
        finished = False
        try:
            for st in stacks:
                st.up(self.data[st.msp], exit_after=1)
            spec = self.propose(run, **overrides)
            self.approve_all(run)
            outcomes = {st.msp: st.wait_idle(run, timeout=timeout) for st in stacks}
            if any(set(o.values()) != {"done"} for o in outcomes.values()):
                logs = {st.msp: {r: st.log_path(r).read_text()[-3000:] for r in ROLES} for st in stacks}
                raise AssertionError(f"not every app finished {run}: {outcomes}\n{logs}")
            finished = True
            return spec
        finally:
            for st in stacks:
                st.down(grace=5)
            if not finished:
                with contextlib.suppress(Exception):  # the run may never have been proposed
                    admin.abort_run(self.profile, self.profile.msp_ids[0], run, "test failed")

    def reference_generator(self, spec: RunSpec, run: str) -> np.ndarray:
        """The generator the single-process ledger path (one driver, every app identity)
        trains for ``spec``, recorded under run id ``run``."""
        frames = [load_registry_csv(self.data[m], spec.schema()) for m in self.profile.msp_ids]
        with ExitStack() as stack:
            def app(msp: str, role: str) -> Contract:
                return stack.enter_context(open_gateway(self.profile, msp, role)).network("gan").contract(
                    "ganledger")
            msps = list(self.profile.msp_ids)
            steps = LedgerSteps(run, [RegistryStepClients(m, app(m, "generator"), app(m, "discriminator"),
                                                          Workspace(self.base / "single" / run / m)) for m in msps],
                                msps)
            aggregator = LedgerAggregator({m: app(m, "merger") for m in msps}, msps, run)
            encoder = build_encoder(frames, spec.schema(), spec.config)
            single = train_federated(frames, spec.schema(), spec.config, progress=False, aggregate=aggregator,
                                     step=steps, encoder=encoder)
        return single.generator_vector()

    def plant_tampered_first_batch(self, spec: RunSpec, msp: str, state: Path) -> str:
        """Put other bytes under the hash of ``msp``'s first fake batch in the workspace
        of its stack's ``state`` folder, before its generator writes the batch (the
        workspace keeps an existing file; the batch is deterministic). Returns the hash."""
        from synthreg.data.hashing import array_bytes, array_sha256
        from synthreg.gan.models import build_models
        from synthreg.gan.step import GeneratorSide, derive_seed

        frames = [load_registry_csv(self.data[m], spec.schema()) for m in self.profile.msp_ids]
        encoder = build_encoder(frames, spec.schema(), spec.config)
        gen, _ = build_models(encoder.output_dim, spec.config.model_config(encoder.schema), spec.config.seed)
        side = GeneratorSide(gen, encoder.output_info, spec.config.tau, spec.config.optim_config())
        r = spec.registry_index(msp)
        fake = side.make_fake(spec.config.batch_size, derive_seed(spec.config.seed, "noise", r, 0, 0)).array
        digest = array_sha256(fake)
        planted = state / "workspace" / digest[:2] / digest
        planted.parent.mkdir(parents=True)
        planted.write_bytes(array_bytes(fake + np.float32(1.0)))
        return digest

    def audit(self, run: str, states: dict[str, Path], key_dir: Path) -> TrailReport:
        """The auditor's verification of ``run``, as the demo's stage 7 does it: two
        registries release their audit-key shares to a fresh auditor key, the key is
        unsealed in memory and the trail checked against the registries' workspaces
        (``states``: msp -> its stack's state folder)."""
        from synthreg.chain.keyvault import LedgerKeyVault
        from synthreg.crypto.ckks import load_public_context
        from synthreg.demo import unseal_and_verify
        from synthreg.keys.keyfiles import (
            generate_auditor_key,
            load_auditor_keypair,
            load_auditor_public_key,
            load_org_keypair,
        )
        from synthreg.keys.release import release_to_auditor
        from synthreg.trail.verify import verify_run

        files = generate_auditor_key(key_dir)
        auditor_pub = load_auditor_public_key(files.public_key_file)
        msps = list(self.profile.msp_ids)
        for m in msps[:2]:
            with open_gateway(self.profile, m, "admin") as gw:
                release_to_auditor(LedgerKeyVault(gw.network("keys").contract("keyvault")), m,
                                   load_org_keypair(self.profile.org(m).share_key_dir), auditor_pub)
        with open_gateway(self.profile, msps[0], "auditor") as gw:
            vault = LedgerKeyVault(gw.network("keys").contract("keyvault"))
            public = load_public_context(vault.get_ceremony_record().public_context)
            contract = gw.network("gan").contract("ganledger")
            workspaces = {m: Workspace(states[m] / "workspace") for m in msps}
            _summary, report = unseal_and_verify(vault, load_auditor_keypair(key_dir), key_dir.parent / "unsealed",
                                                 lambda secret: verify_run(run, contract, secret, public, workspaces))
        return report


def make_consortium(profile: Profile, base: Path) -> Consortium:
    """Each registry's own CSV (120 rows of its non-IID split) and schema copy on disk;
    the audit ceremony on `keys` (run once per network)."""
    schema = dataset_schema("rotterdam")
    schema_file = base / "schema.yaml"
    schema_file.write_text(schema.dump())
    parts = split_registries(load_dataset("rotterdam"), len(profile.msp_ids), "non-iid", seed=0, by="year")
    data = {}
    for msp, part in zip(profile.msp_ids, parts, strict=True):
        data[msp] = base / msp / "data.csv"
        data[msp].parent.mkdir(parents=True)
        part.head(120).to_csv(data[msp], index=False)
    ensure_ceremony(profile, t=2, log=lambda _m: None)
    return Consortium(profile, base, schema_file, data)
