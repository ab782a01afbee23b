"""A registry that joined after the key ceremony gets its own audit-key share.

Who calls: ``synthreg keys request-share`` (the newcomer), ``synthreg keys
contribute-share --for NEWCOMER`` (each chosen holder), ``synthreg keys
complete-share`` (the newcomer), each with a :class:`~synthreg.keys.vault.KeyVault`
acting as that org's ``admin`` and the org's own share key pair
(``share_key_dir``). The arithmetic and what each party learns are in
:mod:`synthreg.crypto.extension`; the order of steps and who may take each is
enforced by the keyvault chaincode (``chaincode/keyvault/extend.go``).

1. :func:`request_share`: the newcomer names ``t`` holders whose shares are
   usable (default: the ``t`` lowest share indices) and its share public key;
   the ledger gives it the next free share index.
2. :func:`contribute_share`: each holder reads its own share back from its
   collection (checked against the on-chain hash and its commitment, like a
   release), computes its masked term and records it encrypted to the newcomer.
3. :func:`complete_share`: the newcomer opens the ``t`` contributions, adds
   them up, seals its share to its own key into its own collection
   (``PutOwnShare``, endorsed by its own peer only) and publishes the share's
   commitment (``CompleteShare``). Re-running after a crash between the two
   writes reuses the share already stored (it must be the same).

From then on ``synthreg keys release`` and the auditor treat the new share like
a ceremony share. Plaintext shares exist only in memory, inside these calls.
"""

from __future__ import annotations

from collections.abc import Sequence

from synthreg.crypto.ceremony import open_share
from synthreg.crypto.extension import ExtensionError, ExtensionPlan, assemble, contribute
from synthreg.crypto.shamir import Share, commit
from synthreg.crypto.transport import PURPOSE_SHARE, EnvelopeContext, EnvelopeError, RecipientKeyPair, seal_to
from synthreg.keys.errors import ExtensionStateError, ShareIntegrityError, VaultNotFoundError
from synthreg.keys.records import ExtensionRecord, decode_envelope, encode_envelope
from synthreg.keys.release import read_own_share
from synthreg.keys.vault import KeyVault

__all__ = ["complete_share", "contribute_share", "extension_plan", "request_share"]


def extension_plan(ext: ExtensionRecord) -> ExtensionPlan:
    """The :class:`ExtensionPlan` of a recorded extension."""
    return ExtensionPlan(ext.ceremony_id, ext.extension_id, ext.org, ext.share_index, ext.public_key, ext.holders)


def request_share(vault: KeyVault, org: str, org_key: RecipientKeyPair,
                  holders: Sequence[str] | None = None) -> ExtensionRecord:
    """Step 1 (newcomer ``org``): open the extension; returns the recorded extension.

    An extension already requested by ``org`` with this key is returned as is
    (a re-run after a lost reply). Raises :class:`ExtensionStateError` when
    fewer than ``t`` holders are usable, or ``org`` requested with another key.
    """
    facts = vault.get_ceremony()
    exts = vault.list_extensions()
    mine = exts.of(org)
    if mine is not None:
        if mine.public_key != org_key.public_raw():
            raise ExtensionStateError(org, "already requested with another share key")
        return mine
    if holders is None:
        _, index = exts.widen(facts.commitments, facts.share_index)
        usable = [o for o in index if o in facts.shares or o not in facts.share_index]
        if len(usable) < facts.t:
            raise ExtensionStateError(org, f"only {len(usable)} usable share holders ({usable}); t = {facts.t}")
        holders = sorted(usable, key=lambda o: index[o])[: facts.t]
    return vault.request_share(org_key.public_raw(), list(holders))


def _extension_of(vault: KeyVault, newcomer: str) -> ExtensionRecord:
    ext = vault.list_extensions().of(newcomer)
    if ext is None:
        raise ExtensionStateError(newcomer, "no share extension requested (synthreg keys request-share)")
    return ext


def contribute_share(vault: KeyVault, org: str, org_key: RecipientKeyPair, newcomer: str) -> ExtensionRecord:
    """Step 2 (holder ``org``): record ``org``'s masked term for ``newcomer``.

    Already contributed: the recorded extension is returned. Raises
    :class:`ExtensionStateError` (no extension, complete, ``org`` not chosen,
    own share or key not the one the extension recorded) or
    :class:`ShareIntegrityError` (own share fails its checks).
    """
    ext = _extension_of(vault, newcomer)
    if org in ext.contributions:
        return ext
    if ext.complete:
        raise ExtensionStateError(newcomer, "already complete")
    if org not in ext.holders:
        raise ExtensionStateError(newcomer, f"{org} is not one of the chosen holders {sorted(ext.holders)}")
    share = read_own_share(vault, org, org_key)
    try:
        envelope = contribute(extension_plan(ext), org, org_key, share)
    except ExtensionError as exc:
        raise ExtensionStateError(newcomer, str(exc)) from exc
    finally:
        del share
    return vault.contribute_share(newcomer, envelope.to_dict())


def complete_share(vault: KeyVault, org: str, org_key: RecipientKeyPair) -> ExtensionRecord:
    """Step 3 (newcomer ``org``): assemble, store and commit ``org``'s new share.

    Complete already: returned as is. Raises :class:`ExtensionStateError`
    (no extension, contributions missing, a contribution that cannot be opened,
    a stored share that differs from the assembled one).
    """
    ext = _extension_of(vault, org)
    if ext.complete:
        return ext
    missing = sorted(set(ext.holders) - set(ext.contributions))
    if missing:
        raise ExtensionStateError(org, f"waiting for contributions from {missing}")
    try:
        share = assemble(extension_plan(ext), org_key, ext.contributions)
    except ExtensionError as exc:
        raise ExtensionStateError(org, str(exc)) from exc
    commitment = commit(share, ext.ceremony_id)
    if _has_share(vault, org):  # PutOwnShare landed before a crash: reuse, never overwrite
        stored = _open_stored(vault, org, org_key, ext)
        if stored != share:
            raise ExtensionStateError(org, "the share already in the collection differs from the assembled one")
    else:
        envelope = seal_to(org_key.public_raw(), share.to_bytes(), EnvelopeContext(PURPOSE_SHARE, ext.ceremony_id, org))
        vault.put_own_share(encode_envelope(envelope))
    del share
    return vault.complete_share(commitment)


def _has_share(vault: KeyVault, org: str) -> bool:
    try:
        vault.get_share_hash(org)
    except VaultNotFoundError:
        return False
    return True


def _open_stored(vault: KeyVault, org: str, org_key: RecipientKeyPair, ext: ExtensionRecord) -> Share:
    own = vault.get_share(org)
    try:
        return open_share(org_key, decode_envelope(own.share, f"share of {org}"), ext.ceremony_id, org)
    except EnvelopeError as exc:
        raise ShareIntegrityError(org, f"cannot open own share with this org's key: {exc.reason}") from exc
