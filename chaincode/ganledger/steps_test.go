package ganledger

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/synthreg/synthreg/chaincode/internal/fakestub"
)

// steps is a fixture for step-record tests: the aggregation fixture's cached
// identities plus builders of valid step arguments for registry n.
type steps struct{ *agg }

func newSteps(t *testing.T) *steps { return &steps{newAgg(t)} }

func (s *steps) g(n int) fakestub.Identity { return s.as(msp(n), "generator") }
func (s *steps) d(n int) fakestub.Identity { return s.as(msp(n), "discriminator") }

func fakeHash(n, round, iter int) string {
	return fakestub.SHA256Hex([]byte(fmt.Sprint("fake", n, round, iter)))
}
func hashOf(what string, n, round, iter int) string {
	return fakestub.SHA256Hex([]byte(fmt.Sprint(what, n, round, iter)))
}

func genArg(n, round, iter int) map[string]any {
	return map[string]any{"round": round, "iter": iter, "fake_sha256": fakeHash(n, round, iter),
		"g_weights_sha256": hashOf("gw", n, round, iter), "noise_seed": 1000*round + iter, "batch_size": 64}
}

func discArg(n, round, iter int) map[string]any {
	return map[string]any{"round": round, "iter": iter, "fake_sha256": fakeHash(n, round, iter),
		"real_sha256": hashOf("real", n, round, iter), "feedback_sha256": hashOf("fb", n, round, iter),
		"d_weights_sha256": hashOf("dw", n, round, iter), "d_loss": 0.5 + float64(iter), "g_loss": -1.25}
}

func stopArg(round, iter int) map[string]any {
	return map[string]any{"round": round, "iter": iter, "reason": "budget", "g_loss": 0.75}
}

func faultArg(round, iter int, kind string) map[string]any {
	return map[string]any{"round": round, "iter": iter, "kind": kind, "expected": fakeHash(1, round, iter),
		"got": hashOf("other", 1, round, iter), "detail": "workspace file hashes differently"}
}

func (s *steps) gen(n, round, iter int) fakestub.Result {
	return s.call(s.g(n), "RecordGeneratorStep", testRun, toJSON(s.t, genArg(n, round, iter)))
}

func (s *steps) disc(n, round, iter int) fakestub.Result {
	return s.call(s.d(n), "RecordDiscriminatorStep", testRun, toJSON(s.t, discArg(n, round, iter)))
}

// complete records registry n's generator and discriminator step (round, iter).
func (s *steps) complete(n, round, iter int) {
	s.t.Helper()
	s.ok(s.gen(n, round, iter))
	s.ok(s.disc(n, round, iter))
}

func (s *steps) stop(n, round, iter int) fakestub.Result {
	return s.call(s.g(n), "RecordStop", testRun, toJSON(s.t, stopArg(round, iter)))
}

func (s *steps) head(n int) StepHead {
	s.t.Helper()
	return fakestub.Decode[StepHead](s.t, s.ok(s.call(s.g(n), "GetStepHead", testRun, msp(n))).Payload)
}

func (s *steps) wantHead(n, round, iter int, phase string) {
	s.t.Helper()
	if h := s.head(n); h != (StepHead{Round: round, Iter: iter, Phase: phase}) {
		s.t.Fatalf("head of %s = %+v, want (%d, %d, %s)", msp(n), h, round, iter, phase)
	}
}

// unchanged fails the test unless the ledger's state equals before.
func (s *steps) unchanged(before map[string][]byte) {
	s.t.Helper()
	if !maps.EqualFunc(before, s.ledger.State, func(a, b []byte) bool { return string(a) == string(b) }) {
		s.t.Fatalf("state changed by a refused call: %d keys before, %d after", len(before), len(s.ledger.State))
	}
}

func wantEvent(t *testing.T, r fakestub.Result, name string, want StepEvent) {
	t.Helper()
	if r.Event == nil || r.Event.Name != name {
		t.Fatalf("event %+v, want %s", r.Event, name)
	}
	want.TxID = r.TxID
	if got := fakestub.Decode[StepEvent](t, r.Event.Payload); got != want {
		t.Fatalf("event payload %+v, want %+v", got, want)
	}
}

