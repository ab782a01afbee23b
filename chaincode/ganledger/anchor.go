package ganledger

// Anchored step records (issue 11; wire spec chaincode/spec/steps.md
// "Anchored step records"): a run mode (the apps' default; per-step records
// are the strict mode) in which a registry's
// generator and discriminator sign each step statement off-ledger and commit
// one Merkle root per app per round instead of one transaction per step.
//
// Who calls: each registry's generator app (RecordGeneratorRoot) and
// discriminator app (RecordDiscriminatorRoot) in runs whose agreed config says
// "step_records": "anchored"; any consortium role reads (GetStepRoot).
// Where data lives: public world state of channel "gan":
//
//	step_groot/run/msp/round   generator root of the round (stamped), written once
//	step_droot/run/msp/round   discriminator root of the round (stamped), written once
//
// and the registry's head (steps.go): a root moves it like the last step of
// the round would, to (round, count-1, "g") and then (round, count-1, "d"),
// so RecordLocalUpdate and RecordStop work unchanged after a round's roots.
// The statements themselves stay in the registry's workspace; the chaincode
// cannot check them, only that both roots agree on the round's count and on
// the last fake batch hash. The auditor checks the leaves against the roots.

import (
	"encoding/json"
	"fmt"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// Events and state objects of the anchored mode.
const (
	EventGeneratorRoot     = "GeneratorRoot"
	EventDiscriminatorRoot = "DiscriminatorRoot"
	objStepGRoot           = "step_groot"
	objStepDRoot           = "step_droot"
	stepRootWhatName       = "step root"
	// StepRecordsAnchored is the run config's "step_records" value that allows roots.
	StepRecordsAnchored = "anchored"
)

// GeneratorRootArg is the rootJSON of RecordGeneratorRoot: the Merkle root of
// the generator's signed statements of iterations 0..count-1 of round, and
// the last statement's fake batch and generator weights hashes.
type GeneratorRootArg struct {
	Round          int    `json:"round"`
	Count          int    `json:"count"`
	MerkleRoot     string `json:"merkle_root"`
	FakeSHA256     string `json:"fake_sha256"`
	GWeightsSHA256 string `json:"g_weights_sha256"`
}

// GeneratorRoot is the stored generator root.
type GeneratorRoot struct {
	GeneratorRootArg
	Stamp
}

// DiscriminatorRootArg is the rootJSON of RecordDiscriminatorRoot: the Merkle
// root of the discriminator's signed statements of the round, the last
// statement's fake batch (the one it verified), feedback and discriminator
// weights hashes, and the mean of the round's generator losses (the stop
// rule's input; the auditor recomputes it from the leaves).
type DiscriminatorRootArg struct {
	Round          int     `json:"round"`
	Count          int     `json:"count"`
	MerkleRoot     string  `json:"merkle_root"`
	FakeSHA256     string  `json:"fake_sha256"`
	FeedbackSHA256 string  `json:"feedback_sha256"`
	DWeightsSHA256 string  `json:"d_weights_sha256"`
	GLossMean      float64 `json:"g_loss_mean"`
}

// DiscriminatorRoot is the stored discriminator root.
type DiscriminatorRoot struct {
	DiscriminatorRootArg
	Stamp
}

// RootPair is the result of GetStepRoot; a side not recorded is null.
type RootPair struct {
	Generator     *GeneratorRoot     `json:"generator"`
	Discriminator *DiscriminatorRoot `json:"discriminator"`
}

// rootArgs validates run, decodes rootJSON strictly into v and checks round
// and count (the caller checks the hash fields of the decoded value).
func rootArgs(run, rootJSON string, v any, round, count *int) error {
	const argName = "rootJSON"
	if err := validate.Key("run", run); err != nil {
		return err
	}
	if err := validate.Complete(argName, []byte(rootJSON), maxStepJSONBytes, v); err != nil {
		return err
	}
	if err := validate.IntRange(argName+".round", int64(*round), 0, validate.MaxRound); err != nil {
		return err
	}
	return validate.IntRange(argName+".count", int64(*count), 1, validate.MaxRound)
}

// refuseUnanchoredRun admits a root only in a run whose document exists and
// whose agreed config says "step_records": "anchored" (PRECONDITION_FAILED
// otherwise): a strict run's registries cannot trade their per-step records
// for a root. The document's status is gated by stepCaller.
func refuseUnanchoredRun(stub shim.ChaincodeStubInterface, run string) error {
	key, err := runKey(stub, run)
	if err != nil {
		return err
	}
	doc, err := loadOptional[RunDocument](stub, key)
	if err != nil {
		return err
	}
	if doc == nil {
		return precondition("run %s has no run document: step roots need a run agreed with step_records %q", run, StepRecordsAnchored)
	}
	spec, err := specOf(doc)
	if err != nil {
		return err
	}
	var cfg struct {
		StepRecords *string `json:"step_records"`
	}
	if err := json.Unmarshal(spec.Config, &cfg); err != nil {
		return ccerr.Internal("decoding the config of run "+run, err)
	}
	if cfg.StepRecords == nil || *cfg.StepRecords != StepRecordsAnchored {
		return precondition("run %s records every step on the ledger (its config does not say step_records %q)", run, StepRecordsAnchored)
	}
	return nil
}

// rootKey is obj/run/msp/round (obj = step_groot or step_droot).
func rootKey(stub shim.ChaincodeStubInterface, obj, run, msp string, round int) (string, error) {
	return state.Key(stub, obj, run, msp, stepAttr(round))
}

// RecordGeneratorRoot anchors the caller registry's generator statements of
// one round: rootJSON = GeneratorRootArg (every field required, none other;
// count 1..1000000). Generator role only, in a started run agreed with
// step_records "anchored". Allowed when the registry has no step yet, or its
// last step is complete (phase "d") and of an earlier round; otherwise
// PRECONDITION_FAILED naming the head. Writes the root once under
// step_groot/run/msp/round and head {round, count-1, "g"}; emits
// GeneratorRoot {run, msp, round, iter = count-1, fake_sha256, merkle_root, txid};
// returns the stored GeneratorRoot.
func (c *Contract) RecordGeneratorRoot(ctx contractapi.TransactionContextInterface, run string, rootJSON string) (string, error) {
	var arg GeneratorRootArg
	if err := rootArgs(run, rootJSON, &arg, &arg.Round, &arg.Count); err != nil {
		return "", err
	}
	if err := hashFields("rootJSON", [2]string{"merkle_root", arg.MerkleRoot}, [2]string{"fake_sha256", arg.FakeSHA256},
		[2]string{"g_weights_sha256", arg.GWeightsSHA256}); err != nil {
		return "", err
	}
	stub, caller, head, err := stepCaller(ctx, run, access.RoleGenerator)
	if err != nil {
		return "", err
	}
	if err := refuseUnanchoredRun(stub, run); err != nil {
		return "", err
	}
	if head != nil {
		switch {
		case head.Phase == PhaseStopped:
			return "", stoppedError(run, caller.MSPID, head)
		case head.Phase == PhaseGenerator:
			return "", waitingError(run, caller.MSPID, head)
		case arg.Round <= head.Round:
			return "", precondition("round %d is not after the last step of %s in run %s, round %d iter %d",
				arg.Round, caller.MSPID, run, head.Round, head.Iter)
		}
	}
	ev := StepEvent{Run: run, MSPID: caller.MSPID, Round: arg.Round, Iter: arg.Count - 1, FakeSHA256: arg.FakeSHA256,
		MerkleRoot: arg.MerkleRoot}
	return recordRoot(stub, caller, objStepGRoot, PhaseGenerator, EventGeneratorRoot, ev,
		func(st Stamp) any { return GeneratorRoot{arg, st} })
}

// RecordDiscriminatorRoot anchors the caller registry's discriminator
// statements of one round: rootJSON = DiscriminatorRootArg (every field
// required; g_loss_mean finite, |x| <= 1e12). Discriminator role only, in a
// started run agreed with step_records "anchored". Allowed when the head is
// the generator root of that round waiting for it (phase "g", head.round ==
// round, head.iter == count-1) and fake_sha256 equals the generator root's
// (its last fake batch); otherwise PRECONDITION_FAILED. Writes the root once
// under step_droot/run/msp/round and head {round, count-1, "d"}; emits
// DiscriminatorRoot {run, msp, round, iter = count-1, feedback_sha256,
// merkle_root, d_weights_sha256, txid}.
func (c *Contract) RecordDiscriminatorRoot(ctx contractapi.TransactionContextInterface, run string, rootJSON string) (string, error) {
	var arg DiscriminatorRootArg
	if err := rootArgs(run, rootJSON, &arg, &arg.Round, &arg.Count); err != nil {
		return "", err
	}
	if err := hashFields("rootJSON", [2]string{"merkle_root", arg.MerkleRoot}, [2]string{"fake_sha256", arg.FakeSHA256},
		[2]string{"feedback_sha256", arg.FeedbackSHA256}, [2]string{"d_weights_sha256", arg.DWeightsSHA256}); err != nil {
		return "", err
	}
	if err := validate.Bounded("rootJSON.g_loss_mean", arg.GLossMean, MaxLoss); err != nil {
		return "", err
	}
	stub, caller, head, err := stepCaller(ctx, run, access.RoleDiscriminator)
	if err != nil {
		return "", err
	}
	if err := refuseUnanchoredRun(stub, run); err != nil {
		return "", err
	}
	switch {
	case head == nil:
		return "", precondition("no generator root of %s in run %s is waiting for a discriminator root", caller.MSPID, run)
	case head.Phase == PhaseStopped:
		return "", stoppedError(run, caller.MSPID, head)
	case head.Phase == PhaseDiscriminator:
		return "", precondition("no generator root of %s in run %s is waiting: the last step, round %d iter %d, is complete",
			caller.MSPID, run, head.Round, head.Iter)
	case !head.at(arg.Round, arg.Count-1):
		return "", precondition("the generator root of %s in run %s waiting for the discriminator covers round %d iters 0..%d, not round %d iters 0..%d",
			caller.MSPID, run, head.Round, head.Iter, arg.Round, arg.Count-1)
	}
	key, err := rootKey(stub, objStepGRoot, run, caller.MSPID, arg.Round)
	if err != nil {
		return "", err
	}
	g, err := loadOptional[GeneratorRoot](stub, key)
	if err != nil {
		return "", err
	}
	if g == nil {
		return "", precondition("round %d of %s in run %s has no generator root (the head is a per-step record): record the discriminator step instead",
			arg.Round, caller.MSPID, run)
	}
	if g.FakeSHA256 != arg.FakeSHA256 {
		return "", precondition("fake batch hash %s of round %d differs from the generator root's %s (%s in run %s): record the fault instead",
			arg.FakeSHA256, arg.Round, g.FakeSHA256, caller.MSPID, run)
	}
	ev := StepEvent{Run: run, MSPID: caller.MSPID, Round: arg.Round, Iter: arg.Count - 1, FeedbackSHA256: arg.FeedbackSHA256,
		MerkleRoot: arg.MerkleRoot, DWeightsSHA256: arg.DWeightsSHA256}
	return recordRoot(stub, caller, objStepDRoot, PhaseDiscriminator, EventDiscriminatorRoot, ev,
		func(st Stamp) any { return DiscriminatorRoot{arg, st} })
}

// recordRoot stores a root under obj/run/msp/round (write-once) and moves the
// head to (round, count-1, phase) like recordStep.
func recordRoot(stub shim.ChaincodeStubInterface, caller access.Caller, obj, phase, event string, ev StepEvent, build func(Stamp) any) (string, error) {
	w := stepWrite{obj: obj, perStep: false, phase: phase, event: event}
	return recordStepAt(stub, caller, w, []string{ev.Run, ev.MSPID, stepAttr(ev.Round)}, ev, build)
}

// GetStepRoot returns msp's roots of round in run as {"generator":
// GeneratorRoot|null, "discriminator": DiscriminatorRoot|null}; round is a
// canonical decimal 0..1000000. NOT_FOUND when neither exists. Any
// consortium role.
func (c *Contract) GetStepRoot(ctx contractapi.TransactionContextInterface, run string, msp string, round string) (string, error) {
	r, err := validate.Round("round", round)
	if err != nil {
		return "", err
	}
	stub, err := stepReader(ctx, run, msp)
	if err != nil {
		return "", err
	}
	var pair RootPair
	if pair.Generator, err = loadRoot[GeneratorRoot](stub, objStepGRoot, run, msp, r); err != nil {
		return "", err
	}
	if pair.Discriminator, err = loadRoot[DiscriminatorRoot](stub, objStepDRoot, run, msp, r); err != nil {
		return "", err
	}
	if pair.Generator == nil && pair.Discriminator == nil {
		return "", &ccerr.NotFoundError{What: stepRootWhatName, Key: fmt.Sprintf("%s/%s/%d", run, msp, r)}
	}
	return state.Marshal(pair)
}

func loadRoot[T any](stub shim.ChaincodeStubInterface, obj, run, msp string, round int) (*T, error) {
	key, err := rootKey(stub, obj, run, msp, round)
	if err != nil {
		return nil, err
	}
	return loadOptional[T](stub, key)
}
