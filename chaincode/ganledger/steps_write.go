package ganledger

import (
	"fmt"
	"unicode/utf8"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/sbe"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// RecordGeneratorStep records flow 1 of the caller's registry in run:
// stepJSON = GeneratorStepArg (every field required, none other). Generator
// role only. Allowed when the registry has no step yet, or its last step is
// complete (phase "d") and (round, iter) comes after it; otherwise
// PRECONDITION_FAILED naming the head ("waiting for the discriminator step
// of round R iter I ...", "training of <msp> in run <run> stopped ...", or
// "not after"). Writes the record and head {round, iter, "g"}, emits
// GeneratorStep {run, msp, round, iter, fake_sha256, txid}; returns the
// stored GeneratorStep.
func (c *Contract) RecordGeneratorStep(ctx contractapi.TransactionContextInterface, run string, stepJSON string) (string, error) {
	const argName = "stepJSON"
	var arg GeneratorStepArg
	if err := stepArgs(run, argName, stepJSON, maxStepJSONBytes, &arg, &arg.Round, &arg.Iter); err != nil {
		return "", err
	}
	if err := hashFields(argName, [2]string{"fake_sha256", arg.FakeSHA256}, [2]string{"g_weights_sha256", arg.GWeightsSHA256}); err != nil {
		return "", err
	}
	if err := validate.IntRange(argName+".noise_seed", arg.NoiseSeed, 0, MaxNoiseSeed); err != nil {
		return "", err
	}
	if err := validate.IntRange(argName+".batch_size", int64(arg.BatchSize), 1, MaxBatchSize); err != nil {
		return "", err
	}
	stub, caller, head, err := stepCaller(ctx, run, access.RoleGenerator)
	if err != nil {
		return "", err
	}
	if head != nil {
		switch {
		case head.Phase == PhaseStopped:
			return "", stoppedError(run, caller.MSPID, head)
		case head.Phase == PhaseGenerator:
			return "", waitingError(run, caller.MSPID, head)
		case !head.after(arg.Round, arg.Iter):
			return "", precondition("round %d iter %d is not after the last step of %s in run %s, round %d iter %d",
				arg.Round, arg.Iter, caller.MSPID, run, head.Round, head.Iter)
		}
	}
	ev := StepEvent{Run: run, MSPID: caller.MSPID, Round: arg.Round, Iter: arg.Iter, FakeSHA256: arg.FakeSHA256}
	return recordStep(stub, caller, writeGenerator, ev, func(st Stamp) any { return GeneratorStep{arg, st} })
}

// RecordDiscriminatorStep records flow 2 of the caller's registry in run:
// stepJSON = DiscriminatorStepArg (every field required; losses finite with
// |x| <= 1e12). Discriminator role only. Allowed when the registry's head is
// the generator step (round, iter) waiting for it (phase "g") and
// fake_sha256 equals that step's fake_sha256; otherwise PRECONDITION_FAILED
// (a discriminator of another MSP finds its own registry's head, so it can
// never answer this registry's generator). Writes the record and head
// {round, iter, "d"}, emits DiscriminatorStep {run, msp, round, iter,
// feedback_sha256, txid}; returns the stored DiscriminatorStep.
func (c *Contract) RecordDiscriminatorStep(ctx contractapi.TransactionContextInterface, run string, stepJSON string) (string, error) {
	const argName = "stepJSON"
	var arg DiscriminatorStepArg
	if err := stepArgs(run, argName, stepJSON, maxStepJSONBytes, &arg, &arg.Round, &arg.Iter); err != nil {
		return "", err
	}
	if err := hashFields(argName, [2]string{"fake_sha256", arg.FakeSHA256}, [2]string{"real_sha256", arg.RealSHA256},
		[2]string{"feedback_sha256", arg.FeedbackSHA256}, [2]string{"d_weights_sha256", arg.DWeightsSHA256}); err != nil {
		return "", err
	}
	if err := validate.Bounded(argName+".d_loss", arg.DLoss, MaxLoss); err != nil {
		return "", err
	}
	if err := validate.Bounded(argName+".g_loss", arg.GLoss, MaxLoss); err != nil {
		return "", err
	}
	stub, caller, head, err := stepCaller(ctx, run, access.RoleDiscriminator)
	if err != nil {
		return "", err
	}
	switch {
	case head == nil:
		return "", precondition("no generator step of %s in run %s is waiting for a discriminator step", caller.MSPID, run)
	case head.Phase == PhaseStopped:
		return "", stoppedError(run, caller.MSPID, head)
	case head.Phase == PhaseDiscriminator:
		return "", precondition("no generator step of %s in run %s is waiting: the last step, round %d iter %d, is complete",
			caller.MSPID, run, head.Round, head.Iter)
	case !head.at(arg.Round, arg.Iter):
		return "", precondition("the generator step of %s in run %s waiting for a discriminator step is round %d iter %d, not round %d iter %d",
			caller.MSPID, run, head.Round, head.Iter, arg.Round, arg.Iter)
	}
	var g GeneratorStep
	if found, err := loadStep(stub, objStepGenerator, run, caller.MSPID, arg.Round, arg.Iter, &g); err != nil {
		return "", err
	} else if !found {
		return "", ccerr.Internal("reading the generator step the head names", fmt.Errorf("%s/%s/%d/%d absent", run, caller.MSPID, arg.Round, arg.Iter))
	}
	if g.FakeSHA256 != arg.FakeSHA256 {
		return "", precondition("fake batch hash %s of round %d iter %d differs from the generator's %s (%s in run %s): record the fault instead",
			arg.FakeSHA256, arg.Round, arg.Iter, g.FakeSHA256, caller.MSPID, run)
	}
	ev := StepEvent{Run: run, MSPID: caller.MSPID, Round: arg.Round, Iter: arg.Iter, FeedbackSHA256: arg.FeedbackSHA256}
	return recordStep(stub, caller, writeDiscriminator, ev, func(st Stamp) any { return DiscriminatorStep{arg, st} })
}

// RecordStop ends training of the caller's registry in run (flow 3):
// stopJSON = StopArg (reason "budget" or "threshold", g_loss finite, |x| <=
// 1e12). Generator role only. Allowed when the head is the completed step
// (round, iter) (phase "d"); a second stop or any later step is refused
// (PRECONDITION_FAILED "training of <msp> in run <run> stopped ..."). Writes
// the stop record under step_stop/run/msp, sets head.phase "stopped", emits
// TrainingStopped {run, msp, round, iter, reason, txid}; returns the Stop.
func (c *Contract) RecordStop(ctx contractapi.TransactionContextInterface, run string, stopJSON string) (string, error) {
	const argName = "stopJSON"
	var arg StopArg
	if err := stepArgs(run, argName, stopJSON, maxStepJSONBytes, &arg, &arg.Round, &arg.Iter); err != nil {
		return "", err
	}
	if err := oneOf(argName+".reason", arg.Reason, StopReasons); err != nil {
		return "", err
	}
	if err := validate.Bounded(argName+".g_loss", arg.GLoss, MaxLoss); err != nil {
		return "", err
	}
	stub, caller, head, err := stepCaller(ctx, run, access.RoleGenerator)
	if err != nil {
		return "", err
	}
	switch {
	case head == nil:
		return "", precondition("no completed step of %s in run %s to stop after", caller.MSPID, run)
	case head.Phase == PhaseStopped:
		return "", stoppedError(run, caller.MSPID, head)
	case head.Phase == PhaseGenerator:
		return "", waitingError(run, caller.MSPID, head)
	case !head.at(arg.Round, arg.Iter):
		return "", precondition("a stop names the last completed step of %s in run %s, round %d iter %d, not round %d iter %d",
			caller.MSPID, run, head.Round, head.Iter, arg.Round, arg.Iter)
	}
	ev := StepEvent{Run: run, MSPID: caller.MSPID, Round: arg.Round, Iter: arg.Iter, Reason: arg.Reason}
	return recordStep(stub, caller, writeStop, ev, func(st Stamp) any { return Stop{arg, st} })
}

// RecordFault records a fault the caller's app detected in run (e.g. the
// fake batch in the workspace does not hash to the ledger's fake_sha256):
// faultJSON = FaultArg (kind one of FaultKinds, expected and got hex
// SHA-256, detail <= 1024 characters). Generator or discriminator role.
// Append-only under step_fault/run/msp/txid; never touches the head, so it
// is allowed in every phase. Emits StepFault {run, msp, round, iter, kind,
// txid}; returns the stored Fault.
func (c *Contract) RecordFault(ctx contractapi.TransactionContextInterface, run string, faultJSON string) (string, error) {
	const argName = "faultJSON"
	var arg FaultArg
	if err := stepArgs(run, argName, faultJSON, maxFaultJSONBytes, &arg, &arg.Round, &arg.Iter); err != nil {
		return "", err
	}
	if err := oneOf(argName+".kind", arg.Kind, FaultKinds); err != nil {
		return "", err
	}
	if err := hashFields(argName, [2]string{"expected", arg.Expected}, [2]string{"got", arg.Got}); err != nil {
		return "", err
	}
	if n := utf8.RuneCountInString(arg.Detail); n > MaxFaultDetail {
		return "", invalid(argName+".detail", "%d characters exceed the limit of %d", n, MaxFaultDetail)
	}
	caller, err := access.Require(ctx, access.RoleGenerator, access.RoleDiscriminator)
	if err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	stamp, err := stampOf(stub, caller)
	if err != nil {
		return "", err
	}
	key, err := state.Key(stub, objStepFault, run, caller.MSPID, stamp.TxID)
	if err != nil {
		return "", err
	}
	fault := Fault{FaultArg: arg, Stamp: stamp}
	if err := state.PutJSON(stub, key, fault); err != nil {
		return "", err
	}
	if err := sbe.Bind(stub, caller.MSPID, key); err != nil {
		return "", err
	}
	ev := StepEvent{Run: run, MSPID: caller.MSPID, Round: arg.Round, Iter: arg.Iter, Kind: arg.Kind, TxID: stamp.TxID}
	if err := state.Emit(stub, EventStepFault, ev); err != nil {
		return "", err
	}
	return state.Marshal(fault)
}

// RecordLocalUpdate records the caller registry's pre-average weights at the
// end of a round's local iterations, which its merger then aggregates:
// updateJSON = LocalUpdateArg {round, g_weights_sha256, d_weights_sha256}
// (every field required, none other; round 0..1000000). Generator role
// only. The rules are putLocalUpdate's. Emits LocalUpdate {run, msp, round,
// iter, txid, g_weights_sha256, d_weights_sha256}; returns the stored
// LocalUpdate. The merger apps record it in their Submit instead (its
// "update", aggregation_write.go: one transaction per registry and round
// fewer, issue 11); either way it is written once.
func (c *Contract) RecordLocalUpdate(ctx contractapi.TransactionContextInterface, run string, updateJSON string) (string, error) {
	const argName = "updateJSON"
	if err := validate.Key("run", run); err != nil {
		return "", err
	}
	var arg LocalUpdateArg
	if err := validate.Complete(argName, []byte(updateJSON), maxStepJSONBytes, &arg); err != nil {
		return "", err
	}
	if err := validLocalUpdate(argName, arg); err != nil {
		return "", err
	}
	stub, caller, head, err := stepCaller(ctx, run, access.RoleGenerator)
	if err != nil {
		return "", err
	}
	update, err := putLocalUpdate(stub, caller, run, arg, head)
	if err != nil {
		return "", err
	}
	ev := StepEvent{Run: run, MSPID: caller.MSPID, Round: arg.Round, Iter: update.Iter, TxID: update.TxID,
		GWeightsSHA256: arg.GWeightsSHA256, DWeightsSHA256: arg.DWeightsSHA256}
	if err := state.Emit(stub, EventLocalUpdate, ev); err != nil {
		return "", err
	}
	return state.Marshal(update)
}

// validLocalUpdate checks arg's round (0..1000000) and that both hashes are
// sha256 hex (INVALID_ARGUMENT naming argName's fields otherwise).
func validLocalUpdate(argName string, arg LocalUpdateArg) error {
	if err := validate.IntRange(argName+".round", int64(arg.Round), 0, validate.MaxRound); err != nil {
		return err
	}
	return hashFields(argName, [2]string{"g_weights_sha256", arg.GWeightsSHA256}, [2]string{"d_weights_sha256", arg.DWeightsSHA256})
}

// putLocalUpdate stores arg (validLocalUpdate) as caller's local update of
// arg.Round in run: allowed when the registry's head (loaded by the
// caller) is a completed step (phase "d") of that round, otherwise
// PRECONDITION_FAILED naming the head; d_weights_sha256 must equal the
// discriminator record's at the head (PRECONDITION_FAILED naming both
// hashes). Write-once per (run, msp, round) under step_update/run/msp/round
// (ALREADY_EXISTS), bound to the caller's peer. Stores the argument plus
// iter = the head's iter and the caller's stamp; the head is not changed.
func putLocalUpdate(stub shim.ChaincodeStubInterface, caller access.Caller, run string, arg LocalUpdateArg, head *StepHead) (LocalUpdate, error) {
	switch {
	case head == nil:
		return LocalUpdate{}, precondition("no completed step of %s in run %s: a local update follows the last step of round %d", caller.MSPID, run, arg.Round)
	case head.Phase == PhaseStopped:
		return LocalUpdate{}, stoppedError(run, caller.MSPID, head)
	case head.Phase == PhaseGenerator:
		return LocalUpdate{}, waitingError(run, caller.MSPID, head)
	case head.Round != arg.Round:
		return LocalUpdate{}, precondition("the last completed step of %s in run %s is round %d iter %d, not a step of round %d",
			caller.MSPID, run, head.Round, head.Iter, arg.Round)
	}
	id := fmt.Sprintf("%s/%s/%d", run, caller.MSPID, arg.Round)
	key, err := state.Key(stub, objStepUpdate, run, caller.MSPID, stepAttr(arg.Round))
	if err != nil {
		return LocalUpdate{}, err
	}
	if err := refuseExisting(stub, key, localUpdateWhat, id); err != nil {
		return LocalUpdate{}, err
	}
	recorded, err := headDWeights(stub, run, caller.MSPID, head)
	if err != nil {
		return LocalUpdate{}, err
	}
	if recorded != arg.DWeightsSHA256 {
		return LocalUpdate{}, precondition("discriminator weights hash %s differs from the discriminator's %s of round %d iter %d (%s in run %s)",
			arg.DWeightsSHA256, recorded, head.Round, head.Iter, caller.MSPID, run)
	}
	stamp, err := stampOf(stub, caller)
	if err != nil {
		return LocalUpdate{}, err
	}
	update := LocalUpdate{LocalUpdateArg: arg, Iter: head.Iter, Stamp: stamp}
	if err := state.PutJSON(stub, key, update); err != nil {
		return LocalUpdate{}, err
	}
	if err := sbe.Bind(stub, caller.MSPID, key); err != nil {
		return LocalUpdate{}, err
	}
	return update, nil
}

// headDWeights is the discriminator weights hash recorded at the head's
// completed step: its per-step record, or in an anchored run the
// discriminator root of the head's round (anchor.go) whose last iteration
// the head names.
func headDWeights(stub shim.ChaincodeStubInterface, run, msp string, head *StepHead) (string, error) {
	var d DiscriminatorStep
	if found, err := loadStep(stub, objStepDiscrimin, run, msp, head.Round, head.Iter, &d); err != nil {
		return "", err
	} else if found {
		return d.DWeightsSHA256, nil
	}
	root, err := loadRoot[DiscriminatorRoot](stub, objStepDRoot, run, msp, head.Round)
	if err != nil {
		return "", err
	}
	if root == nil || root.Count-1 != head.Iter {
		return "", ccerr.Internal("reading the discriminator step the head names", fmt.Errorf("%s/%s/%d/%d absent", run, msp, head.Round, head.Iter))
	}
	return root.DWeightsSHA256, nil
}
