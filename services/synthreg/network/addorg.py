"""A registry joins a running consortium: a channel config update signed by a majority.

The steps (docs/deploy.md, "A registry joins later"):

1. The newcomer runs ``registry init`` and ``registry node up`` and sends its org
   definition, as the founders did.
2. Any member runs ``consortium add-org --org-def NEW.json --out DIR``
   (:func:`propose_add_org`): for ``keys`` and ``gan`` it fetches the newest config
   block from its own orderer, adds the newcomer to the Application and Orderer
   groups and its orderer to the Raft consenters, computes the update with
   ``configtxlator compute_update`` and signs it with its own admin.
3. Other members run ``consortium sign-update DIR`` (:func:`sign_update`): each
   first checks that the update adds exactly that org and its consenter and nothing
   else, then signs with its own admin. The channels' Admins policies are MAJORITY,
   so a majority of the members must have signed.
4. One member runs ``consortium submit-update DIR`` (:func:`submit_update`); it
   writes ``DIR/join.json`` for the newcomer: the genesis and newest config blocks
   and every member's definition.
5. Every member, and the newcomer, records the new member (``registry join`` for the
   newcomer; ``consortium sync DIR`` for the others): the keys chaincode gets the
   newcomer's private collection (definition sequence + 1, approved again by each
   member's admin), the newcomer approves ``ganledger`` at its committed sequence.
   ``consortium commit`` then commits once a majority approved, and the newcomer
   registers itself as a member of ``keys`` and ``gan`` with its own admin
   (``RegisterMember``; the members find themselves registered already).

No private key moves: the update files hold certificates, the config, and signatures.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from synthreg.network import fabricconfig
from synthreg.network.launcher import NetworkError, run_cmd
from synthreg.network.onboarding import Bundle, OnboardingError, RegistryLauncher, write_public_member
from synthreg.network.orgdef import OrgDef, check_distinct, check_reachable, load_org_def
from synthreg.network.topology import CHANNELS

Log = Callable[[str], None]
PROPOSAL_FILE = "proposal.json"
JOIN_FILE = "join.json"


def _ctl(launcher: RegistryLauncher, *args: str, stdin: bytes | None = None) -> bytes:
    exe = launcher.bin("configtxlator")
    out = subprocess.run([exe, *args], input=stdin, capture_output=True, timeout=120)
    if out.returncode != 0:
        raise NetworkError(f"configtxlator {args[0]} failed: {out.stderr.decode(errors='replace')[-2000:]}")
    return out.stdout


def decode(launcher: RegistryLauncher, kind: str, data: bytes) -> Any:
    return json.loads(_ctl(launcher, "proto_decode", "--type", kind, stdin=data))


def encode(launcher: RegistryLauncher, kind: str, obj: Any) -> bytes:
    return _ctl(launcher, "proto_encode", "--type", kind, stdin=json.dumps(obj).encode())


def fetch_block(launcher: RegistryLauncher, channel: str, which: str) -> bytes:
    """``which`` = "config" (the newest config block) or "0" (genesis), from the own orderer."""
    org = launcher.org
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "block.pb"
        run_cmd([launcher.bin("peer"), "channel", "fetch", which, str(out), "-c", channel,
                 *launcher.orderer_flags(org)], launcher.peer_admin_env(org))
        return out.read_bytes()


def _org_group(launcher: RegistryLauncher, d: OrgDef) -> dict[str, Any]:
    """The newcomer's org group as configtxgen prints it (MSP, policies, Endpoints)."""
    with tempfile.TemporaryDirectory() as tmp:
        member = write_public_member(Path(tmp) / "orgs", d)
        (Path(tmp) / "configtx.yaml").write_text(yaml.safe_dump(
            {"Organizations": [fabricconfig._org_section(member)]}, sort_keys=False))
        out = run_cmd([launcher.bin("configtxgen"), "-printOrg", d.msp_id, "-configPath", tmp])
    group: dict[str, Any] = json.loads(out.stdout)
    return group