func TestStepsFullSequenceOverTwoRounds(t *testing.T) {
	s := newSteps(t)
	for round := 0; round < 2; round++ {
		for iter := 0; iter < 3; iter++ {
			rg := s.ok(s.gen(1, round, iter))
			wantEvent(t, rg, EventGeneratorStep, StepEvent{Run: testRun, MSPID: msp(1), Round: round, Iter: iter, FakeSHA256: fakeHash(1, round, iter)})
			s.wantHead(1, round, iter, PhaseGenerator)
			rd := s.ok(s.disc(1, round, iter))
			wantEvent(t, rd, EventDiscriminatorStep, StepEvent{Run: testRun, MSPID: msp(1), Round: round, Iter: iter, FeedbackSHA256: hashOf("fb", 1, round, iter)})
			s.wantHead(1, round, iter, PhaseDiscriminator)

			pair := fakestub.Decode[StepPair](t, s.ok(s.call(s.as(msp(3), "auditor"), "GetStep", testRun, msp(1), fmt.Sprint(round), fmt.Sprint(iter))).Payload)
			g, d := pair.Generator, pair.Discriminator
			if g == nil || d == nil {
				t.Fatalf("GetStep(%d, %d) = %+v, want both sides", round, iter, pair)
			}
			if g.FakeSHA256 != fakeHash(1, round, iter) || g.NoiseSeed != int64(1000*round+iter) || g.BatchSize != 64 ||
				g.MSPID != msp(1) || g.Role != "generator" || g.TxID != rg.TxID || !strings.HasPrefix(g.Timestamp, "2026-01-02T03:") {
				t.Fatalf("generator record %+v (tx %s)", g, rg.TxID)
			}
			if d.FakeSHA256 != g.FakeSHA256 || d.FeedbackSHA256 != hashOf("fb", 1, round, iter) || d.DLoss != 0.5+float64(iter) ||
				d.GLoss != -1.25 || d.Role != "discriminator" || d.TxID != rd.TxID {
				t.Fatalf("discriminator record %+v (tx %s)", d, rd.TxID)
			}
			if stored := fakestub.Decode[GeneratorStep](t, rg.Payload); stored != *g {
				t.Fatalf("RecordGeneratorStep returned %+v, GetStep %+v", stored, *g)
			}
		}
	}
	rs := s.ok(s.stop(1, 1, 2))
	wantEvent(t, rs, EventTrainingStopped, StepEvent{Run: testRun, MSPID: msp(1), Round: 1, Iter: 2, Reason: "budget"})
	if st := fakestub.Decode[Stop](t, rs.Payload); st.Reason != "budget" || st.GLoss != 0.75 || st.TxID != rs.TxID || st.MSPID != msp(1) {
		t.Fatalf("stop record %+v", st)
	}
	s.wantHead(1, 1, 2, PhaseStopped)
	// 6 G + 6 D records, head, stop record.
	if n := len(s.ledger.State); n != 14+testMembers {
		t.Fatalf("%d state keys, want 14 + %d member records", n, testMembers)
	}
}

func TestStepsDiscriminatorBeforeGeneratorRefused(t *testing.T) {
	s := newSteps(t)
	mustFail(t, s.disc(1, 0, 0), "PRECONDITION_FAILED", "no generator step of Registry1MSP in run run-1 is waiting")
	s.complete(1, 0, 0)
	mustFail(t, s.disc(1, 0, 0), "PRECONDITION_FAILED", "round 0 iter 0, is complete")
	s.ok(s.gen(1, 0, 1))
	before := maps.Clone(s.ledger.State)
	mustFail(t, s.disc(1, 0, 2), "PRECONDITION_FAILED", "is round 0 iter 1, not round 0 iter 2")
	s.unchanged(before)
}

func TestStepsDiscriminatorWithDifferentFakeHashRefusedAndNothingWritten(t *testing.T) {
	s := newSteps(t)
	s.ok(s.gen(1, 0, 0))
	before := maps.Clone(s.ledger.State)
	arg := discArg(1, 0, 0)
	arg["fake_sha256"] = hashOf("tampered", 1, 0, 0)
	r := s.call(s.d(1), "RecordDiscriminatorStep", testRun, toJSON(t, arg))
	mustFail(t, r, "PRECONDITION_FAILED", "fake batch hash "+hashOf("tampered", 1, 0, 0), "differs from the generator's "+fakeHash(1, 0, 0))
	if r.Event != nil {
		t.Fatalf("refused call set event %+v", r.Event)
	}
	s.unchanged(before)
	s.wantHead(1, 0, 0, PhaseGenerator)
	pair := fakestub.Decode[StepPair](t, s.ok(s.call(s.d(1), "GetStep", testRun, msp(1), "0", "0")).Payload)
	if pair.Generator == nil || pair.Discriminator != nil {
		t.Fatalf("GetStep after a refused D step = %+v, want generator only", pair)
	}
}

func TestStepsGeneratorWhileWaitingForDiscriminatorRefused(t *testing.T) {
	s := newSteps(t)
	s.ok(s.gen(1, 0, 0))
	before := maps.Clone(s.ledger.State)
	mustFail(t, s.gen(1, 0, 1), "PRECONDITION_FAILED", "waiting for the discriminator step of round 0 iter 0")
	mustFail(t, s.gen(1, 0, 0), "PRECONDITION_FAILED", "waiting for the discriminator step of round 0 iter 0")
	s.unchanged(before)
}

func TestStepsGeneratorNotAfterHeadRefused(t *testing.T) {
	s := newSteps(t)
	s.complete(1, 1, 5)
	before := maps.Clone(s.ledger.State)
	for _, ri := range [][2]int{{1, 5}, {1, 4}, {0, 9}, {0, 0}} {
		mustFail(t, s.gen(1, ri[0], ri[1]), "PRECONDITION_FAILED",
			fmt.Sprintf("round %d iter %d is not after the last step of Registry1MSP in run run-1, round 1 iter 5", ri[0], ri[1]))
	}
	s.unchanged(before)
	s.complete(1, 2, 0)  // a later round may restart iter
	s.ok(s.gen(1, 2, 7)) // gaps are allowed, order is what counts
}

