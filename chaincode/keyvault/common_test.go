package keyvault

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/fakestub"
)

type fixture struct {
	t      *testing.T
	cc     *contractapi.ContractChaincode
	ledger *fakestub.Ledger
	ids    map[string]fakestub.Identity
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
	return &fixture{t: t, cc: cc, ledger: fakestub.NewLedger("keys"), ids: map[string]fakestub.Identity{}}
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
		if r := f.call(f.admin(i), "RegisterMember"); !r.OK() {
			f.t.Fatalf("RegisterMember Registry%dMSP: %s", i, r.Message)
		}
	}
	f.ledger.Events = nil
}

// id returns a cached identity of msp with role (certificate generation is the slow part).
func (f *fixture) id(msp, role string) fakestub.Identity {
	f.t.Helper()
	k := msp + "/" + role
	if id, ok := f.ids[k]; ok {
		return id
	}
	id, err := fakestub.WithRole(msp, role)
	if err != nil {
		f.t.Fatal(err)
	}
	f.ids[k] = id
	return id
}

func (f *fixture) admin(n int) fakestub.Identity {
	return f.id(fmt.Sprintf("Registry%dMSP", n), "admin")
}

func (f *fixture) call(id fakestub.Identity, fn string, args ...string) fakestub.Result {
	return f.ledger.Invoke(f.cc, id, nil, fn, args...)
}

func (f *fixture) callT(id fakestub.Identity, transient map[string][]byte, fn string, args ...string) fakestub.Result {
	return f.ledger.Invoke(f.cc, id, transient, fn, args...)
}

func (f *fixture) mustOK(r fakestub.Result) fakestub.Result {
	f.t.Helper()
	if !r.OK() {
		f.t.Fatalf("unexpected failure: %s", r.Message)
	}
	return r
}

func mustFail(t *testing.T, r fakestub.Result, wantPrefix string, wantParts ...string) {
	t.Helper()
	if r.OK() {
		t.Fatalf("expected failure %s, got success %.200s", wantPrefix, r.Payload)
	}
	if !strings.HasPrefix(r.Message, wantPrefix+": ") {
		t.Fatalf("message %q does not start with %q", r.Message, wantPrefix)
	}
	for _, p := range wantParts {
		if !strings.Contains(r.Message, p) {
			t.Fatalf("message %q does not mention %q", r.Message, p)
		}
	}
}

// ceremonyDoc builds a consistent public_record()-shaped ceremony for
// Registry1..Registry<n> with threshold t, as a generic map so tests can
// break single fields.
func ceremonyDoc(t, n int) map[string]any {
	pubCtx := []byte(strings.Repeat("public-context;", 1000))
	testCt := []byte("test-ciphertext-bytes")
	pubHash := fakestub.SHA256Hex(pubCtx)
	digests := map[string]any{}
	shareIndex := map[string]any{}
	keys := map[string]any{}
	for i := 1; i <= n; i++ {
		org := fmt.Sprintf("Registry%dMSP", i)
		digests[fmt.Sprint(i)] = fakestub.SHA256Hex([]byte("share" + fmt.Sprint(i)))
		shareIndex[org] = i
		keys[org] = fakestub.SHA256Hex([]byte("x25519" + org)) // 32 bytes, hex
	}
	return map[string]any{
		"ceremony_id":         "cer-0001",
		"t":                   t,
		"n":                   n,
		"public_context_hash": pubHash,
		"public_context_b64":  base64.StdEncoding.EncodeToString(pubCtx),
		"sealed_key": map[string]any{
			"version": 1, "alg": "AES-256-GCM", "nonce": "AAAAAAAAAAAAAAAA", "ciphertext": "c2VhbGVk",
			"public_context_hash": pubHash, "t": t, "n": n,
		},
		"commitments":            map[string]any{"ceremony_id": "cer-0001", "digests": digests},
		"share_index":            shareIndex,
		"recipient_public_keys":  keys,
		"test_ciphertext_sha256": fakestub.SHA256Hex(testCt),
		"test_ciphertext_b64":    base64.StdEncoding.EncodeToString(testCt),
	}
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// recordCeremony records a valid 2-of-3 ceremony hosted by Registry1's admin.
func (f *fixture) recordCeremony() Ceremony {
	f.t.Helper()
	r := f.mustOK(f.call(f.admin(1), "RecordCeremony", toJSON(f.t, ceremonyDoc(2, 3))))
	return fakestub.Decode[Ceremony](f.t, r.Payload)
}

// distribute puts org n's share (content "envelope-of-<org>") as Registry1's admin.
func (f *fixture) distribute(n int) fakestub.Result {
	org := fmt.Sprintf("Registry%dMSP", n)
	return f.callT(f.admin(1), map[string][]byte{TransientShare: []byte(`{"envelope-of":"` + org + `"}`)}, "PutShare", org)
}
