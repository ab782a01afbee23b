package ganledger

import (
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/members"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// OpenAggregation records the configuration of aggregation run `run`
// (configJSON = AggConfig; unknown fields refused) and returns the stored
// Aggregation. Merger role only, and the caller must be one of the
// participants. Write-once per run: ALREADY_EXISTS afterwards.
func (c *Contract) OpenAggregation(ctx contractapi.TransactionContextInterface, run string, configJSON string) (string, error) {
	if err := validate.Key("run", run); err != nil {
		return "", err
	}
	var cfg AggConfig
	if err := validate.Strict("configJSON", []byte(configJSON), maxConfigJSONBytes, &cfg); err != nil {
		return "", err
	}
	if err := validateConfig(&cfg); err != nil {
		return "", err
	}
	caller, err := access.Require(ctx, access.RoleMerger)
	if err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	agg := &Aggregation{Run: run, AggConfig: cfg, OpenedBy: caller.MSPID, TxID: stub.GetTxID()}
	if agg.ShareIndex(caller.MSPID) == 0 {
		return "", &NotParticipantError{MSPID: caller.MSPID, Run: run}
	}
	if err := members.RequireNamed(stub, "configJSON.participants", cfg.Participants...); err != nil {
		return "", err
	}
	key, err := state.Key(stub, objAggConfig, run)
	if err != nil {
		return "", err
	}
	if err := refuseExisting(stub, key, aggregationWhatName, run); err != nil {
		return "", err
	}
	if agg.Timestamp, err = state.TxTime(stub); err != nil {
		return "", err
	}
	if err := state.PutJSON(stub, key, agg); err != nil {
		return "", err
	}
	return state.Marshal(agg)
}

// Advertise records the caller's round public key (base64 of 32 bytes,
// X25519) and seed commitment (64 lower-case hex) for run/round. Merger
// participants only, once per (run, round, msp). PRECONDITION_FAILED once any
// PostShares exists for the round or t parties voted to close the phase. Emits AggAdvertised; returns a Receipt.
func (c *Contract) Advertise(ctx contractapi.TransactionContextInterface, run string, round string, publicKeyB64 string, seedCommitHex string) (string, error) {
	r, err := runAndRound(run, round)
	if err != nil {
		return "", err
	}
	if err := validAdvertArgs("publicKeyB64", publicKeyB64, "seedCommitHex", seedCommitHex); err != nil {
		return "", err
	}
	stub, caller, agg, err := participantMerger(ctx, run)
	if err != nil {
		return "", err
	}
	if err := refuseAdvert(stub, agg, run, r, caller.MSPID); err != nil {
		return "", err
	}
	return recordEntry(stub, kindAdvert, run, r, caller.MSPID, advertOf(publicKeyB64, seedCommitHex))
}

// validAdvertArgs checks an advertisement's key (canonical base64 of
// PublicKeyBytes bytes) and seed commitment (SHA-256 hex), named as the
// caller's arguments name them (Advertise, PostResult's "next").
func validAdvertArgs(keyField, publicKeyB64, commitField, seedCommitHex string) error {
	if _, err := validate.CanonicalBase64(keyField, publicKeyB64, PublicKeyBytes, PublicKeyBytes); err != nil {
		return err
	}
	return validate.SHA256Hex(commitField, seedCommitHex)
}

// advertOf builds the stored Advert of an Advertise, or of a PostResult's "next".
func advertOf(publicKeyB64, seedCommitHex string) func(txID, ts string) any {
	return func(txID, ts string) any {
		return Advert{PublicKey: publicKeyB64, SeedCommit: seedCommitHex, TxID: txID, Timestamp: ts}
	}
}

// refuseAdvert applies Advertise's rules to msp's advertisement in run/round:
// ALREADY_EXISTS on a second one; PRECONDITION_FAILED once any PostShares
// exists for the round or t parties voted to close its advertise phase.
func refuseAdvert(stub shim.ChaincodeStubInterface, agg *Aggregation, run string, r int, msp string) error {
	if err := refuseSecond(stub, kindAdvert, run, r, msp); err != nil {
		return err
	}
	// Phase close, ledger-order safe: the range read of the round's shares is
	// re-checked at validation, so a PostShares committed before this
	// transaction (even earlier in the same block) invalidates it.
	if err := refuseClosedPhase(stub, kindShares, "advertise", "posted shares", run, r); err != nil {
		return err
	}
	// Closed by votes too: once t parties voted to go on without the missing
	// ones, A is fixed (the range read of the votes is phantom-protected).
	return refuseVotedClosed(stub, agg, run, r, PhaseAdvertise, "advertise")
}

// PostShares records the caller's encrypted shares for run/round:
// sharesJSON = {"<recipient msp>": "<b64 envelope, 1..4096 bytes>"} whose key
// set is exactly A \ {caller} (A = advertised parties, read by range query),
// with |A| >= threshold; the caller must have advertised. dealingJSON =
// {"seed": [...], "key": [...]}: the public Feldman commitments of the two
// polynomials the shares lie on, exactly threshold-many b64 compressed P-256
// points each (33 bytes, on the curve; INVALID_ARGUMENT otherwise). The advertise
// phase must be closed (|A| == N or t votes) and the share phase open (no
// Submit, fewer than t votes to close it), else PRECONDITION_FAILED. Once per
// msp. Emits AggSharesPosted.
func (c *Contract) PostShares(ctx contractapi.TransactionContextInterface, run string, round string, sharesJSON string, dealingJSON string) (string, error) {
	r, err := runAndRound(run, round)
	if err != nil {
		return "", err
	}
	shares, err := validate.StringMap("sharesJSON", []byte(sharesJSON), maxSharesJSONBytes)
	if err != nil {
		return "", err
	}
	for msp, env := range shares {
		if _, err := validate.CanonicalBase64(fmt.Sprintf("sharesJSON[%q]", msp), env, 1, MaxEnvelopeBytes); err != nil {
			return "", err
		}
	}
	var dealing Dealing
	if err := validate.Strict("dealingJSON", []byte(dealingJSON), maxDealingJSONBytes, &dealing); err != nil {
		return "", err
	}
	stub, caller, agg, err := participantMerger(ctx, run)
	if err != nil {
		return "", err
	}
	if err := validateDealing(&dealing, agg.Threshold); err != nil {
		return "", err
	}
	if err := refuseSecond(stub, kindShares, run, r, caller.MSPID); err != nil {
		return "", err
	}
	// Phase close, ledger-order safe: range reads of the submissions (share
	// phase closed by the first Submit) and of the advertisements (a racing
	// Advertise changes A) are re-checked at validation; either racing
	// transaction committed first invalidates this one.
	if err := refuseClosedPhase(stub, kindSubmission, "share", "submitted", run, r); err != nil {
		return "", err
	}
	advertised, err := rangeMSPs(stub, objAggAdvert, run, r)
	if err != nil {
		return "", err
	}
	if !contains(advertised, caller.MSPID) {
		return "", precondition("%s has not advertised in round %s/%d", caller.MSPID, run, r)
	}
	if len(advertised) < agg.Threshold {
		return "", precondition("only %d advertised in round %s/%d (%v), threshold is %d", len(advertised), run, r, advertised, agg.Threshold)
	}
	// A must be closed (everyone advertised, or t voted to go on), so that no
	// party can share early to leave a slow one out; and P must still be open.
	if closed, why, err := phaseClosed(stub, agg, run, r, PhaseAdvertise, advertised, agg.Participants); err != nil {
		return "", err
	} else if !closed {
		return "", precondition("%s", why)
	}
	if err := refuseVotedClosed(stub, agg, run, r, PhaseShares, "share"); err != nil {
		return "", err
	}
	if ok, why := sameSet(shares, without(advertised, caller.MSPID)); !ok {
		return "", invalid("sharesJSON", "recipients: %s", why)
	}
	return recordEntry(stub, kindShares, run, r, caller.MSPID, func(txID, ts string) any {
		return SharesEntry{Shares: shares, Dealing: dealing, TxID: txID, Timestamp: ts}
	})
}

// validateDealing checks the commitments of PostShares: threshold-many
// canonical base64 compressed P-256 points per polynomial, each on the curve.
func validateDealing(d *Dealing, threshold int) error {
	for _, part := range []struct {
		name   string
		points []string
	}{{"seed", d.Seed}, {"key", d.Key}} {
		arg := "dealingJSON." + part.name
		if len(part.points) != threshold {
			return invalid(arg, "%d commitments, threshold is %d", len(part.points), threshold)
		}
		for i, p := range part.points {
			raw, err := validate.CanonicalBase64(fmt.Sprintf("%s[%d]", arg, i), p, CommitmentBytes, CommitmentBytes)
			if err != nil {
				return err
			}
			if x, _ := elliptic.UnmarshalCompressed(elliptic.P256(), raw); x == nil {
				return invalid(fmt.Sprintf("%s[%d]", arg, i), "not a compressed P-256 point")
			}
		}
	}
	return nil
}

// PutBlob stores the bytes in the transient entry TransientBlob (1 byte..16
// MiB) of run under their SHA-256, which must equal sha256Hex
// (INVALID_ARGUMENT otherwise). The bytes travel in the transient map, which
// the peer strips from the transaction, so the block holds them once (in the
// write set) rather than also as a base64 argument. Any merger;
// content-addressed and write-once (ALREADY_EXISTS on a second put). No
// event. Returns the BlobMeta.
func (c *Contract) PutBlob(ctx contractapi.TransactionContextInterface, run string, sha256Hex string) (string, error) {
	if err := validate.Key("run", run); err != nil {
		return "", err
	}
	if err := validate.SHA256Hex("sha256Hex", sha256Hex); err != nil {
		return "", err
	}
	caller, err := access.Require(ctx, access.RoleMerger)
	if err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	tm, err := stub.GetTransient()
	if err != nil {
		return "", ccerr.Internal("reading transient map", err)
	}
	data, err := validate.Transient(tm, TransientBlob, MaxBlobBytes, "the blob's bytes travel in the transient map")
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != sha256Hex {
		return "", invalid("transient:"+TransientBlob, "sha256 of the %d bytes is %s, not sha256Hex %s", len(data), got, sha256Hex)
	}
	metaKey, err := state.Key(stub, objAggBlobMeta, run, sha256Hex)
	if err != nil {
		return "", err
	}
	if err := refuseExisting(stub, metaKey, "blob", run+"/"+sha256Hex); err != nil {
		return "", err
	}
	blobKey, err := state.Key(stub, objAggBlob, run, sha256Hex)
	if err != nil {
		return "", err
	}
	ts, err := state.TxTime(stub)
	if err != nil {
		return "", err
	}
	meta := BlobMeta{Run: run, SHA256: sha256Hex, Size: len(data), MSPID: caller.MSPID, TxID: stub.GetTxID(), Timestamp: ts}
	if err := stub.PutState(blobKey, data); err != nil {
		return "", ccerr.Internal("writing blob "+run+"/"+sha256Hex, err)
	}
	if err := state.PutJSON(stub, metaKey, meta); err != nil {
		return "", err
	}
	return state.Marshal(meta)
}

// submissionArg is the submissionJSON of Submit.
type submissionArg struct {
	MaskedSHA256 string   `json:"masked_sha256"`
	AuditSHA256  string   `json:"audit_sha256"`
	Peers        []string `json:"peers"`
	Rejected     []string `json:"rejected"` // optional; sorted, unique, subset of peers
	// optional: the registry's local update of this round (run is then also its
	// training run), recorded as RecordLocalUpdate would (putLocalUpdate)
	Update *updateHashes `json:"update,omitempty"`
}

// updateHashes is a Submit's "update": the hashes of the generator and
// discriminator weights it masked.
type updateHashes struct {
	GWeightsSHA256 string `json:"g_weights_sha256"`
	DWeightsSHA256 string `json:"d_weights_sha256"`
}

// Submit records the caller's masked vector (by blob hash) for run/round:
// submissionJSON = {"masked_sha256", "audit_sha256" ("" = none), "peers",
// "rejected" (optional: the dealers whose shares to the caller failed their
// commitments; sorted, unique, a subset of peers), "update" (optional:
// {"g_weights_sha256", "d_weights_sha256"}, the registry's local update of
// this round, which run also names as its training run: stored and checked
// exactly as RecordLocalUpdate stores it, with the merger's stamp, so the
// hashes the merger masked and the masked vector commit in one transaction;
// the registry's step head must be the round's last completed step and the
// discriminator hash the one recorded there, PRECONDITION_FAILED otherwise;
// ALREADY_EXISTS when the round's update is recorded already)}.
// The caller must have posted shares; "peers" must equal P \ {caller} sorted
// (P read by range query) and P must be closed (|P| == |A| or t votes to
// close the share phase); the blobs must have been put (PutBlob), unless the
// run's config says "blobs": "served". Once per
// msp; PRECONDITION_FAILED "round frozen" after Freeze. Emits AggSubmitted;
// returns a Receipt. A Submit reads no other party's submission: Submits of
// one round never conflict, however close together (issue 11: the mergers
// submit within milliseconds of each other, and a submission order by range
// read invalidated one or two Submits of every round, PHANTOM_READ_CONFLICT).
// Once every party that shared has submitted (U = P) the round is frozen
// without a transaction of its own (roundStatus): P is fixed once any Submit
// exists and nobody outside P may submit, so nothing can change it.
func (c *Contract) Submit(ctx contractapi.TransactionContextInterface, run string, round string, submissionJSON string) (string, error) {
	r, err := runAndRound(run, round)
	if err != nil {
		return "", err
	}
	var arg submissionArg
	if err := validate.Strict("submissionJSON", []byte(submissionJSON), maxSubmitJSONBytes, &arg); err != nil {
		return "", err
	}
	if err := validate.SHA256Hex("submissionJSON.masked_sha256", arg.MaskedSHA256); err != nil {
		return "", err
	}
	if arg.AuditSHA256 != "" {
		if err := validate.SHA256Hex("submissionJSON.audit_sha256", arg.AuditSHA256); err != nil {
			return "", err
		}
	}
	var update LocalUpdateArg
	if arg.Update != nil {
		update = LocalUpdateArg{Round: r, GWeightsSHA256: arg.Update.GWeightsSHA256, DWeightsSHA256: arg.Update.DWeightsSHA256}
		if err := validLocalUpdate("submissionJSON.update", update); err != nil {
			return "", err
		}
	}
	stub, caller, agg, err := participantMerger(ctx, run)
	if err != nil {
		return "", err
	}
	if err := refuseSecond(stub, kindSubmission, run, r, caller.MSPID); err != nil {
		return "", err
	}
	// Late-submission rule, ledger-order safe: this reads the round status key
	// that Freeze writes, so a Freeze committed before this transaction (even
	// in the same block) makes this read stale and Fabric invalidates the
	// Submit (MVCC_READ_CONFLICT); a Freeze ordered after it sees this
	// submission in its own range read.
	if st, err := loadRoundStatus(stub, run, r); err != nil {
		return "", err
	} else if st != nil {
		return "", precondition("round frozen: round %s/%d is %s, late submission by %s refused", run, r, st.Status, caller.MSPID)
	}
	// P by range query: a racing PostShares committed first is a phantom.
	posted, err := rangeMSPs(stub, objAggShares, run, r)
	if err != nil {
		return "", err
	}
	if !contains(posted, caller.MSPID) {
		return "", precondition("%s has not posted shares in round %s/%d", caller.MSPID, run, r)
	}
	// P must be closed: everyone who advertised shared, or t voted to go on.
	advertised, err := rangeMSPs(stub, objAggAdvert, run, r)
	if err != nil {
		return "", err
	}
	if closed, why, err := phaseClosed(stub, agg, run, r, PhaseShares, posted, advertised); err != nil {
		return "", err
	} else if !closed {
		return "", precondition("%s", why)
	}
	if want := without(posted, caller.MSPID); !equalLists(arg.Peers, want) {
		return "", invalid("submissionJSON.peers", "%v must equal P \\ {%s} sorted = %v", arg.Peers, caller.MSPID, want)
	}
	for i, m := range arg.Rejected {
		if !contains(arg.Peers, m) || (i > 0 && arg.Rejected[i-1] >= m) {
			return "", invalid("submissionJSON.rejected", "%v must be sorted, unique and within peers %v", arg.Rejected, arg.Peers)
		}
	}
	for _, h := range []struct{ field, sha string }{{"masked_sha256", arg.MaskedSHA256}, {"audit_sha256", arg.AuditSHA256}} {
		if h.sha == "" || agg.Blobs == BlobsServed { // served blobs: the fetchers check the bytes against the hash
			continue
		}
		key, err := state.Key(stub, objAggBlobMeta, run, h.sha)
		if err != nil {
			return "", err
		}
		if exists, err := state.Exists(stub, key); err != nil {
			return "", err
		} else if !exists {
			return "", precondition("%s blob %s of run %q not stored: PutBlob it first", h.field, h.sha, run)
		}
	}
	var ev AggEvent
	if arg.Update != nil {
		if err := refuseUnstartedRun(stub, run); err != nil {
			return "", err
		}
		head, err := loadHead(stub, run, caller.MSPID)
		if err != nil {
			return "", err
		}
		if _, err := putLocalUpdate(stub, caller, run, update, head); err != nil {
			return "", err
		}
		ev = AggEvent{GWeightsSHA256: update.GWeightsSHA256, DWeightsSHA256: update.DWeightsSHA256}
	}
	return recordEntryEvent(stub, kindSubmission, run, r, caller.MSPID, func(txID, ts string) any {
		peers := append([]string{}, arg.Peers...)
		rejected := append([]string{}, arg.Rejected...)
		return Submission{MaskedSHA256: arg.MaskedSHA256, AuditSHA256: arg.AuditSHA256, Peers: peers, Rejected: rejected, TxID: txID, Timestamp: ts}
	}, ev)
}

// Freeze closes run/round without the parties of P that have not submitted:
// allowed when threshold-many parties of P voted to close the submit phase
// (VoteClose); otherwise PRECONDITION_FAILED; ALREADY_EXISTS once every party
// that posted shares has submitted (|U| == |P|: frozen already, roundStatus).
// No timestamp decides. Sets status "frozen" with U (sorted) and
// D = P \ U (sorted), or "void" when |U| < threshold. Every rejection in a
// submission ("rejected": a dealer whose share failed its commitments) takes
// both sides out of U into D ("excluded"): the chaincode cannot tell a true
// accusation from a false one, so an accuser pays with its own place and a
// bad dealer cannot stay in; excluded submitters are unmasked like dropped
// parties (their key shares are revealed, never their seed shares). Any participant merger;
// once only (ALREADY_EXISTS). Emits AggFrozen (with status); returns the
// RoundStatus.
func (c *Contract) Freeze(ctx contractapi.TransactionContextInterface, run string, round string) (string, error) {
	r, err := runAndRound(run, round)
	if err != nil {
		return "", err
	}
	stub, caller, agg, err := participantMerger(ctx, run)
	if err != nil {
		return "", err
	}
	statusKey, err := state.Key(stub, objAggRoundStatus, run, roundAttr(r))
	if err != nil {
		return "", err
	}
	if err := refuseExisting(stub, statusKey, "round status (already frozen)", fmt.Sprintf("%s/%d", run, r)); err != nil {
		return "", err
	}
	// U fixed by ledger order: both range reads are re-checked at validation,
	// so a Submit (or PostShares) committed before this Freeze in the same
	// block invalidates the Freeze (PHANTOM_READ_CONFLICT), and every Submit
	// after it is refused because it reads the status key written here.
	posted, err := rangeMSPs(stub, objAggShares, run, r)
	if err != nil {
		return "", err
	}
	subs, err := rangeSubmissions(stub, run, r)
	if err != nil {
		return "", err
	}
	if len(subs) == 0 {
		return "", precondition("round %s/%d has no submission yet: nothing to freeze", run, r)
	}
	if len(subs) == len(posted) {
		return "", &ccerr.AlreadyExistsError{What: "round status (frozen: everyone who shared submitted)", Key: fmt.Sprintf("%s/%d", run, r)}
	}
	if closed, why, err := phaseClosed(stub, agg, run, r, PhaseSubmit, sortedKeys(subs), posted); err != nil {
		return "", err
	} else if !closed {
		return "", precondition("%s", why)
	}
	st, err := freezeRound(stub, agg, run, r, caller.MSPID, posted, subs)
	if err != nil {
		return "", err
	}
	return state.Marshal(st)
}

// statusOf is the status of run/round frozen with P (posted, sorted) and the
// submissions: U (sorted) minus the excluded, D = P \ U, "void" when
// |U| < threshold; by, txID and ts name who froze it and when (empty for a
// round frozen by its submissions alone, roundStatus).
func statusOf(agg *Aggregation, posted []string, subs map[string]Submission, by, txID, ts string) RoundStatus {
	out := map[string]bool{}
	for msp, s := range subs {
		for _, dealer := range s.Rejected {
			out[msp], out[dealer] = true, true
		}
	}
	excluded, survivors, dropped := []string{}, []string{}, []string{}
	for _, msp := range posted { // sorted; every rejected dealer and every rejecter posted shares
		_, submitted := subs[msp]
		switch {
		case out[msp]:
			excluded = append(excluded, msp)
			dropped = append(dropped, msp)
		case submitted:
			survivors = append(survivors, msp)
		default:
			dropped = append(dropped, msp)
		}
	}
	st := RoundStatus{Status: StatusFrozen, Survivors: survivors, Dropped: dropped, Excluded: excluded, FrozenBy: by, TxID: txID, Timestamp: ts}
	if len(survivors) < agg.Threshold {
		st.Status = StatusVoid
	}
	return st
}

// freezeRound writes the status of run/round (statusOf) and emits AggFrozen
// (Freeze).
func freezeRound(stub shim.ChaincodeStubInterface, agg *Aggregation, run string, r int, by string, posted []string, subs map[string]Submission) (*RoundStatus, error) {
	statusKey, err := state.Key(stub, objAggRoundStatus, run, roundAttr(r))
	if err != nil {
		return nil, err
	}
	ts, err := state.TxTime(stub)
	if err != nil {
		return nil, err
	}
	st := statusOf(agg, posted, subs, by, stub.GetTxID(), ts)
	if err := state.PutJSON(stub, statusKey, st); err != nil {
		return nil, err
	}
	if err := emitAgg(stub, EventAggFrozen, run, r, by, AggEvent{Status: st.Status}); err != nil {
		return nil, err
	}
	return &st, nil
}

// sortedKeys lists the submitters, sorted.
func sortedKeys(subs map[string]Submission) []string {
	msps := make([]string, 0, len(subs))
	for msp := range subs {
		msps = append(msps, msp)
	}
	sort.Strings(msps)
	return msps
}

// revealArg is the revealJSON of Reveal; both maps are required.
type revealArg struct {
	SeedShares json.RawMessage `json:"seed_shares"`
	KeyShares  json.RawMessage `json:"key_shares"`
}

// shareMap decodes one of the two reveal maps: msp -> canonical base64 of a
// 34-byte share.
func shareMap(arg string, raw json.RawMessage) (map[string]string, error) {
	if raw == nil {
		return nil, invalid(arg, "missing (use {} when empty)")
	}
	m, err := validate.StringMap(arg, raw, maxRevealJSONBytes)
	if err != nil {
		return nil, err
	}
	for msp, s := range m {
		if _, err := validate.CanonicalBase64(fmt.Sprintf("%s[%q]", arg, msp), s, ShareBytes, ShareBytes); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Reveal records the caller's revealed shares for a frozen run/round:
// revealJSON = {"seed_shares": {msp in U: b64 34 bytes}, "key_shares":
// {msp in D: b64 34 bytes}}, key sets exactly U and D (never one msp in
// both). Caller must be in U; once per msp. Emits AggRevealed.
func (c *Contract) Reveal(ctx contractapi.TransactionContextInterface, run string, round string, revealJSON string) (string, error) {
	r, err := runAndRound(run, round)
	if err != nil {
		return "", err
	}
	var arg revealArg
	if err := validate.Strict("revealJSON", []byte(revealJSON), maxRevealJSONBytes, &arg); err != nil {
		return "", err
	}
	seeds, err := shareMap("revealJSON.seed_shares", arg.SeedShares)
	if err != nil {
		return "", err
	}
	keys, err := shareMap("revealJSON.key_shares", arg.KeyShares)
	if err != nil {
		return "", err
	}
	for msp := range keys {
		if _, both := seeds[msp]; both {
			return "", invalid("revealJSON", "%s has both a seed share and a key share: never reveal both for one party", msp)
		}
	}
	stub, caller, agg, err := participantMerger(ctx, run)
	if err != nil {
		return "", err
	}
	st, err := frozenRound(stub, agg, run, r, caller.MSPID, "reveal")
	if err != nil {
		return "", err
	}
	if err := refuseSecond(stub, kindReveal, run, r, caller.MSPID); err != nil {
		return "", err
	}
	u := append([]string{}, st.Survivors...)
	sort.Strings(u)
	if ok, why := sameSet(seeds, u); !ok {
		return "", invalid("revealJSON.seed_shares", "survivors U: %s", why)
	}
	if ok, why := sameSet(keys, st.Dropped); !ok {
		return "", invalid("revealJSON.key_shares", "dropped D: %s", why)
	}
	return recordEntry(stub, kindReveal, run, r, caller.MSPID, func(txID, ts string) any {
		return RevealEntry{SeedShares: seeds, KeyShares: keys, TxID: txID, Timestamp: ts}
	})
}

// resultArg is the resultJSON of PostResult.
type resultArg struct {
	AverageSHA256 string          `json:"average_sha256"`
	Record        json.RawMessage `json:"record,omitempty"`
	Next          *nextAdvert     `json:"next,omitempty"`
}

// nextAdvert is a PostResult's "next": the caller's advertisement of the
// next round (Advertise's arguments).
type nextAdvert struct {
	PublicKey  string `json:"public_key"`
	SeedCommit string `json:"seed_commit"`
}

// roundRecordKey is the trail key of msp's record of run/round (records.go).
func roundRecordKey(run string, round int, msp string) string {
	return fmt.Sprintf("%s/%s/%s/%d/%s", trailPrefix, run, trailRound, round, msp)
}

// PostResult records the hash of the average the caller computed for a
// frozen run/round: resultJSON = {"average_sha256": hex} or, with the
// caller's round record (a JSON object, at most maxResultRecordBytes),
// {"average_sha256": hex, "record": {...}}: then the same transaction stores
// that record under run/<run>/round/<round>/<caller msp> exactly as PutRecord
// would (write-once, stamped, bound to the caller's peer), one transaction
// per merger and round instead of two; its one event stays AggResultPosted.
// With "next": {"public_key", "seed_commit"} the same transaction advertises
// the caller's key and seed commitment for round+1 exactly as Advertise would
// (its validation and rules, refuseAdvert): a merger advertises the next round
// as soon as it has this one's average, one transaction per merger and round
// fewer (issue 11); the event then carries "next_advertised": true (the apps
// read it as the AggAdvertised of round+1) and any refusal of the advert
// refuses the whole call.
// Caller must be in U and have revealed; once per msp (a record already
// there refuses the whole call, ALREADY_EXISTS). Emits AggResultPosted.
func (c *Contract) PostResult(ctx contractapi.TransactionContextInterface, run string, round string, resultJSON string) (string, error) {
	r, err := runAndRound(run, round)
	if err != nil {
		return "", err
	}
	var arg resultArg
	if err := validate.Strict("resultJSON", []byte(resultJSON), maxResultJSONBytes, &arg); err != nil {
		return "", err
	}
	if err := validate.SHA256Hex("resultJSON.average_sha256", arg.AverageSHA256); err != nil {
		return "", err
	}
	var record []byte
	if arg.Record != nil {
		if record, err = validate.JSONObject("resultJSON.record", arg.Record, maxResultRecordBytes); err != nil {
			return "", err
		}
	}
	if arg.Next != nil {
		if err := validAdvertArgs("resultJSON.next.public_key", arg.Next.PublicKey,
			"resultJSON.next.seed_commit", arg.Next.SeedCommit); err != nil {
			return "", err
		}
		if r+1 > validate.MaxRound {
			return "", invalid("resultJSON.next", "round %d is the last round there can be", r)
		}
	}
	stub, caller, agg, err := participantMerger(ctx, run)
	if err != nil {
		return "", err
	}
	if _, err := frozenRound(stub, agg, run, r, caller.MSPID, "post a result"); err != nil {
		return "", err
	}
	var rev RevealEntry
	if found, err := getRoundEntry(stub, objAggReveal, run, r, caller.MSPID, &rev); err != nil {
		return "", err
	} else if !found {
		return "", precondition("%s has not revealed in round %s/%d: reveal before posting a result", caller.MSPID, run, r)
	}
	if record != nil {
		key := roundRecordKey(run, r, caller.MSPID)
		if err := validate.Key("resultJSON.record", key); err != nil {
			return "", err
		}
		parsed, err := parseRecordKey(key)
		if err != nil {
			return "", err
		}
		if _, err := putRecord(stub, key, parsed, record, caller); err != nil {
			return "", err
		}
	}
	ev := AggEvent{AverageSHA256: arg.AverageSHA256}
	if arg.Next != nil {
		if err := refuseAdvert(stub, agg, run, r+1, caller.MSPID); err != nil {
			return "", err
		}
		if _, err := putEntry(stub, kindAdvert, run, r+1, caller.MSPID, advertOf(arg.Next.PublicKey, arg.Next.SeedCommit)); err != nil {
			return "", err
		}
		ev.NextAdvertised = true
	}
	return recordEntryEvent(stub, kindResult, run, r, caller.MSPID, func(txID, ts string) any {
		return ResultEntry{AverageSHA256: arg.AverageSHA256, TxID: txID, Timestamp: ts}
	}, ev)
}

// VoteClose records the caller's vote to close `phase` (advertise | shares |
// submit) of run/round without the parties still missing: each merger votes
// when its own wait (round_timeout_s by its own clock) ran out, and a phase
// closes once threshold-many voted, so no single clock decides. Only a
// party that is in may vote: for advertise one that advertised, for shares
// and submit one that posted shares. PRECONDITION_FAILED once the round is
// frozen or the voter is not in; ALREADY_EXISTS on a second vote. Emits
// AggVoted (with the phase); returns a Receipt.
func (c *Contract) VoteClose(ctx contractapi.TransactionContextInterface, run string, round string, phase string) (string, error) {
	r, err := runAndRound(run, round)
	if err != nil {
		return "", err
	}
	if !contains(Phases, phase) {
		return "", invalid("phase", "%q is not one of %v", phase, Phases)
	}
	stub, caller, agg, err := participantMerger(ctx, run)
	if err != nil {
		return "", err
	}
	key, err := state.Key(stub, objAggVote, run, roundAttr(r), phase, caller.MSPID)
	if err != nil {
		return "", err
	}
	if err := refuseExisting(stub, key, "vote", fmt.Sprintf("%s/%d/%s/%s", run, r, phase, caller.MSPID)); err != nil {
		return "", err
	}
	if st, err := roundStatus(stub, agg, run, r); err != nil {
		return "", err
	} else if st != nil {
		return "", precondition("round %s/%d is %s: no phase left to vote on", run, r, st.Status)
	}
	inObj, inWhat := objAggShares, "posted shares"
	if phase == PhaseAdvertise {
		inObj, inWhat = objAggAdvert, "advertised"
	}
	inKey, err := mspKey(stub, inObj, run, r, caller.MSPID)
	if err != nil {
		return "", err
	}
	if found, err := state.Exists(stub, inKey); err != nil {
		return "", err
	} else if !found {
		return "", precondition("%s has not %s in round %s/%d: only a party that is in votes to close the %s phase", caller.MSPID, inWhat, run, r, phase)
	}
	ts, err := state.TxTime(stub)
	if err != nil {
		return "", err
	}
	if err := state.PutJSON(stub, key, Vote{TxID: stub.GetTxID(), Timestamp: ts}); err != nil {
		return "", err
	}
	if err := emitAgg(stub, EventAggVoted, run, r, caller.MSPID, AggEvent{Phase: phase}); err != nil {
		return "", err
	}
	return state.Marshal(Receipt{Run: run, Round: r, MSPID: caller.MSPID, TxID: stub.GetTxID(), Timestamp: ts})
}

// participantMerger admits the caller of a round write: role merger first
// (ACCESS_DENIED), then the run must exist (NOT_FOUND) and list the caller's
// MSP as a participant (ACCESS_DENIED). Returns the stub, the caller and the
// run's configuration.
func participantMerger(ctx contractapi.TransactionContextInterface, run string) (shim.ChaincodeStubInterface, access.Caller, *Aggregation, error) {
	caller, err := access.Require(ctx, access.RoleMerger)
	if err != nil {
		return nil, access.Caller{}, nil, err
	}
	stub := ctx.GetStub()
	agg, err := participantRun(stub, run, caller)
	if err != nil {
		return nil, access.Caller{}, nil, err
	}
	return stub, caller, agg, nil
}

// refuseSecond returns ALREADY_EXISTS when msp already has an entry of kind k
// in run/round. Advertise, PostShares, Submit and Reveal call it before their
// phase rules, so a repeated call is reported as a repeat; recordEntry checks
// again when writing.
func refuseSecond(stub shim.ChaincodeStubInterface, k entryKind, run string, round int, msp string) error {
	key, err := mspKey(stub, k.obj, run, round, msp)
	if err != nil {
		return err
	}
	return refuseExisting(stub, key, k.what, roundEntryID(run, round, msp))
}

// refuseClosedPhase returns PRECONDITION_FAILED "<phase> phase ... is
// closed: <msps> already <did>" once any entry of kind closer exists in
// run/round. It reads them by range query, so a racing closer committed
// first invalidates the caller's transaction (see the package comment).
func refuseClosedPhase(stub shim.ChaincodeStubInterface, closer entryKind, phase, did, run string, round int) error {
	msps, err := rangeMSPs(stub, closer.obj, run, round)
	if err != nil {
		return err
	}
	if len(msps) > 0 {
		return precondition("%s phase of round %s/%d is closed: %v already %s", phase, run, round, msps, did)
	}
	return nil
}

// refuseVotedClosed returns PRECONDITION_FAILED "<word> phase ... is closed"
// once threshold-many parties voted to close phase of run/round (read by range
// query, so a vote committed first invalidates the caller's transaction).
func refuseVotedClosed(stub shim.ChaincodeStubInterface, agg *Aggregation, run string, round int, phase, word string) error {
	votes, err := rangeVotes(stub, run, round, phase)
	if err != nil {
		return err
	}
	if len(votes) >= agg.Threshold {
		return precondition("%s phase of round %s/%d is closed: %v voted to close it", word, run, round, votes)
	}
	return nil
}

// recordEntry stamps the caller's entry of kind k with the transaction id and
// time (build makes the entry from them), stores it under
// k.obj/run/round/msp (ALREADY_EXISTS when present), emits k.event and
// returns the Receipt JSON; order is set for Submit only.
func recordEntry(stub shim.ChaincodeStubInterface, k entryKind, run string, round int, msp string, build func(txID, ts string) any) (string, error) {
	return recordEntryEvent(stub, k, run, round, msp, build, AggEvent{})
}

// recordEntryEvent is recordEntry whose event also carries ev's optional
// fields (the hash a PostResult posts, the update a Submit records); emitAgg
// fills in the rest.
func recordEntryEvent(stub shim.ChaincodeStubInterface, k entryKind, run string, round int, msp string, build func(txID, ts string) any, ev AggEvent) (string, error) {
	ts, err := putEntry(stub, k, run, round, msp, build)
	if err != nil {
		return "", err
	}
	if err := emitAgg(stub, k.event, run, round, msp, ev); err != nil {
		return "", err
	}
	return state.Marshal(Receipt{Run: run, Round: round, MSPID: msp, TxID: stub.GetTxID(), Timestamp: ts})
}

// putEntry stores the entry build makes from this transaction's id and
// timestamp as msp's entry of kind k in run/round (putRoundEntry, no event);
// returns the timestamp.
func putEntry(stub shim.ChaincodeStubInterface, k entryKind, run string, round int, msp string, build func(txID, ts string) any) (string, error) {
	ts, err := state.TxTime(stub)
	if err != nil {
		return "", err
	}
	return ts, putRoundEntry(stub, k, run, round, msp, build(stub.GetTxID(), ts))
}

func equalLists(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
