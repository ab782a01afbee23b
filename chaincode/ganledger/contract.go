// Package ganledger is the chaincode of channel "gan": the accountable record
// of federated GAN training (DESIGN.md §2–§4).
//
// Who calls: Python apps of each registry (generator, discriminator, merger,
// admin) through the Fabric Gateway (synthreg.ledger); the peer runs this code
// in the CCaaS server of cmd/ganledger.
// Where data lives: public world state of channel "gan": one immutable record
// per key under the composite key ("record", key) (write.go, read.go; who
// may write which key, e.g. a registry's round record or a run's header, in
// records.go), and
// the secure-aggregation runs and rounds (aggregation*.go: OpenAggregation,
// Advertise, PostShares, PutBlob, Submit, Freeze, Reveal, PostResult and the
// reads GetAggregation, GetBlob, GetRound), one composite key per
// (object, run, round, msp), see aggregation.go; and the per-iteration
// training step records of each registry (steps*.go: RecordGeneratorStep,
// RecordDiscriminatorStep, RecordStop, RecordLocalUpdate, RecordFault and the
// reads GetStep, GetStepHead, GetLocalUpdate, ListFaults), one head key per
// (run, msp) that serialises that registry's steps, see steps.go; and the
// training runs the participants' admins agree on before training (runs*.go:
// ProposeRun, ApproveRun, AbortRun and the reads GetRun, ListRuns), one
// document per run under ("run", run) holding the exact spec text, its
// hash, the approvals and the status, see runs.go. The step writes refuse a
// run whose document exists and is not started.
package ganledger

import (
	"encoding/json"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-contract-api-go/v2/metadata"
)

// Names used on the wire.
const (
	ContractName   = "ganledger"
	EventRecordPut = "RecordPut"
	objRecord      = "record"
	// MaxRecordBytes bounds one record value (JSON text).
	MaxRecordBytes = 256 * 1024
)

// Record is one immutable entry, returned by GetRecord as JSON.
type Record struct {
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	MSPID     string          `json:"msp"`
	Role      string          `json:"role"`
	TxID      string          `json:"txid"`
	Timestamp string          `json:"timestamp"` // tx timestamp, RFC 3339 UTC
}

// RecordPutEvent is the payload of the RecordPut chaincode event.
type RecordPutEvent struct {
	Key   string `json:"key"`
	MSPID string `json:"msp"`
	TxID  string `json:"txid"`
}

// Contract is the ganledger smart contract.
type Contract struct {
	contractapi.Contract
}

// New returns the contract with its name and metadata set.
func New() *Contract {
	return &Contract{Contract: contractapi.Contract{
		Name: ContractName,
		Info: metadata.InfoMetadata{Title: "synthreg ganledger", Version: "0.1.0"},
	}}
}

// GetEvaluateTransactions marks the read-only functions for metadata.
func (c *Contract) GetEvaluateTransactions() []string {
	return []string{"GetRecord", "GetAggregation", "GetBlob", "GetRound", "GetStep", "GetStepHead", "GetStepRoot", "ListFaults",
		"GetLocalUpdate", "GetRun", "ListRuns", "GetPrivacySpend", "ListMembers"}
}

// NewChaincode builds the deployable chaincode (used by cmd/ganledger and tests).
func NewChaincode() (*contractapi.ContractChaincode, error) {
	return contractapi.NewChaincode(New())
}
