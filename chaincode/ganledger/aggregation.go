package ganledger

// Secure aggregation over the ledger (DESIGN.md §4, wire spec
// chaincode/spec/secagg.md): types, state keys and the shared loaders of the
// aggregation functions in aggregation_write.go and aggregation_read.go.
//
// Who calls: the merger app of each registry (synthreg ledger driver) for the
// writes, any consortium app or the auditor for the reads.
// Where data lives: public world state of channel "gan", one composite key
// per (object, run, round, msp) so that mergers writing concurrently in one
// block never touch each other's keys:
//
//	agg_cfg   /run                    run configuration (write-once)
//	agg_adv   /run/round/msp          advertised round public key + seed commitment
//	agg_share /run/round/msp          the sender's encrypted shares {recipient: b64}
//	agg_sub   /run/round/msp          submission (blob hashes, peers, order)
//	agg_round /run/round              status written once by Freeze
//	agg_rev   /run/round/msp          revealed shares
//	agg_res   /run/round/msp          hash of the caller's computed average
//	agg_vote  /run/round/phase/msp    the caller's vote to close a phase without the missing parties
//	agg_blob  /run/sha256             raw blob bytes (content-addressed)
//	agg_bmeta /run/sha256             small blob facts (existence checks without reading the blob)
//
// Phases are implicit and close in ledger order: each function that must not
// run after a later phase started reads that phase's keys with a range query
// (GetStateByPartialCompositeKey). Fabric records range queries in the read
// set and re-executes them at validation against the state including the
// earlier valid transactions of the same block, so a racing write committed
// first turns the later transaction into a PHANTOM_READ_CONFLICT; the loser
// is invalidated, never silently accepted.

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/members"
	"github.com/synthreg/synthreg/chaincode/internal/sbe"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// Event names of the aggregation functions (one event per transaction).
const (
	EventAggAdvertised   = "AggAdvertised"
	EventAggSharesPosted = "AggSharesPosted"
	EventAggSubmitted    = "AggSubmitted"
	EventAggFrozen       = "AggFrozen"
	EventAggRevealed     = "AggRevealed"
	EventAggResultPosted = "AggResultPosted"
	EventAggVoted        = "AggVoted"
)

// Phases a participant may vote to close without the parties still missing
// (VoteClose). A phase closes when everyone it waits for is in, or when
// threshold-many parties that are in voted to close it: no client clock
// decides, each voter's own wait only decides its own vote.
const (
	PhaseAdvertise = "advertise" // closes A: |A| == N, or t votes from A
	PhaseShares    = "shares"    // closes P: |P| == |A|, or t votes from P
	PhaseSubmit    = "submit"    // allows Freeze: |U| == |P|, or t votes from P
)

// Phases lists the votable phases in protocol order.
var Phases = []string{PhaseAdvertise, PhaseShares, PhaseSubmit}

// Round statuses as returned by GetRound.
const (
	StatusOpen   = "open"
	StatusFrozen = "frozen"
	StatusVoid   = "void"
)

// Limits of the wire spec, plus bounds on JSON argument sizes that the
// spec's per-field limits imply.
const (
	MinParticipants      = 2
	MaxParticipants      = 255
	MaxVectorLen         = 50_000_000
	MinScaleBits         = 8
	MaxScaleBits         = 40
	MaxRoundTimeoutS     = 1_000_000_000 // keeps timestamp arithmetic exact (no Duration overflow)
	PublicKeyBytes       = 32            // X25519
	MaxEnvelopeBytes     = 4096          // one decoded share envelope
	ShareBytes           = 34            // one decoded Feldman VSS share (seed or key): u16be index ‖ 32-byte value mod n
	CommitmentBytes      = 33            // one Feldman commitment: SEC1 compressed P-256 point
	MaxBlobBytes         = 16 << 20      // one blob
	TransientBlob        = "blob"        // PutBlob's transient entry: the blob's bytes
	maxConfigJSONBytes   = 64 << 10
	maxSubmitJSONBytes   = 64 << 10
	maxResultJSONBytes   = 16 << 10
	maxResultRecordBytes = 12 << 10
	maxRevealJSONBytes   = 256 << 10
	maxSharesJSONBytes   = 2 << 20  // 254 envelopes of <= 4096 bytes, base64, plus keys
	maxDealingJSONBytes  = 64 << 10 // 2 x 255 commitments of 33 bytes, base64
	objAggConfig         = "agg_cfg"
	objAggAdvert         = "agg_adv"
	objAggShares         = "agg_share"
	objAggSubmission     = "agg_sub"
	objAggRoundStatus    = "agg_round"
	objAggReveal         = "agg_rev"
	objAggResult         = "agg_res"
	objAggBlob           = "agg_blob"
	objAggBlobMeta       = "agg_bmeta"
	objAggVote           = "agg_vote"
	aggregationWhatName  = "aggregation run"
)

