"""One merger's secrets and state for one aggregation round (DESIGN.md §4 steps 1-3, 5, 6).

Who calls: the ledger driver (``synthreg.chain.secagg``), once per round and merger:
:meth:`Party.new` -> :meth:`~Party.advertisement` (posted by ``Advertise``) ->
:meth:`~Party.make_shares` (``PostShares``) -> :meth:`~Party.receive_shares` for every
other sender -> :meth:`~Party.mask` (blob + ``Submit``) -> :meth:`~Party.reveal`
(``Reveal``) -> :meth:`~Party.erase`.

Where secrets live: only in this object's memory -- the round's X25519 mask key
(raw 32 bytes), the 32-byte self-mask seed, the Feldman VSS shares of both (own
dealing and the shares other parties sent, :mod:`~synthreg.secagg.vss`) -- all as
bytearrays that :meth:`erase` zeroes. Wiping is best effort: copies inside
cryptography (Rust/OpenSSL), Python ints and immutable ``bytes`` temporaries are
released, not overwritten.

Verifiable dealing: every share received is checked against the dealer's public
commitments (:class:`~synthreg.secagg.wire.Dealing`, posted with ``PostShares``);
a share off the dealer's polynomial raises :class:`BadDealingError` naming the
dealer, and this party *rejects* that dealer: it keeps none of its shares, still
masks with it (the pairwise seed needs only its public key) and names it in its
``Submit`` ("rejected"), which takes both out of the round (chaincode ``Freeze``).
Nothing is written to disk; a restarted merger starts a new Party (and the round
proceeds without it, as a dropped party).

Safety rules enforced here (each violation is a typed error from
:mod:`synthreg.secagg.errors`): masking happens once per round for one input (a
second, different masked vector would leak the difference); a reveal never
exposes both the seed share and the key share of one party, across calls too; a
reveal must cover exactly the parties this party masked with, plus itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from synthreg.crypto.transport import (
    Envelope,
    EnvelopeError,
    KeyFormatError,
    derive_pairwise_seed,
    load_public_key,
    open_envelope,
    seal_to,
)
from synthreg.secagg import vss
from synthreg.secagg.errors import (
    AdvertisementError,
    AlreadyUsedError,
    BadDealingError,
    DuplicateSharesError,
    ErasedError,
    MissingShareError,
    NotEnoughAdvertisedError,
    PeerSetError,
    PhaseError,
    RevealConflictError,
    ShareEnvelopeError,
)
from synthreg.secagg.fixedpoint import check_weight, encode
from synthreg.secagg.params import Params
from synthreg.secagg.prg import SEED_BYTES, prg_add, prg_sub
from synthreg.secagg.wire import SHARE_BYTES, Advertisement, Dealing, Reveal, seed_commitment, share_context

__all__ = ["MAX_ENVELOPE_BYTES", "Party", "decode_envelope", "encode_envelope"]

MAX_ENVELOPE_BYTES = 4096  # PostShares refuses larger envelopes (SPEC step 2)


def encode_envelope(envelope: Envelope) -> bytes:
    """Canonical envelope bytes: compact JSON of ``to_dict`` with sorted keys, utf-8."""
    return json.dumps(envelope.to_dict(), sort_keys=True, separators=(",", ":")).encode("utf-8")


def decode_envelope(data: bytes) -> Envelope:
    """Inverse of :func:`encode_envelope`; raises ``ValueError`` (incl. ``KeyFormatError``)."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise ValueError(f"envelope is {len(data)} bytes, limit {MAX_ENVELOPE_BYTES}")
    d = json.loads(data.decode("utf-8"))
    if not isinstance(d, dict):
        raise ValueError("envelope JSON is not an object")
    return Envelope.from_dict(d)


def _wipe(buf: bytearray) -> None:
    buf[:] = bytes(len(buf))


