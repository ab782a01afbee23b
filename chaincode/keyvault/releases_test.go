package keyvault

import (
	"testing"

	"github.com/synthreg/synthreg/chaincode/internal/fakestub"
)

const envelope = `{"version":1,"epk":"ZXBr","nonce":"bm9uY2U=","ciphertext":"Y3Q="}`

func TestReleaseShareRecordedAndListed(t *testing.T) {
	f := newFixture(t)
	f.recordCeremony()
	for i := 1; i <= 3; i++ {
		f.mustOK(f.distribute(i))
	}
	r3 := f.mustOK(f.call(f.admin(3), "ReleaseShare", "auditor-A", envelope))
	rel := fakestub.Decode[Release](t, r3.Payload)
	if rel.Org != "Registry3MSP" || rel.Auditor != "auditor-A" || rel.ShareIndex != 3 || rel.TxID != r3.TxID ||
		rel.ReleasedBy.MSPID != "Registry3MSP" || rel.CeremonyID != "cer-0001" || string(rel.Envelope) != envelope || rel.EnvelopeSHA256 != fakestub.SHA256Hex([]byte(envelope)) {
		t.Fatalf("release %+v", rel)
	}
	last := f.ledger.Events[len(f.ledger.Events)-1]
	want := ShareReleasedEvent{CeremonyID: "cer-0001", Auditor: "auditor-A", Org: "Registry3MSP", ShareIndex: 3, EnvelopeSHA256: rel.EnvelopeSHA256, TxID: r3.TxID}
	if last.Name != EventShareReleased || fakestub.Decode[ShareReleasedEvent](t, last.Payload) != want {
		t.Fatalf("event %s %s", last.Name, last.Payload)
	}
	f.mustOK(f.call(f.admin(1), "ReleaseShare", "auditor-A", envelope))
	f.mustOK(f.call(f.admin(1), "ReleaseShare", "auditor-B", envelope))

	list := fakestub.Decode[Releases](t, f.mustOK(f.call(f.id("Registry2MSP", "auditor"), "ListReleases", "auditor-A")).Payload)
	if list.T != 2 || list.Auditor != "auditor-A" || len(list.Releases) != 2 || list.Releases[0].Org != "Registry1MSP" || list.Releases[1].Org != "Registry3MSP" {
		t.Fatalf("ListReleases(auditor-A) = %+v", list)
	}
	if b := fakestub.Decode[Releases](t, f.mustOK(f.call(f.admin(2), "ListReleases", "auditor-B")).Payload); len(b.Releases) != 1 {
		t.Fatalf("ListReleases(auditor-B) = %+v", b)
	}
	// Prefix of another auditor id does not match.
	if none := fakestub.Decode[Releases](t, f.mustOK(f.call(f.admin(2), "ListReleases", "auditor")).Payload); len(none.Releases) != 0 || none.Releases == nil {
		t.Fatalf("ListReleases(auditor) = %+v", none)
	}
}

func TestReleaseShareRules(t *testing.T) {
	f := newFixture(t)
	mustFail(t, f.call(f.admin(1), "ReleaseShare", "aud", envelope), "PRECONDITION_FAILED", "no key ceremony")
	f.recordCeremony()
	mustFail(t, f.call(f.admin(2), "ReleaseShare", "aud", envelope), "PRECONDITION_FAILED", "Registry2MSP", "not been distributed")
	f.mustOK(f.distribute(2))

	mustFail(t, f.call(f.id("Registry2MSP", "merger"), "ReleaseShare", "aud", envelope), "ACCESS_DENIED", "merger")
	mustFail(t, f.call(f.id("StrangerMSP", "admin"), "ReleaseShare", "aud", envelope), "ACCESS_DENIED", "StrangerMSP")
	mustFail(t, f.call(f.admin(4), "ReleaseShare", "aud", envelope), "PRECONDITION_FAILED", "Registry4MSP holds no share")
	mustFail(t, f.call(f.admin(2), "ReleaseShare", "aud", `{"version":1,`), "INVALID_ARGUMENT", "envelopeJSON")
	mustFail(t, f.call(f.admin(2), "ReleaseShare", "aud", `"just a string"`), "INVALID_ARGUMENT", "envelopeJSON")
	mustFail(t, f.call(f.admin(2), "ReleaseShare", "bad auditor\x00", envelope), "INVALID_ARGUMENT", "auditorID")

	f.mustOK(f.call(f.admin(2), "ReleaseShare", "aud", envelope))
	mustFail(t, f.call(f.admin(2), "ReleaseShare", "aud", `{"other":1}`), "ALREADY_EXISTS", "aud", "Registry2MSP")
	mustFail(t, f.call(f.id("OutsiderMSP", "auditor"), "ListReleases", "aud"), "ACCESS_DENIED", "OutsiderMSP")
}
