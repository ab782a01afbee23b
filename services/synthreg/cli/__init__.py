"""The `synthreg` command line."""
