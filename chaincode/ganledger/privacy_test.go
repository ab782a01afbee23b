package ganledger

import (
	"maps"
	"testing"

	"github.com/synthreg/synthreg/chaincode/internal/fakestub"
)

func spendArg(round, iter int, steps int64, eps float64) map[string]any {
	return map[string]any{"round": round, "iter": iter, "steps": steps, "epsilon": eps, "delta": 1e-5,
		"noise_multiplier": 1.1, "sample_rate": 0.1, "max_grad_norm": 1.0, "accountant": "opacus-rdp"}
}

func (s *steps) spend(n int, arg map[string]any) fakestub.Result {
	return s.call(s.d(n), "RecordPrivacySpend", testRun, toJSON(s.t, arg))
}

func TestPrivacySpendRecordedPerRoundAndRead(t *testing.T) {
	s := newSteps(t)
	s.complete(1, 0, 0)
	s.complete(1, 0, 1)
	r := s.ok(s.spend(1, spendArg(0, 1, 2, 0.5)))
	wantEvent(t, r, EventPrivacySpend, StepEvent{Run: testRun, MSPID: msp(1), Round: 0, Iter: 1})
	s.complete(1, 1, 0)
	s.complete(1, 1, 1)
	s.ok(s.stop(1, 1, 1))
	s.ok(s.spend(1, spendArg(1, 1, 4, 0.9))) // after the stop: evidence of steps taken
	got := fakestub.Decode[PrivacySpend](t, s.ok(s.call(s.as(msp(2), "auditor"), "GetPrivacySpend", testRun, msp(1), "1")).Payload)
	if got.Epsilon != 0.9 || got.Steps != 4 || got.Iter != 1 || got.MSPID != msp(1) || got.Role != "discriminator" {
		t.Fatalf("spend %+v", got)
	}
	mustFail(t, s.call(s.g(1), "GetPrivacySpend", testRun, msp(1), "2"), "NOT_FOUND", "privacy spend")
}

func TestPrivacySpendRefusals(t *testing.T) {
	s := newSteps(t)
	s.complete(1, 0, 0)
	s.complete(1, 0, 1)
	mustFail(t, s.call(s.g(1), "RecordPrivacySpend", testRun, toJSON(t, spendArg(0, 1, 2, 0.5))), "ACCESS_DENIED")
	mustFail(t, s.spend(2, spendArg(0, 1, 2, 0.5)), "PRECONDITION_FAILED", "no discriminator step")
	mustFail(t, s.spend(1, spendArg(0, 2, 3, 0.5)), "PRECONDITION_FAILED", "round 0 iter 2")
	for field, bad := range map[string]any{"epsilon": -1.0, "delta": 1.0, "sample_rate": 1.5, "noise_multiplier": 0.0,
		"max_grad_norm": -2.0, "steps": 0, "accountant": "by-hand"} {
		arg := spendArg(0, 1, 2, 0.5)
		arg[field] = bad
		mustFail(t, s.spend(1, arg), "INVALID_ARGUMENT", "spendJSON."+field)
	}
	arg := spendArg(0, 1, 2, 0.5)
	arg["extra"] = 1
	mustFail(t, s.spend(1, arg), "INVALID_ARGUMENT")
	delete(arg, "extra")
	delete(arg, "delta")
	mustFail(t, s.spend(1, arg), "INVALID_ARGUMENT")

	s.ok(s.spend(1, spendArg(0, 1, 2, 0.5)))
	mustFail(t, s.spend(1, spendArg(0, 1, 2, 0.5)), "ALREADY_EXISTS")
	s.complete(1, 1, 0)
	s.complete(1, 1, 1)
	before := maps.Clone(s.ledger.State)
	mustFail(t, s.spend(1, spendArg(1, 1, 4, 0.4)), "PRECONDITION_FAILED", "below the 0.5")
	mustFail(t, s.spend(1, spendArg(1, 1, 2, 0.9)), "PRECONDITION_FAILED", "does not follow")
	other := spendArg(1, 1, 4, 0.9)
	other["noise_multiplier"] = 5.0
	mustFail(t, s.spend(1, other), "PRECONDITION_FAILED", "mechanism")
	s.unchanged(before)
	s.ok(s.spend(1, spendArg(1, 1, 4, 0.9)))
}

func TestPrivacySpendStopReason(t *testing.T) {
	s := newSteps(t)
	s.complete(1, 0, 0)
	arg := stopArg(0, 0)
	arg["reason"] = "privacy_budget"
	s.ok(s.call(s.g(1), "RecordStop", testRun, toJSON(t, arg)))
	if h := s.head(1); h.Phase != PhaseStopped {
		t.Fatalf("head %+v", h)
	}
}
