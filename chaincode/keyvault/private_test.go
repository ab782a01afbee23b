package keyvault

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/synthreg/synthreg/chaincode/internal/fakestub"
)

func TestPutPrivateWritesCallerCollectionAndEmitsEventWithoutValue(t *testing.T) {
	f := newFixture(t)
	gen1 := f.id("Registry1MSP", "generator")
	r := f.mustOK(f.callT(gen1, map[string][]byte{TransientValue: []byte("secret-42")}, "PutPrivate", "k1"))

	pkey, _ := (&fakeKey{}).make("private", "k1")
	if got := string(f.ledger.Private["shares_Registry1MSP"][pkey]); got != "secret-42" {
		t.Fatalf("collection shares_Registry1MSP holds %q", got)
	}
	for c := range f.ledger.Private {
		if c != "shares_Registry1MSP" {
			t.Fatalf("value leaked into collection %s", c)
		}
	}
	if len(f.ledger.State) != testMembers {
		t.Fatalf("PutPrivate wrote public state: %v", f.ledger.State)
	}
	if len(f.ledger.Events) != 1 || f.ledger.Events[0].Name != EventPrivatePut {
		t.Fatalf("events %+v", f.ledger.Events)
	}
	if strings.Contains(string(f.ledger.Events[0].Payload), "secret-42") {
		t.Fatalf("event payload carries the private value: %s", f.ledger.Events[0].Payload)
	}
	ev := fakestub.Decode[PrivatePutEvent](t, f.ledger.Events[0].Payload)
	want := PrivatePutEvent{Key: "k1", MSPID: "Registry1MSP", Collection: "shares_Registry1MSP", SHA256: fakestub.SHA256Hex([]byte("secret-42")), TxID: r.TxID}
	if ev != want {
		t.Fatalf("event %+v, want %+v", ev, want)
	}

	got := fakestub.Decode[PrivateValue](t, f.mustOK(f.call(f.id("Registry1MSP", "merger"), "GetPrivate", "Registry1MSP", "k1")).Payload)
	if v, _ := base64.StdEncoding.DecodeString(got.ValueB64); string(v) != "secret-42" || got.SHA256 != want.SHA256 {
		t.Fatalf("GetPrivate = %+v", got)
	}
	h := fakestub.Decode[PrivateHash](t, f.mustOK(f.call(f.admin(2), "GetPrivateHash", "Registry1MSP", "k1")).Payload)
	if h.SHA256 != want.SHA256 {
		t.Fatalf("on-chain hash %s, want %s", h.SHA256, want.SHA256)
	}
}

func TestGetPrivateOfAnotherOrgIsDenied(t *testing.T) {
	f := newFixture(t)
	f.mustOK(f.callT(f.admin(1), map[string][]byte{TransientValue: []byte("v")}, "PutPrivate", "k1"))
	r := f.call(f.admin(2), "GetPrivate", "Registry1MSP", "k1")
	mustFail(t, r, "ACCESS_DENIED", "Registry2MSP", "shares_Registry1MSP")
	if strings.Contains(r.Message, `"v"`) {
		t.Fatal("denial leaks the value")
	}
	// Registry2's own collection does not have it.
	mustFail(t, f.call(f.admin(2), "GetPrivate", "Registry2MSP", "k1"), "NOT_FOUND", "shares_Registry2MSP")
}

func TestPutPrivateRules(t *testing.T) {
	f := newFixture(t)
	gen := f.id("Registry3MSP", "generator")
	mustFail(t, f.call(gen, "PutPrivate", "k"), "INVALID_ARGUMENT", "transient:value")
	mustFail(t, f.callT(gen, map[string][]byte{"other": []byte("x")}, "PutPrivate", "k"), "INVALID_ARGUMENT", "transient:value")
	mustFail(t, f.callT(gen, map[string][]byte{TransientValue: make([]byte, MaxPrivateBytes+1)}, "PutPrivate", "k"), "INVALID_ARGUMENT", "limit")
	mustFail(t, f.callT(gen, map[string][]byte{TransientValue: []byte("x")}, "PutPrivate", "bad key"), "INVALID_ARGUMENT", `"key"`)
	mustFail(t, f.callT(f.id("OutsiderMSP", "admin"), map[string][]byte{TransientValue: []byte("x")}, "PutPrivate", "k"), "ACCESS_DENIED", "OutsiderMSP")
	mustFail(t, f.callT(f.id("Registry3MSP", "cleaner"), map[string][]byte{TransientValue: []byte("x")}, "PutPrivate", "k"), "ACCESS_DENIED", "cleaner")

	f.mustOK(f.callT(gen, map[string][]byte{TransientValue: []byte("first")}, "PutPrivate", "k"))
	mustFail(t, f.callT(gen, map[string][]byte{TransientValue: []byte("second")}, "PutPrivate", "k"), "ALREADY_EXISTS", `"k"`)
	got := fakestub.Decode[PrivateValue](t, f.mustOK(f.call(gen, "GetPrivate", "Registry3MSP", "k")).Payload)
	if v, _ := base64.StdEncoding.DecodeString(got.ValueB64); string(v) != "first" {
		t.Fatalf("value overwritten: %q", v)
	}
	// The same key in another org's collection is independent.
	f.mustOK(f.callT(f.admin(1), map[string][]byte{TransientValue: []byte("other org")}, "PutPrivate", "k"))
	mustFail(t, f.call(gen, "GetPrivateHash", "NotAnOrg", "k"), "INVALID_ARGUMENT", "NotAnOrg")
	mustFail(t, f.call(gen, "GetPrivateHash", "Registry2MSP", "k"), "NOT_FOUND")
}

// fakeKey builds composite keys like the stub does.
type fakeKey struct{}

func (fakeKey) make(obj string, attrs ...string) (string, error) {
	k := "\x00" + obj + "\x00"
	for _, a := range attrs {
		k += a + "\x00"
	}
	return k, nil
}
