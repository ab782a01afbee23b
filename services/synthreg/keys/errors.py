"""Typed errors of the audit-key service layer (:mod:`synthreg.keys`).

One class per failure kind; each carries the ids it is about (function, org,
auditor, share index) and is raised ``from`` its cause (a
ledger error from :mod:`synthreg.chain`, a :mod:`synthreg.crypto` error, an
``OSError``). The CLIs (``synthreg keys``, ``synthreg audit``) catch
:class:`KeysError` and print ``str(err)`` as one line.

Chaincode errors: every keyvault error message starts with a stable code
(``ACCESS_DENIED``, ``ALREADY_EXISTS``, ``NOT_FOUND``, ``PRECONDITION_FAILED``,
``INVALID_ARGUMENT``, ``INTERNAL``; see ``chaincode/README.md``);
:func:`vault_error` maps a code (as the ledger client parsed it, in
:class:`synthreg.chain.keyvault.LedgerKeyVault`) to one :class:`VaultError`
subclass per code.
"""

from __future__ import annotations

from collections.abc import Sequence

from synthreg.crypto.shamir import NotEnoughSharesError

__all__ = [
    "AuditKeyError",
    "CeremonyExistsError",
    "DistributionError",
    "ExtensionStateError",
    "KeysError",
    "NoCeremonyError",
    "NotEnoughReleasesError",
    "OutputExistsError",
    "RecordFormatError",
    "ReleasedShareError",
    "ShareIntegrityError",
    "UnsealFailedError",
    "VaultAccessDeniedError",
    "VaultAlreadyExistsError",
    "VaultError",
    "VaultInternalError",
    "VaultInvalidArgumentError",
    "VaultNotFoundError",
    "VaultPreconditionError",
    "VaultUnavailableError",
    "vault_error",
]


class KeysError(Exception):
    """Base of every error raised by :mod:`synthreg.keys`."""


# --------------------------------------------------------------------- ledger


class VaultError(KeysError):
    """A keyvault call failed. ``fn`` is the chaincode function, ``code`` the
    chaincode's error code ("" if the failure happened outside the chaincode),
    ``detail`` the chaincode message (or the client error's text)."""

    code = ""

    def __init__(self, fn: str, detail: str, *, tx_id: str = "") -> None:
        self.fn = fn
        self.detail = detail
        self.tx_id = tx_id
        label = f"{self.code}: " if self.code and not detail.startswith(self.code) else ""
        super().__init__(f"keyvault {fn} failed: {label}{detail}")


class VaultAccessDeniedError(VaultError):
    """The caller's MSP or role may not do this (``ACCESS_DENIED``)."""

    code = "ACCESS_DENIED"


class VaultAlreadyExistsError(VaultError):
    """Write-once value already written (``ALREADY_EXISTS``)."""

    code = "ALREADY_EXISTS"


class VaultNotFoundError(VaultError):
    """No such value (``NOT_FOUND``)."""

    code = "NOT_FOUND"


class VaultPreconditionError(VaultError):
    """Wrong moment, e.g. no ceremony yet (``PRECONDITION_FAILED``)."""

    code = "PRECONDITION_FAILED"


class VaultInvalidArgumentError(VaultError):
    """The chaincode refused an argument (``INVALID_ARGUMENT``)."""

    code = "INVALID_ARGUMENT"


class VaultInternalError(VaultError):
    """The chaincode failed internally (``INTERNAL``)."""

    code = "INTERNAL"


class VaultUnavailableError(VaultError):
    """No chaincode verdict: connection, timeout, ordering or validation failure."""


_BY_CODE: dict[str, type[VaultError]] = {
    cls.code: cls
    for cls in (
        VaultAccessDeniedError,
        VaultAlreadyExistsError,
        VaultNotFoundError,
        VaultPreconditionError,
        VaultInvalidArgumentError,
        VaultInternalError,
    )
}


def vault_error(fn: str, code: str, detail: str, *, tx_id: str = "") -> VaultError:
    """The :class:`VaultError` subclass for a chaincode error ``code`` ("" or an
    unknown code: :class:`VaultUnavailableError`), carrying ``detail``."""
    return _BY_CODE.get(code, VaultUnavailableError)(fn, detail, tx_id=tx_id)


# ------------------------------------------------------------------ ceremony


