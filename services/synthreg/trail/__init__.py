"""Training audit trail on the gan channel: record (registries) and verify (auditor)."""