func TestStepsRolesEnforced(t *testing.T) {
	s := newSteps(t)
	mustFail(t, s.call(s.d(1), "RecordGeneratorStep", testRun, toJSON(t, genArg(1, 0, 0))), "ACCESS_DENIED", "discriminator", "allowed: generator")
	mustFail(t, s.call(s.m(1), "RecordGeneratorStep", testRun, toJSON(t, genArg(1, 0, 0))), "ACCESS_DENIED")
	s.ok(s.gen(1, 0, 0))
	mustFail(t, s.call(s.g(1), "RecordDiscriminatorStep", testRun, toJSON(t, discArg(1, 0, 0))), "ACCESS_DENIED", "generator", "allowed: discriminator")
	mustFail(t, s.call(s.as(msp(1), "admin"), "RecordDiscriminatorStep", testRun, toJSON(t, discArg(1, 0, 0))), "ACCESS_DENIED")
	s.ok(s.disc(1, 0, 0))
	mustFail(t, s.call(s.d(1), "RecordStop", testRun, toJSON(t, stopArg(0, 0))), "ACCESS_DENIED", "allowed: generator")
	outsider := s.as("OutsiderMSP", "generator")
	mustFail(t, s.call(outsider, "RecordGeneratorStep", testRun, toJSON(t, genArg(1, 0, 1))), "ACCESS_DENIED", "not a registered member of channel gan", "RegisterMember")
	s.wantHead(1, 0, 0, PhaseDiscriminator)
}

func TestStepsDiscriminatorOfAnotherMSPCannotAnswer(t *testing.T) {
	s := newSteps(t)
	s.ok(s.gen(1, 0, 0))
	before := maps.Clone(s.ledger.State)
	// Registry2's discriminator sends Registry1's exact step: it is checked
	// against Registry2's own head, which is absent.
	mustFail(t, s.call(s.d(2), "RecordDiscriminatorStep", testRun, toJSON(t, discArg(1, 0, 0))),
		"PRECONDITION_FAILED", "no generator step of Registry2MSP in run run-1 is waiting")
	s.unchanged(before)
	s.wantHead(1, 0, 0, PhaseGenerator)
	mustFail(t, s.call(s.g(1), "GetStepHead", testRun, msp(2)), "NOT_FOUND", "step head", "run-1/Registry2MSP")
	// Registry2 with a generator step of its own still cannot take over
	// Registry1's: its head names its own step and fake hash.
	s.ok(s.gen(2, 0, 0))
	mustFail(t, s.call(s.d(2), "RecordDiscriminatorStep", testRun, toJSON(t, discArg(1, 0, 0))),
		"PRECONDITION_FAILED", "differs from the generator's "+fakeHash(2, 0, 0))
}

func TestStepsStopAfterCompletedStepThenEverythingRefused(t *testing.T) {
	s := newSteps(t)
	mustFail(t, s.stop(1, 0, 0), "PRECONDITION_FAILED", "no completed step of Registry1MSP in run run-1 to stop after")
	s.complete(1, 0, 0)
	mustFail(t, s.stop(1, 0, 1), "PRECONDITION_FAILED", "last completed step of Registry1MSP in run run-1, round 0 iter 0, not round 0 iter 1")
	s.ok(s.stop(1, 0, 0))
	before := maps.Clone(s.ledger.State)
	stopped := "training of Registry1MSP in run run-1 stopped"
	mustFail(t, s.stop(1, 0, 0), "PRECONDITION_FAILED", stopped)
	mustFail(t, s.gen(1, 0, 1), "PRECONDITION_FAILED", stopped)
	mustFail(t, s.gen(1, 5, 0), "PRECONDITION_FAILED", stopped)
	mustFail(t, s.disc(1, 0, 0), "PRECONDITION_FAILED", stopped)
	mustFail(t, s.disc(1, 0, 1), "PRECONDITION_FAILED", stopped)
	s.unchanged(before)
	s.wantHead(1, 0, 0, PhaseStopped)
	s.ok(s.gen(2, 0, 0)) // another registry is not stopped
}

func TestStepsStopWhileWaitingForDiscriminatorRefused(t *testing.T) {
	s := newSteps(t)
	s.ok(s.gen(1, 0, 0))
	before := maps.Clone(s.ledger.State)
	mustFail(t, s.stop(1, 0, 0), "PRECONDITION_FAILED", "waiting for the discriminator step of round 0 iter 0")
	s.unchanged(before)
	s.ok(s.disc(1, 0, 0))
	s.ok(s.stop(1, 0, 0))
}