class NoCeremonyError(KeysError):
    """No key ceremony is recorded on the ``keys`` channel yet."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"no key ceremony recorded yet ({detail}); run `synthreg keys ceremony`")
        self.detail = detail


class CeremonyExistsError(KeysError):
    """A ceremony is already recorded; the channel allows exactly one."""

    def __init__(self, ceremony_id: str, host_msp: str, detail: str = "") -> None:
        who = f" by {host_msp}" if host_msp else ""
        super().__init__(
            f"a key ceremony ({ceremony_id or 'unknown id'}) is already recorded{who}; "
            f"the keys channel allows exactly one{': ' + detail if detail else ''}"
        )
        self.ceremony_id = ceremony_id
        self.host_msp = host_msp


class DistributionError(KeysError):
    """The ceremony was recorded but distributing a share failed.

    ``distributed`` lists the orgs whose share is in their collection,
    ``failed`` the org that failed. The envelopes lived only in the host's
    memory; a share that was not distributed is lost (the key remains
    recoverable while at least ``t`` shares are distributed).
    """

    def __init__(self, ceremony_id: str, failed: str, distributed: Sequence[str], reason: str) -> None:
        super().__init__(
            f"ceremony {ceremony_id}: distributing the share of {failed} failed ({reason}); "
            f"distributed so far: {', '.join(distributed) or 'none'}"
        )
        self.ceremony_id = ceremony_id
        self.failed = failed
        self.distributed = tuple(distributed)


class ShareIntegrityError(KeysError):
    """A share read back from a collection does not match the ledger's facts
    (on-chain hash, envelope, share index or commitment). ``org`` owns the share."""

    def __init__(self, org: str, reason: str) -> None:
        super().__init__(f"share of {org}: {reason}")
        self.org = org
        self.reason = reason


class ExtensionStateError(KeysError):
    """A share-extension step cannot run now (``org`` is the newcomer): no
    extension requested, contributions missing, no usable holders, or the
    holder's own share does not fit the extension. Nothing was written."""

    def __init__(self, org: str, reason: str) -> None:
        super().__init__(f"share extension of {org}: {reason}")
        self.org = org
        self.reason = reason


class AuditKeyError(KeysError):
    """A key file (the auditor's, or a registry's share key) is missing or malformed."""


# --------------------------------------------------------------------- audit


class ReleasedShareError(KeysError):
    """The share ``org`` released to ``auditor_id`` is unusable: cannot be opened
    with the auditor's key, carries another index than recorded, or fails its
    published commitment (``share_index`` names the share)."""

    def __init__(self, auditor_id: str, org: str, share_index: int, reason: str) -> None:
        super().__init__(f"share {share_index} released by {org} to auditor {auditor_id} rejected: {reason}")
        self.auditor_id = auditor_id
        self.org = org
        self.share_index = share_index
        self.reason = reason


class NotEnoughReleasesError(KeysError, NotEnoughSharesError):
    """Fewer than ``need`` (= t) shares have been released to ``auditor_id``.

    Also a :class:`~synthreg.crypto.shamir.NotEnoughSharesError` (``have``/``need``).
    """

    def __init__(self, auditor_id: str, have: int, need: int, released_by: Sequence[str]) -> None:
        Exception.__init__(
            self,
            f"not enough shares released to auditor {auditor_id}: have {have}, need {need} "
            f"(released by: {', '.join(released_by) or 'nobody'})",
        )
        self.auditor_id = auditor_id
        self.have = have
        self.need = need
        self.released_by = tuple(released_by)


class UnsealFailedError(KeysError):
    """Shares passed their commitments but the key did not unseal or did not
    decrypt the ceremony's test ciphertext (cause chained)."""

    def __init__(self, ceremony_id: str, reason: str) -> None:
        super().__init__(f"ceremony {ceremony_id}: unsealing failed: {reason}")
        self.ceremony_id = ceremony_id
        self.reason = reason


class OutputExistsError(KeysError):
    """Refusing to overwrite an existing file in an output directory."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} already exists; choose an empty --out directory")
        self.path = path


class RecordFormatError(KeysError):
    """A keyvault result does not have the documented shape (``what`` names it)."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"malformed {what} from the ledger: {reason}")
        self.what = what
        self.reason = reason
