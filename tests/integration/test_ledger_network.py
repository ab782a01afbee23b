"""The Python Gateway client against the real local network (issue 2 acceptance).

Every test here talks to real peers, orderers and chaincode servers over TLS;
nothing is faked.
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import grpc
import pytest

from synthreg.ledger import (
    Checkpoint,
    EndorseError,
    EvaluateError,
    Gateway,
    GatewayError,
    connect,
    ecdsa_signer,
    high_s,
    is_low_s,
)
from synthreg.ledger.testing import make_test_identity
from synthreg.network.client import open_gateway
from synthreg.network.members import list_members, register_org
from synthreg.network.profile import Profile

R1, R2 = "Registry1MSP", "Registry2MSP"


def _record(i: int | str) -> str:
    return json.dumps({"i": i, "kind": "integration-test"})


def test_submit_commits_and_event_reaches_listener(profile: Profile, unique: str) -> None:
    with open_gateway(profile, R1, "generator") as gw:
        net = gw.network("gan")
        result = net.contract("ganledger").submit("PutRecord", f"it-{unique}", _record(1))
        assert result.status_name == "VALID"
        assert len(result.tx_id) == 64
        stored = json.loads(net.contract("ganledger").evaluate("GetRecord", f"it-{unique}"))
        assert stored["msp"] == R1 and stored["role"] == "generator" and stored["txid"] == result.tx_id
        with net.chaincode_events("ganledger", start_block=result.block_number, timeout=30) as events:
            ev = next(e for e in events if e.tx_id == result.tx_id)
        assert ev.event_name == "RecordPut"
        assert json.loads(ev.payload)["key"] == f"it-{unique}"
        assert ev.block_number == result.block_number


def test_listener_resumes_without_duplicates_or_gaps(profile: Profile, unique: str, tmp_path: Path) -> None:
    """A listener that stops after 2 events and restarts from its checkpoint sees every
    one of our events exactly once, including those committed while it was down."""
    ckpt = Checkpoint(tmp_path / "listener.json")
    keys = [f"resume-{unique}-{i}" for i in range(6)]
    with open_gateway(profile, R1, "generator") as gw:
        net = gw.network("gan")
        contract = net.contract("ganledger")
        first = contract.submit("PutRecord", keys[0], _record(0))
        for k in keys[1:3]:
            contract.submit("PutRecord", k, _record(k))
        seen: list[str] = []

        def ours(payload: bytes) -> str | None:
            key = json.loads(payload).get("key", "")
            return key if key in keys else None

        # first run: handle two of our events, checkpointing each, then "crash"
        with net.chaincode_events("ganledger", start_block=first.block_number, timeout=30) as events:
            for ev in events:
                if (key := ours(ev.payload)) is not None:
                    seen.append(key)
                ckpt.record(ev)
                if len(seen) == 2:
                    break
        # while down, more transactions commit
        for k in keys[3:]:
            contract.submit("PutRecord", k, _record(k))
        # second run: resume from the checkpoint only
        resumed = Checkpoint(tmp_path / "listener.json")
        assert resumed.block_number is not None and resumed.tx_id is not None
        with net.chaincode_events("ganledger", start_block=resumed.block_number,
                                  after_tx_id=resumed.tx_id, timeout=30) as events:
            for ev in events:
                if (key := ours(ev.payload)) is not None:
                    seen.append(key)
                if len(seen) >= len(keys):
                    break
    assert seen == keys, "each event exactly once, in ledger order"


def test_private_value_readable_only_by_its_org(profile: Profile, unique: str) -> None:
    key = f"secret-{unique}"
    value = b"registry-1 only: " + unique.encode()
    with open_gateway(profile, R1, "admin") as gw1:
        kv = gw1.network("keys").contract("keyvault")
        res = kv.submit("PutPrivate", key, transient={"value": value}, endorsing_orgs=[R1])
        assert res.status_name == "VALID"
        got = json.loads(kv.evaluate("GetPrivate", R1, key))
        assert base64.b64decode(got["value_b64"]) == value
    with open_gateway(profile, R2, "admin") as gw2:
        kv2 = gw2.network("keys").contract("keyvault")
        with pytest.raises(EvaluateError) as err:
            kv2.evaluate("GetPrivate", R1, key)
        assert "denied" in str(err.value).lower() or "access" in str(err.value).lower()
        # the on-chain hash is public: Registry2 can verify a value shown to it, not read it
        digest = kv2.evaluate("GetPrivateHash", R1, key).decode()
        import hashlib

        assert hashlib.sha256(value).hexdigest() in digest


def test_private_write_does_not_reach_other_orgs_in_transaction(profile: Profile, unique: str) -> None:
    """The transient value never appears in the committed transaction (only its hash)."""
    key = f"secret2-{unique}"
    marker = f"MARKER-{unique}".encode()
    with open_gateway(profile, R1, "admin") as gw1:
        kv = gw1.network("keys").contract("keyvault")
        res = kv.submit("PutPrivate", key, transient={"value": marker}, endorsing_orgs=[R1])
        block = _fetch_block_bytes(gw1, "keys", res.block_number)
    assert marker not in block, "private value leaked into the block"


def _fetch_block_bytes(gw: Gateway, channel: str, number: int) -> bytes:
    return gw.network(channel).contract("qscc").evaluate("GetBlockByNumber", channel, str(number))


def test_identity_outside_consortium_is_rejected(profile: Profile, unique: str) -> None:
    identity, key = make_test_identity("OutsiderMSP", role="generator")
    org = profile.org(R1)
    channel = connect(org.peer_endpoint, org.tls_ca_cert.read_bytes())
    try:
        gw = Gateway(identity, ecdsa_signer(key), channel)
        with pytest.raises(GatewayError) as err:
            gw.network("gan").contract("ganledger").submit("PutRecord", f"out-{unique}", _record(0))
        assert isinstance(err.value, (EndorseError, EvaluateError))
        assert err.value.code in (grpc.StatusCode.ABORTED, grpc.StatusCode.PERMISSION_DENIED,
                                  grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.FAILED_PRECONDITION)
    finally:
        channel.close()
    # nothing was written
    with open_gateway(profile, R1, "generator") as gw, pytest.raises(EvaluateError):
        gw.network("gan").contract("ganledger").evaluate("GetRecord", f"out-{unique}")


def test_peer_rejects_high_s_and_accepts_all_client_signatures(profile: Profile, unique: str) -> None:
    signatures: list[bytes] = []

    def recording(signer):  # type: ignore[no-untyped-def]
        def sign(digest: bytes) -> bytes:
            sig = signer(digest)
            signatures.append(sig)
            return sig
        return sign

    with open_gateway(profile, R1, "generator", wrap_signer=recording) as gw:
        contract = gw.network("gan").contract("ganledger")
        contract.submit("PutRecord", f"lows-{unique}", _record(0))
        for _ in range(25):
            contract.evaluate("GetRecord", f"lows-{unique}")
    assert len(signatures) >= 27 and all(is_low_s(s) for s in signatures)

    # the same identity, the same call, only the signature's S flipped to the high half:
    # the peer's proposal validation refuses it (Fabric reports a failed creator
    # signature check as "access denied ... creator org")
    with open_gateway(profile, R1, "generator", wrap_signer=lambda s: (lambda d: high_s(s(d)))) as gw:
        contract = gw.network("gan").contract("ganledger")
        with pytest.raises(EvaluateError) as err:
            contract.evaluate("GetRecord", f"lows-{unique}")
        assert "access denied" in str(err.value) and R1 in str(err.value)
        with pytest.raises(EndorseError) as err2:
            contract.submit("PutRecord", f"highs-{unique}", _record(0))
        assert "access denied" in str(err2.value)
    with open_gateway(profile, R1, "generator") as gw, pytest.raises(EvaluateError, match="NOT_FOUND"):
        gw.network("gan").contract("ganledger").evaluate("GetRecord", f"highs-{unique}")


def test_concurrent_listeners_and_submitters(profile: Profile, unique: str) -> None:
    """Two orgs submit at once; a listener on a third org's peer sees all of them."""
    keys = {R1: [f"cc-{unique}-r1-{i}" for i in range(3)], R2: [f"cc-{unique}-r2-{i}" for i in range(3)]}
    errors: list[BaseException] = []
    blocks: list[int] = []

    def submit(msp: str) -> None:
        try:
            with open_gateway(profile, msp, "discriminator") as gw:
                c = gw.network("gan").contract("ganledger")
                for k in keys[msp]:
                    blocks.append(c.submit("PutRecord", k, _record(k)).block_number)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(m,)) for m in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    want = set(keys[R1] + keys[R2])
    got: set[str] = set()
    with (
        open_gateway(profile, "Registry3MSP", "merger") as gw,
        gw.network("gan").chaincode_events("ganledger", start_block=min(blocks), timeout=30) as events,
    ):
        for ev in events:
            k = json.loads(ev.payload).get("key")
            if k in want:
                got.add(k)
            if got == want:
                break
    assert got == want