// AggConfig is the run configuration, exactly the configJSON of
// OpenAggregation (unknown fields refused).
type AggConfig struct {
	Participants  []string `json:"participants"` // sorted, unique MSP ids of registered members
	Threshold     int      `json:"threshold"`    // N/2 < t <= N
	VectorLen     int64    `json:"vector_len"`
	ScaleBits     int      `json:"scale_bits"`
	RoundTimeoutS int64    `json:"round_timeout_s"` // each merger's own wait before it votes to close a phase
	// Blobs says where the masked vectors and audit copies live: "" or "ledger"
	// (PutBlob, checked by Submit) or "served" (each merger serves its own
	// from its registry over mutual TLS; only the hashes are on the ledger, and
	// the fetchers check the bytes against them).
	Blobs string `json:"blobs,omitempty"`
}

// Blob placements of AggConfig.Blobs.
const (
	BlobsLedger = "ledger"
	BlobsServed = "served"
)

// Aggregation is the stored run: the configuration plus who opened it when.
// GetAggregation returns it as JSON.
type Aggregation struct {
	Run string `json:"run"`
	AggConfig
	OpenedBy  string `json:"opened_by"`
	TxID      string `json:"txid"`
	Timestamp string `json:"timestamp"`
}

// ShareIndex returns the Shamir share index of msp (1 + its position in the
// sorted participants) or 0 when msp is not a participant.
func (a *Aggregation) ShareIndex(msp string) int {
	i := sort.SearchStrings(a.Participants, msp)
	if i < len(a.Participants) && a.Participants[i] == msp {
		return i + 1
	}
	return 0
}

// Advert is one party's advertisement in a round (GetRound "advertised").
type Advert struct {
	PublicKey  string `json:"public_key"`  // base64 of the 32-byte X25519 key
	SeedCommit string `json:"seed_commit"` // lower-case hex
	TxID       string `json:"txid"`
	Timestamp  string `json:"timestamp"`
}

// Dealing is a sender's public Feldman commitments (PostShares dealingJSON):
// threshold-many base64 compressed P-256 points for its seed polynomial and as
// many for its mask-key polynomial. Every recipient checks its shares against
// the same commitments, so a dealer cannot equivocate.
type Dealing struct {
	Seed []string `json:"seed"`
	Key  []string `json:"key"`
}

// SharesEntry is one sender's posted shares: recipient MSP -> base64 envelope.
type SharesEntry struct {
	Shares    map[string]string `json:"shares"`
	Dealing   Dealing           `json:"dealing"`
	TxID      string            `json:"txid"`
	Timestamp string            `json:"timestamp"`
}

// Submission is one party's submission (GetRound "submissions").
type Submission struct {
	MaskedSHA256 string   `json:"masked_sha256"`
	AuditSHA256  string   `json:"audit_sha256"` // "" when no audit blob
	Peers        []string `json:"peers"`
	Rejected     []string `json:"rejected"` // dealers whose shares to the submitter failed their commitments
	TxID         string   `json:"txid"`
	Timestamp    string   `json:"timestamp"`
}

// RoundStatus is what Freeze writes under agg_round/run/round, or what
// roundStatus derives for a round every party of P submitted to.
type RoundStatus struct {
	Status    string   `json:"status"`    // frozen | void
	Survivors []string `json:"survivors"` // U, sorted (submitters not excluded)
	Dropped   []string `json:"dropped"`   // D = P \ U, sorted
	Excluded  []string `json:"excluded"`  // both sides of every rejection, sorted (part of D)
	FrozenBy  string   `json:"frozen_by"`
	TxID      string   `json:"txid"`
	Timestamp string   `json:"timestamp"`
}