func TestStepsFaultsRecordedAndListedByBothRoles(t *testing.T) {
	s := newSteps(t)
	s.ok(s.gen(1, 0, 0))
	rd := s.ok(s.call(s.d(1), "RecordFault", testRun, toJSON(t, faultArg(0, 0, "fake_hash_mismatch"))))
	wantEvent(t, rd, EventStepFault, StepEvent{Run: testRun, MSPID: msp(1), Round: 0, Iter: 0, Kind: "fake_hash_mismatch"})
	s.wantHead(1, 0, 0, PhaseGenerator) // a fault does not touch the head
	s.ok(s.disc(1, 0, 0))
	rg := s.ok(s.call(s.g(1), "RecordFault", testRun, toJSON(t, faultArg(0, 0, "feedback_hash_mismatch"))))
	s.wantHead(1, 0, 0, PhaseDiscriminator)
	for _, role := range []string{"admin", "merger", "auditor"} {
		mustFail(t, s.call(s.as(msp(1), role), "RecordFault", testRun, toJSON(t, faultArg(0, 0, "real_batch_invalid"))),
			"ACCESS_DENIED", "allowed: discriminator,generator")
	}
	for _, reader := range []fakestub.Identity{s.g(1), s.d(1), s.as(msp(2), "auditor")} {
		faults := fakestub.Decode[[]Fault](t, s.ok(s.call(reader, "ListFaults", testRun, msp(1))).Payload)
		if len(faults) != 2 || faults[0].TxID != rd.TxID || faults[1].TxID != rg.TxID ||
			faults[0].Role != "discriminator" || faults[1].Role != "generator" || faults[1].Kind != "feedback_hash_mismatch" ||
			faults[0].Expected != fakeHash(1, 0, 0) || faults[0].Detail != "workspace file hashes differently" {
			t.Fatalf("ListFaults = %+v", faults)
		}
	}
	if r := s.ok(s.call(s.g(2), "ListFaults", testRun, msp(2))); string(r.Payload) != "[]" {
		t.Fatalf("ListFaults of a registry without faults = %s, want []", r.Payload)
	}
	if r := s.ok(s.call(s.g(1), "ListFaults", "run-2", msp(1))); string(r.Payload) != "[]" {
		t.Fatalf("ListFaults of another run = %s, want []", r.Payload)
	}
}

func TestStepsReadsNotFoundAndInvalid(t *testing.T) {
	s := newSteps(t)
	mustFail(t, s.call(s.g(1), "GetStepHead", testRun, msp(1)), "NOT_FOUND", "step head")
	mustFail(t, s.call(s.g(1), "GetStep", testRun, msp(1), "0", "0"), "NOT_FOUND", "step", "run-1/Registry1MSP/0/0")
	s.ok(s.gen(1, 0, 0))
	mustFail(t, s.call(s.g(1), "GetStep", testRun, msp(1), "0", "1"), "NOT_FOUND")
	mustFail(t, s.call(s.g(1), "GetStep", "run-2", msp(1), "0", "0"), "NOT_FOUND")
	mustFail(t, s.call(s.g(1), "GetStep", testRun, msp(2), "0", "0"), "NOT_FOUND")
	r := s.ok(s.call(s.m(2), "GetStep", testRun, msp(1), "0", "0"))
	if !strings.HasSuffix(string(r.Payload), `"discriminator":null}`) {
		t.Fatalf("GetStep with only the generator side = %s", r.Payload)
	}
	mustFail(t, s.call(s.g(1), "GetStep", testRun, msp(1), "00", "0"), "INVALID_ARGUMENT", `"round"`)
	mustFail(t, s.call(s.g(1), "GetStep", testRun, msp(1), "0", "1000001"), "INVALID_ARGUMENT", `"iter"`)
	mustFail(t, s.call(s.g(1), "GetStepHead", testRun, "OutsiderMSP"), "INVALID_ARGUMENT", `"msp"`)
	mustFail(t, s.call(s.g(1), "ListFaults", "", msp(1)), "INVALID_ARGUMENT", `"run"`)
}

