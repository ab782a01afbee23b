package keyvault

// Share extension: a registry that joined after the key ceremony gets its own
// audit-key share without the key being reassembled anywhere (issue 9).
//
// The sealing key's Shamir polynomial f (degree t-1) gave share f(i) to the
// ceremony's recipient i. A newcomer gets index x = 1 + the largest index in
// use, and f(x) = sum over t chosen holders i of lambda_i(x) * f(i). Each
// holder sends its term lambda_i(x) * f(i), hidden by pairwise masks agreed
// with the other chosen holders (X25519 between their share keys; the masks
// cancel in the sum), encrypted to the newcomer's share key. The newcomer
// adds the t contributions, seals the result to itself into its own
// collection (PutOwnShare) and publishes the share's commitment
// (CompleteShare). The arithmetic is synthreg.crypto.extension; this file
// keeps the public record and enforces who may do what and in which order:
//
//	RequestShare   newcomer admin    picks the holders, gets the next index
//	ContributeShare each holder admin once, its masked term (encrypted)
//	PutOwnShare    newcomer admin    its share, private, endorsed by its peer only
//	CompleteShare  newcomer admin    the commitment; the share is now usable
//
// Nothing here can check that a contribution is the right term: commitments
// are hashes, not homomorphic. A wrong contribution gives the newcomer a
// wrong share, which the auditor's unseal names (KeyVerificationError with
// the share indices used) — see docs/threat-model.md.

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// Events of the share extension.
const (
	EventShareRequested   = "ShareRequested"
	EventShareContributed = "ShareContributed"
	EventShareExtended    = "ShareExtended"
)

const objExtension = "extension"

// ShareRequest is the RequestShare argument.
type ShareRequest struct {
	PublicKey string   `json:"public_key"` // the newcomer's X25519 share key, raw 32 bytes in lower-case hex
	Holders   []string `json:"holders"`    // exactly t current share holders
}

// Contribution is one holder's masked term, encrypted to the newcomer.
type Contribution struct {
	Envelope       json.RawMessage `json:"envelope"`
	EnvelopeSHA256 string          `json:"envelope_sha256"`
	TxID           string          `json:"txid"`
	Timestamp      string          `json:"timestamp"`
}

// Extension is the public record of one newcomer's share extension.
type Extension struct {
	ExtensionID      string                  `json:"extension_id"` // the RequestShare txid
	CeremonyID       string                  `json:"ceremony_id"`
	Org              string                  `json:"org"`
	ShareIndex       int                     `json:"share_index"`
	PublicKey        string                  `json:"public_key"`
	Holders          []string                `json:"holders"` // sorted
	HolderIndex      map[string]int          `json:"holder_index"`
	HolderPublicKeys map[string]string       `json:"holder_public_keys"`
	Contributions    map[string]Contribution `json:"contributions"`
	Commitment       string                  `json:"commitment,omitempty"`   // shamir.commit of the new share
	ShareSHA256      string                  `json:"share_sha256,omitempty"` // on-chain hash of the sealed share
	CompletedTxID    string                  `json:"completed_txid,omitempty"`
	CompletedAt      string                  `json:"completed_at,omitempty"`
	RequestedBy      Host                    `json:"requested_by"`
	Timestamp        string                  `json:"timestamp"`
}

// Complete reports whether the newcomer's share is usable (CompleteShare ran).
func (e Extension) Complete() bool { return e.CompletedTxID != "" }

// ExtensionEvent is the payload of the three extension events.
type ExtensionEvent struct {
	ExtensionID string `json:"extension_id"`
	Org         string `json:"org"`
	ShareIndex  int    `json:"share_index"`
	Holder      string `json:"holder,omitempty"`
	TxID        string `json:"txid"`
}

// Extensions is the result of ListExtensions.
type Extensions struct {
	CeremonyID string      `json:"ceremony_id"`
	Extensions []Extension `json:"extensions"` // sorted by share index
}

