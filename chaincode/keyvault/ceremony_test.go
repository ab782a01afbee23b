package keyvault

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/synthreg/synthreg/chaincode/internal/fakestub"
)

func TestRecordCeremonyStoresHostFromIdentityAndEmitsEvent(t *testing.T) {
	f := newFixture(t)
	doc := ceremonyDoc(2, 3)
	input := toJSON(t, doc)
	r := f.mustOK(f.call(f.admin(2), "RecordCeremony", input))
	cer := fakestub.Decode[Ceremony](t, r.Payload)
	if cer.Host.MSPID != "Registry2MSP" || cer.Host.Role != "admin" || !strings.Contains(cer.Host.Subject, "admin@Registry2MSP") || cer.Host.ID == "" {
		t.Fatalf("host %+v not taken from the caller certificate", cer.Host)
	}
	if cer.T != 2 || cer.N != 3 || cer.TxID != r.TxID || cer.PublicContextBytes != 15000 || cer.TestCiphertextBytes != len("test-ciphertext-bytes") {
		t.Fatalf("ceremony %+v", cer)
	}
	if len(f.ledger.Events) != 1 || f.ledger.Events[0].Name != EventCeremonyRecorded {
		t.Fatalf("events %+v", f.ledger.Events)
	}
	ev := fakestub.Decode[CeremonyRecordedEvent](t, f.ledger.Events[0].Payload)
	if ev.CeremonyID != "cer-0001" || ev.HostMSPID != "Registry2MSP" || ev.T != 2 || ev.N != 3 || ev.TxID != r.TxID {
		t.Fatalf("event %+v", ev)
	}

	// Everyone in the consortium reads the facts; the record comes back verbatim (compacted).
	got := fakestub.Decode[Ceremony](t, f.mustOK(f.call(f.id("Registry3MSP", "auditor"), "GetCeremony")).Payload)
	if got.CeremonyID != "cer-0001" || got.Host != cer.Host || len(got.Shares) != 0 {
		t.Fatalf("GetCeremony = %+v", got)
	}
	rec := f.mustOK(f.call(f.id("Registry1MSP", "generator"), "GetCeremonyRecord"))
	if string(rec.Payload) != input {
		t.Fatalf("GetCeremonyRecord differs from the recorded input")
	}
}

func TestSecondCeremonyIsRefused(t *testing.T) {
	f := newFixture(t)
	f.recordCeremony()
	doc := ceremonyDoc(3, 3)
	doc["ceremony_id"] = "cer-0002"
	doc["commitments"].(map[string]any)["ceremony_id"] = "cer-0002"
	mustFail(t, f.call(f.admin(3), "RecordCeremony", toJSON(t, doc)), "ALREADY_EXISTS", "cer-0001", "Registry1MSP")
	if got := fakestub.Decode[Ceremony](t, f.mustOK(f.call(f.admin(3), "GetCeremony")).Payload); got.CeremonyID != "cer-0001" || got.T != 2 {
		t.Fatalf("first ceremony replaced: %+v", got)
	}
}

func TestRecordCeremonyOnlyAdminOfConsortium(t *testing.T) {
	f := newFixture(t)
	input := toJSON(t, ceremonyDoc(2, 3))
	mustFail(t, f.call(f.id("Registry1MSP", "generator"), "RecordCeremony", input), "ACCESS_DENIED", "Registry1MSP", "generator", "admin")
	mustFail(t, f.call(f.id("Registry1MSP", "auditor"), "RecordCeremony", input), "ACCESS_DENIED", "auditor")
	mustFail(t, f.call(f.id("EvilMSP", "admin"), "RecordCeremony", input), "ACCESS_DENIED", "EvilMSP")
	if len(f.ledger.State) != testMembers {
		t.Fatal("rejected ceremony wrote state")
	}
}

func TestReadsBeforeCeremonyFailClearly(t *testing.T) {
	f := newFixture(t)
	mustFail(t, f.call(f.admin(1), "GetCeremony"), "PRECONDITION_FAILED", "no key ceremony", "keys")
	mustFail(t, f.call(f.admin(1), "GetCeremonyRecord"), "PRECONDITION_FAILED", "no key ceremony")
	mustFail(t, f.call(f.admin(1), "ListReleases", "auditor-1"), "PRECONDITION_FAILED", "no key ceremony")
}

