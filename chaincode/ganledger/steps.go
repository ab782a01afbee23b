package ganledger

// Per-iteration training step records (DESIGN.md §3, the paper's Figure 3
// flows 1–3; wire spec chaincode/spec/steps.md): types, state keys and the shared
// helpers of steps_write.go and steps_read.go.
//
// Who calls: each registry's generator app (RecordGeneratorStep, RecordStop,
// RecordLocalUpdate, RecordFault) and discriminator app
// (RecordDiscriminatorStep, RecordFault); any consortium app or the auditor
// for the reads.
// Where data lives: public world state of channel "gan":
//
//	step_head   /run/msp                  {round, iter, phase}: the registry's last step
//	step_g      /run/msp/round/iter       generator step record (stamped)
//	step_d      /run/msp/round/iter       discriminator step record (stamped)
//	step_stop   /run/msp                  the stop record (stamped), written once
//	step_update /run/msp/round            local update record (stamped), written once per round
//	step_fault  /run/msp/txid             fault record (stamped), append-only
//
// round and iter are 10-digit zero-padded in keys so that key order is step
// order. Every step write reads and writes the registry's own head key, so
// the steps of one registry are serialised by MVCC (a second step endorsed
// against the same head in one block is invalidated), while registries never
// touch each other's keys and step concurrently. Faults do not touch the head;
// a local update reads it but does not write it (a generator step committed
// first in the same block invalidates the update, not the other way round).
// Every write but RecordFault also reads the run document (runs.go), which
// gates it on the run's status.