func TestStepsStrictJSON(t *testing.T) {
	s := newSteps(t)
	s.ok(s.gen(1, 0, 0)) // so that a valid D step would be accepted
	good := toJSON(t, discArg(1, 0, 0))
	with := func(base map[string]any, k string, v any) string {
		m := maps.Clone(base)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return toJSON(t, m)
	}
	long := strings.Repeat("é", MaxFaultDetail+1)
	cases := []struct{ fn, arg, field string }{
		{"RecordDiscriminatorStep", with(discArg(1, 0, 0), "extra", 1), `"stepJSON"`},
		{"RecordDiscriminatorStep", with(discArg(1, 0, 0), "g_loss", nil), `"stepJSON.g_loss": missing`},
		{"RecordDiscriminatorStep", strings.Replace(good, `"d_loss":0.5`, `"d_loss":0.5,"d_loss":7`, 1), "duplicate field \"d_loss\""},
		{"RecordDiscriminatorStep", strings.Replace(good, `"d_loss":0.5`, `"d_loss":null`, 1), `"stepJSON.d_loss": null`},
		{"RecordDiscriminatorStep", strings.Replace(good, `"d_loss":0.5`, `"d_loss":NaN`, 1), `"stepJSON"`},
		{"RecordDiscriminatorStep", strings.Replace(good, `"d_loss":0.5`, `"d_loss":1e400`, 1), `"stepJSON"`},
		{"RecordDiscriminatorStep", with(discArg(1, 0, 0), "d_loss", 2e12), `"stepJSON.d_loss"`},
		{"RecordDiscriminatorStep", with(discArg(1, 0, 0), "g_loss", -1.5e12), `"stepJSON.g_loss"`},
		{"RecordDiscriminatorStep", with(discArg(1, 0, 0), "real_sha256", strings.ToUpper(hashOf("real", 1, 0, 0))), `"stepJSON.real_sha256"`},
		{"RecordDiscriminatorStep", with(discArg(1, 0, 0), "feedback_sha256", "abc"), `"stepJSON.feedback_sha256"`},
		{"RecordDiscriminatorStep", with(discArg(1, 0, 0), "round", -1), `"stepJSON.round"`},
		{"RecordDiscriminatorStep", with(discArg(1, 0, 0), "iter", 1_000_001), `"stepJSON.iter"`},
		{"RecordDiscriminatorStep", with(discArg(1, 0, 0), "iter", 0.5), `"stepJSON"`},
		{"RecordDiscriminatorStep", `[` + good + `]`, `"stepJSON"`},
		{"RecordGeneratorStep", with(genArg(1, 0, 1), "noise_seed", int64(-1)), `"stepJSON.noise_seed"`},
		{"RecordGeneratorStep", with(genArg(1, 0, 1), "batch_size", 0), `"stepJSON.batch_size"`},
		{"RecordGeneratorStep", with(genArg(1, 0, 1), "g_weights_sha256", "zz"+hashOf("gw", 1, 0, 1)[2:]), `"stepJSON.g_weights_sha256"`},
		{"RecordGeneratorStep", with(genArg(1, 0, 1), "fake_sha256", nil), `"stepJSON.fake_sha256": missing`},
		{"RecordStop", with(stopArg(0, 0), "reason", "bored"), `"stopJSON.reason"`},
		{"RecordFault", with(faultArg(0, 0, "x"), "kind", "x"), `"faultJSON.kind"`},
		{"RecordFault", with(faultArg(0, 0, "real_batch_invalid"), "detail", long), `"faultJSON.detail"`},
		{"RecordFault", with(faultArg(0, 0, "real_batch_invalid"), "got", ""), `"faultJSON.got"`},
	}
	before := maps.Clone(s.ledger.State)
	for _, c := range cases {
		id := s.d(1)
		if c.fn != "RecordDiscriminatorStep" && c.fn != "RecordFault" {
			id = s.g(1)
		}
		mustFail(t, s.call(id, c.fn, testRun, c.arg), "INVALID_ARGUMENT", c.field)
	}
	mustFail(t, s.call(s.d(1), "RecordDiscriminatorStep", "bad run", good), "INVALID_ARGUMENT", `"run"`)
	s.unchanged(before)
	// The detail limit counts characters, not bytes; a loss at the bound is fine.
	s.ok(s.call(s.d(1), "RecordFault", testRun, with(faultArg(0, 0, "real_batch_invalid"), "detail", long[len("é"):])))
	s.ok(s.call(s.d(1), "RecordDiscriminatorStep", testRun, with(discArg(1, 0, 0), "d_loss", -1e12)))
}

func TestStepsRegistriesStepConcurrentlyButOneRegistrySerialises(t *testing.T) {
	s := newSteps(t)
	genCall := func(n, round, iter int) fakestub.Call {
		return fakestub.Call{Chaincode: s.cc, ID: s.g(n), Fn: "RecordGeneratorStep", Args: []string{testRun, toJSON(t, genArg(n, round, iter))}}
	}
	discCall := func(n, round, iter int) fakestub.Call {
		return fakestub.Call{Chaincode: s.cc, ID: s.d(n), Fn: "RecordDiscriminatorStep", Args: []string{testRun, toJSON(t, discArg(n, round, iter))}}
	}
	for _, res := range [][]fakestub.Result{
		s.ledger.Block(genCall(1, 0, 0), genCall(2, 0, 0), genCall(3, 0, 0)),
		s.ledger.Block(discCall(1, 0, 0), discCall(2, 0, 0), discCall(3, 0, 0)),
	} {
		for i, r := range res {
			if !r.OK() {
				t.Fatalf("registry %d's step in a shared block: %s %s", i+1, r.Message, r.Invalid)
			}
		}
	}
	for n := 1; n <= 3; n++ {
		s.wantHead(n, 0, 0, PhaseDiscriminator)
	}
	// Two generator steps of one registry endorsed against the same head: the
	// second reads a head version the first changed.
	res := s.ledger.Block(genCall(1, 0, 1), genCall(1, 0, 2), genCall(2, 0, 1))
	if !res[0].OK() || res[1].Invalid != fakestub.MVCCReadConflict || !res[2].OK() {
		t.Fatalf("same-registry race: %+v / %+v / %+v", res[0], res[1], res[2])
	}
	s.wantHead(1, 0, 1, PhaseGenerator)
	mustFail(t, s.call(s.g(1), "GetStep", testRun, msp(1), "0", "2"), "NOT_FOUND")
	// A stop and a generator step of one registry in one block: the step
	// ordered second is invalidated, the registry stays stopped.
	s.ok(s.disc(2, 0, 1))
	stopCall := fakestub.Call{Chaincode: s.cc, ID: s.g(2), Fn: "RecordStop", Args: []string{testRun, toJSON(t, stopArg(0, 1))}}
	res = s.ledger.Block(stopCall, genCall(2, 0, 2))
	if !res[0].OK() || res[1].Invalid != fakestub.MVCCReadConflict {
		t.Fatalf("stop versus step: %+v / %+v", res[0], res[1])
	}
	s.wantHead(2, 0, 1, PhaseStopped)
	var evs []string
	for _, e := range s.ledger.Events {
		evs = append(evs, e.Name)
	}
	if raw, _ := json.Marshal(evs); strings.Count(string(raw), `"`+EventGeneratorStep+`"`) != 5 || strings.Count(string(raw), EventTrainingStopped) != 1 {
		t.Fatalf("events %s: want 5 committed generator steps and 1 stop", raw)
	}
}

