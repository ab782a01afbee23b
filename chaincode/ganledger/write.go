package ganledger

import (
	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/sbe"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// PutRecord stores value (a JSON object, at most MaxRecordBytes) under key,
// stamped with the caller's MSP ID and role, the tx id and tx timestamp, and
// emits the RecordPut event {key, msp, txid}. Returns the stored record JSON.
//
// Who may write which key (records.go): a round record
// run/<run>/round/<r>/<msp> only <msp>'s apps; a run header run/<run> only
// the merger of the org that opened the run (ACCESS_DENIED, or
// PRECONDITION_FAILED before the run is proposed or its aggregation opened);
// a free-form key any consortium role, unless a segment names another
// registry's MSP (ACCESS_DENIED); a malformed trail key is INVALID_ARGUMENT.
// Records are immutable: a second write of the
// same key fails with ALREADY_EXISTS (checked against committed state; two
// racing writes in one block are resolved by MVCC, the second is invalidated).
func (c *Contract) PutRecord(ctx contractapi.TransactionContextInterface, key string, value string) (string, error) {
	if err := validate.Key("key", key); err != nil {
		return "", err
	}
	parsed, err := parseRecordKey(key)
	if err != nil {
		return "", err
	}
	compact, err := validate.JSONObject("value", []byte(value), MaxRecordBytes)
	if err != nil {
		return "", err
	}
	caller, err := access.Require(ctx, access.AllRoles...)
	if err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	rec, err := putRecord(stub, key, parsed, compact, caller)
	if err != nil {
		return "", err
	}
	if err := state.Emit(stub, EventRecordPut, RecordPutEvent{Key: key, MSPID: caller.MSPID, TxID: rec.TxID}); err != nil {
		return "", err
	}
	return state.Marshal(rec)
}

// putRecord authorises caller for the parsed key, refuses an existing record
// (ALREADY_EXISTS) and stores the compacted value, stamped, bound to the
// caller's peer (internal/sbe). No event: PutRecord emits RecordPut, and
// PostResult, which writes its round record through here, AggResultPosted.
func putRecord(stub shim.ChaincodeStubInterface, key string, parsed recordKey, compact []byte, caller access.Caller) (*Record, error) {
	if err := authoriseRecordKey(stub, key, parsed, caller); err != nil {
		return nil, err
	}
	stateKey, err := state.Key(stub, objRecord, key)
	if err != nil {
		return nil, err
	}
	exists, err := state.Exists(stub, stateKey)
	if err != nil {
		return nil, err
	}
	if exists {
		return nil, &ccerr.AlreadyExistsError{What: "record", Key: key}
	}
	ts, err := state.TxTime(stub)
	if err != nil {
		return nil, err
	}
	rec := Record{Key: key, Value: compact, MSPID: caller.MSPID, Role: string(caller.Role), TxID: stub.GetTxID(), Timestamp: ts}
	if err := state.PutJSON(stub, stateKey, rec); err != nil {
		return nil, err
	}
	if err := sbe.Bind(stub, caller.MSPID, stateKey); err != nil {
		return nil, err
	}
	return &rec, nil
}
