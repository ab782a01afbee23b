package keyvault

import (
	"encoding/base64"
	"testing"

	"github.com/synthreg/synthreg/chaincode/internal/fakestub"
)

func TestShareBeforeCeremonyIsRefused(t *testing.T) {
	f := newFixture(t)
	mustFail(t, f.distribute(2), "PRECONDITION_FAILED", "no key ceremony")
	if len(f.ledger.Private) != 0 {
		t.Fatal("share written without a ceremony")
	}
}

func TestPutShareWritesRecipientCollectionWithReceiptAndEvent(t *testing.T) {
	f := newFixture(t)
	f.recordCeremony()
	r := f.mustOK(f.distribute(2))
	envelope := `{"envelope-of":"Registry2MSP"}`
	if got := string(f.ledger.Private["shares_Registry2MSP"]["share"]); got != envelope {
		t.Fatalf("shares_Registry2MSP holds %q", got)
	}
	if _, ok := f.ledger.Private["shares_Registry1MSP"]; ok {
		t.Fatal("host's own collection written")
	}
	rec := fakestub.Decode[ShareReceipt](t, r.Payload)
	want := ShareReceipt{Org: "Registry2MSP", Collection: "shares_Registry2MSP", ShareIndex: 2, SHA256: fakestub.SHA256Hex([]byte(envelope)), HostMSPID: "Registry1MSP", TxID: r.TxID}
	if rec != want {
		t.Fatalf("receipt %+v, want %+v", rec, want)
	}
	last := f.ledger.Events[len(f.ledger.Events)-1]
	if last.Name != EventSharePut {
		t.Fatalf("last event %s", last.Name)
	}
	if ev := fakestub.Decode[SharePutEvent](t, last.Payload); ev != (SharePutEvent{Org: "Registry2MSP", ShareIndex: 2, SHA256: want.SHA256, HostMSPID: "Registry1MSP", TxID: r.TxID}) {
		t.Fatalf("event %+v", ev)
	}
	// No public state written: only the recipient's collection (so only its peer endorses).
	stateBefore := len(f.ledger.State)
	if stateBefore != 2+testMembers { // ceremony + ceremony_input + member records
		t.Fatalf("PutShare wrote public state: %d keys", stateBefore)
	}
	// GetCeremony lists the on-chain hash of the distributed share.
	cer := fakestub.Decode[Ceremony](t, f.mustOK(f.call(f.id("Registry3MSP", "merger"), "GetCeremony")).Payload)
	if cer.Shares["Registry2MSP"] != rec.SHA256 || len(cer.Shares) != 1 {
		t.Fatalf("GetCeremony shares %+v", cer.Shares)
	}
	h := fakestub.Decode[PrivateHash](t, f.mustOK(f.call(f.admin(3), "GetShareHash", "Registry2MSP")).Payload)
	if h.SHA256 != rec.SHA256 {
		t.Fatalf("private data hash %s != receipt %s", h.SHA256, rec.SHA256)
	}
}

func TestPutShareOnlyHostAdminOnceForRecipients(t *testing.T) {
	f := newFixture(t)
	f.recordCeremony() // host Registry1MSP
	share := map[string][]byte{TransientShare: []byte(`{"e":1}`)}
	mustFail(t, f.callT(f.admin(2), share, "PutShare", "Registry2MSP"), "ACCESS_DENIED", "Registry2MSP", "only Registry1MSP")
	mustFail(t, f.callT(f.id("Registry1MSP", "merger"), share, "PutShare", "Registry2MSP"), "ACCESS_DENIED", "merger")
	mustFail(t, f.callT(f.id("OutsiderMSP", "admin"), share, "PutShare", "Registry2MSP"), "ACCESS_DENIED", "OutsiderMSP")
	mustFail(t, f.callT(f.admin(1), share, "PutShare", "Registry5MSP"), "INVALID_ARGUMENT", "Registry5MSP", "not a share recipient")
	mustFail(t, f.callT(f.admin(1), share, "PutShare", "Registry7MSP"), "INVALID_ARGUMENT", `"org"`, "Registry7MSP", "not a registered member of channel keys")
	mustFail(t, f.callT(f.admin(1), nil, "PutShare", "Registry2MSP"), "INVALID_ARGUMENT", "transient:share")

	f.mustOK(f.distribute(2))
	mustFail(t, f.callT(f.admin(1), map[string][]byte{TransientShare: []byte(`{"e":"replacement"}`)}, "PutShare", "Registry2MSP"), "ALREADY_EXISTS", "Registry2MSP")
	if got := string(f.ledger.Private["shares_Registry2MSP"]["share"]); got != `{"envelope-of":"Registry2MSP"}` {
		t.Fatalf("share replaced: %q", got)
	}
	f.mustOK(f.distribute(1)) // the host's own share
	f.mustOK(f.distribute(3))
}

func TestGetShareOnlyByOwnOrgAdmin(t *testing.T) {
	f := newFixture(t)
	f.recordCeremony()
	f.mustOK(f.distribute(1))
	f.mustOK(f.distribute(2))

	own := fakestub.Decode[OwnShare](t, f.mustOK(f.call(f.admin(2), "GetShare", "Registry2MSP")).Payload)
	raw, _ := base64.StdEncoding.DecodeString(own.ShareB64)
	if string(raw) != `{"envelope-of":"Registry2MSP"}` || own.ShareIndex != 2 || own.CeremonyID != "cer-0001" || own.SHA256 != fakestub.SHA256Hex(raw) {
		t.Fatalf("GetShare = %+v", own)
	}
	// Another org, even the ceremony host, cannot read it.
	mustFail(t, f.call(f.admin(1), "GetShare", "Registry2MSP"), "ACCESS_DENIED", "Registry1MSP", "shares_Registry2MSP")
	mustFail(t, f.call(f.admin(2), "GetShare", "Registry1MSP"), "ACCESS_DENIED", "Registry2MSP", "shares_Registry1MSP")
	// Non-admin roles of the own org cannot either.
	mustFail(t, f.call(f.id("Registry2MSP", "generator"), "GetShare", "Registry2MSP"), "ACCESS_DENIED", "generator")
	// Not yet distributed.
	mustFail(t, f.call(f.admin(3), "GetShare", "Registry3MSP"), "NOT_FOUND", "Registry3MSP")
	mustFail(t, f.call(f.admin(3), "GetShareHash", "Registry3MSP"), "NOT_FOUND", "Registry3MSP")
}
