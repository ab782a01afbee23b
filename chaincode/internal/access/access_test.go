package access

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/cid"
)

// stubIdentity is a cid.ClientIdentity with fixed answers.
type stubIdentity struct {
	msp   string
	role  string
	found bool
	cert  *x509.Certificate
}

func (s *stubIdentity) GetID() (string, error)    { return "id-" + s.msp, nil }
func (s *stubIdentity) GetMSPID() (string, error) { return s.msp, nil }
func (s *stubIdentity) GetAttributeValue(string) (string, bool, error) {
	return s.role, s.found, nil
}
func (s *stubIdentity) AssertAttributeValue(string, string) error { return nil }
func (s *stubIdentity) GetX509Certificate() (*x509.Certificate, error) {
	return s.cert, nil
}

func TestIdentifyTypedErrors(t *testing.T) {
	cert := &x509.Certificate{}
	var typedNil *cid.ClientID
	cases := []struct {
		name string
		ci   cid.ClientIdentity
		want any
	}{
		{"nil", nil, new(*NoIdentityError)},
		{"typed nil from contract-api", typedNil, new(*NoIdentityError)},
		{"no cert", &stubIdentity{msp: "Registry1MSP", role: "admin", found: true}, new(*NoIdentityError)},
		{"no role", &stubIdentity{msp: "Registry1MSP", cert: cert}, new(*RoleError)},
		{"unknown role", &stubIdentity{msp: "Registry1MSP", role: "root", found: true, cert: cert}, new(*RoleError)},
	}
	for _, c := range cases {
		_, err := Identify(c.ci)
		if err == nil || !strings.HasPrefix(err.Error(), "ACCESS_DENIED: ") {
			t.Fatalf("%s: err %v", c.name, err)
		}
		switch w := c.want.(type) {
		case **NoIdentityError:
			if !errors.As(err, w) {
				t.Fatalf("%s: %T", c.name, err)
			}
		case **RoleError:
			if !errors.As(err, w) || (*w).MSPID != "Registry1MSP" {
				t.Fatalf("%s: %T %v", c.name, err, err)
			}
		}
	}
	// Identify no longer judges the MSP: membership is a ledger read (Require).
	if c, err := Identify(&stubIdentity{msp: "Org1MSP", role: "admin", found: true, cert: cert}); err != nil || c.MSPID != "Org1MSP" {
		t.Fatalf("Org1MSP: %+v %v", c, err)
	}
	caller, err := Identify(&stubIdentity{msp: "Registry2MSP", role: "merger", found: true, cert: cert})
	if err != nil || caller.MSPID != "Registry2MSP" || caller.Role != RoleMerger || caller.ID != "id-Registry2MSP" {
		t.Fatalf("caller %+v err %v", caller, err)
	}
	if err := RequireOrg(caller, "Registry1MSP", "read x"); err == nil || !strings.Contains(err.Error(), "only Registry1MSP") {
		t.Fatalf("RequireOrg: %v", err)
	}
	if err := RequireOrg(caller, "Registry2MSP", "read x"); err != nil {
		t.Fatal(err)
	}
}
