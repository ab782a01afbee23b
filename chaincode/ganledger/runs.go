package ganledger

// Training runs agreed on the ledger (wire spec chaincode/spec/runs.md):
// types, state key, spec validation and the shared helpers of runs_write.go
// and runs_read.go, plus the gate the step writes pass through.
//
// Who calls: each registry's admin app (ProposeRun, ApproveRun, AbortRun);
// any consortium app or the auditor for the reads (GetRun, ListRuns); the
// step writes of steps_write.go (through stepCaller) for the gate.
// Where data lives: public world state of channel "gan":
//
//	run /run      the run document: the exact spec text, its hash, status and stamps
//
// A run moves proposed -> started (when every participant approved) and
// from proposed or started -> aborted; started and aborted are final for
// approvals, aborted is final. The spec is stored as the exact text the
// proposer sent (a JSON string field), so every client gets the same bytes
// back and can hash them: run_sha256 is the SHA-256 of those bytes, and an
// approval names it. Every write reads and rewrites the one document, so two
// approvals of one run in one block conflict (the second is invalidated,
// MVCC_READ_CONFLICT, and must be resubmitted); the step writes read it too,
// so an abort committed first invalidates a step racing it in the same block.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/members"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// Event names of the run functions (one event per transaction).
const (
	EventRunProposed = "RunProposed"
	EventRunApproved = "RunApproved"
	EventRunStarted  = "RunStarted"
	EventRunAborted  = "RunAborted"
)

// Run statuses as returned by GetRun and ListRuns.
const (
	RunProposed = "proposed" // waiting for approvals
	RunStarted  = "started"  // every participant approved: steps allowed
	RunAborted  = "aborted"  // final: no approval, no step
)

// Limits of the wire spec, plus bounds on JSON argument sizes.
const (
	MaxRunSpecBytes       = 256 << 10
	MaxRunParticipants    = 64
	MaxSchemaChars        = 131_072
	MaxRunRounds          = 1_000_000
	MaxLocalIters         = 1_000_000
	MaxCeremonyIDChars    = 128
	MaxAbortReasonChars   = 1024
	maxApprovalJSONBytes  = 1 << 10
	objRun                = "run"
	runWhatName           = "run"
	specArgName           = "specJSON"
	approvalArgName       = "approvalJSON"
	specFieldConfig       = "config"
	specFieldStopRule     = "stop_rule"
	specFieldParticipants = specArgName + ".participants"
)

// RunSpec is the specJSON of ProposeRun: every field required, none null,
// none other. Config and StopRule are JSON objects opaque to the chaincode
// (kept as given inside the stored spec text).
type RunSpec struct {
	Participants []string        `json:"participants"` // sorted, unique MSP ids of registered members, 1..64
	SchemaSHA256 string          `json:"schema_sha256"`
	Schema       string          `json:"schema"` // the agreed schema's YAML text, 1..131072 characters
	Config       json.RawMessage `json:"config"`
	Threshold    int             `json:"threshold"` // 1..len(participants)
	Rounds       int             `json:"rounds"`
	LocalIters   int             `json:"local_iters"`
	AuditRounds  []int           `json:"audit_rounds"` // strictly ascending, each 0..rounds-1; may be empty
	StopRule     json.RawMessage `json:"stop_rule"`
	CeremonyID   string          `json:"ceremony_id"`
}

// ApprovalArg is the approvalJSON of ApproveRun: the run and schema the
// approving organisation checked.
type ApprovalArg struct {
	RunSHA256    string `json:"run_sha256"`
	SchemaSHA256 string `json:"schema_sha256"`
}

// RunAbort is the stamp of the AbortRun transaction plus its reason.
type RunAbort struct {
	Stamp
	Reason string `json:"reason"`
}

// RunFacts is everything of a run document except its id and spec text.
// Maps are never null; encoding/json sorts map keys, so every endorser
// writes and returns the same bytes.
type RunFacts struct {
	RunSHA256 string           `json:"run_sha256"` // lower-case hex SHA-256 of the exact spec_json bytes
	Status    string           `json:"status"`     // proposed | started | aborted
	Proposer  Stamp            `json:"proposer"`
	Approvals map[string]Stamp `json:"approvals"` // msp -> stamp of its ApproveRun
	Started   *Stamp           `json:"started"`   // the approval that completed the set; null before
	Aborted   *RunAbort        `json:"aborted"`   // null unless aborted
}

