"""synthreg.crypto: network-free crypto core of the audit key (issue 3).

Modules (import from them directly; nothing here touches the network or disk):

- :mod:`~synthreg.crypto.ckks`      CKKS audit context, chunked encrypt / add / decrypt.
- :mod:`~synthreg.crypto.seal`      AES-256-GCM sealing of the secret context.
- :mod:`~synthreg.crypto.shamir`    t-of-n split of the 32-byte sealing key, commitments.
- :mod:`~synthreg.crypto.transport` X25519 + HKDF + AES-GCM envelopes, pairwise seeds.
- :mod:`~synthreg.crypto.ceremony`  key ceremony and auditor recovery (pure logic).
"""