def add_org_to_config(config: dict[str, Any], group: dict[str, Any], d: OrgDef) -> dict[str, Any]:
    """A copy of ``config`` with ``d`` in the Application and Orderer groups (values shaped
    like the existing orgs' of each section) and its orderer among the Raft consenters."""
    new: dict[str, Any] = json.loads(json.dumps(config))
    root = new["channel_group"]["groups"]
    org = d.org
    for section in ("Application", "Orderer"):
        orgs = root[section]["groups"]
        if d.msp_id in orgs:
            raise OnboardingError(f"{d.msp_id} is already in the {section} group of the channel")
        like = next(iter(orgs.values()))
        g = json.loads(json.dumps(group))
        g["values"] = {k: v for k, v in g["values"].items() if k in like["values"]}
        if "AnchorPeers" in like["values"]:
            g["values"]["AnchorPeers"] = {"mod_policy": "Admins", "version": "0", "value": {
                "anchor_peers": [{"host": org.host, "port": org.port("peer")}]}}
        orgs[d.msp_id] = g
    consenters = root["Orderer"]["values"]["ConsensusType"]["value"]["metadata"]["consenters"]
    cert = base64.b64encode(d.orderer_tls_cert.encode()).decode()
    consenters.append({"host": org.host, "port": org.port("orderer"), "client_tls_cert": cert,
                       "server_tls_cert": cert})
    return new


def _config_of(launcher: RegistryLauncher, block: bytes) -> dict[str, Any]:
    blk = decode(launcher, "common.Block", block)
    config: dict[str, Any] = blk["data"]["data"][0]["payload"]["data"]["config"]
    return config