import (
	"fmt"
	"strings"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/sbe"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// Event names of the step functions (one event per transaction).
const (
	EventGeneratorStep     = "GeneratorStep"
	EventDiscriminatorStep = "DiscriminatorStep"
	EventTrainingStopped   = "TrainingStopped"
	EventStepFault         = "StepFault"
	EventLocalUpdate       = "LocalUpdate"
)

// Head phases as returned by GetStepHead.
const (
	PhaseGenerator     = "g"       // generator step recorded, waiting for the discriminator
	PhaseDiscriminator = "d"       // step complete, next generator step or stop allowed
	PhaseStopped       = "stopped" // RecordStop done: no further step
)

// Stop reasons and fault kinds of the wire spec.
var (
	StopReasons = []string{"budget", "threshold", "privacy_budget"}
	FaultKinds  = []string{"fake_hash_mismatch", "feedback_hash_mismatch", "real_batch_invalid",
		"statement_invalid", "root_mismatch"} // the last two: anchored step records (anchor.go)
)

// Limits of the wire spec.
const (
	MaxNoiseSeed       = 1<<63 - 1 // the 63-bit seeds of synthreg.gan.step.derive_seed; JSON integers are decoded exactly into int64
	MaxBatchSize       = 1_000_000
	MaxLoss            = 1e12
	MaxFaultDetail     = 1024 // characters
	maxStepJSONBytes   = 4 << 10
	maxFaultJSONBytes  = 8 << 10 // 1024 characters of up to 4 UTF-8 bytes, escaped, plus fields
	objStepHead        = "step_head"
	objStepGenerator   = "step_g"
	objStepDiscrimin   = "step_d"
	objStepStop        = "step_stop"
	objStepFault       = "step_fault"
	objStepUpdate      = "step_update"
	localUpdateWhat    = "local update"
	stepHeadWhatName   = "step head"
	stepRecordWhatName = "step"
)

// StepHead is the last step of one registry in one run.
type StepHead struct {
	Round int    `json:"round"`
	Iter  int    `json:"iter"`
	Phase string `json:"phase"`
}

// Stamp is what the chaincode adds to every step, stop and fault record.
type Stamp struct {
	MSPID     string `json:"msp"`
	Role      string `json:"role"`
	TxID      string `json:"txid"`
	Timestamp string `json:"timestamp"` // tx timestamp, RFC 3339 UTC
}

// GeneratorStepArg is the stepJSON of RecordGeneratorStep.
type GeneratorStepArg struct {
	Round          int    `json:"round"`
	Iter           int    `json:"iter"`
	FakeSHA256     string `json:"fake_sha256"`
	GWeightsSHA256 string `json:"g_weights_sha256"`
	NoiseSeed      int64  `json:"noise_seed"`
	BatchSize      int    `json:"batch_size"`
}

// GeneratorStep is the stored generator step record.
type GeneratorStep struct {
	GeneratorStepArg
	Stamp
}

// DiscriminatorStepArg is the stepJSON of RecordDiscriminatorStep.
type DiscriminatorStepArg struct {
	Round          int     `json:"round"`
	Iter           int     `json:"iter"`
	FakeSHA256     string  `json:"fake_sha256"`
	RealSHA256     string  `json:"real_sha256"`
	FeedbackSHA256 string  `json:"feedback_sha256"`
	DWeightsSHA256 string  `json:"d_weights_sha256"`
	DLoss          float64 `json:"d_loss"`
	GLoss          float64 `json:"g_loss"`
}

// DiscriminatorStep is the stored discriminator step record.
type DiscriminatorStep struct {
	DiscriminatorStepArg
	Stamp
}

// StopArg is the stopJSON of RecordStop.
type StopArg struct {
	Round  int     `json:"round"`
	Iter   int     `json:"iter"`
	Reason string  `json:"reason"`
	GLoss  float64 `json:"g_loss"`
}

// Stop is the stored stop record.
type Stop struct {
	StopArg
	Stamp
}

// FaultArg is the faultJSON of RecordFault.
type FaultArg struct {
	Round    int    `json:"round"`
	Iter     int    `json:"iter"`
	Kind     string `json:"kind"`
	Expected string `json:"expected"`
	Got      string `json:"got"`
	Detail   string `json:"detail"`
}

// Fault is the stored fault record; ListFaults returns a list of them.
type Fault struct {
	FaultArg
	Stamp
}

// LocalUpdateArg is the updateJSON of RecordLocalUpdate: the registry's
// generator and discriminator weights at the end of round's local
// iterations, before its merger averages them with the other registries'.
type LocalUpdateArg struct {
	Round          int    `json:"round"`
	GWeightsSHA256 string `json:"g_weights_sha256"`
	DWeightsSHA256 string `json:"d_weights_sha256"`
}

// LocalUpdate is the stored local update record: the argument, the iter of
// the round's last step (the head when it was recorded) and the stamp.
type LocalUpdate struct {
	LocalUpdateArg
	Iter int `json:"iter"`
	Stamp
}

// StepPair is the result of GetStep; a side not recorded is null.
type StepPair struct {
	Generator     *GeneratorStep     `json:"generator"`
	Discriminator *DiscriminatorStep `json:"discriminator"`
}

// StepEvent is the payload of the five step events; the optional field is
// the one the event names (fake hash, feedback hash, stop reason, fault kind;
// none for LocalUpdate, whose iter is the round's last step).
type StepEvent struct {
	Run            string `json:"run"`
	MSPID          string `json:"msp"`
	Round          int    `json:"round"`
	Iter           int    `json:"iter"`
	FakeSHA256     string `json:"fake_sha256,omitempty"`
	FeedbackSHA256 string `json:"feedback_sha256,omitempty"`
	Reason         string `json:"reason,omitempty"`
	Kind           string `json:"kind,omitempty"`
	GWeightsSHA256 string `json:"g_weights_sha256,omitempty"` // LocalUpdate: the update's hashes, so the
	DWeightsSHA256 string `json:"d_weights_sha256,omitempty"` // merger, woken by it, need not read it back
	// Roots: the counterpart app checks the root against what it received without reading it
	// back (DiscriminatorRoot also carries d_weights_sha256, for the generator's LocalUpdate).
	MerkleRoot string `json:"merkle_root,omitempty"`
	TxID       string `json:"txid"`
}

// after reports whether (round, iter) comes strictly after the head's step.
func (h *StepHead) after(round, iter int) bool {
	return round > h.Round || (round == h.Round && iter > h.Iter)
}

// at reports whether (round, iter) is the head's step.
func (h *StepHead) at(round, iter int) bool { return round == h.Round && iter == h.Iter }

// stepArgs validates the run id and decodes jsonArg (every field required,
// see validate.Complete) into v, then checks its round and iter.
func stepArgs(run, argName, jsonArg string, maxBytes int, v any, round, iter *int) error {
	if err := validate.Key("run", run); err != nil {
		return err
	}
	if err := validate.Complete(argName, []byte(jsonArg), maxBytes, v); err != nil {
		return err
	}
	if err := validate.IntRange(argName+".round", int64(*round), 0, validate.MaxRound); err != nil {
		return err
	}
	return validate.IntRange(argName+".iter", int64(*iter), 0, validate.MaxRound)
}

// hashFields checks each {field, value} pair is a lower-case hex SHA-256,
// in the order given (the first bad one is named).
func hashFields(argName string, pairs ...[2]string) error {
	for _, p := range pairs {
		if err := validate.SHA256Hex(argName+"."+p[0], p[1]); err != nil {
			return err
		}
	}
	return nil
}

// oneOf checks that s is one of allowed.
func oneOf(arg, s string, allowed []string) error {
	if !contains(allowed, s) {
		return invalid(arg, "%q is not one of %v", s, allowed)
	}
	return nil
}

func stepAttr(n int) string { return fmt.Sprintf("%010d", n) }

// stepKey is obj/run/msp/round/iter (obj = step_g or step_d).
func stepKey(stub shim.ChaincodeStubInterface, obj, run, msp string, round, iter int) (string, error) {
	return state.Key(stub, obj, run, msp, stepAttr(round), stepAttr(iter))
}

// loadHead reads step_head/run/msp; nil when the registry has no step yet.
// The read is in the read set: a step of the same registry committed first
// in the same block invalidates the caller (MVCC_READ_CONFLICT).
func loadHead(stub shim.ChaincodeStubInterface, run, msp string) (*StepHead, error) {
	key, err := state.Key(stub, objStepHead, run, msp)
	if err != nil {
		return nil, err
	}
	return loadOptional[StepHead](stub, key)
}

// loadOptional reads key as JSON into a new T; nil (no error) when absent.
func loadOptional[T any](stub shim.ChaincodeStubInterface, key string) (*T, error) {
	var v T
	found, err := state.GetJSON(stub, key, &v)
	if err != nil || !found {
		return nil, err
	}
	return &v, nil
}

// loadStep reads obj/run/msp/round/iter into v; found false when absent.
func loadStep(stub shim.ChaincodeStubInterface, obj, run, msp string, round, iter int, v any) (bool, error) {
	key, err := stepKey(stub, obj, run, msp, round, iter)
	if err != nil {
		return false, err
	}
	return state.GetJSON(stub, key, v)
}

// stoppedError is the refusal of every step after RecordStop.
func stoppedError(run, msp string, h *StepHead) error {
	return precondition("training of %s in run %s stopped (after round %d iter %d)", msp, run, h.Round, h.Iter)
}

// waitingError is the refusal of a generator step or stop while the
// discriminator step of the head is missing.
func waitingError(run, msp string, h *StepHead) error {
	return precondition("waiting for the discriminator step of round %d iter %d of %s in run %s", h.Round, h.Iter, msp, run)
}

// stepCaller admits the caller of a step write with one of roles
// (ACCESS_DENIED otherwise), refuses the write when run has a run document
// that is not started (PRECONDITION_FAILED, see refuseUnstartedRun) and
// reads its registry's head in run (nil before the first step).
func stepCaller(ctx contractapi.TransactionContextInterface, run string, roles ...access.Role) (shim.ChaincodeStubInterface, access.Caller, *StepHead, error) {
	caller, err := access.Require(ctx, roles...)
	if err != nil {
		return nil, access.Caller{}, nil, err
	}
	stub := ctx.GetStub()
	if err := refuseUnstartedRun(stub, run); err != nil {
		return nil, access.Caller{}, nil, err
	}
	head, err := loadHead(stub, run, caller.MSPID)
	if err != nil {
		return nil, access.Caller{}, nil, err
	}
	return stub, caller, head, nil
}

// stepWrite is one kind of head-advancing write: the state object of its
// record (per step, or one per registry for the stop), the phase it leaves
// the head in and its event.
type stepWrite struct {
	obj     string
	perStep bool
	phase   string
	event   string
}

// The three head-advancing writes.
var (
	writeGenerator     = stepWrite{objStepGenerator, true, PhaseGenerator, EventGeneratorStep}
	writeDiscriminator = stepWrite{objStepDiscrimin, true, PhaseDiscriminator, EventDiscriminatorStep}
	writeStop          = stepWrite{objStepStop, false, PhaseStopped, EventTrainingStopped}
)

// stampOf builds the stamp of the caller's transaction.
func stampOf(stub shim.ChaincodeStubInterface, caller access.Caller) (Stamp, error) {
	ts, err := state.TxTime(stub)
	if err != nil {
		return Stamp{}, err
	}
	return Stamp{MSPID: caller.MSPID, Role: string(caller.Role), TxID: stub.GetTxID(), Timestamp: ts}, nil
}

// recordStep stores the record build makes from the caller's stamp under
// w's key (ALREADY_EXISTS when present, which the head rules make
// unreachable), sets the registry's head to (ev.Round, ev.Iter, w.phase),
// emits w.event with ev (txid filled in) and returns the record as JSON.
func recordStep(stub shim.ChaincodeStubInterface, caller access.Caller, w stepWrite, ev StepEvent, build func(Stamp) any) (string, error) {
	attrs := []string{ev.Run, ev.MSPID}
	if w.perStep {
		attrs = append(attrs, stepAttr(ev.Round), stepAttr(ev.Iter))
	}
	return recordStepAt(stub, caller, w, attrs, ev, build)
}

// recordStepAt is recordStep with the record's key attributes given (the
// anchored roots key theirs by round).
func recordStepAt(stub shim.ChaincodeStubInterface, caller access.Caller, w stepWrite, attrs []string, ev StepEvent, build func(Stamp) any) (string, error) {
	stamp, err := stampOf(stub, caller)
	if err != nil {
		return "", err
	}
	key, err := state.Key(stub, w.obj, attrs...)
	if err != nil {
		return "", err
	}
	headKey, err := state.Key(stub, objStepHead, ev.Run, ev.MSPID)
	if err != nil {
		return "", err
	}
	if err := refuseExisting(stub, key, w.obj, strings.Join(attrs, "/")); err != nil {
		return "", err
	}
	record := build(stamp)
	if err := state.PutJSON(stub, key, record); err != nil {
		return "", err
	}
	if err := state.PutJSON(stub, headKey, StepHead{Round: ev.Round, Iter: ev.Iter, Phase: w.phase}); err != nil {
		return "", err
	}
	if err := sbe.Bind(stub, ev.MSPID, key, headKey); err != nil {
		return "", err
	}
	ev.TxID = stamp.TxID
	if err := state.Emit(stub, w.event, ev); err != nil {
		return "", err
	}
	return state.Marshal(record)
}

// eachInRange iterates the committed keys obj/attrs/... in key order by
// range query (recorded in the read set: phantom-protected at validation)
// and hands each key and value to each; what names the range in errors.
// Errors of each are returned as they are.
func eachInRange(stub shim.ChaincodeStubInterface, obj string, attrs []string, what string, each func(key string, value []byte) error) error {
	it, err := stub.GetStateByPartialCompositeKey(obj, attrs)
	if err != nil {
		return ccerr.Internal("range query "+what, err)
	}
	defer it.Close()
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return ccerr.Internal("iterating "+what, err)
		}
		if err := each(kv.GetKey(), kv.GetValue()); err != nil {
			return err
		}
	}
	return nil
}
