package keyvault

import (
	"encoding/base64"
	"fmt"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/members"
	"github.com/synthreg/synthreg/chaincode/internal/state"
)

// ShareReceipt is the result of PutShare: where the encrypted share went and
// its sha256, which equals the on-chain private data hash (GetShareHash).
// Nothing of it is written to public state: a PutShare transaction writes
// only the recipient's collection, so only the recipient's peer endorses it
// and sees the (encrypted) share.
type ShareReceipt struct {
	Org        string `json:"org"`
	Collection string `json:"collection"`
	ShareIndex int    `json:"share_index"`
	SHA256     string `json:"sha256"`
	HostMSPID  string `json:"host_msp"`
	TxID       string `json:"txid"`
}

// SharePutEvent is the payload of SharePut (never the share).
type SharePutEvent struct {
	Org        string `json:"org"`
	ShareIndex int    `json:"share_index"`
	SHA256     string `json:"sha256"`
	HostMSPID  string `json:"host_msp"`
	TxID       string `json:"txid"`
}

// OwnShare is the result of GetShare.
type OwnShare struct {
	CeremonyID string `json:"ceremony_id"`
	Org        string `json:"org"`
	ShareIndex int    `json:"share_index"`
	ShareB64   string `json:"share_b64"` // the encrypted share as written (envelope JSON bytes)
	SHA256     string `json:"sha256"`
}

// shareHash returns the hex on-chain hash of org's share, "" when not distributed.
func shareHash(stub shim.ChaincodeStubInterface, org string) (string, error) {
	return privateHash(stub, Collection(org), privShareKey)
}

// ceremonyMember returns org's share index, or INVALID_ARGUMENT when org is
// not a recipient of the ceremony.
func ceremonyMember(cer Ceremony, org string) (int, error) {
	idx, ok := cer.ShareIndex[org]
	if !ok {
		return 0, &ccerr.InvalidArgumentError{Arg: "org", Reason: fmt.Sprintf("%q is not a share recipient of ceremony %s", org, cer.CeremonyID)}
	}
	return idx, nil
}

// PutShare writes the encrypted share of org (transient key "share", at most
// MaxPrivateBytes) into org's collection shares_<org> and emits SharePut
// (org, share index, sha256, host MSP, txid). Only role admin of the ceremony
// host's MSP, only after the ceremony, only for a recipient of the ceremony,
// only once per org (by the on-chain private data hash). No public write:
// the collection policy alone applies, so submit it with endorsing
// organisations = [org].
func (c *Contract) PutShare(ctx contractapi.TransactionContextInterface, org string) (string, error) {
	stub := ctx.GetStub()
	share, err := transientValue(stub, TransientShare, MaxPrivateBytes)
	if err != nil {
		return "", err
	}
	caller, err := access.Require(ctx, access.RoleAdmin)
	if err != nil {
		return "", err
	}
	cer, err := loadCeremony(stub)
	if err != nil {
		return "", err
	}
	if err := access.RequireOrg(caller, cer.Host.MSPID, "distribute shares of ceremony "+cer.CeremonyID); err != nil {
		return "", err
	}
	if err := members.RequireNamed(stub, "org", org); err != nil {
		return "", err
	}
	idx, err := ceremonyMember(cer, org)
	if err != nil {
		return "", err
	}
	return writeShare(stub, cer.CeremonyID, org, idx, share, caller.MSPID)
}

// writeShare puts share (an envelope) as org's share with index idx into
// org's collection, once (ALREADY_EXISTS by the on-chain private data hash),
// emits SharePut and returns the receipt. Shared by PutShare (the ceremony
// host for a recipient) and PutOwnShare (a newcomer for itself).
func writeShare(stub shim.ChaincodeStubInterface, ceremonyID, org string, idx int, share []byte, hostMSP string) (string, error) {
	existing, err := shareHash(stub, org)
	if err != nil {
		return "", err
	}
	if existing != "" {
		return "", &ccerr.AlreadyExistsError{What: "share of ceremony " + ceremonyID + " for", Key: org}
	}
	collection := Collection(org)
	if err := stub.PutPrivateData(collection, privShareKey, share); err != nil {
		return "", ccerr.Internal("writing share to "+collection, err)
	}
	rec := ShareReceipt{Org: org, Collection: collection, ShareIndex: idx, SHA256: sha256Hex(share), HostMSPID: hostMSP, TxID: stub.GetTxID()}
	if err := state.Emit(stub, EventSharePut, SharePutEvent{Org: org, ShareIndex: idx, SHA256: rec.SHA256, HostMSPID: hostMSP, TxID: rec.TxID}); err != nil {
		return "", err
	}
	return state.Marshal(rec)
}

// GetShare returns org's encrypted share (a ceremony recipient's, or a
// newcomer's after PutOwnShare); only role admin of org itself may
// read it (ACCESS_DENIED for everyone else; the peer's memberOnlyRead refuses
// other orgs as well). NOT_FOUND when not distributed (or not on this peer).
func (c *Contract) GetShare(ctx contractapi.TransactionContextInterface, org string) (string, error) {
	caller, err := access.Require(ctx, access.RoleAdmin)
	if err != nil {
		return "", err
	}
	if err := access.RequireOrg(caller, org, "read the share in "+Collection(org)); err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	cer, err := loadCeremony(stub)
	if err != nil {
		return "", err
	}
	h, isHolder, err := shareHolder(stub, cer, org)
	if err != nil {
		return "", err
	}
	if !isHolder {
		return "", &ccerr.InvalidArgumentError{Arg: "org", Reason: fmt.Sprintf("%q holds no share of ceremony %s", org, cer.CeremonyID)}
	}
	share, err := stub.GetPrivateData(Collection(org), privShareKey)
	if err != nil {
		return "", ccerr.Internal("reading share from "+Collection(org), err)
	}
	if share == nil {
		return "", &ccerr.NotFoundError{What: "share of ceremony " + cer.CeremonyID + " for", Key: org}
	}
	return state.Marshal(OwnShare{CeremonyID: cer.CeremonyID, Org: org, ShareIndex: h.index, ShareB64: base64.StdEncoding.EncodeToString(share), SHA256: sha256Hex(share)})
}

// GetShareHash returns the on-chain private data hash of org's share, so any
// consortium member can check a share shown to it. NOT_FOUND when not
// distributed.
func (c *Contract) GetShareHash(ctx contractapi.TransactionContextInterface, org string) (string, error) {
	if err := members.CheckMSPID("org", org); err != nil {
		return "", err
	}
	if _, err := access.Require(ctx, access.AllRoles...); err != nil {
		return "", err
	}
	if err := members.RequireNamed(ctx.GetStub(), "org", org); err != nil {
		return "", err
	}
	collection := Collection(org)
	h, err := shareHash(ctx.GetStub(), org)
	if err != nil {
		return "", err
	}
	if h == "" {
		return "", &ccerr.NotFoundError{What: "share in collection " + collection + " of", Key: org}
	}
	return state.Marshal(PrivateHash{Collection: collection, Key: privShareKey, SHA256: h})
}
