"""synthreg.chain: typed Python clients of the chaincode contracts over :class:`synthreg.ledger.Contract`.

Each module wraps one chaincode concern in typed calls and typed errors built
from the chaincode's error code; the pure logic they move to and from the ledger
lives elsewhere (:mod:`synthreg.secagg`, :mod:`synthreg.keys`, :mod:`synthreg.gan`).

- :mod:`~synthreg.chain.secagg`   secure-aggregation rounds on ``ganledger`` (the merger side).
- :mod:`~synthreg.chain.steps`    per-iteration G/D step records on ``ganledger``.
- :mod:`~synthreg.chain.keyvault` :class:`~synthreg.keys.vault.KeyVault` over ``keyvault`` on ``keys``.
"""
