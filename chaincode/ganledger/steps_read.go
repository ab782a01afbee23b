package ganledger

import (
	"encoding/json"
	"fmt"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/members"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// GetStep returns the generator and discriminator records of msp's step
// (round, iter) in run as {"generator": GeneratorStep|null,
// "discriminator": DiscriminatorStep|null}; round and iter are canonical
// decimals 0..1000000. NOT_FOUND when neither exists. Any consortium role.
func (c *Contract) GetStep(ctx contractapi.TransactionContextInterface, run string, msp string, round string, iter string) (string, error) {
	r, err := validate.Round("round", round)
	if err != nil {
		return "", err
	}
	i, err := validate.Round("iter", iter)
	if err != nil {
		return "", err
	}
	stub, err := stepReader(ctx, run, msp)
	if err != nil {
		return "", err
	}
	var pair StepPair
	var g GeneratorStep
	var d DiscriminatorStep
	if found, err := loadStep(stub, objStepGenerator, run, msp, r, i, &g); err != nil {
		return "", err
	} else if found {
		pair.Generator = &g
	}
	if found, err := loadStep(stub, objStepDiscrimin, run, msp, r, i, &d); err != nil {
		return "", err
	} else if found {
		pair.Discriminator = &d
	}
	if pair.Generator == nil && pair.Discriminator == nil {
		return "", &ccerr.NotFoundError{What: stepRecordWhatName, Key: fmt.Sprintf("%s/%s/%d/%d", run, msp, r, i)}
	}
	return state.Marshal(pair)
}

// GetStepHead returns msp's last step in run as {"round", "iter", "phase"}
// (phase "g", "d" or "stopped"); NOT_FOUND before its first step. Any
// consortium role.
func (c *Contract) GetStepHead(ctx contractapi.TransactionContextInterface, run string, msp string) (string, error) {
	stub, err := stepReader(ctx, run, msp)
	if err != nil {
		return "", err
	}
	head, err := loadHead(stub, run, msp)
	if err != nil {
		return "", err
	}
	if head == nil {
		return "", &ccerr.NotFoundError{What: stepHeadWhatName, Key: run + "/" + msp}
	}
	return state.Marshal(head)
}

// ListFaults returns the faults msp recorded in run as a JSON list in key
// (= txid) order; [] when none. Any consortium role.
func (c *Contract) ListFaults(ctx contractapi.TransactionContextInterface, run string, msp string) (string, error) {
	stub, err := stepReader(ctx, run, msp)
	if err != nil {
		return "", err
	}
	faults := []Fault{}
	err = eachInRange(stub, objStepFault, []string{run, msp}, fmt.Sprintf("%s/%s/%s", objStepFault, run, msp), func(key string, value []byte) error {
		var f Fault
		if err := json.Unmarshal(value, &f); err != nil {
			return ccerr.Internal("decoding "+key, err)
		}
		faults = append(faults, f)
		return nil
	})
	if err != nil {
		return "", err
	}
	return state.Marshal(faults)
}

// GetLocalUpdate returns msp's local update of round (a canonical decimal
// 0..1000000) in run as the stored LocalUpdate {round, g_weights_sha256,
// d_weights_sha256, iter, msp, role, txid, timestamp}; NOT_FOUND when
// absent. Any consortium role.
func (c *Contract) GetLocalUpdate(ctx contractapi.TransactionContextInterface, run string, msp string, round string) (string, error) {
	return getPerRound[LocalUpdate](ctx, run, msp, round, objStepUpdate, localUpdateWhat)
}

// getPerRound reads msp's record of kind obj for round (a canonical decimal
// 0..1000000) in run, stored under obj/run/msp/round, as JSON; NOT_FOUND
// naming what when absent. Any consortium role (stepReader).
func getPerRound[T any](ctx contractapi.TransactionContextInterface, run, msp, round, obj, what string) (string, error) {
	r, err := validate.Round("round", round)
	if err != nil {
		return "", err
	}
	stub, err := stepReader(ctx, run, msp)
	if err != nil {
		return "", err
	}
	key, err := state.Key(stub, obj, run, msp, stepAttr(r))
	if err != nil {
		return "", err
	}
	rec, err := loadOptional[T](stub, key)
	if err != nil {
		return "", err
	}
	if rec == nil {
		return "", &ccerr.NotFoundError{What: what, Key: fmt.Sprintf("%s/%s/%d", run, msp, r)}
	}
	return state.Marshal(rec)
}

// stepReader validates the run id and MSP id of a step read, admits any
// role of a registered member and requires msp to be a registered member;
// returns the stub.
func stepReader(ctx contractapi.TransactionContextInterface, run, msp string) (shim.ChaincodeStubInterface, error) {
	if err := validate.Key("run", run); err != nil {
		return nil, err
	}
	if err := members.CheckMSPID("msp", msp); err != nil {
		return nil, err
	}
	if _, err := access.Require(ctx, access.AllRoles...); err != nil {
		return nil, err
	}
	stub := ctx.GetStub()
	if err := members.RequireNamed(stub, "msp", msp); err != nil {
		return nil, err
	}
	return stub, nil
}