// RevealEntry is one survivor's revealed shares; GetRound shows only the
// two share maps.
type RevealEntry struct {
	SeedShares map[string]string `json:"seed_shares"` // msp in U -> b64 34-byte share
	KeyShares  map[string]string `json:"key_shares"`  // msp in D -> b64 34-byte share
	TxID       string            `json:"txid"`
	Timestamp  string            `json:"timestamp"`
}

// ResultEntry is one survivor's posted average hash.
type ResultEntry struct {
	AverageSHA256 string `json:"average_sha256"`
	TxID          string `json:"txid"`
	Timestamp     string `json:"timestamp"`
}

// BlobMeta is stored beside each blob.
type BlobMeta struct {
	Run       string `json:"run"`
	SHA256    string `json:"sha256"`
	Size      int    `json:"size"`
	MSPID     string `json:"msp"`
	TxID      string `json:"txid"`
	Timestamp string `json:"timestamp"`
}

// AggEvent is the payload of every Agg* event; Status only for AggFrozen,
// Phase only for AggVoted.
type AggEvent struct {
	Run    string `json:"run"`
	Round  int    `json:"round"`
	MSPID  string `json:"msp"`
	TxID   string `json:"txid"`
	Status string `json:"status,omitempty"`
	Phase  string `json:"phase,omitempty"`
	// AggResultPosted: the posted hash of the average. Only survivors post, so t
	// events of one round with one hash are its agreement, as GetRound derives it.
	AverageSHA256 string `json:"average_sha256,omitempty"`
	// AggResultPosted with a "next": the same transaction advertised the caller in round+1.
	NextAdvertised bool `json:"next_advertised,omitempty"`
	// AggSubmitted with an "update": the local update recorded with the submission.
	GWeightsSHA256 string `json:"g_weights_sha256,omitempty"`
	DWeightsSHA256 string `json:"d_weights_sha256,omitempty"`
}

// Vote is one party's vote to close a phase (GetRound "votes" lists the voters).
type Vote struct {
	TxID      string `json:"txid"`
	Timestamp string `json:"timestamp"`
}

// Receipt is the result of Advertise, PostShares, Submit, Reveal and
// PostResult: what was recorded, by whom, in which transaction.
type Receipt struct {
	Run       string `json:"run"`
	Round     int    `json:"round"`
	MSPID     string `json:"msp"`
	TxID      string `json:"txid"`
	Timestamp string `json:"timestamp"`
}

// NotParticipantError: the caller (a merger) is not a participant of the run.
// ACCESS_DENIED.
type NotParticipantError struct {
	MSPID string
	Run   string
}

func (e *NotParticipantError) Error() string {
	return fmt.Sprintf("%s: %s is not a participant of aggregation run %q", ccerr.CodeAccessDenied, e.MSPID, e.Run)
}

// Code implements ccerr.Coded.
func (e *NotParticipantError) Code() ccerr.Code { return ccerr.CodeAccessDenied }

func precondition(format string, args ...any) error {
	return &ccerr.PreconditionError{Reason: fmt.Sprintf(format, args...)}
}

func invalid(arg, format string, args ...any) error {
	return &ccerr.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf(format, args...)}
}

// validateConfig checks every rule of the run configuration.
func validateConfig(cfg *AggConfig) error {
	const arg = "configJSON"
	n := len(cfg.Participants)
	if n < MinParticipants || n > MaxParticipants {
		return invalid(arg+".participants", "%d participants outside [%d, %d]", n, MinParticipants, MaxParticipants)
	}
	for i, p := range cfg.Participants {
		if !members.ValidMSPID(p) {
			return invalid(arg+".participants", "%q is not an MSP id (%s)", p, members.MSPIDPattern)
		}
		if i > 0 && cfg.Participants[i-1] >= p {
			return invalid(arg+".participants", "not sorted and unique at %q, %q", cfg.Participants[i-1], p)
		}
	}
	if 2*cfg.Threshold <= n || cfg.Threshold > n {
		return invalid(arg+".threshold", "%d outside (N/2, N] for N=%d", cfg.Threshold, n)
	}
	if cfg.VectorLen <= 0 || cfg.VectorLen > MaxVectorLen {
		return invalid(arg+".vector_len", "%d outside [1, %d]", cfg.VectorLen, MaxVectorLen)
	}
	if cfg.ScaleBits < MinScaleBits || cfg.ScaleBits > MaxScaleBits {
		return invalid(arg+".scale_bits", "%d outside [%d, %d]", cfg.ScaleBits, MinScaleBits, MaxScaleBits)
	}
	if cfg.RoundTimeoutS <= 0 || cfg.RoundTimeoutS > MaxRoundTimeoutS {
		return invalid(arg+".round_timeout_s", "%d outside [1, %d]", cfg.RoundTimeoutS, MaxRoundTimeoutS)
	}
	if cfg.Blobs != "" && cfg.Blobs != BlobsLedger && cfg.Blobs != BlobsServed {
		return invalid(arg+".blobs", "%q is not %q or %q", cfg.Blobs, BlobsLedger, BlobsServed)
	}
	return nil
}

