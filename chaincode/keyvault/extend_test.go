package keyvault

import (
	"fmt"
	"testing"

	"github.com/synthreg/synthreg/chaincode/internal/fakestub"
)

func shareRequest(t *testing.T, key string, holders ...string) string {
	return toJSON(t, map[string]any{"public_key": fakestub.SHA256Hex([]byte(key)), "holders": holders})
}

func (f *fixture) putOwnShare(n int) fakestub.Result {
	return f.callT(f.admin(n), map[string][]byte{TransientShare: []byte(fmt.Sprintf(`{"own-share-of":%d}`, n))}, "PutOwnShare")
}

// extended runs a whole extension for Registry<n> with holders 1 and 2.
func (f *fixture) extended(n int, holders ...int) Extension {
	f.t.Helper()
	names := make([]string, len(holders))
	for i, h := range holders {
		names[i] = fmt.Sprintf("Registry%dMSP", h)
	}
	org := fmt.Sprintf("Registry%dMSP", n)
	f.mustOK(f.call(f.admin(n), "RequestShare", shareRequest(f.t, "key-"+org, names...)))
	for _, h := range holders {
		f.mustOK(f.call(f.admin(h), "ContributeShare", org, envelope))
	}
	f.mustOK(f.putOwnShare(n))
	r := f.mustOK(f.call(f.admin(n), "CompleteShare", fakestub.SHA256Hex([]byte("commitment-"+org))))
	return fakestub.Decode[Extension](f.t, r.Payload)
}

func TestShareExtensionFlow(t *testing.T) {
	f := newFixture(t)
	f.recordCeremony()
	for i := 1; i <= 3; i++ {
		f.mustOK(f.distribute(i))
	}
	r := f.mustOK(f.call(f.admin(4), "RequestShare", shareRequest(t, "k4", "Registry2MSP", "Registry1MSP")))
	ext := fakestub.Decode[Extension](t, r.Payload)
	if ext.ShareIndex != 4 || ext.Org != "Registry4MSP" || ext.ExtensionID != r.TxID || ext.CeremonyID != "cer-0001" ||
		fmt.Sprint(ext.Holders) != "[Registry1MSP Registry2MSP]" || ext.HolderIndex["Registry2MSP"] != 2 ||
		ext.HolderPublicKeys["Registry1MSP"] != fakestub.SHA256Hex([]byte("x25519Registry1MSP")) || ext.Complete() {
		t.Fatalf("extension %+v", ext)
	}
	if last := f.ledger.Events[len(f.ledger.Events)-1]; last.Name != EventShareRequested {
		t.Fatalf("event %s", last.Name)
	}
	mustFail(t, f.call(f.admin(3), "ContributeShare", "Registry4MSP", envelope), "PRECONDITION_FAILED", "Registry3MSP is not one of the holders")
	f.mustOK(f.call(f.admin(1), "ContributeShare", "Registry4MSP", envelope))
	mustFail(t, f.call(f.admin(1), "ContributeShare", "Registry4MSP", envelope), "ALREADY_EXISTS", "Registry1MSP")
	mustFail(t, f.putOwnShare(4), "PRECONDITION_FAILED", "still missing", "Registry2MSP")
	mustFail(t, f.call(f.admin(4), "CompleteShare", fakestub.SHA256Hex([]byte("c"))), "PRECONDITION_FAILED", "PutOwnShare")
	mustFail(t, f.call(f.admin(4), "ReleaseShare", "aud", envelope), "PRECONDITION_FAILED", "Registry4MSP", "completed")
	f.mustOK(f.call(f.admin(2), "ContributeShare", "Registry4MSP", envelope))

	put := fakestub.Decode[ShareReceipt](t, f.mustOK(f.putOwnShare(4)).Payload)
	if put.ShareIndex != 4 || put.Collection != "shares_Registry4MSP" {
		t.Fatalf("receipt %+v", put)
	}
	mustFail(t, f.putOwnShare(4), "ALREADY_EXISTS", "Registry4MSP")
	own := fakestub.Decode[OwnShare](t, f.mustOK(f.call(f.admin(4), "GetShare", "Registry4MSP")).Payload)
	if own.ShareIndex != 4 || own.SHA256 != put.SHA256 {
		t.Fatalf("own share %+v", own)
	}
	mustFail(t, f.call(f.admin(4), "CompleteShare", "not-hex"), "INVALID_ARGUMENT", "commitment")
	done := fakestub.Decode[Extension](t, f.mustOK(f.call(f.admin(4), "CompleteShare", fakestub.SHA256Hex([]byte("c4")))).Payload)
	if !done.Complete() || done.ShareSHA256 != put.SHA256 || done.Commitment != fakestub.SHA256Hex([]byte("c4")) || len(done.Contributions) != 2 {
		t.Fatalf("completed %+v", done)
	}
	mustFail(t, f.call(f.admin(4), "CompleteShare", fakestub.SHA256Hex([]byte("c4"))), "PRECONDITION_FAILED", "complete")
	mustFail(t, f.call(f.admin(3), "ContributeShare", "Registry4MSP", envelope), "PRECONDITION_FAILED", "complete")
	rel := fakestub.Decode[Release](t, f.mustOK(f.call(f.admin(4), "ReleaseShare", "aud", envelope)).Payload)
	if rel.ShareIndex != 4 {
		t.Fatalf("release %+v", rel)
	}
	mustFail(t, f.call(f.admin(4), "RequestShare", shareRequest(t, "k4b", "Registry1MSP", "Registry2MSP")), "ALREADY_EXISTS", "index 4")

	// The newcomer's share now counts as a holder for the next one.
	five := f.extended(5, 3, 4)
	if five.ShareIndex != 5 || five.HolderIndex["Registry4MSP"] != 4 || five.HolderPublicKeys["Registry4MSP"] != fakestub.SHA256Hex([]byte("k4")) {
		t.Fatalf("fifth %+v", five)
	}
	list := fakestub.Decode[Extensions](t, f.mustOK(f.call(f.id("Registry1MSP", "auditor"), "ListExtensions")).Payload)
	if len(list.Extensions) != 2 || list.Extensions[0].Org != "Registry4MSP" || list.Extensions[1].ShareIndex != 5 {
		t.Fatalf("ListExtensions %+v", list)
	}
}