// updateArg is registry n's local update of round, ending with step (round,
// iter): its d_weights_sha256 is that discriminator step's.
func updateArg(n, round, iter int) map[string]any {
	return map[string]any{"round": round, "g_weights_sha256": hashOf("gw-end", n, round, iter), "d_weights_sha256": hashOf("dw", n, round, iter)}
}

func (s *steps) update(n int, arg map[string]any) fakestub.Result {
	return s.call(s.g(n), "RecordLocalUpdate", testRun, toJSON(s.t, arg))
}

func TestStepsLocalUpdateAfterTheRoundsLastStep(t *testing.T) {
	s := newSteps(t)
	s.complete(1, 0, 0)
	s.complete(1, 0, 1)
	ru := s.ok(s.update(1, updateArg(1, 0, 1)))
	wantEvent(t, ru, EventLocalUpdate, StepEvent{Run: testRun, MSPID: msp(1), Round: 0, Iter: 1,
		GWeightsSHA256: hashOf("gw-end", 1, 0, 1), DWeightsSHA256: hashOf("dw", 1, 0, 1)})
	want := LocalUpdate{
		LocalUpdateArg: LocalUpdateArg{Round: 0, GWeightsSHA256: hashOf("gw-end", 1, 0, 1), DWeightsSHA256: hashOf("dw", 1, 0, 1)},
		Iter:           1,
		Stamp:          Stamp{MSPID: msp(1), Role: "generator", TxID: ru.TxID, Timestamp: s.ledger.Now().UTC().Format(time.RFC3339Nano)},
	}
	if got := fakestub.Decode[LocalUpdate](t, ru.Payload); got != want {
		t.Fatalf("RecordLocalUpdate returned %+v, want %+v", got, want)
	}
	if p := string(ru.Payload); !strings.HasPrefix(p, `{"round":0,"g_weights_sha256":"`) || !strings.Contains(p, `","iter":1,"msp":"Registry1MSP","role":"generator","txid":"`) {
		t.Fatalf("stored record layout %s", p)
	}
	s.wantHead(1, 0, 1, PhaseDiscriminator) // the head is not changed
	for _, reader := range []fakestub.Identity{s.as(msp(3), "auditor"), s.m(1), s.d(2)} {
		if got := s.ok(s.call(reader, "GetLocalUpdate", testRun, msp(1), "0")); string(got.Payload) != string(ru.Payload) {
			t.Fatalf("GetLocalUpdate = %s, want %s", got.Payload, ru.Payload)
		}
	}

	before := maps.Clone(s.ledger.State)
	mustFail(t, s.update(1, updateArg(1, 0, 1)), "ALREADY_EXISTS", `local update "run-1/Registry1MSP/0"`)
	other := updateArg(1, 0, 1)
	other["g_weights_sha256"] = hashOf("other", 1, 0, 1)
	mustFail(t, s.update(1, other), "ALREADY_EXISTS", `local update "run-1/Registry1MSP/0"`)
	s.unchanged(before)

	// The next round goes on as before; its update names its own last step.
	s.complete(1, 1, 0)
	if got := fakestub.Decode[LocalUpdate](t, s.ok(s.update(1, updateArg(1, 1, 0))).Payload); got.Round != 1 || got.Iter != 0 {
		t.Fatalf("round 1 update %+v", got)
	}
	s.complete(1, 1, 1) // more steps of a round after its update are the generator's business
	mustFail(t, s.update(1, updateArg(1, 1, 1)), "ALREADY_EXISTS", `local update "run-1/Registry1MSP/1"`)

	mustFail(t, s.call(s.g(1), "GetLocalUpdate", testRun, msp(1), "2"), "NOT_FOUND", `local update "run-1/Registry1MSP/2" not found`)
	mustFail(t, s.call(s.g(1), "GetLocalUpdate", testRun, msp(2), "0"), "NOT_FOUND")
	mustFail(t, s.call(s.g(1), "GetLocalUpdate", "run-2", msp(1), "0"), "NOT_FOUND")
	mustFail(t, s.call(s.g(1), "GetLocalUpdate", testRun, msp(1), "00"), "INVALID_ARGUMENT", `"round"`)
	mustFail(t, s.call(s.g(1), "GetLocalUpdate", testRun, "OutsiderMSP", "0"), "INVALID_ARGUMENT", `"msp"`)
	mustFail(t, s.call(s.g(1), "GetLocalUpdate", "bad run", msp(1), "0"), "INVALID_ARGUMENT", `"run"`)
	mustFail(t, s.call(s.as("OutsiderMSP", "auditor"), "GetLocalUpdate", testRun, msp(1), "0"), "ACCESS_DENIED")
}

