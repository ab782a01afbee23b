package ganledger

import (
	"strings"
	"testing"

	"github.com/synthreg/synthreg/chaincode/internal/fakestub"
	"github.com/synthreg/synthreg/chaincode/internal/members"
)

func TestRegisterMemberSelfOnlyOnceByAdmin(t *testing.T) {
	f := newBareFixture(t)
	admin1 := f.id(msp(1), "admin")
	// Before registering, the org's own apps and admin are refused everywhere.
	mustFail(t, f.call(admin1, "ListMembers"), "ACCESS_DENIED", `MSP "Registry1MSP" is not a registered member of channel gan`, "RegisterMember")
	mustFail(t, f.call(f.id(msp(1), "generator"), "PutRecord", "k", `{"a":1}`), "ACCESS_DENIED", "Registry1MSP", "RegisterMember")
	// Only an admin registers.
	for _, role := range []string{"generator", "discriminator", "merger", "auditor"} {
		mustFail(t, f.call(f.id(msp(1), role), "RegisterMember"), "ACCESS_DENIED", role, "allowed: admin")
	}
	if len(f.ledger.State) != 0 || len(f.ledger.Events) != 0 {
		t.Fatal("refused registrations changed the ledger")
	}

	// Only its own org: the function takes no org; an extra argument (which
	// contract-api drops) cannot name another one.
	r := f.call(admin1, "RegisterMember", msp(2))
	if !r.OK() {
		t.Fatal(r.Message)
	}
	m := fakestub.Decode[members.Member](t, r.Payload)
	if m.MSPID != msp(1) || !strings.Contains(m.AdminSubject, "CN=admin@Registry1MSP") || m.TxID != r.TxID || !strings.HasPrefix(m.Timestamp, "2026-01-02T") {
		t.Fatalf("member record %+v (tx %s)", m, r.TxID)
	}
	if len(f.ledger.Events) != 1 || f.ledger.Events[0].Name != members.EventRegistered {
		t.Fatalf("events %+v", f.ledger.Events)
	}
	if ev := fakestub.Decode[members.RegisteredEvent](t, f.ledger.Events[0].Payload); ev != (members.RegisteredEvent{MSPID: msp(1), TxID: r.TxID}) {
		t.Fatalf("event %+v", ev)
	}
	// Registry1's registration admits Registry1 only.
	mustFail(t, f.call(f.id(msp(2), "admin"), "ListMembers"), "ACCESS_DENIED", "Registry2MSP")
	// A second registration (another admin certificate of the same org) is refused.
	mustFail(t, f.call(f.id(msp(1), "admin"), "RegisterMember"), "ALREADY_EXISTS", "member of channel gan", "Registry1MSP")
	if len(f.ledger.Events) != 1 {
		t.Fatalf("refused registration emitted an event: %+v", f.ledger.Events)
	}
	// A registered org's apps are admitted from now on.
	if r := f.call(f.id(msp(1), "generator"), "PutRecord", "k", `{"a":1}`); !r.OK() {
		t.Fatal(r.Message)
	}
}

func TestListMembersSorted(t *testing.T) {
	f := newBareFixture(t)
	for _, n := range []int{3, 1, 2} {
		if r := f.call(f.id(msp(n), "admin"), "RegisterMember"); !r.OK() {
			t.Fatal(r.Message)
		}
	}
	r := f.call(f.id(msp(2), "auditor"), "ListMembers")
	if !r.OK() {
		t.Fatal(r.Message)
	}
	list := fakestub.Decode[[]members.Member](t, r.Payload)
	if len(list) != 3 || list[0].MSPID != msp(1) || list[1].MSPID != msp(2) || list[2].MSPID != msp(3) {
		t.Fatalf("members %+v", list)
	}
	mustFail(t, f.call(f.id("OutsiderMSP", "auditor"), "ListMembers"), "ACCESS_DENIED", "OutsiderMSP")
}

func TestUnregisteredOrgInArgumentsRefused(t *testing.T) {
	s := newSteps(t) // Registry1MSP..Registry5MSP registered
	g1 := s.g(1)
	for _, fn := range [][]string{
		{"GetStepHead", testRun, "Registry7MSP"},
		{"GetStep", testRun, "Registry7MSP", "0", "0"},
		{"ListFaults", testRun, "Registry7MSP"},
		{"GetLocalUpdate", testRun, "Registry7MSP", "0"},
		{"GetStepRoot", testRun, "Registry7MSP", "0"},
		{"GetPrivacySpend", testRun, "Registry7MSP", "0"},
	} {
		mustFail(t, s.call(g1, fn[0], fn[1:]...), "INVALID_ARGUMENT", `"msp"`, `"Registry7MSP" is not a registered member of channel gan`)
	}
	mustFail(t, s.call(s.m(1), "OpenAggregation", testRun, toJSON(t, func() map[string]any {
		c := config(3, 2, 30)
		c["participants"] = []string{msp(1), msp(2), "Registry7MSP"}
		return c
	}())), "INVALID_ARGUMENT", `"configJSON.participants"`, "Registry7MSP")
	// A free-form record key naming another registered member is that
	// member's; a segment that names no member is free text.
	mustFail(t, s.call(g1, "PutRecord", "notes/Registry2MSP/x", `{"a":1}`), "ACCESS_DENIED", "only Registry2MSP may")
	if r := s.call(g1, "PutRecord", "notes/Registry7MSP/x", `{"a":1}`); !r.OK() {
		t.Fatal(r.Message)
	}
}
