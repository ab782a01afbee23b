// Package keyvault is the chaincode of channel "keys": the audit-key ceremony
// record, each registry's encrypted Shamir share in its private collection,
// and the public log of share releases to auditors (DESIGN.md §5, issue 3),
// plus the generic private write/read of issue 2.
//
// Who calls: the synthreg keys/audit CLIs and the integration tests, through
// the Fabric Gateway client (synthreg.ledger); the peer runs this code in the
// CCaaS server of cmd/keyvault.
// Where data lives:
//   - public state: the ceremony (composite key "ceremony"), its verbatim
//     input record ("ceremony_input") and one release per auditor and org
//     ("release", auditor, org);
//   - private collection shares_<MSPID> of each org: its encrypted share
//     (key "share") and generic private values (("private", key)).
//
// The peer enforces collection membership (memberOnlyRead) and the collection
// endorsement policy OR('<org>.peer'); this package additionally checks MSP ID
// and role in every function (internal/access) and refuses every second write.
package keyvault

import (
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-contract-api-go/v2/metadata"
)

// Wire names: contract, transient keys and events.
const (
	ContractName = "keyvault"

	TransientValue = "value" // PutPrivate
	TransientShare = "share" // PutShare

	EventPrivatePut       = "PrivatePut"
	EventCeremonyRecorded = "CeremonyRecorded"
	EventSharePut         = "SharePut"
	EventShareReleased    = "ShareReleased"

	// CollectionPrefix + MSP ID names an org's private collection.
	CollectionPrefix = "shares_"

	// MaxCeremonyBytes bounds the RecordCeremony argument. The transaction
	// carries it twice (proposal argument and write set), so the orderer's
	// BatchSize.AbsoluteMaxBytes must exceed 2x this plus overhead.
	MaxCeremonyBytes = 4 * 1024 * 1024
	// MaxPrivateBytes bounds a private value, a share envelope and a release envelope.
	MaxPrivateBytes = 64 * 1024
	// MaxShares mirrors synthreg.crypto.shamir.MAX_SHARES.
	MaxShares = 255
)

// State object types (composite key namespaces).
const (
	objCeremony      = "ceremony"
	objCeremonyInput = "ceremony_input"
	objRelease       = "release"
	objPrivate       = "private"
	privShareKey     = "share"
)

// Collection returns the private collection name of org mspID.
func Collection(mspID string) string { return CollectionPrefix + mspID }

// Contract is the keyvault smart contract.
type Contract struct {
	contractapi.Contract
}

// New returns the contract with its name and metadata set.
func New() *Contract {
	return &Contract{Contract: contractapi.Contract{
		Name: ContractName,
		Info: metadata.InfoMetadata{Title: "synthreg keyvault", Version: "0.1.0"},
	}}
}

// GetEvaluateTransactions marks the read-only functions for metadata.
func (c *Contract) GetEvaluateTransactions() []string {
	return []string{"GetPrivate", "GetPrivateHash", "GetCeremony", "GetCeremonyRecord", "GetShare", "GetShareHash", "ListReleases", "ListExtensions", "ListMembers"}
}

// NewChaincode builds the deployable chaincode (used by cmd/keyvault and tests).
func NewChaincode() (*contractapi.ContractChaincode, error) {
	return contractapi.NewChaincode(New())
}