// runAndRound validates the run id and the round number of a round function.
func runAndRound(run, round string) (int, error) {
	if err := validate.Key("run", run); err != nil {
		return 0, err
	}
	return validate.Round("round", round)
}

func roundAttr(r int) string { return strconv.Itoa(r) }

// loadAggregation reads the run configuration; NOT_FOUND when absent.
func loadAggregation(stub shim.ChaincodeStubInterface, run string) (*Aggregation, error) {
	key, err := state.Key(stub, objAggConfig, run)
	if err != nil {
		return nil, err
	}
	var agg Aggregation
	found, err := state.GetJSON(stub, key, &agg)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, &ccerr.NotFoundError{What: aggregationWhatName, Key: run}
	}
	return &agg, nil
}

// participantRun loads the run and admits only its participants.
func participantRun(stub shim.ChaincodeStubInterface, run string, caller access.Caller) (*Aggregation, error) {
	agg, err := loadAggregation(stub, run)
	if err != nil {
		return nil, err
	}
	if agg.ShareIndex(caller.MSPID) == 0 {
		return nil, &NotParticipantError{MSPID: caller.MSPID, Run: run}
	}
	return agg, nil
}

// mspKey is the per-party key obj/run/round/msp.
func mspKey(stub shim.ChaincodeStubInterface, obj, run string, round int, msp string) (string, error) {
	return state.Key(stub, obj, run, roundAttr(round), msp)
}

// getRoundEntry reads obj/run/round/msp into v; found false when absent.
func getRoundEntry(stub shim.ChaincodeStubInterface, obj, run string, round int, msp string, v any) (bool, error) {
	key, err := mspKey(stub, obj, run, round, msp)
	if err != nil {
		return false, err
	}
	return state.GetJSON(stub, key, v)
}

// entryKind is one kind of per-party round entry: its state object, the
// word ALREADY_EXISTS names it by, and the event its write emits.
type entryKind struct{ obj, what, event string }

// The per-party round entries, one per round write function.
var (
	kindAdvert     = entryKind{objAggAdvert, "advertisement", EventAggAdvertised}
	kindShares     = entryKind{objAggShares, "shares", EventAggSharesPosted}
	kindSubmission = entryKind{objAggSubmission, "submission", EventAggSubmitted}
	kindReveal     = entryKind{objAggReveal, "reveal", EventAggRevealed}
	kindResult     = entryKind{objAggResult, "result", EventAggResultPosted}
)

// roundEntryID is how errors name the entry of msp in run/round.
func roundEntryID(run string, round int, msp string) string {
	return fmt.Sprintf("%s/%d/%s", run, round, msp)
}

// refuseExisting returns ALREADY_EXISTS (what, id) when key is present.
func refuseExisting(stub shim.ChaincodeStubInterface, key, what, id string) error {
	exists, err := state.Exists(stub, key)
	if err != nil {
		return err
	}
	if exists {
		return &ccerr.AlreadyExistsError{What: what, Key: id}
	}
	return nil
}

// putRoundEntry writes v under k.obj/run/round/msp unless it exists
// (ALREADY_EXISTS naming k.what).
func putRoundEntry(stub shim.ChaincodeStubInterface, k entryKind, run string, round int, msp string, v any) error {
	key, err := mspKey(stub, k.obj, run, round, msp)
	if err != nil {
		return err
	}
	if err := refuseExisting(stub, key, k.what, roundEntryID(run, round, msp)); err != nil {
		return err
	}
	if err := state.PutJSON(stub, key, v); err != nil {
		return err
	}
	return sbe.Bind(stub, msp, key) // later changes need msp's peer (internal/sbe)
}

