package ganledger

import (
	"encoding/json"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// GetRun returns the run document as JSON {run, spec_json, run_sha256,
// status, proposer, approvals, started, aborted} (RunDocument): spec_json
// is the exact specJSON text of ProposeRun as a JSON string, so a client
// that JSON-decodes it gets the original bytes back and can hash them.
// NOT_FOUND when absent. Any consortium role.
func (c *Contract) GetRun(ctx contractapi.TransactionContextInterface, run string) (string, error) {
	if err := validate.Key("run", run); err != nil {
		return "", err
	}
	if _, err := access.Require(ctx, access.AllRoles...); err != nil {
		return "", err
	}
	doc, err := loadRun(ctx.GetStub(), run)
	if err != nil {
		return "", err
	}
	return state.Marshal(doc)
}

// ListRuns returns every run as a JSON list of {run, status, run_sha256}
// (RunEntry) in key (= run id) order; [] when none. Any consortium role.
func (c *Contract) ListRuns(ctx contractapi.TransactionContextInterface) (string, error) {
	if _, err := access.Require(ctx, access.AllRoles...); err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	runs := []RunEntry{}
	err := eachInRange(stub, objRun, nil, objRun, func(key string, value []byte) error {
		var e RunEntry // the document's run, status and run_sha256 fields; the spec text is skipped
		if err := json.Unmarshal(value, &e); err != nil {
			return ccerr.Internal("decoding "+key, err)
		}
		runs = append(runs, e)
		return nil
	})
	if err != nil {
		return "", err
	}
	return state.Marshal(runs)
}
