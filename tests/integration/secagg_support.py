"""What the secure-aggregation integration tests share: an aggregation run opened on
the real `gan` channel, with every registry's merger contract."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from synthreg.chain.secagg import AggregationConfig, open_aggregation
from synthreg.ledger import Contract
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile


@contextmanager
def opened_aggregation(profile: Profile, run: str,
                       vector_len: int) -> Iterator[tuple[dict[str, Contract], AggregationConfig]]:
    """Aggregation run ``run`` opened by the first registry's merger (t = ⌊N/2⌋ + 1,
    2 s round timeout), and each registry's merger contract, for the test's duration."""
    msps = sorted(profile.msp_ids)
    config = AggregationConfig.default(msps, vector_len, round_timeout_s=2)
    with ExitStack() as stack:
        contracts = {m: stack.enter_context(open_gateway(profile, m, "merger")).network("gan").contract("ganledger")
                     for m in msps}
        open_aggregation(contracts[msps[0]], msps[0], run, config)
        yield contracts, config
