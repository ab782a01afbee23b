"""synthreg: secure federated GAN training for a consortium of health registries.

Subpackages (each one concept, see README "Architecture"):
  ledger   Fabric Gateway client (identity, signing, proposals, events)
  chain    typed clients of the chaincode contracts (secagg rounds, step records, keyvault)
  network  local Fabric network launcher (binaries, crypto, channels, chaincode)
  crypto   CKKS audit key, sealing, Shamir shares, share transport
  data     bundled datasets, schema validation, registry split, content hashing
  gan      shared encoder, generator/discriminator, step API, FedAvg
  eval     quality, utility, privacy, plots and reports
  cli      the `synthreg` command
"""

__version__ = "0.1.0"