func loadExtension(stub shim.ChaincodeStubInterface, org string) (Extension, bool, error) {
	key, err := state.Key(stub, objExtension, org)
	if err != nil {
		return Extension{}, false, err
	}
	var ext Extension
	found, err := state.GetJSON(stub, key, &ext)
	return ext, found, err
}

func putExtension(stub shim.ChaincodeStubInterface, ext Extension) error {
	key, err := state.Key(stub, objExtension, ext.Org)
	if err != nil {
		return err
	}
	return state.PutJSON(stub, key, ext)
}

func allExtensions(stub shim.ChaincodeStubInterface) ([]Extension, error) {
	it, err := stub.GetStateByPartialCompositeKey(objExtension, []string{})
	if err != nil {
		return nil, ccerr.Internal("listing share extensions", err)
	}
	defer it.Close()
	out := []Extension{}
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return nil, ccerr.Internal("iterating share extensions", err)
		}
		var ext Extension
		if err := json.Unmarshal(kv.GetValue(), &ext); err != nil {
			return nil, ccerr.Internal("decoding share extension "+kv.GetKey(), err)
		}
		out = append(out, ext)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ShareIndex < out[j].ShareIndex })
	return out, nil
}

// holder describes org as a share holder: its index and share key, and
// whether its share can be used now (distributed, or extension complete).
type holder struct {
	index  int
	key    string
	usable bool
}

func shareHolder(stub shim.ChaincodeStubInterface, cer Ceremony, org string) (holder, bool, error) {
	if idx, ok := cer.ShareIndex[org]; ok {
		h, err := shareHash(stub, org)
		return holder{index: idx, key: cer.RecipientPublicKeys[org], usable: h != ""}, true, err
	}
	ext, found, err := loadExtension(stub, org)
	if err != nil || !found {
		return holder{}, false, err
	}
	return holder{index: ext.ShareIndex, key: ext.PublicKey, usable: ext.Complete()}, true, nil
}

// RequestShare opens the share extension of the caller's registry (role
// admin), which holds no share yet: request (ShareRequest) names its share
// key and exactly t holders whose shares are usable. The new index is one
// more than the largest in use (ceremony and earlier extensions). One
// extension per registry (ALREADY_EXISTS). Emits ShareRequested.
func (c *Contract) RequestShare(ctx contractapi.TransactionContextInterface, requestJSON string) (string, error) {
	var req ShareRequest
	if err := validate.Strict("request", []byte(requestJSON), MaxPrivateBytes, &req); err != nil {
		return "", err
	}
	if len(req.PublicKey) != 64 || validate.SHA256Hex("request.public_key", req.PublicKey) != nil {
		return "", &ccerr.InvalidArgumentError{Arg: "request.public_key", Reason: "must be a raw 32-byte X25519 key in lower-case hex"}
	}
	caller, err := access.Require(ctx, access.RoleAdmin)
	if err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	cer, err := loadCeremony(stub)
	if err != nil {
		return "", err
	}
	if h, isHolder, err := shareHolder(stub, cer, caller.MSPID); err != nil {
		return "", err
	} else if isHolder {
		return "", &ccerr.AlreadyExistsError{What: fmt.Sprintf("share (index %d) of ceremony %s for", h.index, cer.CeremonyID), Key: caller.MSPID}
	}
	exts, err := allExtensions(stub)
	if err != nil {
		return "", err
	}
	maxIndex := 0
	keys := map[string]string{}
	for org, i := range cer.ShareIndex {
		maxIndex = max(maxIndex, i)
		keys[cer.RecipientPublicKeys[org]] = org
	}
	for _, e := range exts {
		maxIndex = max(maxIndex, e.ShareIndex)
		keys[e.PublicKey] = e.Org
	}
	if other, dup := keys[req.PublicKey]; dup {
		return "", &ccerr.InvalidArgumentError{Arg: "request.public_key", Reason: "already the share key of " + other}
	}
	if maxIndex+1 > MaxShares {
		return "", &ccerr.PreconditionError{Reason: fmt.Sprintf("no share index left (at most %d shares)", MaxShares)}
	}
	if len(req.Holders) != cer.T {
		return "", &ccerr.InvalidArgumentError{Arg: "request.holders", Reason: fmt.Sprintf("%d holders named; the ceremony's threshold t = %d needs exactly t", len(req.Holders), cer.T)}
	}
	holders := append([]string(nil), req.Holders...)
	sort.Strings(holders)
	index := map[string]int{}
	pubs := map[string]string{}
	for i, org := range holders {
		if i > 0 && holders[i-1] == org {
			return "", &ccerr.InvalidArgumentError{Arg: "request.holders", Reason: org + " named twice"}
		}
		h, isHolder, err := shareHolder(stub, cer, org)
		if err != nil {
			return "", err
		}
		if !isHolder || !h.usable {
			return "", &ccerr.InvalidArgumentError{Arg: "request.holders", Reason: org + " holds no usable share of ceremony " + cer.CeremonyID}
		}
		index[org], pubs[org] = h.index, h.key
	}
	ts, err := state.TxTime(stub)
	if err != nil {
		return "", err
	}
	ext := Extension{
		ExtensionID: stub.GetTxID(), CeremonyID: cer.CeremonyID, Org: caller.MSPID, ShareIndex: maxIndex + 1,
		PublicKey: req.PublicKey, Holders: holders, HolderIndex: index, HolderPublicKeys: pubs,
		Contributions: map[string]Contribution{},
		RequestedBy:   Host{MSPID: caller.MSPID, Role: string(caller.Role), Subject: caller.Subject, ID: caller.ID},
		Timestamp:     ts,
	}
	if err := putExtension(stub, ext); err != nil {
		return "", err
	}
	if err := state.Emit(stub, EventShareRequested, ExtensionEvent{ExtensionID: ext.ExtensionID, Org: ext.Org, ShareIndex: ext.ShareIndex, TxID: ext.ExtensionID}); err != nil {
		return "", err
	}
	return state.Marshal(ext)
}

