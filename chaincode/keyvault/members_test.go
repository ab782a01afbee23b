package keyvault

import (
	"strings"
	"testing"

	"github.com/synthreg/synthreg/chaincode/internal/fakestub"
	"github.com/synthreg/synthreg/chaincode/internal/members"
)

func TestRegisterMemberOnKeys(t *testing.T) {
	f := newBareFixture(t)
	value := map[string][]byte{TransientValue: []byte("x")}
	mustFail(t, f.callT(f.admin(1), value, "PutPrivate", "k"), "ACCESS_DENIED", `MSP "Registry1MSP" is not a registered member of channel keys`, "RegisterMember")
	mustFail(t, f.call(f.id("Registry1MSP", "merger"), "RegisterMember"), "ACCESS_DENIED", "allowed: admin")
	if len(f.ledger.State) != 0 {
		t.Fatal("refused registration wrote state")
	}
	r := f.mustOK(f.call(f.admin(1), "RegisterMember"))
	if m := fakestub.Decode[members.Member](t, r.Payload); m.MSPID != "Registry1MSP" || m.TxID != r.TxID || !strings.Contains(m.AdminSubject, "admin@Registry1MSP") {
		t.Fatalf("member %+v", m)
	}
	if len(f.ledger.Events) != 1 || f.ledger.Events[0].Name != members.EventRegistered {
		t.Fatalf("events %+v", f.ledger.Events)
	}
	mustFail(t, f.call(f.admin(1), "RegisterMember"), "ALREADY_EXISTS", "Registry1MSP")
	f.mustOK(f.callT(f.admin(1), value, "PutPrivate", "k"))
	// Registry2 is in no member record yet: refused as caller and as argument.
	mustFail(t, f.call(f.admin(2), "GetShareHash", "Registry1MSP"), "ACCESS_DENIED", "Registry2MSP")
	mustFail(t, f.call(f.admin(1), "GetShareHash", "Registry2MSP"), "INVALID_ARGUMENT", `"org"`, `"Registry2MSP" is not a registered member of channel keys`)
	mustFail(t, f.call(f.admin(1), "GetPrivateHash", "Registry2MSP", "k"), "INVALID_ARGUMENT", `"org"`, "not a registered member")
	f.mustOK(f.call(f.admin(2), "RegisterMember"))
	list := fakestub.Decode[[]members.Member](t, f.mustOK(f.call(f.id("Registry2MSP", "auditor"), "ListMembers")).Payload)
	if len(list) != 2 || list[0].MSPID != "Registry1MSP" || list[1].MSPID != "Registry2MSP" {
		t.Fatalf("members %+v", list)
	}
}

func TestRecordCeremonyRecipientsMustBeMembers(t *testing.T) {
	f := newBareFixture(t)
	for i := 1; i <= 2; i++ {
		f.mustOK(f.call(f.admin(i), "RegisterMember"))
	}
	mustFail(t, f.call(f.admin(1), "RecordCeremony", toJSON(t, ceremonyDoc(2, 3))), "INVALID_ARGUMENT", `"ceremony.share_index"`, `"Registry3MSP" is not a registered member`)
}