def test_attack_foreign_ca_claims_consortium_msp(profile: Profile, unique: str) -> None:
    """Issue 10: a certificate from a freshly generated CA (not Registry1's) that claims
    MSP ID Registry1MSP, with the client OU and a merger role attribute, looks like a
    Registry1 app to anything that trusts the MSP ID; the peer validates it against
    Registry1's root CA from the channel configuration and refuses it, for reads and
    writes alike, so nothing is written."""
    from synthreg.ledger import Identity
    from synthreg.network.pki import issue, make_ca

    ca = make_ca("ca.registry1.example.com", R1)  # same names as the real CA, other key
    pair = issue(ca, "merger@registry1.example.com", R1, ou="client", attributes={"synthreg.role": "merger"})
    org = profile.org(R1)
    channel = connect(org.peer_endpoint, org.tls_ca_cert.read_bytes())
    try:
        gw = Gateway(Identity(R1, pair.cert_pem), ecdsa_signer(pair.key), channel)
        contract = gw.network("gan").contract("ganledger")
        with pytest.raises(EvaluateError) as read:
            contract.evaluate("GetRecord", f"foreign-{unique}")
        with pytest.raises(EndorseError) as write:
            contract.submit("PutRecord", f"foreign-{unique}", _record(0))
    finally:
        channel.close()
    for err in (read.value, write.value):  # the peer's MSP check, before any chaincode runs
        assert f"{R1}): error validating proposal: access denied: channel [gan] creator" in str(err), err
    with open_gateway(profile, R1, "auditor") as gw, pytest.raises(EvaluateError) as missing:
        gw.network("gan").contract("ganledger").evaluate("GetRecord", f"foreign-{unique}")
    assert "NOT_FOUND" in str(missing.value)


