package ganledger

// Privacy spend records (issue 12; wire spec chaincode/spec/steps.md §10–11):
// each registry's discriminator, training by DP-SGD, records after each round
// the epsilon it has spent so far and the mechanism's parameters, so that the
// consortium and the auditor see every registry's budget on the ledger.
//
// Who calls: the discriminator app (RecordPrivacySpend); any consortium app or
// the auditor (GetPrivacySpend).
// Where data lives: public world state of channel "gan":
//
//	dp_spend/run/msp/round   the spend record of that round (stamped), written once
//	dp_head /run/msp         the registry's last spend {round, steps, epsilon, parameters}
//
// The chaincode cannot run the accountant (no Opacus in Go, and the steps per
// round are in the opaque run config); it keeps the records monotone and tied
// to recorded steps, and the auditor recomputes each epsilon from the run
// config and the recorded steps (synthreg.trail.verify).

import (
	"fmt"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/sbe"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// Names and limits of the privacy spend records.
const (
	EventPrivacySpend   = "PrivacySpend"
	objPrivacySpend     = "dp_spend"
	objPrivacyHead      = "dp_head"
	privacySpendWhat    = "privacy spend"
	MaxPrivacySteps     = 1_000_000_000_000
	MaxPrivacyParameter = 1e6
)

// Accountants names the privacy accountants a spend may be computed with.
var Accountants = []string{"opacus-rdp"}

// PrivacySpendArg is the spendJSON of RecordPrivacySpend.
type PrivacySpendArg struct {
	Round           int     `json:"round"`
	Iter            int     `json:"iter"`
	Steps           int64   `json:"steps"`
	Epsilon         float64 `json:"epsilon"`
	Delta           float64 `json:"delta"`
	NoiseMultiplier float64 `json:"noise_multiplier"`
	SampleRate      float64 `json:"sample_rate"`
	MaxGradNorm     float64 `json:"max_grad_norm"`
	Accountant      string  `json:"accountant"`
}

// PrivacySpend is the stored spend record.
type PrivacySpend struct {
	PrivacySpendArg
	Stamp
}

// sameMechanism reports whether a and b name the same mechanism and accountant.
func (a *PrivacySpendArg) sameMechanism(b *PrivacySpendArg) bool {
	return a.Delta == b.Delta && a.NoiseMultiplier == b.NoiseMultiplier && a.SampleRate == b.SampleRate &&
		a.MaxGradNorm == b.MaxGradNorm && a.Accountant == b.Accountant
}

func validateSpend(argName string, a *PrivacySpendArg) error {
	if err := validate.IntRange(argName+".steps", a.Steps, 1, MaxPrivacySteps); err != nil {
		return err
	}
	if err := validate.Bounded(argName+".epsilon", a.Epsilon, MaxPrivacyParameter); err != nil {
		return err
	}
	if a.Epsilon < 0 {
		return invalid(argName+".epsilon", "%v is negative", a.Epsilon)
	}
	if !(a.Delta > 0 && a.Delta < 1) {
		return invalid(argName+".delta", "%v is not in (0, 1)", a.Delta)
	}
	if !(a.SampleRate > 0 && a.SampleRate <= 1) {
		return invalid(argName+".sample_rate", "%v is not in (0, 1]", a.SampleRate)
	}
	for _, p := range []struct {
		name string
		x    float64
	}{{"noise_multiplier", a.NoiseMultiplier}, {"max_grad_norm", a.MaxGradNorm}} {
		if err := validate.Bounded(argName+"."+p.name, p.x, MaxPrivacyParameter); err != nil {
			return err
		}
		if p.x <= 0 {
			return invalid(argName+"."+p.name, "%v is not > 0", p.x)
		}
	}
	return oneOf(argName+".accountant", a.Accountant, Accountants)
}

// RecordPrivacySpend records the caller registry's privacy spend after round
// `round`: spendJSON = PrivacySpendArg (every field required, none other).
// Discriminator role only; refused like every step write when the run's
// document is not started. The discriminator step (round, iter) of the
// caller's registry must be recorded (PRECONDITION_FAILED otherwise). Against
// the registry's previous spend: round, steps must grow and epsilon must not
// fall, and delta, noise_multiplier, sample_rate, max_grad_norm and
// accountant must be the same (PRECONDITION_FAILED naming both). Write-once
// per (run, msp, round) (ALREADY_EXISTS). Does not touch the step head (a
// spend may follow the registry's stop). Emits PrivacySpend {run, msp,
// round, iter, txid}; returns the stored record.
func (c *Contract) RecordPrivacySpend(ctx contractapi.TransactionContextInterface, run string, spendJSON string) (string, error) {
	const argName = "spendJSON"
	var arg PrivacySpendArg
	if err := stepArgs(run, argName, spendJSON, maxStepJSONBytes, &arg, &arg.Round, &arg.Iter); err != nil {
		return "", err
	}
	if err := validateSpend(argName, &arg); err != nil {
		return "", err
	}
	stub, caller, _, err := stepCaller(ctx, run, access.RoleDiscriminator)
	if err != nil {
		return "", err
	}
	var d DiscriminatorStep
	if found, err := loadStep(stub, objStepDiscrimin, run, caller.MSPID, arg.Round, arg.Iter, &d); err != nil {
		return "", err
	} else if !found {
		return "", precondition("no discriminator step of %s in run %s at round %d iter %d: a privacy spend follows a recorded step",
			caller.MSPID, run, arg.Round, arg.Iter)
	}
	id := fmt.Sprintf("%s/%s/%d", run, caller.MSPID, arg.Round)
	key, err := state.Key(stub, objPrivacySpend, run, caller.MSPID, stepAttr(arg.Round))
	if err != nil {
		return "", err
	}
	if err := refuseExisting(stub, key, privacySpendWhat, id); err != nil {
		return "", err
	}
	headKey, err := state.Key(stub, objPrivacyHead, run, caller.MSPID)
	if err != nil {
		return "", err
	}
	prev, err := loadOptional[PrivacySpendArg](stub, headKey)
	if err != nil {
		return "", err
	}
	if prev != nil {
		switch {
		case arg.Round <= prev.Round || arg.Steps <= prev.Steps:
			return "", precondition("privacy spend of round %d after %d steps does not follow the spend of round %d after %d steps (%s in run %s)",
				arg.Round, arg.Steps, prev.Round, prev.Steps, caller.MSPID, run)
		case arg.Epsilon < prev.Epsilon:
			return "", precondition("epsilon %v is below the %v already spent by round %d (%s in run %s)",
				arg.Epsilon, prev.Epsilon, prev.Round, caller.MSPID, run)
		case !arg.sameMechanism(prev):
			return "", precondition("mechanism (delta %v, noise %v, sample rate %v, clip %v, %s) differs from the earlier spend's (delta %v, noise %v, sample rate %v, clip %v, %s) (%s in run %s)",
				arg.Delta, arg.NoiseMultiplier, arg.SampleRate, arg.MaxGradNorm, arg.Accountant,
				prev.Delta, prev.NoiseMultiplier, prev.SampleRate, prev.MaxGradNorm, prev.Accountant, caller.MSPID, run)
		}
	}
	stamp, err := stampOf(stub, caller)
	if err != nil {
		return "", err
	}
	record := PrivacySpend{PrivacySpendArg: arg, Stamp: stamp}
	if err := state.PutJSON(stub, key, record); err != nil {
		return "", err
	}
	if err := state.PutJSON(stub, headKey, arg); err != nil {
		return "", err
	}
	if err := sbe.Bind(stub, caller.MSPID, key, headKey); err != nil {
		return "", err
	}
	ev := StepEvent{Run: run, MSPID: caller.MSPID, Round: arg.Round, Iter: arg.Iter, TxID: stamp.TxID}
	if err := state.Emit(stub, EventPrivacySpend, ev); err != nil {
		return "", err
	}
	return state.Marshal(record)
}

// GetPrivacySpend returns msp's privacy spend record of round (a canonical
// decimal 0..1000000) in run; NOT_FOUND when absent. Any consortium role.
func (c *Contract) GetPrivacySpend(ctx contractapi.TransactionContextInterface, run string, msp string, round string) (string, error) {
	return getPerRound[PrivacySpend](ctx, run, msp, round, objPrivacySpend, privacySpendWhat)
}