func TestRecordCeremonyValidation(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(d map[string]any)
		parts []string
	}{
		{"t greater than n", func(d map[string]any) { d["t"] = 4; d["sealed_key"].(map[string]any)["t"] = 4 }, []string{"ceremony.t", "2 <= t <= n"}},
		{"t below 2", func(d map[string]any) { d["t"] = 1; d["sealed_key"].(map[string]any)["t"] = 1 }, []string{"ceremony.t"}},
		{"n differs from commitments", func(d map[string]any) {
			delete(d["commitments"].(map[string]any)["digests"].(map[string]any), "3")
		}, []string{"commitments.digests", "2 commitments for n = 3"}},
		{"context hash mismatch", func(d map[string]any) { d["public_context_hash"] = strings.Repeat("0", 64) }, []string{"public_context_hash", "does not match"}},
		{"test ciphertext hash mismatch", func(d map[string]any) { d["test_ciphertext_sha256"] = strings.Repeat("a", 64) }, []string{"test_ciphertext_sha256"}},
		{"bad base64", func(d map[string]any) { d["public_context_b64"] = "%%%" }, []string{"public_context_b64", "base64"}},
		{"upper-case hash", func(d map[string]any) {
			d["test_ciphertext_sha256"] = strings.ToUpper(d["test_ciphertext_sha256"].(string))
		}, []string{"test_ciphertext_sha256", "lower-case"}},
		{"unknown field", func(d map[string]any) { d["secret_context"] = "oops" }, []string{"secret_context"}},
		{"sealed key t differs", func(d map[string]any) { d["sealed_key"].(map[string]any)["t"] = 3 }, []string{"sealed_key.t"}},
		{"sealed key not an object", func(d map[string]any) { d["sealed_key"] = "abc" }, []string{"sealed_key"}},
		{"commitment ceremony id differs", func(d map[string]any) { d["commitments"].(map[string]any)["ceremony_id"] = "x" }, []string{"commitments.ceremony_id"}},
		{"recipient outside consortium", func(d map[string]any) {
			si := d["share_index"].(map[string]any)
			si["Outsider.MSP"] = si["Registry3MSP"]
			delete(si, "Registry3MSP")
		}, []string{"Outsider.MSP", "not an MSP ID"}},
		{"recipient not a registered member", func(d map[string]any) {
			si, k := d["share_index"].(map[string]any), d["recipient_public_keys"].(map[string]any)
			si["OutsiderMSP"], k["OutsiderMSP"] = si["Registry3MSP"], k["Registry3MSP"]
			delete(si, "Registry3MSP")
			delete(k, "Registry3MSP")
		}, []string{`"ceremony.share_index"`, `"OutsiderMSP" is not a registered member of channel keys`}},
		{"duplicate share index", func(d map[string]any) { d["share_index"].(map[string]any)["Registry3MSP"] = 1 }, []string{"index 1"}},
		{"index without commitment", func(d map[string]any) { d["share_index"].(map[string]any)["Registry3MSP"] = 9 }, []string{"index 9"}},
		{"bad recipient key", func(d map[string]any) { d["recipient_public_keys"].(map[string]any)["Registry2MSP"] = "abcd" }, []string{"recipient_public_keys.Registry2MSP", "X25519"}},
		{"key for non-recipient", func(d map[string]any) {
			k := d["recipient_public_keys"].(map[string]any)
			k["Registry9MSP"] = k["Registry3MSP"]
			delete(k, "Registry3MSP")
		}, []string{"Registry9MSP"}},
		{"bad digest", func(d map[string]any) { d["commitments"].(map[string]any)["digests"].(map[string]any)["2"] = "zz" }, []string{"digests.2"}},
		{"bad ceremony id", func(d map[string]any) { d["ceremony_id"] = "" }, []string{"ceremony_id"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			doc := ceremonyDoc(2, 3)
			c.edit(doc)
			mustFail(t, f.call(f.admin(1), "RecordCeremony", toJSON(t, doc)), "INVALID_ARGUMENT", c.parts...)
			if len(f.ledger.State) != testMembers || len(f.ledger.Events) != 0 {
				t.Fatal("invalid ceremony changed the ledger")
			}
		})
	}
	t.Run("malformed JSON", func(t *testing.T) {
		f := newFixture(t)
		valid := toJSON(t, ceremonyDoc(2, 3))
		for _, bad := range []string{valid[:len(valid)-1], valid + "{}", "[]", "", `{"t":"2"}`} {
			mustFail(t, f.call(f.admin(1), "RecordCeremony", bad), "INVALID_ARGUMENT", "ceremony")
		}
	})
	t.Run("5 registries 3 of 5", func(t *testing.T) {
		f := newFixture(t)
		cer := fakestub.Decode[Ceremony](t, f.mustOK(f.call(f.admin(4), "RecordCeremony", toJSON(t, ceremonyDoc(3, 5)))).Payload)
		if cer.N != 5 || len(cer.ShareIndex) != 5 {
			t.Fatalf("%+v", cer)
		}
	})
}

func TestSealedKeyHashIsOfCompactedJSON(t *testing.T) {
	f := newFixture(t)
	doc := ceremonyDoc(2, 3)
	cer := f.recordCeremony()
	compact, _ := json.Marshal(doc["sealed_key"])
	if cer.SealedKeySHA256 != fakestub.SHA256Hex(compact) {
		t.Fatalf("sealed_key_sha256 %s, want %s", cer.SealedKeySHA256, fakestub.SHA256Hex(compact))
	}
}
