package ganledger

import (
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// GetRecord returns the record stored under key as JSON
// {key, value, msp, role, txid, timestamp}; NOT_FOUND when absent.
// Readable by every consortium role.
func (c *Contract) GetRecord(ctx contractapi.TransactionContextInterface, key string) (string, error) {
	if err := validate.Key("key", key); err != nil {
		return "", err
	}
	if _, err := access.Require(ctx, access.AllRoles...); err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	stateKey, err := state.Key(stub, objRecord, key)
	if err != nil {
		return "", err
	}
	var rec Record
	found, err := state.GetJSON(stub, stateKey, &rec)
	if err != nil {
		return "", err
	}
	if !found {
		return "", &ccerr.NotFoundError{What: "record", Key: key}
	}
	return state.Marshal(rec)
}
