package keyvault

import (
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
)

// RegisterMember records the caller's own MSP as a registered member of this
// channel (internal/members): only role admin, the org is never an argument,
// a second registration is ALREADY_EXISTS. Emits MemberRegistered. Every
// other transaction refuses a caller whose MSP has not registered
// (ACCESS_DENIED) and an org named in its arguments that has not
// (INVALID_ARGUMENT). Returns {msp, admin_subject, txid, timestamp}.
func (c *Contract) RegisterMember(ctx contractapi.TransactionContextInterface) (string, error) {
	return access.RegisterMember(ctx)
}

// ListMembers returns the member records of this channel sorted by MSP ID.
// Any role of a registered member.
func (c *Contract) ListMembers(ctx contractapi.TransactionContextInterface) (string, error) {
	return access.ListMembers(ctx)
}