def test_membership_is_kept_on_each_channel(profile: Profile) -> None:
    """`network up` had every org register itself on both channels with its own admin;
    registering again is ALREADY_EXISTS (= registered), only an admin may register, and
    an org that never registered is refused where an argument names it."""
    for channel, chaincode in profile.chaincodes.items():
        with open_gateway(profile, R2, "auditor") as gw:
            members = list_members(gw.network(channel).contract(chaincode))
        assert [m["msp"] for m in members] == profile.msp_ids
        assert all(len(m["txid"]) == 64 and m["admin_subject"] and m["timestamp"] for m in members)
    with open_gateway(profile, R1, "admin") as gw:
        assert all(r.already for r in register_org(gw, R1, profile.chaincodes))
    with open_gateway(profile, R1, "merger") as gw, pytest.raises(EndorseError) as denied:
        gw.network("keys").contract("keyvault").submit("RegisterMember")
    assert "ACCESS_DENIED" in str(denied.value) and "allowed: admin" in str(denied.value)
    with open_gateway(profile, R1, "generator") as gw:
        with pytest.raises(EvaluateError) as unknown:
            gw.network("gan").contract("ganledger").evaluate("GetStepHead", "run-x", "Registry9MSP")
        assert 'INVALID_ARGUMENT: argument "msp": "Registry9MSP" is not a registered member of channel gan' \
            in str(unknown.value)
        with pytest.raises(EvaluateError) as unknown_org:
            gw.network("keys").contract("keyvault").evaluate("GetShareHash", "Registry9MSP")
        assert "not a registered member of channel keys" in str(unknown_org.value)
