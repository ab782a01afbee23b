"""Register orgs as consortium members on the ledger (``RegisterMember`` on ``gan`` and ``keys``).

Both chaincodes admit a caller, and an org named in an argument, only when its MSP has a
member record on the channel (chaincode/README.md, "Consortium membership"). The record
is written by the org's own admin app identity (certificate attribute
``synthreg.role=admin``) and always names the caller's MSP, so each org registers
itself, with its own identity, once the chaincode definition it approved is committed:

- ``synthreg network up`` (:meth:`synthreg.network.launcher.Launcher.up`): every local org,
  right after both chaincodes are committed and before anything else uses them;
- ``synthreg consortium commit`` (:meth:`synthreg.network.onboarding.RegistryLauncher.commit`):
  the registry itself once both definitions are committed on its peer, founders as well
  as a registry added later (after the keys chaincode's sequence + 1 is committed).

Registration is idempotent: ``ALREADY_EXISTS`` (an earlier attempt landed, possibly one
whose answer was lost) counts as registered. The two channels' registrations, and those
of several orgs, are submitted concurrently, each blocking only until its own commit.
A failure without a chaincode verdict (peer not yet serving the new definition, ordering
or commit-status trouble) is retried until ``timeout``; a chaincode verdict other than
``ALREADY_EXISTS`` (e.g. ``ACCESS_DENIED`` for an identity without the admin role) is
raised at once as :class:`RegistrationError`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from synthreg.ledger import ChaincodeError, Contract, Gateway, LedgerError
from synthreg.network.launcher import NetworkError
from synthreg.network.profile import Profile, ProfileError
from synthreg.network.topology import CHAINCODES

Log = Callable[[str], None]
REGISTER = "RegisterMember"
LIST = "ListMembers"
RETRY_INTERVAL = 1.0
"""seconds between attempts after a failure without a chaincode verdict"""


class RegistrationError(NetworkError):
    """An org could not be registered on a channel (chained from the ledger error)."""

    def __init__(self, msp_id: str, channel: str, message: str) -> None:
        self.msp_id = msp_id
        self.channel = channel
        super().__init__(f"registering {msp_id} as a member of '{channel}' failed: {message}")


@dataclass(frozen=True)
class Registration:
    """One org's member record on one channel, as this call found or made it."""

    msp_id: str
    channel: str
    tx_id: str
    """the RegisterMember transaction that committed now; "" when it was registered before"""
    already: bool

    @property
    def verb(self) -> str:
        return "was already" if self.already else "registered as"


def register_on(contract: Contract, msp_id: str, *, timeout: float = 60.0,
                sleep: Callable[[float], None] = time.sleep) -> Registration:
    """Submit ``RegisterMember`` on ``contract`` (signed by ``msp_id``'s admin) until it
    commits or the chaincode answers ``ALREADY_EXISTS``; retries failures without a
    chaincode verdict until ``timeout`` seconds have passed."""
    channel = contract.network.name
    deadline = time.monotonic() + timeout
    while True:
        try:
            res = contract.submit(REGISTER)
        except ChaincodeError as exc:
            if exc.chaincode.code == "ALREADY_EXISTS":
                return Registration(msp_id, channel, "", already=True)
            raise RegistrationError(msp_id, channel, str(exc)) from exc
        except LedgerError as exc:
            if time.monotonic() >= deadline:
                raise RegistrationError(msp_id, channel, f"{exc} (retried for {timeout:.0f}s)") from exc
            sleep(RETRY_INTERVAL)
            continue
        record = _record(res.result)
        if record.get("msp") != msp_id:
            raise RegistrationError(msp_id, channel, f"the chaincode recorded {record.get('msp')!r}")
        return Registration(msp_id, channel, res.tx_id, already=False)


def register_org(gateway: Gateway, msp_id: str, chaincodes: Mapping[str, str] = CHAINCODES, *,
                 timeout: float = 60.0) -> list[Registration]:
    """Register ``msp_id`` (whose admin ``gateway`` signs as) on every channel of
    ``chaincodes`` (channel -> chaincode), the channels concurrently."""
    items = sorted(chaincodes.items())
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        futures = [pool.submit(register_on, gateway.network(ch).contract(cc), msp_id, timeout=timeout)
                   for ch, cc in items]
        return [f.result() for f in futures]


def register_members(profile: Profile, msp_ids: Sequence[str], log: Log = print, *,
                     timeout: float = 60.0) -> list[Registration]:
    """Register each org of ``msp_ids`` on every channel of ``profile``, each with its own
    admin identity from the profile (so only orgs whose identities this home holds), all
    orgs concurrently. Logs one line per org and channel."""
    from synthreg.network.client import open_gateway

    chaincodes = {ch: profile.chaincodes[ch] for ch in profile.channels if ch in profile.chaincodes}

    def one(msp_id: str) -> list[Registration]:
        try:
            with open_gateway(profile, msp_id, "admin") as gw:
                return register_org(gw, msp_id, chaincodes, timeout=timeout)
        except (LedgerError, ProfileError) as exc:  # no identity, or its peer unreachable
            raise RegistrationError(msp_id, "/".join(sorted(chaincodes)), str(exc)) from exc

    out: list[Registration] = []
    with ThreadPoolExecutor(max_workers=max(1, len(msp_ids))) as pool:
        for regs in pool.map(one, msp_ids):
            for r in regs:
                log(f"{r.msp_id} {r.verb} a member of '{r.channel}'" + (f" (tx {r.tx_id[:16]}...)" if r.tx_id else ""))
            out += regs
    return out


def list_members(contract: Contract) -> list[dict[str, Any]]:
    """The member records of the contract's channel (``ListMembers``), sorted by MSP ID."""
    raw = json.loads(contract.evaluate(LIST) or b"[]")
    if not isinstance(raw, list):
        raise ValueError(f"ListMembers returned {raw!r}, not a list")
    return raw


def _record(result: bytes) -> dict[str, Any]:
    try:
        data = json.loads(result)
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


__all__ = ["Registration", "RegistrationError", "list_members", "register_members", "register_on",
           "register_org"]
