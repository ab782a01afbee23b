// Package state wraps the stub calls shared by the synthreg contracts: JSON
// values in the public world state, the transaction timestamp and the single
// chaincode event of a transaction.
//
// Who calls: contract functions in ganledger and keyvault. Every stub failure
// comes back as *ccerr.InternalError naming the operation and key.
package state

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"

	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
)

// TxTime returns the transaction timestamp (set by the client, identical on
// every endorser) as RFC 3339 UTC with nanoseconds.
func TxTime(stub shim.ChaincodeStubInterface) (string, error) {
	ts, err := stub.GetTxTimestamp()
	if err != nil {
		return "", ccerr.Internal("reading tx timestamp", err)
	}
	return ts.AsTime().UTC().Format(time.RFC3339Nano), nil
}

// Key builds the composite key objectType\x00attrs...\x00.
func Key(stub shim.ChaincodeStubInterface, objectType string, attrs ...string) (string, error) {
	k, err := stub.CreateCompositeKey(objectType, attrs)
	if err != nil {
		return "", ccerr.Internal("building key "+objectType, err)
	}
	return k, nil
}

// GetJSON reads key into v; found is false when the key is absent.
func GetJSON(stub shim.ChaincodeStubInterface, key string, v any) (found bool, err error) {
	raw, err := stub.GetState(key)
	if err != nil {
		return false, ccerr.Internal(fmt.Sprintf("reading state %q", key), err)
	}
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, ccerr.Internal(fmt.Sprintf("decoding state %q", key), err)
	}
	return true, nil
}

// Exists reports whether key is present in the committed public state.
func Exists(stub shim.ChaincodeStubInterface, key string) (bool, error) {
	raw, err := stub.GetState(key)
	if err != nil {
		return false, ccerr.Internal(fmt.Sprintf("reading state %q", key), err)
	}
	return raw != nil, nil
}

// PutJSON writes v as JSON under key.
func PutJSON(stub shim.ChaincodeStubInterface, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return ccerr.Internal(fmt.Sprintf("encoding state %q", key), err)
	}
	if err := stub.PutState(key, raw); err != nil {
		return ccerr.Internal(fmt.Sprintf("writing state %q", key), err)
	}
	return nil
}

// Emit sets the transaction's one chaincode event with a JSON payload.
func Emit(stub shim.ChaincodeStubInterface, name string, payload any) error {
	raw, err := json.Marshal(payload)
	if err != nil {
		return ccerr.Internal("encoding event "+name, err)
	}
	if err := stub.SetEvent(name, raw); err != nil {
		return ccerr.Internal("setting event "+name, err)
	}
	return nil
}

// Marshal encodes a function result as the JSON string contract-api returns
// verbatim to the client.
func Marshal(v any) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", ccerr.Internal("encoding result", err)
	}
	return string(raw), nil
}
