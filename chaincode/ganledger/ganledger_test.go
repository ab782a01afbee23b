package ganledger

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/fakestub"
)

type fixture struct {
	t      *testing.T
	cc     *contractapi.ContractChaincode
	ledger *fakestub.Ledger
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := newBareFixture(t)
	f.registerMembers(testMembers)
	return f
}

// newBareFixture is a channel on which no org has registered yet.
func newBareFixture(t *testing.T) *fixture {
	t.Helper()
	cc, err := NewChaincode()
	if err != nil {
		t.Fatalf("NewChaincode: %v", err)
	}
	return &fixture{t: t, cc: cc, ledger: fakestub.NewLedger("gan")}
}

// testMembers is how many registries (Registry1MSP..) every fixture
// registers on its channel before the test runs.
const testMembers = 5

// registerMembers has the admin of Registry1MSP..Registry<n>MSP register its
// own org, then forgets the MemberRegistered events so tests count only
// their own.
func (f *fixture) registerMembers(n int) {
	f.t.Helper()
	for i := 1; i <= n; i++ {
		if r := f.call(f.id(msp(i), "admin"), "RegisterMember"); !r.OK() {
			f.t.Fatalf("RegisterMember %s: %s", msp(i), r.Message)
		}
	}
	f.ledger.Events = nil
}

func (f *fixture) id(msp, role string) fakestub.Identity {
	f.t.Helper()
	id, err := fakestub.WithRole(msp, role)
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *fixture) call(id fakestub.Identity, fn string, args ...string) fakestub.Result {
	return f.ledger.Invoke(f.cc, id, nil, fn, args...)
}

// putBlob calls PutBlob(run, sha256Hex) with data in its transient entry.
func (f *fixture) putBlob(id fakestub.Identity, run, sha256Hex string, data []byte) fakestub.Result {
	return f.ledger.Invoke(f.cc, id, map[string][]byte{TransientBlob: data}, "PutBlob", run, sha256Hex)
}

func mustFail(t *testing.T, r fakestub.Result, wantPrefix string, wantParts ...string) {
	t.Helper()
	if r.OK() {
		t.Fatalf("expected failure %s, got success %s", wantPrefix, r.Payload)
	}
	if !strings.HasPrefix(r.Message, wantPrefix) {
		t.Fatalf("message %q does not start with %q", r.Message, wantPrefix)
	}
	for _, p := range wantParts {
		if !strings.Contains(r.Message, p) {
			t.Fatalf("message %q does not mention %q", r.Message, p)
		}
	}
}

func TestPutRecordStoresStampedRecordAndEmitsEvent(t *testing.T) {
	f := newFixture(t)
	gen := f.id("Registry2MSP", "generator")
	r := f.call(gen, "PutRecord", "round/1/step/7", `{ "fake_hash": "ab", "n": 3 }`)
	if !r.OK() {
		t.Fatalf("PutRecord failed: %s", r.Message)
	}
	var rec Record
	if err := json.Unmarshal(r.Payload, &rec); err != nil {
		t.Fatalf("payload %q: %v", r.Payload, err)
	}
	if rec.Key != "round/1/step/7" || rec.MSPID != "Registry2MSP" || rec.Role != "generator" || rec.TxID != r.TxID {
		t.Fatalf("unexpected record %+v (tx %s)", rec, r.TxID)
	}
	if string(rec.Value) != `{"fake_hash":"ab","n":3}` {
		t.Fatalf("value not stored compacted: %s", rec.Value)
	}
	if !strings.HasPrefix(rec.Timestamp, "2026-01-02T03:04:") {
		t.Fatalf("timestamp %q not the tx timestamp", rec.Timestamp)
	}
	if len(f.ledger.Events) != 1 || f.ledger.Events[0].Name != EventRecordPut {
		t.Fatalf("events %+v, want one %s", f.ledger.Events, EventRecordPut)
	}
	var ev RecordPutEvent
	if err := json.Unmarshal(f.ledger.Events[0].Payload, &ev); err != nil {
		t.Fatal(err)
	}
	if ev != (RecordPutEvent{Key: "round/1/step/7", MSPID: "Registry2MSP", TxID: r.TxID}) {
		t.Fatalf("event payload %+v", ev)
	}

	got := f.call(f.id("Registry3MSP", "auditor"), "GetRecord", "round/1/step/7")
	if !got.OK() || string(got.Payload) != string(r.Payload) {
		t.Fatalf("GetRecord = %q / %q, want %q", got.Payload, got.Message, r.Payload)
	}
}

