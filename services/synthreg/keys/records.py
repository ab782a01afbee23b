"""Typed views of the keyvault's JSON results, and the share wire format.

Who calls: the service modules of :mod:`synthreg.keys` parse every chaincode
result through here, so a shape change fails in one place with
:class:`~synthreg.keys.errors.RecordFormatError` naming the record. The JSON
shapes are documented in ``chaincode/README.md`` (keyvault).

Share wire format: an encrypted share (an
:class:`~synthreg.crypto.transport.Envelope`) travels as canonical JSON bytes
(:func:`encode_envelope`: sorted keys, no spaces) — in the transient map of
``PutShare`` and as the value of the org's collection; its sha256 is the
on-chain private data hash (``GetShareHash``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synthreg.crypto.seal import SealedKey, SealedKeyFormatError
from synthreg.crypto.shamir import ShareCommitments, ShareFormatError
from synthreg.crypto.transport import Envelope, KeyFormatError
from synthreg.keys.errors import RecordFormatError

__all__ = [
    "CeremonyFacts",
    "CeremonyRecord",
    "ExtensionRecord",
    "Extensions",
    "OwnShare",
    "ReleaseRecord",
    "Releases",
    "decode_envelope",
    "encode_envelope",
    "parse_json",
]


def encode_envelope(envelope: Envelope) -> bytes:
    """Canonical JSON bytes of an envelope (what a collection stores)."""
    return json.dumps(envelope.to_dict(), sort_keys=True, separators=(",", ":")).encode("utf-8")


def decode_envelope(data: bytes, what: str) -> Envelope:
    """Inverse of :func:`encode_envelope`. Raises :class:`RecordFormatError`."""
    try:
        obj = json.loads(data)
        if not isinstance(obj, dict):
            raise TypeError("not a JSON object")
        return Envelope.from_dict(obj)
    except (ValueError, TypeError, KeyFormatError) as exc:
        raise RecordFormatError(what, f"not an envelope: {exc}") from exc


def parse_json(raw: bytes | str, what: str) -> dict[str, Any]:
    """A JSON object from a chaincode result. Raises :class:`RecordFormatError`."""
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise RecordFormatError(what, f"not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise RecordFormatError(what, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _get(d: Mapping[str, Any], key: str, typ: type, what: str) -> Any:
    value = d.get(key)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise RecordFormatError(what, f"field {key!r} missing or not {typ.__name__}")
    return value


def _b64(d: Mapping[str, Any], key: str, what: str) -> bytes:
    try:
        return base64.b64decode(_get(d, key, str, what), validate=True)
    except binascii.Error as exc:
        raise RecordFormatError(what, f"field {key!r} is not base64") from exc


def _commitments(d: Mapping[str, Any], what: str) -> ShareCommitments:
    try:
        return ShareCommitments.from_dict(_get(d, "commitments", dict, what))
    except ShareFormatError as exc:
        raise RecordFormatError(what, str(exc)) from exc


def _share_index(d: Mapping[str, Any], what: str) -> dict[str, int]:
    raw = _get(d, "share_index", dict, what)
    if not all(isinstance(k, str) and isinstance(v, int) for k, v in raw.items()):
        raise RecordFormatError(what, "share_index must map org -> int")
    return dict(raw)


@dataclass(frozen=True)
class CeremonyFacts:
    """``GetCeremony``: the public facts (no blobs) and the distributed shares' hashes."""

    ceremony_id: str
    t: int
    n: int
    public_context_hash: str
    commitments: ShareCommitments
    share_index: dict[str, int]
    host_msp: str
    tx_id: str
    timestamp: str
    shares: dict[str, str]
    """org -> sha256 of its distributed (encrypted) share; absent = not distributed"""
    raw: dict[str, Any]

    @classmethod
    def parse(cls, raw: bytes | str) -> CeremonyFacts:
        what = "ceremony facts (GetCeremony)"
        d = parse_json(raw, what)
        host = _get(d, "host", dict, what)
        shares = d.get("shares") or {}
        if not isinstance(shares, dict):
            raise RecordFormatError(what, "field 'shares' is not an object")
        return cls(
            ceremony_id=_get(d, "ceremony_id", str, what),
            t=_get(d, "t", int, what),
            n=_get(d, "n", int, what),
            public_context_hash=_get(d, "public_context_hash", str, what),
            commitments=_commitments(d, what),
            share_index=_share_index(d, what),
            host_msp=_get(host, "msp", str, what),
            tx_id=_get(d, "txid", str, what),
            timestamp=str(d.get("timestamp", "")),
            shares={str(k): str(v) for k, v in shares.items()},
            raw=d,
        )


