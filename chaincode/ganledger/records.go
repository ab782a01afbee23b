package ganledger

// Record keys of PutRecord: the trail key grammar and who may write which
// key (chaincode/README.md "Record keys"; issue 10 items 3 and 4).
//
// Who calls: PutRecord (write.go), after validate.Key: parseRecordKey to
// validate, then authoriseRecordKey once the caller is known.
// Where data lives: records under ("record", key); the owner of a run's
// header is read from the run document ("run", run, runs.go) or, for a run
// without one, the aggregation config ("agg_cfg", run, aggregation.go).
//
// Grammar. A key whose first "/"-segment is "run" is a trail key and must
// be one of
//
//	run/<run>                   the run's header (schema, config, registries)
//	run/<run>/round/<r>/<msp>   registry <msp>'s record of merge round <r>
//
// with <run> a run id containing no "/"-segment "round", <r> a canonical
// decimal 0..1000000 and <msp> an MSP id (members.MSPIDPattern; it must be
// the caller's, hence a registered member); any other key with a
// "round" segment after "run/" is refused (INVALID_ARGUMENT), so a trail key
// parses one way only. Every other key is free-form.
//
// Who may write (ACCESS_DENIED otherwise, naming the key and who may):
//   - a round record: any role of <msp> (the caller's own registry);
//   - a header: the merger of the org that opened the run, i.e. the
//     proposer's MSP of the run document, or when the run has none the first
//     participant of its aggregation config; a run with neither has no
//     owner yet (PRECONDITION_FAILED), so a header can never be written
//     ahead of the run;
//   - a free-form key: any role, but every "/"-segment that names a
//     registered member of the channel must be the caller's (one member
//     read per distinct segment of MSP-ID syntax other than the caller's).
//
// The owner reads are in the read set; ProposeRun and OpenAggregation are
// write-once, so a header endorsed against them stays valid.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/members"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// Trail key segments.
const (
	trailPrefix  = "run"
	trailRound   = "round"
	recordKeyArg = "key"
)

// recordKeyKind tells the three kinds of record keys apart.
type recordKeyKind int

const (
	keyFreeForm recordKeyKind = iota
	keyRunHeader
	keyRoundRecord
)

// recordKey is a parsed record key.
type recordKey struct {
	kind  recordKeyKind
	run   string   // header and round record
	round int      // round record
	msp   string   // round record: the registry it belongs to
	msps  []string // free-form: the segments of MSP-id syntax (candidates)
}

// parseRecordKey classifies key (already checked by validate.Key) by the
// grammar above; INVALID_ARGUMENT for a malformed trail key.
func parseRecordKey(key string) (recordKey, error) {
	segs := strings.Split(key, "/")
	if segs[0] != trailPrefix || len(segs) == 1 {
		return recordKey{kind: keyFreeForm, msps: namedMSPs(segs)}, nil
	}
	bad := func(format string, args ...any) error {
		return &ccerr.InvalidArgumentError{Arg: recordKeyArg, Reason: fmt.Sprintf("trail key %q ", key) +
			fmt.Sprintf(format, args...) + " (trail keys: run/<run> and run/<run>/round/<r>/<msp>)"}
	}
	rest := segs[1:]
	at := -1
	for i, s := range rest {
		if s == trailRound {
			at = i
			break
		}
	}
	if at == -1 {
		run := strings.Join(rest, "/")
		if err := validate.Key(recordKeyArg, run); err != nil {
			return recordKey{}, bad("has no valid run id")
		}
		return recordKey{kind: keyRunHeader, run: run}, nil
	}
	if at == 0 || len(rest) != at+3 {
		return recordKey{}, bad("is not run/<run>/round/<r>/<msp> (a run id has no segment %q)", trailRound)
	}
	run := strings.Join(rest[:at], "/")
	if err := validate.Key(recordKeyArg, run); err != nil {
		return recordKey{}, bad("has no valid run id")
	}
	round, err := validate.Round(recordKeyArg, rest[at+1])
	if err != nil {
		return recordKey{}, bad("has no valid round: %q is not a canonical decimal in [0, %d]", rest[at+1], validate.MaxRound)
	}
	msp := rest[at+2]
	if !members.ValidMSPID(msp) {
		return recordKey{}, bad("ends in %q, not an MSP id (%s)", msp, members.MSPIDPattern)
	}
	return recordKey{kind: keyRoundRecord, run: run, round: round, msp: msp}, nil
}

// namedMSPs returns the distinct segments of MSP-id syntax; whether one names
// a member is a state read, done in authoriseRecordKey.
func namedMSPs(segs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range segs {
		if members.ValidMSPID(s) && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// authoriseRecordKey admits caller to write the parsed key k (see the
// package comment of this file for the rules).
func authoriseRecordKey(stub shim.ChaincodeStubInterface, key string, k recordKey, caller access.Caller) error {
	action := fmt.Sprintf("write record %q", key)
	switch k.kind {
	case keyRoundRecord:
		return access.RequireOrg(caller, k.msp, action+" (a round record belongs to the registry it names)")
	case keyRunHeader:
		owner, how, err := runOwner(stub, k.run)
		if err != nil {
			return err
		}
		if caller.MSPID != owner || caller.Role != access.RoleMerger {
			return &access.OrgError{MSPID: caller.MSPID, Role: caller.Role, Action: action + " (the header of run " + k.run + ")",
				Required: "the merger of " + owner + " (" + how + ")"}
		}
		return nil
	default:
		for _, m := range k.msps {
			if m == caller.MSPID {
				continue
			}
			named, err := members.IsMember(stub, m)
			if err != nil {
				return err
			}
			if named {
				return access.RequireOrg(caller, m, action+" (a key naming "+m+" belongs to it)")
			}
		}
		return nil
	}
}

// runProposerOnly decodes just the proposer stamp of a run document.
type runProposerOnly struct {
	Proposer Stamp `json:"proposer"`
}

// runOwner is the MSP that opened run: the proposer of its run document, else
// the first participant of its aggregation config; PRECONDITION_FAILED when
// the run has neither. how says which, for error messages.
func runOwner(stub shim.ChaincodeStubInterface, run string) (owner, how string, err error) {
	key, err := runKey(stub, run)
	if err != nil {
		return "", "", err
	}
	doc, err := loadOptional[runProposerOnly](stub, key)
	if err != nil {
		return "", "", err
	}
	if doc != nil {
		return doc.Proposer.MSPID, "the proposer of run " + run, nil
	}
	agg, err := loadAggregation(stub, run)
	if err != nil {
		var missing *ccerr.NotFoundError
		if errors.As(err, &missing) {
			return "", "", precondition("run %s has neither a run document (ProposeRun) nor an aggregation "+
				"(OpenAggregation): its header has no owner yet", run)
		}
		return "", "", err
	}
	return agg.Participants[0], "the first participant of aggregation run " + run, nil
}
