package ganledger

import (
	"maps"
	"testing"

	"github.com/synthreg/synthreg/chaincode/internal/fakestub"
)

// anchoredRun proposes and starts testRun with config step_records "anchored"
// (mode nil: the key is left out, a strict run).
func (r *runs) anchoredRun(mode any) {
	r.t.Helper()
	spec := runSpecArg(3)
	if mode != nil {
		spec["config"] = map[string]any{"lr": 0.0002, "step_records": mode}
	}
	text := toJSON(r.t, spec)
	r.ok(r.propose(1, testRun, text))
	for n := 1; n <= 3; n++ {
		r.ok(r.approve(n, testRun, text))
	}
}

func gRootArg(n, round, count int) map[string]any {
	return map[string]any{"round": round, "count": count, "merkle_root": hashOf("groot", n, round, count),
		"fake_sha256": fakeHash(n, round, count-1), "g_weights_sha256": hashOf("gw", n, round, count-1)}
}

func dRootArg(n, round, count int) map[string]any {
	return map[string]any{"round": round, "count": count, "merkle_root": hashOf("droot", n, round, count),
		"fake_sha256": fakeHash(n, round, count-1), "feedback_sha256": hashOf("fb", n, round, count-1),
		"d_weights_sha256": hashOf("dw", n, round, count-1), "g_loss_mean": -1.25}
}

func (r *runs) gRoot(n int, arg map[string]any) fakestub.Result {
	return r.call(r.g(n), "RecordGeneratorRoot", testRun, toJSON(r.t, arg))
}

func (r *runs) dRoot(n int, arg map[string]any) fakestub.Result {
	return r.call(r.d(n), "RecordDiscriminatorRoot", testRun, toJSON(r.t, arg))
}

func TestAnchorRootsMoveTheHeadLikeTheRoundsLastStep(t *testing.T) {
	r := newRuns(t)
	r.anchoredRun("anchored")
	for round := 0; round < 2; round++ {
		rg := r.ok(r.gRoot(1, gRootArg(1, round, 5)))
		wantEvent(t, rg, EventGeneratorRoot, StepEvent{Run: testRun, MSPID: msp(1), Round: round, Iter: 4, FakeSHA256: fakeHash(1, round, 4),
			MerkleRoot: hashOf("groot", 1, round, 5)})
		r.wantHead(1, round, 4, PhaseGenerator)
		rd := r.ok(r.dRoot(1, dRootArg(1, round, 5)))
		wantEvent(t, rd, EventDiscriminatorRoot, StepEvent{Run: testRun, MSPID: msp(1), Round: round, Iter: 4, FeedbackSHA256: hashOf("fb", 1, round, 4),
			MerkleRoot: hashOf("droot", 1, round, 5), DWeightsSHA256: hashOf("dw", 1, round, 4)})
		r.wantHead(1, round, 4, PhaseDiscriminator)
		// the local update is checked against the discriminator root's weights
		bad := updateArg(1, round, 4)
		bad["d_weights_sha256"] = hashOf("other", 1, round, 4)
		mustFail(t, r.update(1, bad), "PRECONDITION_FAILED", "differs from the discriminator's "+hashOf("dw", 1, round, 4))
		r.ok(r.update(1, updateArg(1, round, 4)))

		pair := fakestub.Decode[RootPair](t, r.ok(r.call(r.as(msp(2), "auditor"), "GetStepRoot", testRun, msp(1), []string{"0", "1"}[round])).Payload)
		if pair.Generator == nil || pair.Discriminator == nil || pair.Generator.TxID != rg.TxID || pair.Discriminator.TxID != rd.TxID ||
			pair.Generator.MerkleRoot != hashOf("groot", 1, round, 5) || pair.Discriminator.GLossMean != -1.25 ||
			pair.Generator.Role != "generator" || pair.Discriminator.Role != "discriminator" || pair.Discriminator.Count != 5 {
			t.Fatalf("GetStepRoot = %+v / %+v", pair.Generator, pair.Discriminator)
		}
	}
	r.ok(r.stop(1, 1, 4))
	r.wantHead(1, 1, 4, PhaseStopped)
	mustFail(t, r.gRoot(1, gRootArg(1, 2, 5)), "PRECONDITION_FAILED", "training of Registry1MSP in run run-1 stopped")
	mustFail(t, r.call(r.g(1), "GetStepRoot", testRun, msp(1), "2"), "NOT_FOUND", "run-1/Registry1MSP/2")
	mustFail(t, r.call(r.g(1), "GetStepRoot", testRun, msp(1), "01"), "INVALID_ARGUMENT", `"round"`)
	mustFail(t, r.call(r.as("OutsiderMSP", "auditor"), "GetStepRoot", testRun, msp(1), "0"), "ACCESS_DENIED")
}