def _update_envelope(launcher: RegistryLauncher, channel: str, old: dict[str, Any], new: dict[str, Any]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "old.pb", Path(tmp) / "new.pb"
        a.write_bytes(encode(launcher, "common.Config", old))
        b.write_bytes(encode(launcher, "common.Config", new))
        update = _ctl(launcher, "compute_update", "--channel_id", channel, "--original", str(a),
                      "--updated", str(b))
    env = {"payload": {"header": {"channel_header": {"channel_id": channel, "type": 2}},
                       "data": {"config_update": decode(launcher, "common.ConfigUpdate", update)}}}
    return encode(launcher, "common.Envelope", env)


def _sign(launcher: RegistryLauncher, path: Path) -> None:
    run_cmd([launcher.bin("peer"), "channel", "signconfigtx", "-f", str(path)], launcher.peer_admin_env(launcher.org))


def propose_add_org(launcher: RegistryLauncher, org_def: Path, out: Path, *, reachable: bool = True,
                    log: Log = print) -> None:
    launcher.load()
    d = load_org_def(org_def)
    members = _member_defs(launcher)
    check_distinct([*members, d])
    if reachable:
        check_reachable(d)
    if out.exists():
        raise OnboardingError(f"{out} exists; give a new folder for the update")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    group = _org_group(launcher, d)
    for ch in CHANNELS:
        config = _config_of(launcher, fetch_block(launcher, ch, "config"))
        env = _update_envelope(launcher, ch, config, add_org_to_config(config, group, d))
        path = tmp / f"{ch}-update.pb"
        path.write_bytes(env)
        _sign(launcher, path)
    (tmp / PROPOSAL_FILE).write_text(json.dumps({"org_def": d.to_dict(), "proposed_by": launcher.org.msp_id,
                                                 "signed_by": [launcher.org.msp_id]}, indent=2))
    tmp.rename(out)
    log(f"update adding {d.msp_id} to {', '.join(CHANNELS)} proposed and signed by {launcher.org.msp_id}: {out}")


def _member_defs(launcher: RegistryLauncher) -> list[OrgDef]:
    path = launcher.consortium_dir / "bundle.json"
    if not path.exists():
        raise OnboardingError(f"{launcher.cfg.home} has not joined a consortium")
    return Bundle.load(path).all_defs


def _proposal(out: Path) -> tuple[OrgDef, dict[str, Any]]:
    try:
        data = json.loads((out / PROPOSAL_FILE).read_text())
    except FileNotFoundError:
        raise OnboardingError(f"{out} holds no proposal ({PROPOSAL_FILE})") from None
    return OrgDef.from_dict(data["org_def"], f"{out / PROPOSAL_FILE}#org_def"), data


def check_update(launcher: RegistryLauncher, channel: str, envelope: bytes, d: OrgDef) -> None:
    """The update, applied to the channel's newest config, gives exactly the config with
    ``d`` added (org groups and consenter) and nothing else; else OnboardingError."""
    config = _config_of(launcher, fetch_block(launcher, channel, "config"))
    want = _update_envelope(launcher, channel, config, add_org_to_config(config, _org_group(launcher, d), d))
    have = decode(launcher, "common.Envelope", envelope)["payload"]["data"]["config_update"]
    expected = decode(launcher, "common.Envelope", want)["payload"]["data"]["config_update"]
    if have != expected:
        raise OnboardingError(f"the '{channel}' update does not only add {d.msp_id} and its orderer: refusing to sign")


def sign_update(launcher: RegistryLauncher, out: Path, log: Log = print) -> None:
    launcher.load()
    d, data = _proposal(out)
    check_distinct([*_member_defs(launcher), d])
    for ch in CHANNELS:
        path = out / f"{ch}-update.pb"
        check_update(launcher, ch, path.read_bytes(), d)
        _sign(launcher, path)
    data["signed_by"] = sorted({*data.get("signed_by", []), launcher.org.msp_id})
    (out / PROPOSAL_FILE).write_text(json.dumps(data, indent=2))
    log(f"{launcher.org.msp_id} checked and signed the update adding {d.msp_id} "
        f"(signed by {', '.join(data['signed_by'])})")


def submit_update(launcher: RegistryLauncher, out: Path, log: Log = print) -> Path:
    """Submit both updates (the orderers check the signatures against MAJORITY Admins),
    record the new member here, and write the newcomer's ``join.json``."""
    launcher.load()
    d, _data = _proposal(out)
    for ch in CHANNELS:
        config = _config_of(launcher, fetch_block(launcher, ch, "config"))
        if d.msp_id in config["channel_group"]["groups"]["Application"]["groups"]:
            continue  # submitted before (re-run after a failure)
        check_update(launcher, ch, (out / f"{ch}-update.pb").read_bytes(), d)  # submitting signs it too
        run_cmd([launcher.bin("peer"), "channel", "update", "-f", str(out / f"{ch}-update.pb"), "-c", ch,
                 *launcher.orderer_flags(launcher.org)], launcher.peer_admin_env(launcher.org))
        log(f"'{ch}': {d.msp_id} added (config update accepted by the orderers)")
    bundle = Bundle.load(launcher.consortium_dir / "bundle.json")
    blocks = {ch: fetch_block(launcher, ch, "0") for ch in CHANNELS}
    configs = {ch: fetch_block(launcher, ch, "config") for ch in CHANNELS}
    added = [a for a in bundle.added if a.msp_id != d.msp_id] + [d]
    join = Bundle(bundle.org_defs, blocks, bundle.batch_timeout, added=added, config_blocks=configs)
    path = out / JOIN_FILE
    path.write_text(json.dumps(join.to_dict(), indent=2))
    sync_members(launcher, path, log)
    return path


def sync_members(launcher: RegistryLauncher, join: Path, log: Log = print) -> None:
    """A member records the members added since it joined (from a ``join.json`` whose
    newest config blocks it checks against its own orderer's) and approves the keys
    chaincode again with their private collections."""
    from synthreg.network import chaincode as cc
    from synthreg.network.profile import write_profile
    from synthreg.network.topology import CHAINCODES

    launcher.load()
    new = Bundle.load(join)
    have = Bundle.load(launcher.consortium_dir / "bundle.json")
    if [x.to_dict() for x in new.org_defs] != [x.to_dict() for x in have.org_defs]:
        raise OnboardingError(f"{join} is of another consortium (its founding definitions differ)")
    for ch in CHANNELS:
        mine = _config_of(launcher, fetch_block(launcher, ch, "config"))
        names = set(mine["channel_group"]["groups"]["Application"]["groups"])
        missing = [a.msp_id for a in new.added if a.msp_id not in names]
        if missing:
            raise OnboardingError(f"'{ch}' on this registry's orderer does not include {missing} yet")
    new.verify_added()
    launcher.record_consortium(join)
    members = launcher.members()
    fabricconfig.write_collections_config(launcher.cfg, members)
    deployer = cc.Deployer(launcher)
    for channel, name in CHAINCODES.items():
        deployer.prepare(channel, name)
    write_profile(launcher.cfg, launcher.cryptos, members)
    log(f"{launcher.org.msp_id} knows {len(members)} members ({', '.join(m.org.msp_id for m in members)})")


__all__ = ["add_org_to_config", "check_update", "propose_add_org", "sign_update", "submit_update",
           "sync_members"]