func TestStepsLocalUpdateRefusals(t *testing.T) {
	s := newSteps(t)
	mustFail(t, s.update(1, updateArg(1, 0, 0)), "PRECONDITION_FAILED", "no completed step of Registry1MSP in run run-1")
	s.complete(1, 0, 0)
	s.complete(1, 0, 1)
	before := maps.Clone(s.ledger.State)
	mustFail(t, s.update(1, updateArg(1, 1, 1)), "PRECONDITION_FAILED",
		"the last completed step of Registry1MSP in run run-1 is round 0 iter 1, not a step of round 1")
	stale := updateArg(1, 0, 0) // the discriminator weights of an earlier iteration
	mustFail(t, s.update(1, stale), "PRECONDITION_FAILED",
		"discriminator weights hash "+hashOf("dw", 1, 0, 0)+" differs from the discriminator's "+hashOf("dw", 1, 0, 1)+" of round 0 iter 1")
	mustFail(t, s.call(s.d(1), "RecordLocalUpdate", testRun, toJSON(t, updateArg(1, 0, 1))), "ACCESS_DENIED", "discriminator", "allowed: generator")
	for _, role := range []string{"merger", "admin", "auditor"} {
		mustFail(t, s.call(s.as(msp(1), role), "RecordLocalUpdate", testRun, toJSON(t, updateArg(1, 0, 1))), "ACCESS_DENIED", "allowed: generator")
	}
	mustFail(t, s.call(s.as("OutsiderMSP", "generator"), "RecordLocalUpdate", testRun, toJSON(t, updateArg(1, 0, 1))), "ACCESS_DENIED", "not a registered member of channel gan", "RegisterMember")
	// Another registry's generator finds its own (absent) head.
	mustFail(t, s.call(s.g(2), "RecordLocalUpdate", testRun, toJSON(t, updateArg(1, 0, 1))), "PRECONDITION_FAILED", "no completed step of Registry2MSP")

	with := func(k string, v any) string {
		m := updateArg(1, 0, 1)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return toJSON(t, m)
	}
	good := toJSON(t, updateArg(1, 0, 1))
	for arg, field := range map[string]string{
		with("iter", 1):               `"updateJSON": malformed JSON: json: unknown field "iter"`,
		with("d_weights_sha256", nil): `"updateJSON.d_weights_sha256": missing`,
		strings.Replace(good, `"round":0`, `"round":null`, 1):        `"updateJSON.round": null`,
		strings.Replace(good, `"round":0`, `"round":0,"round":0`, 1): `duplicate field "round"`,
		with("round", -1):               `"updateJSON.round"`,
		with("round", 1_000_001):        `"updateJSON.round"`,
		with("round", 0.5):              `"updateJSON"`,
		with("g_weights_sha256", "abc"): `"updateJSON.g_weights_sha256"`,
		with("d_weights_sha256", strings.ToUpper(hashOf("dw", 1, 0, 1))): `"updateJSON.d_weights_sha256"`,
		`[` + good + `]`: `"updateJSON"`,
	} {
		mustFail(t, s.update1(arg), "INVALID_ARGUMENT", field)
	}
	mustFail(t, s.call(s.g(1), "RecordLocalUpdate", "bad run", good), "INVALID_ARGUMENT", `"run"`)
	s.unchanged(before)

	s.ok(s.gen(1, 0, 2))
	mustFail(t, s.update(1, updateArg(1, 0, 1)), "PRECONDITION_FAILED", "waiting for the discriminator step of round 0 iter 2")
	s.ok(s.disc(1, 0, 2))
	s.ok(s.stop(1, 0, 2))
	before = maps.Clone(s.ledger.State)
	mustFail(t, s.update(1, updateArg(1, 0, 2)), "PRECONDITION_FAILED", "training of Registry1MSP in run run-1 stopped")
	s.unchanged(before)
}

// update1 sends a raw updateJSON as registry 1's generator.
func (s *steps) update1(raw string) fakestub.Result {
	return s.call(s.g(1), "RecordLocalUpdate", testRun, raw)
}

func TestStepsLocalUpdateRacingTheNextRound(t *testing.T) {
	s := newSteps(t)
	s.complete(1, 0, 0)
	s.complete(2, 0, 0)
	updateCall := func(n int) fakestub.Call {
		return fakestub.Call{Chaincode: s.cc, ID: s.g(n), Fn: "RecordLocalUpdate", Args: []string{testRun, toJSON(t, updateArg(n, 0, 0))}}
	}
	genCall := func(n int) fakestub.Call {
		return fakestub.Call{Chaincode: s.cc, ID: s.g(n), Fn: "RecordGeneratorStep", Args: []string{testRun, toJSON(t, genArg(n, 1, 0))}}
	}
	// Update first: the next round's step only reads the head the update
	// did not write, so both commit.
	res := s.ledger.Block(updateCall(1), genCall(1))
	if !res[0].OK() || !res[1].OK() {
		t.Fatalf("update then step: %+v / %+v", res[0], res[1])
	}
	// Step first: the update was endorsed against a head the step moved on.
	res = s.ledger.Block(genCall(2), updateCall(2))
	if !res[0].OK() || res[1].Invalid != fakestub.MVCCReadConflict {
		t.Fatalf("step then update: %+v / %+v", res[0], res[1])
	}
	mustFail(t, s.call(s.g(2), "GetLocalUpdate", testRun, msp(2), "0"), "NOT_FOUND")
}

