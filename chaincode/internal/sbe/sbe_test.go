package sbe

import (
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"
)

// The policy is exactly "1 signature of a peer of the MSP": one ROLE
// principal {msp, PEER}, rule NOutOf(1, [SignedBy(0)]).
func TestPolicyIsOnePeerOfTheMSP(t *testing.T) {
	raw, err := Policy("Registry3MSP")
	if err != nil {
		t.Fatal(err)
	}
	var env common.SignaturePolicyEnvelope
	if err := proto.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	if len(env.Identities) != 1 || env.Identities[0].PrincipalClassification != msp.MSPPrincipal_ROLE {
		t.Fatalf("identities %v, want one ROLE principal", env.Identities)
	}
	var role msp.MSPRole
	if err := proto.Unmarshal(env.Identities[0].Principal, &role); err != nil {
		t.Fatal(err)
	}
	if role.MspIdentifier != "Registry3MSP" || role.Role != msp.MSPRole_PEER {
		t.Fatalf("principal %v, want Registry3MSP PEER", &role)
	}
	n := env.Rule.GetNOutOf()
	if n == nil || n.N != 1 || len(n.Rules) != 1 || n.Rules[0].GetSignedBy() != 0 {
		t.Fatalf("rule %v, want NOutOf(1, [SignedBy(0)])", env.Rule)
	}
	again, _ := Policy("Registry3MSP")
	if string(again) != string(raw) {
		t.Fatal("policy bytes are not deterministic")
	}
}