class Party:
    """Round state of merger ``msp``; build with :meth:`new`, never share between rounds."""

    def __init__(self, params: Params, msp: str, key_raw: bytearray, seed: bytearray) -> None:
        params.require_participant(msp, "party")
        if len(key_raw) != 32 or len(seed) != SEED_BYTES:
            raise ValueError("mask key and seed must be 32 bytes each")
        if int.from_bytes(key_raw, "big") >= vss.ORDER or int.from_bytes(seed, "big") >= vss.ORDER:
            raise ValueError("mask key and seed must be below the P-256 group order (vss.random_scalar_bytes)")
        self.params = params
        self.msp = msp
        self.index = params.share_index(msp)
        self._key_raw = key_raw
        self._seed = seed
        self._public_key = X25519PrivateKey.from_private_bytes(bytes(key_raw)).public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw
        )
        self._seed_commit = seed_commitment(params, msp, seed)
        self._own_split: tuple[list[bytearray], list[bytearray]] | None = None  # (seed shares, key shares), 1..N
        self._dealing: Dealing | None = None  # public commitments of the own split
        self._advertised: dict[str, Advertisement] | None = None
        self._held_seed: dict[str, bytearray] = {}  # owner -> 34-byte share with my index
        self._held_key: dict[str, bytearray] = {}
        self._dealings: dict[str, Dealing] = {}  # sender -> the commitments its held shares verified against
        self._rejected: set[str] = set()  # dealers whose shares failed their commitments
        self._peers: tuple[str, ...] | None = None
        self._mask_digest: str | None = None
        self._revealed_seed: set[str] = set()
        self._revealed_key: set[str] = set()
        self._erased = False

    @classmethod
    def new(cls, params: Params, msp: str) -> Party:
        """Fresh round key and self-mask seed from the OS CSPRNG (each below the P-256
        order, so that it can be dealt by Feldman VSS; rejection probability ~2^-32).

        Raises :class:`~synthreg.secagg.errors.UnknownPartyError` if ``msp`` does not participate.
        """
        return cls(params, msp, vss.random_scalar_bytes(), vss.random_scalar_bytes())

    def __repr__(self) -> str:
        state = "erased" if self._erased else f"holding shares of {sorted(self._held_seed)}"
        return f"Party(msp={self.msp!r}, run={self.params.run!r}, round={self.params.round}, {state})"

    # -- step 1: advertise ------------------------------------------------------------

    @property
    def public_key(self) -> bytes:
        """32 raw bytes of this round's X25519 mask public key."""
        return self._public_key

    def advertisement(self) -> Advertisement:
        """What to post with ``Advertise``: public key and seed commitment."""
        return Advertisement(self._public_key, self._seed_commit)

    # -- step 2: share ----------------------------------------------------------------

    def make_shares(self, advertised: Mapping[str, Advertisement]) -> dict[str, bytes]:
        """Encrypted shares for every advertised party except self: ``{recipient: envelope bytes}``.

        ``advertised`` is A as read from the ledger (must contain this party's own,
        unchanged advertisement). Each envelope holds the recipient's seed share and
        key share (34 + 34 bytes) sealed to its round public key. May be called again
        before :meth:`mask` (e.g. when a racing ``Advertise`` invalidated PostShares):
        the same Shamir split is reused, so no recipient ever sees two splits.
        Raises :class:`NotEnoughAdvertisedError` when |A| < threshold,
        :class:`AdvertisementError` for a missing/altered own advertisement or a bad
        key, :class:`~synthreg.secagg.errors.UnknownPartyError` for a non-participant,
        :class:`PhaseError` after :meth:`mask`.
        """
        self._check_live()
        if self._peers is not None:
            raise PhaseError("make_shares after mask: the share set is fixed")
        for msp in advertised:
            self.params.require_participant(msp, "advertiser")
        own = advertised.get(self.msp)
        if own is None:
            raise AdvertisementError(self.msp, "own advertisement missing from the advertised set")
        if own != self.advertisement():
            raise AdvertisementError(self.msp, "advertised copy differs from this party's round key/commitment")
        if len(advertised) < self.params.threshold:
            raise NotEnoughAdvertisedError(len(advertised), self.params.threshold)
        keys = {}
        for msp, adv in advertised.items():
            try:
                keys[msp] = load_public_key(adv.public_key)
            except KeyFormatError as exc:
                raise AdvertisementError(msp, f"bad public key: {exc}") from exc
        seed_shares, key_shares = self._split()
        out: dict[str, bytes] = {}
        for recipient in sorted(advertised):
            if recipient == self.msp:
                continue
            i = self.params.share_index(recipient) - 1
            plaintext = seed_shares[i] + key_shares[i]
            try:
                envelope = seal_to(keys[recipient], plaintext, share_context(self.params, self.msp, recipient))
            finally:
                _wipe(plaintext)
            out[recipient] = encode_envelope(envelope)
        self._advertised = dict(advertised)
        mine = self.index - 1
        self._held_seed[self.msp] = bytearray(seed_shares[mine])
        self._held_key[self.msp] = bytearray(key_shares[mine])
        return out

    def _split(self) -> tuple[list[bytearray], list[bytearray]]:
        # Feldman VSS (secagg.vss), not crypto.shamir: pycryptodome's GF(2^128) Shamir
        # cannot be verified, so a bad share would only show at unmask time, blaming
        # whoever revealed it instead of the dealer.
        if self._own_split is None:
            t, n = self.params.threshold, self.params.n
            seed_shares, seed_commits = vss.deal(self._seed, t, n)
            key_shares, key_commits = vss.deal(self._key_raw, t, n)
            self._own_split = (seed_shares, key_shares)
            self._dealing = Dealing(seed_commits, key_commits)
        return self._own_split

    @property
    def dealing(self) -> Dealing:
        """The public commitments to post with ``PostShares`` (fixed at the first call)."""
        self._check_live()
        self._split()
        assert self._dealing is not None
        return self._dealing

    @property
    def rejected(self) -> tuple[str, ...]:
        """Dealers whose shares failed their commitments (:class:`BadDealingError`), sorted:
        the ``rejected`` list of this party's ``Submit``."""
        return tuple(sorted(self._rejected))

    def reject(self, sender: str) -> None:
        """Refuse ``sender``'s dealing (the driver calls it for an envelope that cannot be
        opened, :class:`ShareEnvelopeError`; :meth:`receive_shares` itself for a bad
        share): its shares are dropped and it appears in :attr:`rejected`."""
        self._check_live()
        self.params.require_participant(sender, "sender")
        if sender == self.msp:
            raise ShareEnvelopeError(sender, "a party does not reject itself")
        for held in (self._held_seed, self._held_key):
            buf = held.pop(sender, None)
            if buf is not None:
                _wipe(buf)
        self._dealings.pop(sender, None)
        self._rejected.add(sender)

    def receive_shares(self, sender: str, envelope: bytes, dealing: Dealing) -> None:
        """Open ``sender``'s envelope for this party, verify its seed and key shares
        against ``sender``'s public ``dealing`` and keep them.

        Raises :class:`BadDealingError` naming ``sender`` (the dealer) and this party
        when a share is off the committed polynomial or the commitments are malformed;
        the dealer is then rejected (:attr:`rejected`) and none of its shares kept.
        :class:`ShareEnvelopeError` naming ``sender`` when the envelope is malformed,
        was not sealed by ``sender`` for this party in this round (GCM fails), or
        carries shares with another index; :class:`DuplicateSharesError` when
        different shares or commitments from ``sender`` are already held (identical:
        no-op); :class:`~synthreg.secagg.errors.UnknownPartyError` for a non-participant.
        """
        self._check_live()
        self.params.require_participant(sender, "sender")
        if sender == self.msp:
            raise ShareEnvelopeError(sender, "a party does not send shares to itself")
        if sender in self._rejected:
            raise BadDealingError(sender, self.msp, "shares", "already rejected this round")
        try:
            points = dealing.points(sender, self.msp, self.params.threshold)
        except BadDealingError:
            self.reject(sender)
            raise
        try:
            env = decode_envelope(envelope)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ShareEnvelopeError(sender, f"malformed envelope: {exc}") from exc
        try:
            plaintext = open_envelope(self._private_key(), env, share_context(self.params, sender, self.msp))
        except EnvelopeError as exc:
            raise ShareEnvelopeError(sender, exc.reason) from exc
        seed_part, key_part = plaintext[:SHARE_BYTES], plaintext[SHARE_BYTES:]
        stored = False
        try:
            if len(plaintext) != 2 * SHARE_BYTES:
                raise ShareEnvelopeError(sender, f"plaintext is {len(plaintext)} bytes, not {2 * SHARE_BYTES}")
            for kind, part in (("seed", seed_part), ("key", key_part)):
                try:
                    index, value = vss.decode_share(part)
                except vss.VSSFormatError as exc:
                    raise ShareEnvelopeError(sender, f"bad {kind} share: {exc}") from exc
                if index != self.index:
                    raise ShareEnvelopeError(sender, f"{kind} share has index {index}, mine is {self.index}")
                if not vss.verify(index, value, points[kind]):
                    self.reject(sender)
                    raise BadDealingError(sender, self.msp, kind, f"share {index} is off the committed polynomial")
            if sender in self._held_seed:
                if (self._held_seed[sender] != seed_part or self._held_key[sender] != key_part
                        or self._dealings[sender] != dealing):
                    raise DuplicateSharesError(sender)
                return
            self._held_seed[sender] = seed_part
            self._held_key[sender] = key_part
            self._dealings[sender] = dealing
            stored = True
        finally:
            _wipe(plaintext)
            if not stored:
                _wipe(seed_part)
                _wipe(key_part)

    @property
    def share_senders(self) -> tuple[str, ...]:
        """Parties whose shares this party holds (self included once shares are made), sorted."""
        return tuple(sorted(self._held_seed))

    # -- step 3: mask -----------------------------------------------------------------

    def mask(
        self, vector: npt.NDArray[np.floating], weight: float, peers: Sequence[str]
    ) -> npt.NDArray[np.uint64]:
        """Masked y = q(weight*vector) + PRG(b) + Σ_{j>me} PRG(s_j) − Σ_{j<me} PRG(s_j) mod 2^64.

        ``peers`` = P \\ {self} (the ``peers`` of the submission): each must have
        advertised and sent this party its shares, or have been rejected for a bad
        dealing (masking with it needs only its public key; the chaincode then takes
        both out of the round). Calling again with the same
        inputs returns the same vector; different inputs raise
        :class:`AlreadyUsedError`. Other failures: :class:`PhaseError` (before
        :meth:`make_shares`), :class:`PeerSetError`, :class:`MissingShareError`,
        :class:`~synthreg.secagg.errors.WeightError`, and from
        :func:`~synthreg.secagg.fixedpoint.encode`: ``VectorShapeError``,
        ``NonFiniteValueError``, ``FixedPointRangeError``.
        """
        self._check_live()
        if self._advertised is None:
            raise PhaseError("mask before make_shares: this party has not shared its secrets")
        peer_set = self._check_peers(peers)
        w = check_weight(self.msp, weight)
        y = encode(vector, self.params, w)
        digest = hashlib.sha256("\x00".join(sorted(peer_set)).encode() + b"\x00" + y.tobytes()).hexdigest()
        if self._mask_digest is not None and digest != self._mask_digest:
            raise AlreadyUsedError("this party already masked a different vector (or peer set) this round")
        prg_add(y, self._seed)
        priv = self._private_key()
        context = self.params.pairwise_context
        for peer in sorted(peer_set):
            try:
                pair_seed = derive_pairwise_seed(priv, self._advertised[peer].public_key, context)
            except KeyFormatError as exc:
                raise AdvertisementError(peer, f"key agreement failed: {exc}") from exc
            if peer > self.msp:
                prg_add(y, pair_seed)
            else:
                prg_sub(y, pair_seed)
        self._mask_digest = digest
        self._peers = tuple(sorted(peer_set))
        return y

    def _check_peers(self, peers: Sequence[str]) -> set[str]:
        if isinstance(peers, str):
            raise PeerSetError(self.msp, "peers must be a sequence of MSP ids, not a string")
        peer_set = set(peers)
        if len(peer_set) != len(peers):
            raise PeerSetError(self.msp, f"duplicates in {list(peers)}")
        if self.msp in peer_set:
            raise PeerSetError(self.msp, "a party is not its own peer")
        for peer in sorted(peer_set):
            self.params.require_participant(peer, "peer")
            assert self._advertised is not None
            if peer not in self._advertised:
                raise PeerSetError(self.msp, f"{peer!r} did not advertise")
            if peer not in self._held_seed and peer not in self._rejected:
                raise MissingShareError(peer, "shares")
        if len(peer_set) + 1 < self.params.threshold:
            raise PeerSetError(self.msp, f"{len(peer_set) + 1} parties in P, threshold is {self.params.threshold}")
        return peer_set

    # -- step 5: reveal ---------------------------------------------------------------

    def reveal(self, survivors: Sequence[str], dropped: Sequence[str]) -> Reveal:
        """Seed shares of every survivor (U, self included) and key shares of every dropped party (D).

        U ∪ D must equal the peers this party masked with, plus itself. Refuses
        (:class:`RevealConflictError`) to reveal a seed share and a key share of one
        party, in one call or across calls; :class:`PhaseError` before :meth:`mask`
        (a party that did not mask is not in U) or if self is not a survivor;
        :class:`PeerSetError` for a U/D that does not match; :class:`MissingShareError`
        if a needed share is not held.
        """
        self._check_live()
        if self._peers is None:
            raise PhaseError("reveal before mask: this party did not submit, so it is not in U")
        u_set, d_set = set(survivors), set(dropped)
        if len(u_set) != len(survivors) or len(d_set) != len(dropped):
            raise PeerSetError(self.msp, "duplicates in survivors or dropped")
        both = sorted(u_set & d_set)
        if both:
            raise RevealConflictError(both[0])
        if self.msp not in u_set:
            raise PhaseError(f"{self.msp!r} is not among the survivors; only survivors reveal")
        expected = set(self._peers) | {self.msp}
        if u_set | d_set != expected:
            raise PeerSetError(
                self.msp, f"survivors ∪ dropped = {sorted(u_set | d_set)}, but P (masked with) = {sorted(expected)}"
            )
        earlier = sorted((d_set & self._revealed_seed) | (u_set & self._revealed_key))
        if earlier:
            raise RevealConflictError(earlier[0])
        for owner, held, kind in [(u, self._held_seed, "seed") for u in sorted(u_set)] + [
            (d, self._held_key, "key") for d in sorted(d_set)
        ]:
            if owner not in held:
                raise MissingShareError(owner, kind)
        self._revealed_seed |= u_set
        self._revealed_key |= d_set
        return Reveal(
            seed_shares={u: bytes(self._held_seed[u]) for u in sorted(u_set)},
            key_shares={d: bytes(self._held_key[d]) for d in sorted(d_set)},
        )

    # -- step 6: erase ----------------------------------------------------------------

    def erase(self) -> None:
        """Zero every round secret this object owns; later calls raise :class:`ErasedError`."""
        buffers = [self._key_raw, self._seed, *self._held_seed.values(), *self._held_key.values()]
        if self._own_split is not None:
            buffers += [*self._own_split[0], *self._own_split[1]]
        for buf in buffers:
            _wipe(buf)
        self._held_seed.clear()
        self._held_key.clear()
        self._dealings.clear()
        self._own_split = None
        self._erased = True

    @property
    def erased(self) -> bool:
        """True once :meth:`erase` ran."""
        return self._erased

    def _check_live(self) -> None:
        if self._erased:
            raise ErasedError(f"round secrets of {self.msp!r} were erased")

    def _private_key(self) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(bytes(self._key_raw))
