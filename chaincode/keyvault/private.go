package keyvault

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/members"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// PrivatePutEvent is the payload of PrivatePut (never the value).
type PrivatePutEvent struct {
	Key        string `json:"key"`
	MSPID      string `json:"msp"`
	Collection string `json:"collection"`
	SHA256     string `json:"sha256"`
	TxID       string `json:"txid"`
}

// PrivateValue is the result of GetPrivate.
type PrivateValue struct {
	Key        string `json:"key"`
	Collection string `json:"collection"`
	ValueB64   string `json:"value_b64"`
	SHA256     string `json:"sha256"`
}

// PrivateHash is the result of GetPrivateHash and GetShareHash: the on-chain
// hash of a private value (sha256 of its bytes), readable by every member.
type PrivateHash struct {
	Collection string `json:"collection"`
	Key        string `json:"key"`
	SHA256     string `json:"sha256"`
}

// transientValue returns the transient entry name, non-empty and at most max bytes.
func transientValue(stub shim.ChaincodeStubInterface, name string, max int) ([]byte, error) {
	tm, err := stub.GetTransient()
	if err != nil {
		return nil, ccerr.Internal("reading transient map", err)
	}
	return validate.Transient(tm, name, max, "private values travel in the transient map, never as arguments")
}

// privateHash returns the hex on-chain hash of collection/key, "" when absent.
// Deterministic on every peer, member of the collection or not.
func privateHash(stub shim.ChaincodeStubInterface, collection, key string) (string, error) {
	h, err := stub.GetPrivateDataHash(collection, key)
	if err != nil {
		return "", ccerr.Internal(fmt.Sprintf("reading private data hash %s/%q", collection, key), err)
	}
	if len(h) == 0 {
		return "", nil
	}
	return hex.EncodeToString(h), nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// PutPrivate writes the transient value "value" under key into the caller's
// own collection shares_<caller MSP> and emits PrivatePut (key, msp,
// collection, sha256, txid — never the value). Any consortium role.
// Write-once: an existing key (by its on-chain hash) is ALREADY_EXISTS.
// Endorsement: the collection policy needs only the caller org's peer.
func (c *Contract) PutPrivate(ctx contractapi.TransactionContextInterface, key string) (string, error) {
	if err := validate.Key("key", key); err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	value, err := transientValue(stub, TransientValue, MaxPrivateBytes)
	if err != nil {
		return "", err
	}
	caller, err := access.Require(ctx, access.AllRoles...)
	if err != nil {
		return "", err
	}
	collection := Collection(caller.MSPID)
	pkey, err := state.Key(stub, objPrivate, key)
	if err != nil {
		return "", err
	}
	existing, err := privateHash(stub, collection, pkey)
	if err != nil {
		return "", err
	}
	if existing != "" {
		return "", &ccerr.AlreadyExistsError{What: "private value in " + collection, Key: key}
	}
	if err := stub.PutPrivateData(collection, pkey, value); err != nil {
		return "", ccerr.Internal("writing private data to "+collection, err)
	}
	ev := PrivatePutEvent{Key: key, MSPID: caller.MSPID, Collection: collection, SHA256: sha256Hex(value), TxID: stub.GetTxID()}
	if err := state.Emit(stub, EventPrivatePut, ev); err != nil {
		return "", err
	}
	return state.Marshal(ev)
}

// GetPrivate returns the value under key in org's collection; only callers
// of org itself may read (ACCESS_DENIED otherwise, and the peer's
// memberOnlyRead refuses the read as well). NOT_FOUND when absent on this peer.
func (c *Contract) GetPrivate(ctx contractapi.TransactionContextInterface, org string, key string) (string, error) {
	if err := validate.Key("key", key); err != nil {
		return "", err
	}
	caller, err := access.Require(ctx, access.AllRoles...)
	if err != nil {
		return "", err
	}
	collection := Collection(org)
	if err := access.RequireOrg(caller, org, "read private collection "+collection); err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	pkey, err := state.Key(stub, objPrivate, key)
	if err != nil {
		return "", err
	}
	value, err := stub.GetPrivateData(collection, pkey)
	if err != nil {
		return "", ccerr.Internal("reading private data from "+collection, err)
	}
	if value == nil {
		return "", &ccerr.NotFoundError{What: "private value in " + collection, Key: key}
	}
	return state.Marshal(PrivateValue{Key: key, Collection: collection, ValueB64: base64.StdEncoding.EncodeToString(value), SHA256: sha256Hex(value)})
}

// GetPrivateHash returns the on-chain sha256 of the private value under key in
// org's collection, so any consortium member can verify a value shown to it.
// NOT_FOUND when absent.
func (c *Contract) GetPrivateHash(ctx contractapi.TransactionContextInterface, org string, key string) (string, error) {
	if err := validate.Key("key", key); err != nil {
		return "", err
	}
	if err := members.CheckMSPID("org", org); err != nil {
		return "", err
	}
	if _, err := access.Require(ctx, access.AllRoles...); err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	if err := members.RequireNamed(stub, "org", org); err != nil {
		return "", err
	}
	pkey, err := state.Key(stub, objPrivate, key)
	if err != nil {
		return "", err
	}
	collection := Collection(org)
	h, err := privateHash(stub, collection, pkey)
	if err != nil {
		return "", err
	}
	if h == "" {
		return "", &ccerr.NotFoundError{What: "private value in " + collection, Key: key}
	}
	return state.Marshal(PrivateHash{Collection: collection, Key: key, SHA256: h})
}
