package ganledger

import (
	"fmt"
	"testing"
)

const header = `{"registries":["Registry2MSP","Registry2MSP"],"config":{"rounds":1}}`

// Issue 10 item 4: Registry1 wrote Registry3's round record first, so
// Registry3's merger could not record its round and training aborted.
func TestAttackRecordKeySquatting(t *testing.T) {
	r := newRuns(t)
	key := "run/run-1/round/0/Registry3MSP"
	for _, role := range []string{"merger", "generator", "admin"} {
		mustFail(t, r.call(r.as(msp(1), role), "PutRecord", key, `{"forged":true}`), "ACCESS_DENIED",
			"Registry1MSP", `"`+key+`"`, "only Registry3MSP may")
	}
	mustFail(t, r.call(r.as(msp(1), "merger"), "PutRecord", "notes/Registry3MSP/x", `{"v":1}`), "ACCESS_DENIED",
		"only Registry3MSP may")
	if len(r.ledger.State) != testMembers {
		t.Fatalf("refused writes changed the ledger: %d keys", len(r.ledger.State))
	}
	r.ok(r.call(r.as(msp(3), "merger"), "PutRecord", key, `{"round":0}`))
	r.ok(r.call(r.as(msp(1), "merger"), "PutRecord", "run/run-1/round/0/Registry1MSP", `{"round":0}`))
	r.ok(r.call(r.as(msp(1), "generator"), "PutRecord", "notes/Registry1MSP/x", `{"v":1}`))
	r.ok(r.call(r.as(msp(1), "generator"), "PutRecord", "notes/x", `{"v":1}`))
}

func TestRecordKeyGrammar(t *testing.T) {
	r := newRuns(t)
	m1 := r.as(msp(1), "merger")
	for _, key := range []string{
		"run/run-1/round/01/Registry1MSP",        // not canonical
		"run/run-1/round/1000001/Registry1MSP",   // out of range
		"run/run-1/round/x/Registry1MSP",         // not a number
		"run/run-1/round/0/Orderer.MSP",          // not an MSP id
		"run/run-1/round/0/-MSP",                 // not an MSP id
		"run/run-1/round/0",                      // no MSP
		"run/run-1/round",                        // nothing after round
		"run/run-1/round/0/Registry1MSP/extra",   // trailing segment
		"run/round/0/Registry1MSP",               // no run id
		"run/a/round/b/round/0/Registry1MSP",     // run id with a round segment
		"run/run-1/round/0/Registry1MSP/round/1", // ditto
	} {
		mustFail(t, r.call(m1, "PutRecord", key, `{"v":1}`), "INVALID_ARGUMENT", fmt.Sprintf("%q", key), "run/<run>/round/<r>/<msp>")
	}
	// A well-formed round record of another (or an unregistered) org is not the caller's.
	mustFail(t, r.call(m1, "PutRecord", "run/run-1/round/0/OrdererMSP", `{"v":1}`), "ACCESS_DENIED", "only OrdererMSP may")
	if len(r.ledger.State) != testMembers {
		t.Fatalf("refused writes changed the ledger: %d keys", len(r.ledger.State))
	}
	// a run id may contain "/" and name MSPs: only the last segment owns a round record
	r.ok(r.call(m1, "PutRecord", "run/exp/Registry2MSP/round/1000000/Registry1MSP", `{"v":1}`))
	r.ok(r.call(m1, "PutRecord", "running/round/0/Registry1MSP", `{"v":1}`)) // not a trail key
}

// Issue 10 item 3: any role of any org could write run/<id> first, and the
// auditor took registries, rounds and checks from it.
func TestAttackForgedRunHeader(t *testing.T) {
	r := newRuns(t)
	key := "run/" + testRun
	// no run yet: nobody owns the header, so it cannot be written ahead of the run
	mustFail(t, r.call(r.as(msp(2), "generator"), "PutRecord", key, header), "PRECONDITION_FAILED",
		"neither a run document", "no owner yet")
	mustFail(t, r.call(r.as(msp(1), "merger"), "PutRecord", key, header), "PRECONDITION_FAILED")

	spec := toJSON(t, runSpecArg(3))
	r.ok(r.propose(2, testRun, spec)) // Registry2 opens the run; Registry1 is the first participant
	for _, id := range []struct {
		n    int
		role string
	}{{2, "generator"}, {2, "discriminator"}, {2, "admin"}, {2, "auditor"}, {1, "merger"}, {3, "merger"}} {
		mustFail(t, r.call(r.as(msp(id.n), id.role), "PutRecord", key, header), "ACCESS_DENIED",
			fmt.Sprintf("caller %s role %q", msp(id.n), id.role), "only the merger of Registry2MSP (the proposer of run run-1)")
	}
	if len(r.ledger.Events) != 1 {
		t.Fatalf("refused headers emitted events: %+v", r.ledger.Events)
	}
	r.ok(r.call(r.as(msp(2), "merger"), "PutRecord", key, `{"registries":[]}`))

	// a run without a run document: the first participant of its aggregation owns it
	a := newAgg(t)
	a.ok(a.call(a.m(2), "OpenAggregation", "agg-only", toJSON(t, config(3, 2, 30))))
	for _, id := range []struct {
		n    int
		role string
	}{{2, "merger"}, {1, "generator"}, {1, "admin"}} {
		mustFail(t, a.call(a.as(msp(id.n), id.role), "PutRecord", "run/agg-only", header), "ACCESS_DENIED",
			"only the merger of Registry1MSP (the first participant of aggregation run agg-only)")
	}
	a.ok(a.call(a.m(1), "PutRecord", "run/agg-only", header))
	mustFail(t, a.call(a.m(1), "PutRecord", "run/agg-only", header), "ALREADY_EXISTS")
}