@dataclass(frozen=True)
class CeremonyRecord:
    """``GetCeremonyRecord``: the ceremony's ``public_record()`` with its blobs decoded."""

    ceremony_id: str
    t: int
    n: int
    public_context_hash: str
    public_context: bytes
    sealed_key: SealedKey
    commitments: ShareCommitments
    share_index: dict[str, int]
    test_ciphertext: bytes
    test_ciphertext_sha256: str

    @classmethod
    def parse(cls, raw: bytes | str) -> CeremonyRecord:
        what = "ceremony record (GetCeremonyRecord)"
        d = parse_json(raw, what)
        try:
            sealed = SealedKey.from_dict(_get(d, "sealed_key", dict, what))
        except SealedKeyFormatError as exc:
            raise RecordFormatError(what, str(exc)) from exc
        return cls(
            ceremony_id=_get(d, "ceremony_id", str, what),
            t=_get(d, "t", int, what),
            n=_get(d, "n", int, what),
            public_context_hash=_get(d, "public_context_hash", str, what),
            public_context=_b64(d, "public_context_b64", what),
            sealed_key=sealed,
            commitments=_commitments(d, what),
            share_index=_share_index(d, what),
            test_ciphertext=_b64(d, "test_ciphertext_b64", what),
            test_ciphertext_sha256=_get(d, "test_ciphertext_sha256", str, what),
        )


@dataclass(frozen=True)
class OwnShare:
    """``GetShare(org)``: the org's encrypted share as stored in its collection."""

    ceremony_id: str
    org: str
    share_index: int
    share: bytes
    sha256: str

    @classmethod
    def parse(cls, raw: bytes | str) -> OwnShare:
        what = "own share (GetShare)"
        d = parse_json(raw, what)
        return cls(
            ceremony_id=_get(d, "ceremony_id", str, what),
            org=_get(d, "org", str, what),
            share_index=_get(d, "share_index", int, what),
            share=_b64(d, "share_b64", what),
            sha256=_get(d, "sha256", str, what),
        )


@dataclass(frozen=True)
class ReleaseRecord:
    """One public release: ``org`` released share ``share_index`` to ``auditor``."""

    ceremony_id: str
    auditor: str
    org: str
    share_index: int
    envelope: Envelope
    envelope_sha256: str
    released_by_msp: str
    tx_id: str
    timestamp: str

    @classmethod
    def parse_obj(cls, d: Mapping[str, Any]) -> ReleaseRecord:
        what = "release record"
        org = _get(d, "org", str, what)
        try:
            envelope = Envelope.from_dict(_get(d, "envelope", dict, what))
        except KeyFormatError as exc:
            raise RecordFormatError(f"release by {org}", f"envelope: {exc}") from exc
        by = _get(d, "released_by", dict, what)
        return cls(
            ceremony_id=_get(d, "ceremony_id", str, what),
            auditor=_get(d, "auditor", str, what),
            org=org,
            share_index=_get(d, "share_index", int, what),
            envelope=envelope,
            envelope_sha256=_get(d, "envelope_sha256", str, what),
            released_by_msp=_get(by, "msp", str, what),
            tx_id=_get(d, "txid", str, what),
            timestamp=str(d.get("timestamp", "")),
        )

    def summary(self) -> dict[str, Any]:
        """JSON-able public facts (no envelope)."""
        return {
            "org": self.org,
            "share_index": self.share_index,
            "envelope_sha256": self.envelope_sha256,
            "txid": self.tx_id,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True)