// rangeEntries lists obj/run/round/* by range query (recorded in the read
// set: phantom-protected at validation, see the package comment) and
// decodes each value with decode. Returns the msps in key (= string) order.
func rangeEntries(stub shim.ChaincodeStubInterface, obj, run string, round int, decode func(msp string, raw []byte) error) ([]string, error) {
	var msps []string
	err := eachInRange(stub, obj, []string{run, roundAttr(round)}, fmt.Sprintf("%s/%s/%d", obj, run, round), func(key string, value []byte) error {
		_, attrs, err := stub.SplitCompositeKey(key)
		if err != nil || len(attrs) != 3 {
			return ccerr.Internal("splitting key "+key, fmt.Errorf("unexpected layout (%v)", err))
		}
		if decode != nil {
			if err := decode(attrs[2], value); err != nil {
				return ccerr.Internal("decoding "+key, err)
			}
		}
		msps = append(msps, attrs[2])
		return nil
	})
	if err != nil {
		return nil, err
	}
	return msps, nil
}

// rangeMSPs lists only the msps present under obj/run/round.
func rangeMSPs(stub shim.ChaincodeStubInterface, obj, run string, round int) ([]string, error) {
	return rangeEntries(stub, obj, run, round, nil)
}

// rangeDecoded lists obj/run/round/* by range query (see rangeEntries),
// decodes each value as JSON into a T and hands it to keep.
func rangeDecoded[T any](stub shim.ChaincodeStubInterface, obj, run string, round int, keep func(msp string, entry T)) error {
	_, err := rangeEntries(stub, obj, run, round, func(msp string, raw []byte) error {
		var e T
		err := json.Unmarshal(raw, &e)
		keep(msp, e)
		return err
	})
	return err
}

// rangeSubmissions lists the round's submissions by range query.
func rangeSubmissions(stub shim.ChaincodeStubInterface, run string, round int) (map[string]Submission, error) {
	subs := map[string]Submission{}
	err := rangeDecoded(stub, objAggSubmission, run, round, func(msp string, s Submission) { subs[msp] = s })
	return subs, err
}

// loadRoundStatus reads agg_round/run/round; nil when the round is open.
func loadRoundStatus(stub shim.ChaincodeStubInterface, run string, round int) (*RoundStatus, error) {
	key, err := state.Key(stub, objAggRoundStatus, run, roundAttr(round))
	if err != nil {
		return nil, err
	}
	return loadOptional[RoundStatus](stub, key)
}

// roundStatus is the status of run/round: the one Freeze wrote, or, once
// every party of P submitted (|U| == |P| > 0), the status Freeze would write
// (statusOf; no frozen_by, txid or timestamp), read but never written, so the
// Reveals and results that follow do not conflict on it; nil while open.
// P cannot change once a Submit exists (PostShares refuses), and only P may
// submit, so a round frozen this way stays so; its range reads are in the
// caller's read set all the same.
func roundStatus(stub shim.ChaincodeStubInterface, agg *Aggregation, run string, round int) (*RoundStatus, error) {
	st, err := loadRoundStatus(stub, run, round)
	if err != nil || st != nil {
		return st, err
	}
	posted, err := rangeMSPs(stub, objAggShares, run, round)
	if err != nil {
		return nil, err
	}
	subs, err := rangeSubmissions(stub, run, round)
	if err != nil {
		return nil, err
	}
	if len(subs) == 0 || len(subs) != len(posted) {
		return nil, nil
	}
	derived := statusOf(agg, posted, subs, "", "", "")
	return &derived, nil
}

// frozenRound returns the status of a frozen round (roundStatus) and
// checks the caller is in U; PRECONDITION_FAILED when open, void or caller
// not in U.
func frozenRound(stub shim.ChaincodeStubInterface, agg *Aggregation, run string, round int, msp, action string) (*RoundStatus, error) {
	st, err := roundStatus(stub, agg, run, round)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, precondition("round %s/%d is not frozen yet: cannot %s", run, round, action)
	}
	if st.Status != StatusFrozen {
		return nil, precondition("round %s/%d is %s: cannot %s", run, round, st.Status, action)
	}
	if !contains(st.Survivors, msp) {
		return nil, precondition("%s is not a survivor of round %s/%d (survivors %v): cannot %s", msp, run, round, st.Survivors, action)
	}
	return st, nil
}