func TestAnchorRootsRefusedInStrictRunsAndWithoutARunDocument(t *testing.T) {
	for _, mode := range []any{nil, "ledger", "Anchored"} {
		r := newRuns(t)
		r.anchoredRun(mode)
		before := maps.Clone(r.ledger.State)
		mustFail(t, r.gRoot(1, gRootArg(1, 0, 5)), "PRECONDITION_FAILED", "run run-1 records every step on the ledger")
		r.unchanged(before)
		r.complete(1, 0, 0) // strict steps go on
	}
	r := newRuns(t) // bare run id (no document): no roots
	mustFail(t, r.gRoot(1, gRootArg(1, 0, 5)), "PRECONDITION_FAILED", "run run-1 has no run document")
}

func TestAnchorRootOrderAndCrossChecks(t *testing.T) {
	r := newRuns(t)
	r.anchoredRun("anchored")
	mustFail(t, r.dRoot(1, dRootArg(1, 0, 5)), "PRECONDITION_FAILED", "no generator root of Registry1MSP in run run-1 is waiting")
	r.ok(r.gRoot(1, gRootArg(1, 0, 5)))
	mustFail(t, r.gRoot(1, gRootArg(1, 1, 5)), "PRECONDITION_FAILED", "waiting for the discriminator step of round 0 iter 4")
	mustFail(t, r.call(r.d(1), "RecordGeneratorRoot", testRun, toJSON(t, gRootArg(1, 1, 5))), "ACCESS_DENIED")
	mustFail(t, r.call(r.g(1), "RecordDiscriminatorRoot", testRun, toJSON(t, dRootArg(1, 0, 5))), "ACCESS_DENIED")
	mustFail(t, r.dRoot(2, dRootArg(2, 0, 5)), "PRECONDITION_FAILED", "no generator root of Registry2MSP") // another MSP's D finds its own head
	before := maps.Clone(r.ledger.State)
	mustFail(t, r.dRoot(1, dRootArg(1, 0, 4)), "PRECONDITION_FAILED", "covers round 0 iters 0..4, not round 0 iters 0..3")
	other := dRootArg(1, 0, 5)
	other["fake_sha256"] = hashOf("other", 1, 0, 4)
	mustFail(t, r.dRoot(1, other), "PRECONDITION_FAILED", "differs from the generator root's "+fakeHash(1, 0, 4))
	r.unchanged(before)
	r.ok(r.dRoot(1, dRootArg(1, 0, 5)))
	mustFail(t, r.dRoot(1, dRootArg(1, 0, 5)), "PRECONDITION_FAILED", "the last step, round 0 iter 4, is complete")
	mustFail(t, r.gRoot(1, gRootArg(1, 0, 5)), "PRECONDITION_FAILED", "round 0 is not after the last step of Registry1MSP")
	// a per-step generator record of the next round (allowed: only stronger) cannot be answered with a root
	r.ok(r.gen(1, 1, 0))
	mustFail(t, r.dRoot(1, dRootArg(1, 1, 1)), "PRECONDITION_FAILED", "round 1 of Registry1MSP in run run-1 has no generator root")
}

func TestAnchorRootStrictJSON(t *testing.T) {
	r := newRuns(t)
	r.anchoredRun("anchored")
	for name, mutate := range map[string]func(m map[string]any){
		`.count"`:                 func(m map[string]any) { m["count"] = 0 },
		`.merkle_root"`:           func(m map[string]any) { m["merkle_root"] = "ABC" },
		`.round"`:                 func(m map[string]any) { m["round"] = -1 },
		"unknown field \"extra\"": func(m map[string]any) { m["extra"] = 1 },
		`.fake_sha256"`:           func(m map[string]any) { delete(m, "fake_sha256") },
	} {
		arg := gRootArg(1, 0, 5)
		mutate(arg)
		mustFail(t, r.gRoot(1, arg), "INVALID_ARGUMENT", name)
	}
	r.ok(r.gRoot(1, gRootArg(1, 0, 5)))
	for name, mutate := range map[string]func(m map[string]any){
		`.g_loss_mean"`:      func(m map[string]any) { m["g_loss_mean"] = 2e12 },
		`.d_weights_sha256"`: func(m map[string]any) { m["d_weights_sha256"] = nil },
	} {
		arg := dRootArg(1, 0, 5)
		mutate(arg)
		mustFail(t, r.dRoot(1, arg), "INVALID_ARGUMENT", name)
	}
}

func TestAnchorFaultKinds(t *testing.T) {
	s := newSteps(t)
	for _, kind := range []string{"statement_invalid", "root_mismatch"} {
		r := s.ok(s.call(s.d(1), "RecordFault", testRun, toJSON(t, faultArg(0, 0, kind))))
		wantEvent(t, r, EventStepFault, StepEvent{Run: testRun, MSPID: msp(1), Round: 0, Iter: 0, Kind: kind})
	}
}