// requireExtension loads org's extension (NOT_FOUND) and refuses a complete
// one (PRECONDITION_FAILED).
func requireExtension(stub shim.ChaincodeStubInterface, org string) (Extension, error) {
	ext, found, err := loadExtension(stub, org)
	if err != nil {
		return Extension{}, err
	}
	if !found {
		return Extension{}, &ccerr.NotFoundError{What: "share extension of", Key: org}
	}
	if ext.Complete() {
		return Extension{}, &ccerr.PreconditionError{Reason: fmt.Sprintf("the share extension of %s is complete (tx %s)", org, ext.CompletedTxID)}
	}
	return ext, nil
}

// ContributeShare records the caller registry's contribution (role admin, a
// holder chosen by the request) to org's share: envelopeJSON, its masked
// term encrypted to org's share key. Once per holder. Emits ShareContributed.
func (c *Contract) ContributeShare(ctx contractapi.TransactionContextInterface, org string, envelopeJSON string) (string, error) {
	if err := validate.Key("org", org); err != nil {
		return "", err
	}
	envelope, err := validate.JSONObject("envelopeJSON", []byte(envelopeJSON), MaxPrivateBytes)
	if err != nil {
		return "", err
	}
	caller, err := access.Require(ctx, access.RoleAdmin)
	if err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	ext, err := requireExtension(stub, org)
	if err != nil {
		return "", err
	}
	if _, chosen := ext.HolderIndex[caller.MSPID]; !chosen {
		return "", &ccerr.PreconditionError{Reason: fmt.Sprintf("%s is not one of the holders chosen for the share of %s (%v)", caller.MSPID, org, ext.Holders)}
	}
	if prev, dup := ext.Contributions[caller.MSPID]; dup {
		return "", &ccerr.AlreadyExistsError{What: fmt.Sprintf("contribution to the share of %s (tx %s) by", org, prev.TxID), Key: caller.MSPID}
	}
	ts, err := state.TxTime(stub)
	if err != nil {
		return "", err
	}
	ext.Contributions[caller.MSPID] = Contribution{Envelope: envelope, EnvelopeSHA256: sha256Hex(envelope), TxID: stub.GetTxID(), Timestamp: ts}
	if err := putExtension(stub, ext); err != nil {
		return "", err
	}
	ev := ExtensionEvent{ExtensionID: ext.ExtensionID, Org: org, ShareIndex: ext.ShareIndex, Holder: caller.MSPID, TxID: stub.GetTxID()}
	if err := state.Emit(stub, EventShareContributed, ev); err != nil {
		return "", err
	}
	return state.Marshal(ext)
}