func TestShareExtensionRules(t *testing.T) {
	f := newFixture(t)
	mustFail(t, f.call(f.admin(4), "RequestShare", shareRequest(t, "k4", "Registry1MSP", "Registry2MSP")), "PRECONDITION_FAILED", "no key ceremony")
	mustFail(t, f.call(f.admin(1), "ListExtensions"), "PRECONDITION_FAILED", "no key ceremony")
	f.recordCeremony()
	f.mustOK(f.distribute(1))
	f.mustOK(f.distribute(2))
	cases := []struct {
		name, req, code, part string
	}{
		{"too few holders", shareRequest(t, "k4", "Registry1MSP"), "INVALID_ARGUMENT", "t = 2"},
		{"too many holders", shareRequest(t, "k4", "Registry1MSP", "Registry2MSP", "Registry3MSP"), "INVALID_ARGUMENT", "exactly t"},
		{"duplicate holder", shareRequest(t, "k4", "Registry1MSP", "Registry1MSP"), "INVALID_ARGUMENT", "named twice"},
		{"undistributed holder", shareRequest(t, "k4", "Registry1MSP", "Registry3MSP"), "INVALID_ARGUMENT", "Registry3MSP holds no usable share"},
		{"unknown holder", shareRequest(t, "k4", "Registry1MSP", "Registry9MSP"), "INVALID_ARGUMENT", "Registry9MSP"},
		{"reused share key", toJSON(t, map[string]any{"public_key": fakestub.SHA256Hex([]byte("x25519Registry2MSP")), "holders": []string{"Registry1MSP", "Registry2MSP"}}), "INVALID_ARGUMENT", "share key of Registry2MSP"},
		{"bad key", toJSON(t, map[string]any{"public_key": "abc", "holders": []string{"Registry1MSP", "Registry2MSP"}}), "INVALID_ARGUMENT", "public_key"},
		{"unknown field", `{"public_key":"` + fakestub.SHA256Hex([]byte("k")) + `","holders":[],"index":7}`, "INVALID_ARGUMENT", "index"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { mustFail(t, f.call(f.admin(4), "RequestShare", c.req), c.code, c.part) })
	}
	mustFail(t, f.call(f.admin(3), "RequestShare", shareRequest(t, "k3", "Registry1MSP", "Registry2MSP")), "ALREADY_EXISTS", "index 3")
	mustFail(t, f.call(f.id("Registry4MSP", "merger"), "RequestShare", shareRequest(t, "k4", "Registry1MSP", "Registry2MSP")), "ACCESS_DENIED", "merger")
	mustFail(t, f.call(f.admin(1), "ContributeShare", "Registry4MSP", envelope), "NOT_FOUND", "Registry4MSP")
	f.mustOK(f.call(f.admin(4), "RequestShare", shareRequest(t, "k4", "Registry1MSP", "Registry2MSP")))
	mustFail(t, f.call(f.id("Registry1MSP", "generator"), "ContributeShare", "Registry4MSP", envelope), "ACCESS_DENIED", "generator")
	mustFail(t, f.call(f.admin(1), "ContributeShare", "Registry4MSP", `"x"`), "INVALID_ARGUMENT", "envelopeJSON")
	// A second newcomer waiting at the same time gets the next index.
	r5 := fakestub.Decode[Extension](t, f.mustOK(f.call(f.admin(5), "RequestShare", shareRequest(t, "k5", "Registry1MSP", "Registry2MSP"))).Payload)
	if r5.ShareIndex != 5 {
		t.Fatalf("second request got index %d", r5.ShareIndex)
	}
	mustFail(t, f.call(f.admin(6), "RequestShare", shareRequest(t, "k6", "Registry1MSP", "Registry2MSP")), "ACCESS_DENIED", "not a registered member")
	f.mustOK(f.call(f.admin(6), "RegisterMember"))
	mustFail(t, f.call(f.admin(6), "RequestShare", shareRequest(t, "k4", "Registry1MSP", "Registry2MSP")), "INVALID_ARGUMENT", "share key of Registry4MSP")
}