// sameSet reports whether the keys of m are exactly want; otherwise it
// returns a description of the missing and unexpected keys.
func sameSet(m map[string]string, want []string) (bool, string) {
	wantSet := map[string]bool{}
	for _, w := range want {
		wantSet[w] = true
	}
	var missing, extra []string
	for _, w := range want {
		if _, ok := m[w]; !ok {
			missing = append(missing, w)
		}
	}
	for k := range m {
		if !wantSet[k] {
			extra = append(extra, k)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return true, ""
	}
	sort.Strings(extra)
	return false, fmt.Sprintf("key set must be exactly %v (missing %v, unexpected %v)", want, missing, extra)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// without returns sorted list minus s (list is sorted already).
func without(list []string, s string) []string {
	out := make([]string, 0, len(list))
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// emitAgg emits ev (its optional fields set by the caller) as event name of
// msp in run/round, in this transaction.
func emitAgg(stub shim.ChaincodeStubInterface, name, run string, round int, msp string, ev AggEvent) error {
	ev.Run, ev.Round, ev.MSPID, ev.TxID = run, round, msp, stub.GetTxID()
	return state.Emit(stub, name, ev)
}

// rangeVotes lists, by range query (phantom-protected like rangeEntries),
// the msps that voted to close phase of run/round, in key (= sorted) order.
func rangeVotes(stub shim.ChaincodeStubInterface, run string, round int, phase string) ([]string, error) {
	var msps []string
	attrs := []string{run, roundAttr(round), phase}
	err := eachInRange(stub, objAggVote, attrs, fmt.Sprintf("%s/%s/%d/%s", objAggVote, run, round, phase), func(key string, _ []byte) error {
		_, parts, err := stub.SplitCompositeKey(key)
		if err != nil || len(parts) != 4 {
			return ccerr.Internal("splitting key "+key, fmt.Errorf("unexpected layout (%v)", err))
		}
		msps = append(msps, parts[3])
		return nil
	})
	return msps, err
}

// rangeAllVotes lists the voters of every phase of run/round by one range
// query (GetRound, a read: one round trip to the peer instead of one per
// phase), each phase's msps in key (= sorted) order; every phase of Phases
// is present, empty when nobody voted.
func rangeAllVotes(stub shim.ChaincodeStubInterface, run string, round int) (map[string][]string, error) {
	votes := make(map[string][]string, len(Phases))
	for _, phase := range Phases {
		votes[phase] = []string{}
	}
	attrs := []string{run, roundAttr(round)}
	err := eachInRange(stub, objAggVote, attrs, fmt.Sprintf("%s/%s/%d", objAggVote, run, round), func(key string, _ []byte) error {
		_, parts, err := stub.SplitCompositeKey(key)
		if err != nil || len(parts) != 4 {
			return ccerr.Internal("splitting key "+key, fmt.Errorf("unexpected layout (%v)", err))
		}
		if _, known := votes[parts[2]]; !known {
			return ccerr.Internal("vote key "+key, fmt.Errorf("unknown phase %q", parts[2]))
		}
		votes[parts[2]] = append(votes[parts[2]], parts[3])
		return nil
	})
	return votes, err
}

// phaseClosed reports whether a phase waiting for `want` parties, of which
// `in` are in, is closed: everyone is in, or threshold-many voted to close it.
// why describes an open phase for PRECONDITION_FAILED.
func phaseClosed(stub shim.ChaincodeStubInterface, agg *Aggregation, run string, round int, phase string, in, want []string) (bool, string, error) {
	if len(in) == len(want) {
		return true, "", nil
	}
	votes, err := rangeVotes(stub, run, round, phase)
	if err != nil {
		return false, "", err
	}
	if len(votes) >= agg.Threshold {
		return true, "", nil
	}
	return false, fmt.Sprintf("%s phase of round %s/%d is open: %d of %d in (%v), %d of %d votes to close it (%v)",
		phase, run, round, len(in), len(want), in, len(votes), agg.Threshold, votes), nil
}