class Releases:
    """``ListReleases(auditor)``: every release to one auditor, sorted by org."""

    ceremony_id: str
    auditor: str
    t: int
    releases: tuple[ReleaseRecord, ...]

    @classmethod
    def parse(cls, raw: bytes | str) -> Releases:
        what = "release list (ListReleases)"
        d = parse_json(raw, what)
        items = _get(d, "releases", list, what)
        if not all(isinstance(x, dict) for x in items):
            raise RecordFormatError(what, "releases must be objects")
        return cls(
            ceremony_id=_get(d, "ceremony_id", str, what),
            auditor=_get(d, "auditor", str, what),
            t=_get(d, "t", int, what),
            releases=tuple(ReleaseRecord.parse_obj(x) for x in items),
        )


@dataclass(frozen=True)
class ExtensionRecord:
    """One share extension (``ListExtensions``): a newcomer's share from ``t`` holders.

    ``holders`` maps each chosen holder to ``(share index, raw share public key)``;
    ``contributions`` holds the envelopes received so far. ``complete`` once the
    newcomer published its commitment (``CompleteShare``).
    """

    extension_id: str
    ceremony_id: str
    org: str
    share_index: int
    public_key: bytes
    holders: dict[str, tuple[int, bytes]]
    contributions: dict[str, Envelope]
    commitment: str
    share_sha256: str
    completed_tx_id: str

    @property
    def complete(self) -> bool:
        return bool(self.completed_tx_id)

    @classmethod
    def parse_obj(cls, d: Mapping[str, Any]) -> ExtensionRecord:
        org = str(d.get("org", "?"))
        what = f"share extension of {org}"
        index = _get(d, "holder_index", dict, what)
        keys = _get(d, "holder_public_keys", dict, what)
        try:
            holders = {str(h): (int(index[h]), bytes.fromhex(keys[h])) for h in _get(d, "holders", list, what)}
            contributions = {str(h): Envelope.from_dict(c["envelope"])
                             for h, c in (d.get("contributions") or {}).items()}
            public_key = bytes.fromhex(_get(d, "public_key", str, what))
        except (KeyError, TypeError, ValueError, KeyFormatError) as exc:
            raise RecordFormatError(what, f"holders or contributions: {exc!r}") from exc
        return cls(
            extension_id=_get(d, "extension_id", str, what),
            ceremony_id=_get(d, "ceremony_id", str, what),
            org=_get(d, "org", str, what),
            share_index=_get(d, "share_index", int, what),
            public_key=public_key,
            holders=holders,
            contributions=contributions,
            commitment=str(d.get("commitment", "")),
            share_sha256=str(d.get("share_sha256", "")),
            completed_tx_id=str(d.get("completed_txid", "")),
        )

    def summary(self) -> dict[str, Any]:
        """JSON-able public facts (no envelopes), as ``keys show`` and the CLI print them."""
        return {"org": self.org, "share_index": self.share_index, "holders": sorted(self.holders),
                "contributed": sorted(self.contributions), "complete": self.complete,
                "commitment": self.commitment, "share_sha256": self.share_sha256,
                "extension_id": self.extension_id}


@dataclass(frozen=True)
class Extensions:
    """``ListExtensions``: every share extension, sorted by share index."""

    ceremony_id: str
    extensions: tuple[ExtensionRecord, ...]

    @classmethod
    def parse(cls, raw: bytes | str) -> Extensions:
        what = "extension list (ListExtensions)"
        d = parse_json(raw, what)
        items = _get(d, "extensions", list, what)
        if not all(isinstance(x, dict) for x in items):
            raise RecordFormatError(what, "extensions must be objects")
        return cls(ceremony_id=_get(d, "ceremony_id", str, what),
                   extensions=tuple(ExtensionRecord.parse_obj(x) for x in items))

    def of(self, org: str) -> ExtensionRecord | None:
        """The extension of ``org``, or ``None``."""
        return next((e for e in self.extensions if e.org == org), None)

    def widen(self, commitments: ShareCommitments,
              share_index: Mapping[str, int]) -> tuple[ShareCommitments, dict[str, int]]:
        """The ceremony's commitments and share indices plus every complete extension's."""
        digests = dict(commitments.digests)
        index = dict(share_index)
        for e in self.extensions:
            if e.complete:
                digests[e.share_index] = e.commitment
                index[e.org] = e.share_index
        return ShareCommitments(commitments.ceremony_id, digests), index