// RunDocument is the stored run under run/<run>; GetRun returns it.
type RunDocument struct {
	Run      string `json:"run"`
	SpecJSON string `json:"spec_json"` // the exact specJSON text of ProposeRun
	RunFacts
}

// RunReceipt is the result of ProposeRun, ApproveRun and AbortRun: the run
// document without the spec text (which the caller has, and which would
// otherwise travel in every transaction a third time).
type RunReceipt struct {
	Run string `json:"run"`
	RunFacts
}

// RunEntry is one element of ListRuns.
type RunEntry struct {
	Run       string `json:"run"`
	Status    string `json:"status"`
	RunSHA256 string `json:"run_sha256"`
}

// RunEvent is the payload of the four run events; Reason only for RunAborted.
type RunEvent struct {
	Run    string `json:"run"`
	MSPID  string `json:"msp"`
	Status string `json:"status"` // the run's status after the transaction
	TxID   string `json:"txid"`
	Reason string `json:"reason,omitempty"`
}

// NotRunParticipantError: the caller's MSP is not among the run's
// participants. ACCESS_DENIED.
type NotRunParticipantError struct {
	MSPID        string
	Run          string
	Participants []string
}

func (e *NotRunParticipantError) Error() string {
	return fmt.Sprintf("%s: %s is not a participant of run %q (participants: %s)",
		ccerr.CodeAccessDenied, e.MSPID, e.Run, strings.Join(e.Participants, ","))
}

// Code implements ccerr.Coded.
func (e *NotRunParticipantError) Code() ccerr.Code { return ccerr.CodeAccessDenied }

// parseSpec validates the run id and decodes and checks specJSON (strict at
// every depth, see validate.StrictTree; null allowed only inside the opaque
// config and stop_rule objects).
func parseSpec(run, specJSON string) (*RunSpec, error) {
	if err := validate.Key("run", run); err != nil {
		return nil, err
	}
	raw := []byte(specJSON)
	var spec RunSpec
	if err := validate.Complete(specArgName, raw, MaxRunSpecBytes, &spec); err != nil {
		return nil, err
	}
	if err := validate.StrictTree(specArgName, raw, specFieldConfig, specFieldStopRule); err != nil {
		return nil, err
	}
	if err := validateSpec(&spec); err != nil {
		return nil, err
	}
	return &spec, nil
}

// validateSpec checks every rule of the spec, in field order.
func validateSpec(spec *RunSpec) error {
	const arg = specArgName
	n := len(spec.Participants)
	if n < 1 || n > MaxRunParticipants {
		return invalid(specFieldParticipants, "%d participants outside [1, %d]", n, MaxRunParticipants)
	}
	for i, p := range spec.Participants {
		if !members.ValidMSPID(p) {
			return invalid(specFieldParticipants, "%q is not an MSP id (%s)", p, members.MSPIDPattern)
		}
		if i > 0 && spec.Participants[i-1] >= p {
			return invalid(specFieldParticipants, "not sorted and unique at %q, %q", spec.Participants[i-1], p)
		}
	}
	if err := validate.SHA256Hex(arg+".schema_sha256", spec.SchemaSHA256); err != nil {
		return err
	}
	if err := validate.Text(arg+".schema", spec.Schema, 1, MaxSchemaChars); err != nil {
		return err
	}
	if _, err := validate.JSONObject(arg+"."+specFieldConfig, spec.Config, MaxRunSpecBytes); err != nil {
		return err
	}
	if err := validate.IntRange(arg+".threshold", int64(spec.Threshold), 1, int64(n)); err != nil {
		return err
	}
	if err := validate.IntRange(arg+".rounds", int64(spec.Rounds), 1, MaxRunRounds); err != nil {
		return err
	}
	if err := validate.IntRange(arg+".local_iters", int64(spec.LocalIters), 1, MaxLocalIters); err != nil {
		return err
	}
	for i, r := range spec.AuditRounds {
		field := fmt.Sprintf("%s.audit_rounds[%d]", arg, i)
		if err := validate.IntRange(field, int64(r), 0, int64(spec.Rounds)-1); err != nil {
			return err
		}
		if i > 0 && spec.AuditRounds[i-1] >= r {
			return invalid(field, "%d does not come after %d (strictly ascending)", r, spec.AuditRounds[i-1])
		}
	}
	if _, err := validate.JSONObject(arg+"."+specFieldStopRule, spec.StopRule, MaxRunSpecBytes); err != nil {
		return err
	}
	return validate.Text(arg+".ceremony_id", spec.CeremonyID, 1, MaxCeremonyIDChars)
}

