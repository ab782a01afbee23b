"""synthreg.secagg: pure-Python secure aggregation core (DESIGN.md §4, chaincode/spec/secagg.md).

No ledger, no network, no disk. The ledger driver (:mod:`synthreg.chain.secagg`)
moves the values this package produces to and from the ``ganledger`` chaincode.

Modules:

- :mod:`~synthreg.secagg.params`     :class:`Params` (validated round parameters).
- :mod:`~synthreg.secagg.party`      :class:`Party`: one merger's round secrets, shares, mask, reveal, erase.
- :mod:`~synthreg.secagg.unmask`     :func:`unmask` / :func:`average`: remove the masks from U's vectors.
- :mod:`~synthreg.secagg.wire`       byte-exact formats: seed commitment, envelope context, blobs, records.
- :mod:`~synthreg.secagg.vss`        Feldman verifiable secret sharing over P-256 (dealing, checks).
- :mod:`~synthreg.secagg.prg`        AES-256-CTR mask PRG.
- :mod:`~synthreg.secagg.fixedpoint` q(x) = round(x * 2^scale) in Z/2^64.
- :mod:`~synthreg.secagg.errors`     :class:`SecAggError` and one subclass per failure kind.
"""

from synthreg.secagg.errors import (
    AdvertisementError,
    AlreadyUsedError,
    BadDealingError,
    BadRevealError,
    BlobLengthError,
    DuplicateSharesError,
    ErasedError,
    FixedPointRangeError,
    MaskKeyMismatchError,
    MissingShareError,
    NonFiniteValueError,
    NotEnoughAdvertisedError,
    NotEnoughRevealsError,
    ParamsError,
    PeerSetError,
    PhaseError,
    RecoveryMismatchError,
    RevealConflictError,
    RevealFormatError,
    SecAggError,
    SeedCommitmentMismatchError,
    ShareEnvelopeError,
    TooFewGoodSharesError,
    TooFewSurvivorsError,
    UnknownPartyError,
    VectorShapeError,
    WeightError,
)
from synthreg.secagg.params import Params, default_threshold
from synthreg.secagg.party import Party
from synthreg.secagg.unmask import Unmasked, average, unmask, unmask_checked
from synthreg.secagg.wire import (
    Advertisement,
    Dealing,
    Reveal,
    average_sha256,
    decode_u64,
    encode_u64,
    seed_commitment,
)

__all__ = [
    "Advertisement",
    "AdvertisementError",
    "AlreadyUsedError",
    "BadDealingError",
    "BadRevealError",
    "BlobLengthError",
    "Dealing",
    "DuplicateSharesError",
    "ErasedError",
    "FixedPointRangeError",
    "MaskKeyMismatchError",
    "MissingShareError",
    "NonFiniteValueError",
    "NotEnoughAdvertisedError",
    "NotEnoughRevealsError",
    "Params",
    "ParamsError",
    "Party",
    "PeerSetError",
    "PhaseError",
    "RecoveryMismatchError",
    "Reveal",
    "RevealConflictError",
    "RevealFormatError",
    "SecAggError",
    "SeedCommitmentMismatchError",
    "ShareEnvelopeError",
    "TooFewGoodSharesError",
    "TooFewSurvivorsError",
    "UnknownPartyError",
    "Unmasked",
    "VectorShapeError",
    "WeightError",
    "average",
    "average_sha256",
    "decode_u64",
    "default_threshold",
    "encode_u64",
    "seed_commitment",
    "unmask",
    "unmask_checked",
]