// PutOwnShare writes the caller registry's assembled share (transient key
// "share": the share sealed to its own share key) into its own collection,
// once every chosen holder has contributed. Role admin. Private write only,
// so only the caller's peer endorses it. Emits SharePut.
func (c *Contract) PutOwnShare(ctx contractapi.TransactionContextInterface) (string, error) {
	stub := ctx.GetStub()
	share, err := transientValue(stub, TransientShare, MaxPrivateBytes)
	if err != nil {
		return "", err
	}
	caller, err := access.Require(ctx, access.RoleAdmin)
	if err != nil {
		return "", err
	}
	ext, err := requireExtension(stub, caller.MSPID)
	if err != nil {
		return "", err
	}
	if missing := missingContributions(ext); len(missing) > 0 {
		return "", &ccerr.PreconditionError{Reason: fmt.Sprintf("contributions to the share of %s still missing from %v", caller.MSPID, missing)}
	}
	return writeShare(stub, ext.CeremonyID, caller.MSPID, ext.ShareIndex, share, caller.MSPID)
}

func missingContributions(ext Extension) []string {
	var missing []string
	for _, h := range ext.Holders {
		if _, ok := ext.Contributions[h]; !ok {
			missing = append(missing, h)
		}
	}
	return missing
}

// CompleteShare publishes the commitment (synthreg.crypto.shamir.commit,
// lower-case hex sha256) of the caller registry's new share, after
// PutOwnShare. Role admin. From then on the share counts like a ceremony
// share: GetShare, ReleaseShare, and the auditor's commitments. Emits
// ShareExtended.
func (c *Contract) CompleteShare(ctx contractapi.TransactionContextInterface, commitment string) (string, error) {
	if err := validate.SHA256Hex("commitment", commitment); err != nil {
		return "", err
	}
	caller, err := access.Require(ctx, access.RoleAdmin)
	if err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	ext, err := requireExtension(stub, caller.MSPID)
	if err != nil {
		return "", err
	}
	h, err := shareHash(stub, caller.MSPID)
	if err != nil {
		return "", err
	}
	if h == "" {
		return "", &ccerr.PreconditionError{Reason: fmt.Sprintf("%s has not put its assembled share yet (PutOwnShare)", caller.MSPID)}
	}
	ts, err := state.TxTime(stub)
	if err != nil {
		return "", err
	}
	ext.Commitment, ext.ShareSHA256, ext.CompletedTxID, ext.CompletedAt = commitment, h, stub.GetTxID(), ts
	if err := putExtension(stub, ext); err != nil {
		return "", err
	}
	ev := ExtensionEvent{ExtensionID: ext.ExtensionID, Org: ext.Org, ShareIndex: ext.ShareIndex, TxID: ext.CompletedTxID}
	if err := state.Emit(stub, EventShareExtended, ev); err != nil {
		return "", err
	}
	return state.Marshal(ext)
}

// ListExtensions returns every share extension, complete or not, sorted by
// share index. Any consortium role. PRECONDITION_FAILED before the ceremony.
func (c *Contract) ListExtensions(ctx contractapi.TransactionContextInterface) (string, error) {
	if _, err := access.Require(ctx, access.AllRoles...); err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	cer, err := loadCeremony(stub)
	if err != nil {
		return "", err
	}
	exts, err := allExtensions(stub)
	if err != nil {
		return "", err
	}
	return state.Marshal(Extensions{CeremonyID: cer.CeremonyID, Extensions: exts})
}