// specOf decodes the stored spec text of doc (validated when proposed).
func specOf(doc *RunDocument) (*RunSpec, error) {
	var spec RunSpec
	if err := json.Unmarshal([]byte(doc.SpecJSON), &spec); err != nil {
		return nil, ccerr.Internal("decoding the stored spec of run "+doc.Run, err)
	}
	return &spec, nil
}

// isParticipant reports whether msp is in the spec's participants.
func (s *RunSpec) isParticipant(msp string) bool { return contains(s.Participants, msp) }

// refuseNonParticipant returns ACCESS_DENIED unless caller's MSP is a
// participant of the run.
func refuseNonParticipant(spec *RunSpec, run string, caller access.Caller) error {
	if !spec.isParticipant(caller.MSPID) {
		return &NotRunParticipantError{MSPID: caller.MSPID, Run: run, Participants: spec.Participants}
	}
	return nil
}

func hexSHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// runKey is run/<run>.
func runKey(stub shim.ChaincodeStubInterface, run string) (string, error) {
	return state.Key(stub, objRun, run)
}

// loadRun reads the run document; NOT_FOUND when absent.
func loadRun(stub shim.ChaincodeStubInterface, run string) (*RunDocument, error) {
	key, err := runKey(stub, run)
	if err != nil {
		return nil, err
	}
	doc, err := loadOptional[RunDocument](stub, key)
	if err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, &ccerr.NotFoundError{What: runWhatName, Key: run}
	}
	return doc, nil
}

// participantAdminRun loads the run (NOT_FOUND) and its spec and admits
// only a participant's caller (ACCESS_DENIED); the role was checked by
// access.Require before.
func participantAdminRun(stub shim.ChaincodeStubInterface, run string, caller access.Caller) (*RunDocument, *RunSpec, error) {
	doc, err := loadRun(stub, run)
	if err != nil {
		return nil, nil, err
	}
	spec, err := specOf(doc)
	if err != nil {
		return nil, nil, err
	}
	if err := refuseNonParticipant(spec, run, caller); err != nil {
		return nil, nil, err
	}
	return doc, spec, nil
}

// saveRun writes doc under its key, emits event with the run's new status
// (and reason), and returns the RunReceipt JSON.
func saveRun(stub shim.ChaincodeStubInterface, doc *RunDocument, event string, msp, reason string) (string, error) {
	key, err := runKey(stub, doc.Run)
	if err != nil {
		return "", err
	}
	if err := state.PutJSON(stub, key, doc); err != nil {
		return "", err
	}
	ev := RunEvent{Run: doc.Run, MSPID: msp, Status: doc.Status, TxID: stub.GetTxID(), Reason: reason}
	if err := state.Emit(stub, event, ev); err != nil {
		return "", err
	}
	return state.Marshal(RunReceipt{Run: doc.Run, RunFacts: doc.RunFacts})
}

// runStatusOnly decodes just the status of a run document.
type runStatusOnly struct {
	Status string `json:"status"`
}

// refuseUnstartedRun is the gate of the step writes: PRECONDITION_FAILED
// when a run document exists for run and its status is not started ("run
// <id> is aborted", "run <id> is not started (status proposed)"). Without a
// run document the step is allowed, as before runs existed: callers and
// tests that use bare run ids keep working (a known gap, see spec/runs.md).
// The read is in the read set: an AbortRun committed first in the same
// block invalidates the step (MVCC_READ_CONFLICT).
func refuseUnstartedRun(stub shim.ChaincodeStubInterface, run string) error {
	key, err := runKey(stub, run)
	if err != nil {
		return err
	}
	doc, err := loadOptional[runStatusOnly](stub, key)
	if err != nil || doc == nil {
		return err
	}
	switch doc.Status {
	case RunStarted:
		return nil
	case RunAborted:
		return precondition("run %s is aborted", run)
	default:
		return precondition("run %s is not started (status %s)", run, doc.Status)
	}
}
