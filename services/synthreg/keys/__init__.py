"""synthreg.keys: the audit key on the ledger — ceremony, shares, releases, unsealing.

Service layer over :mod:`synthreg.crypto` (pure crypto) and the ``keyvault``
chaincode on channel ``keys`` (DESIGN.md §5, ``chaincode/README.md``). Every
service takes an injected :class:`~synthreg.keys.vault.KeyVault` (the real one,
:class:`synthreg.chain.keyvault.LedgerKeyVault`, wraps a Gateway ``Contract``
for one org identity) plus key material or
paths; nothing here dials, reads the environment or picks an identity. The
CLIs ``synthreg keys`` / ``synthreg audit`` do that wiring.

Modules:

- :mod:`~synthreg.keys.vault`     the ``KeyVault`` interface (no ledger here).
- :mod:`~synthreg.keys.memory`    in-memory vault for fast logic tests only.
- :mod:`~synthreg.keys.records`   typed views of keyvault results, share wire format.
- :mod:`~synthreg.keys.keyfiles`  registry / auditor X25519 key files, auditor id.
- :mod:`~synthreg.keys.ceremony`  host: generate, record, distribute (``keys ceremony``).
- :mod:`~synthreg.keys.release`   registry admin: release own share (``keys release``).
- :mod:`~synthreg.keys.audit`     auditor: collect, check, unseal, prove (``audit unseal``).
- :mod:`~synthreg.keys.show`      public facts (``keys show``).
- :mod:`~synthreg.keys.errors`    typed errors (base :class:`~synthreg.keys.errors.KeysError`), code -> vault error.
"""

from synthreg.keys.audit import UnsealSummary, load_unsealed_secret, unseal_audit_key
from synthreg.keys.ceremony import CeremonyReport, host_ceremony, read_recipient_keys
from synthreg.keys.errors import KeysError
from synthreg.keys.keyfiles import auditor_id, generate_auditor_key, load_auditor_keypair, load_auditor_public_key
from synthreg.keys.release import ReleaseReport, release_to_auditor
from synthreg.keys.show import KeysOverview, keys_overview
from synthreg.keys.vault import KeyVault

__all__ = [
    "CeremonyReport",
    "KeyVault",
    "KeysError",
    "KeysOverview",
    "ReleaseReport",
    "UnsealSummary",
    "auditor_id",
    "generate_auditor_key",
    "host_ceremony",
    "keys_overview",
    "load_auditor_keypair",
    "load_auditor_public_key",
    "load_unsealed_secret",
    "read_recipient_keys",
    "release_to_auditor",
    "unseal_audit_key",
]