// submitWithUpdate is merger n's Submit of round 0 (peers: the other two of
// three; its masked blob put once) carrying update (an "update" object, or
// any JSON value to refuse; nil: none).
func (s *steps) submitWithUpdate(n int, update any) fakestub.Result {
	s.t.Helper()
	masked := fakestub.SHA256Hex([]byte(fmt.Sprintf("masked-%d-%s-........", n, "0")))
	if !s.call(s.as(msp(3), "auditor"), "GetBlob", testRun, masked).OK() {
		masked = s.blob(n, "0")
	}
	var sub map[string]any
	if err := json.Unmarshal([]byte(s.submission(masked, "", others(all3(), n)...)), &sub); err != nil {
		s.t.Fatal(err)
	}
	if update != nil {
		sub["update"] = update
	}
	return s.call(s.m(n), "Submit", testRun, "0", toJSON(s.t, sub))
}

// The merger apps record the local update in their Submit (issue 11: one
// transaction per registry and round fewer): checked and stored exactly as
// RecordLocalUpdate stores it, with the merger's stamp; a refused update
// refuses the whole Submit (nothing half-written).
func TestSubmitRecordsTheLocalUpdate(t *testing.T) {
	s := newSteps(t)
	s.open(3, 2, 30)
	s.toShared("0", all3(), all3())
	hashes := func(n int) map[string]any {
		u := updateArg(n, 0, 1)
		delete(u, "round")
		return u
	}
	// not yet: registry 1's round 0 has no completed step
	mustFail(t, s.submitWithUpdate(1, hashes(1)), "PRECONDITION_FAILED", "no completed step of Registry1MSP")
	s.complete(1, 0, 0)
	s.ok(s.gen(1, 0, 1))
	mustFail(t, s.submitWithUpdate(1, hashes(1)), "PRECONDITION_FAILED", "waiting for")
	s.ok(s.disc(1, 0, 1))
	wrongD := hashes(1)
	wrongD["d_weights_sha256"] = hashOf("dw", 1, 0, 0)
	mustFail(t, s.submitWithUpdate(1, wrongD), "PRECONDITION_FAILED", "discriminator weights hash", hashOf("dw", 1, 0, 1))
	for _, bad := range []any{
		map[string]any{"g_weights_sha256": "xyz", "d_weights_sha256": hashOf("dw", 1, 0, 1)},
		map[string]any{"g_weights_sha256": hashOf("gw-end", 1, 0, 1)},
	} {
		mustFail(t, s.submitWithUpdate(1, bad), "INVALID_ARGUMENT", "submissionJSON.update")
	}
	withRound := hashes(1)
	withRound["round"] = 0
	mustFail(t, s.submitWithUpdate(1, withRound), "INVALID_ARGUMENT", "round")
	mustFail(t, s.call(s.g(1), "GetLocalUpdate", testRun, msp(1), "0"), "NOT_FOUND")
	if sub := s.round("0").Submissions; len(sub) != 0 {
		t.Fatalf("a refused Submit left submissions %+v", sub)
	}

	res := s.ok(s.submitWithUpdate(1, hashes(1)))
	at := s.ledger.Now().UTC().Format(time.RFC3339Nano)
	s.wantEventWith(res, EventAggSubmitted, "0", 1, AggEvent{GWeightsSHA256: hashOf("gw-end", 1, 0, 1), DWeightsSHA256: hashOf("dw", 1, 0, 1)})
	got := fakestub.Decode[LocalUpdate](t, s.ok(s.call(s.as(msp(3), "auditor"), "GetLocalUpdate", testRun, msp(1), "0")).Payload)
	want := LocalUpdate{
		LocalUpdateArg: LocalUpdateArg{Round: 0, GWeightsSHA256: hashOf("gw-end", 1, 0, 1), DWeightsSHA256: hashOf("dw", 1, 0, 1)},
		Iter:           1,
		Stamp:          Stamp{MSPID: msp(1), Role: "merger", TxID: res.TxID, Timestamp: at},
	}
	if got != want {
		t.Fatalf("GetLocalUpdate %+v, want %+v", got, want)
	}
	s.wantHead(1, 0, 1, PhaseDiscriminator) // the head is not changed

	// recorded already by its generator: the Submit with it is a repeat, refused whole
	s.complete(2, 0, 0)
	s.ok(s.update(2, updateArg(2, 0, 0)))
	mustFail(t, s.submitWithUpdate(2, map[string]any{"g_weights_sha256": hashOf("gw-end", 2, 0, 0), "d_weights_sha256": hashOf("dw", 2, 0, 0)}),
		"ALREADY_EXISTS")
	// a Submit without an update records none (the encoder's rounds, or a registry whose generator recorded it)
	s.ok(s.submitWithUpdate(2, nil))
	if _, ev := s.lastEvent(); ev.GWeightsSHA256 != "" {
		t.Fatalf("a Submit without an update emitted %+v", ev)
	}
	mustFail(t, s.call(s.g(3), "GetLocalUpdate", testRun, msp(3), "0"), "NOT_FOUND")
}
