package access

import (
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/members"
	"github.com/synthreg/synthreg/chaincode/internal/state"
)

// RegisterMember is the body of the RegisterMember transaction of both
// chaincodes: it records the caller's own MSP as a member of the channel
// (members.Register: {msp, admin_subject, txid, timestamp}, event
// MemberRegistered) and returns the record as JSON. Only role admin; the org
// is always the caller's MSP, never an argument (see package members for why
// the channel configuration is the gate). It is the one transaction that does
// not require membership. ALREADY_EXISTS on a second registration.
func RegisterMember(ctx contractapi.TransactionContextInterface) (string, error) {
	caller, err := Identify(ctx.GetClientIdentity())
	if err != nil {
		return "", err
	}
	if _, err := requireRole(caller, []Role{RoleAdmin}); err != nil {
		return "", err
	}
	m, err := members.Register(ctx.GetStub(), caller.MSPID, caller.Subject)
	if err != nil {
		return "", err
	}
	return state.Marshal(m)
}

// ListMembers is the body of the ListMembers transaction of both chaincodes:
// every member record of the channel sorted by MSP ID, as a JSON list. Any
// role of a registered member (evaluate).
func ListMembers(ctx contractapi.TransactionContextInterface) (string, error) {
	if _, err := Require(ctx, AllRoles...); err != nil {
		return "", err
	}
	list, err := members.List(ctx.GetStub())
	if err != nil {
		return "", err
	}
	return state.Marshal(list)
}