func TestPutRecordIsImmutable(t *testing.T) {
	f := newFixture(t)
	if r := f.call(f.id("Registry1MSP", "merger"), "PutRecord", "k1", `{"v":1}`); !r.OK() {
		t.Fatal(r.Message)
	}
	r := f.call(f.id("Registry2MSP", "merger"), "PutRecord", "k1", `{"v":2}`)
	mustFail(t, r, "ALREADY_EXISTS", `"k1"`)
	got := f.call(f.id("Registry1MSP", "merger"), "GetRecord", "k1")
	if !strings.Contains(string(got.Payload), `"value":{"v":1}`) {
		t.Fatalf("first value overwritten: %s", got.Payload)
	}
	if len(f.ledger.Events) != 1 {
		t.Fatalf("failed tx emitted an event: %+v", f.ledger.Events)
	}
}

func TestPutRecordRejectsMalformedInput(t *testing.T) {
	f := newFixture(t)
	gen := f.id("Registry1MSP", "generator")
	cases := []struct{ key, value, part string }{
		{"k", `{"a":`, `"value"`},
		{"k", `[1,2]`, "not a JSON object"},
		{"k", `null`, "null"},
		{"k", `{"a":1} {"b":2}`, "trailing"},
		{"k", ``, "empty"},
		{"", `{"a":1}`, `"key"`},
		{"bad\x00key", `{"a":1}`, `"key"`},
		{"k", `{"a":"` + strings.Repeat("x", MaxRecordBytes) + `"}`, "limit"},
	}
	for _, c := range cases {
		mustFail(t, f.call(gen, "PutRecord", c.key, c.value), "INVALID_ARGUMENT", c.part)
	}
	if len(f.ledger.State) != testMembers {
		t.Fatalf("state written by rejected calls: %d keys", len(f.ledger.State))
	}
}

func TestAccessByMSPAndRole(t *testing.T) {
	f := newFixture(t)
	outsider := f.id("OutsiderMSP", "admin")
	mustFail(t, f.call(outsider, "PutRecord", "k", `{"a":1}`), "ACCESS_DENIED", "OutsiderMSP")
	mustFail(t, f.call(outsider, "GetRecord", "k"), "ACCESS_DENIED", "OutsiderMSP")

	unknownRole := f.id("Registry1MSP", "janitor")
	mustFail(t, f.call(unknownRole, "PutRecord", "k", `{"a":1}`), "ACCESS_DENIED", "Registry1MSP", "janitor")

	noRole, err := fakestub.NewIdentity("Registry1MSP", "plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	mustFail(t, f.call(noRole, "PutRecord", "k", `{"a":1}`), "ACCESS_DENIED", "synthreg.role")

	garbage := fakestub.Identity{MSPID: "Registry1MSP", Creator: []byte("not a proto")}
	mustFail(t, f.call(garbage, "PutRecord", "k", `{"a":1}`), "ACCESS_DENIED", "identity")

	if len(f.ledger.State) != testMembers || len(f.ledger.Events) != 0 {
		t.Fatal("rejected callers changed the ledger")
	}
}

func TestGetRecordNotFound(t *testing.T) {
	f := newFixture(t)
	mustFail(t, f.call(f.id("Registry1MSP", "admin"), "GetRecord", "missing"), "NOT_FOUND", `"missing"`)
}
