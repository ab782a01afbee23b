package keyvault

import (
	"encoding/json"
	"fmt"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// Release is the public record that registry Org released its share to
// Auditor. Envelope is the share encrypted to the auditor (ciphertext, safe
// to publish).
type Release struct {
	CeremonyID     string          `json:"ceremony_id"`
	Auditor        string          `json:"auditor"`
	Org            string          `json:"org"`
	ShareIndex     int             `json:"share_index"`
	Envelope       json.RawMessage `json:"envelope"`
	EnvelopeSHA256 string          `json:"envelope_sha256"` // of the compacted envelope JSON
	ReleasedBy     Host            `json:"released_by"`
	TxID           string          `json:"txid"`
	Timestamp      string          `json:"timestamp"`
}

// ShareReleasedEvent is the payload of ShareReleased.
type ShareReleasedEvent struct {
	CeremonyID     string `json:"ceremony_id"`
	Auditor        string `json:"auditor"`
	Org            string `json:"org"`
	ShareIndex     int    `json:"share_index"`
	EnvelopeSHA256 string `json:"envelope_sha256"`
	TxID           string `json:"txid"`
}

// Releases is the result of ListReleases.
type Releases struct {
	CeremonyID string    `json:"ceremony_id"`
	Auditor    string    `json:"auditor"`
	T          int       `json:"t"`
	Releases   []Release `json:"releases"` // sorted by org
}

// ReleaseShare records, publicly, that the caller's registry released its
// share to auditorID, with envelopeJSON (a JSON object of at most
// MaxPrivateBytes: the share encrypted to the auditor). Only role admin; the
// org is the caller's MSP, which must hold a usable share: a ceremony
// recipient whose share was distributed, or a newcomer whose extension is
// complete. One release per org per auditor. Emits ShareReleased.
func (c *Contract) ReleaseShare(ctx contractapi.TransactionContextInterface, auditorID string, envelopeJSON string) (string, error) {
	if err := validate.Key("auditorID", auditorID); err != nil {
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
	cer, err := loadCeremony(stub)
	if err != nil {
		return "", err
	}
	h, isHolder, err := shareHolder(stub, cer, caller.MSPID)
	if err != nil {
		return "", err
	}
	if !isHolder {
		return "", &ccerr.PreconditionError{Reason: fmt.Sprintf("%s holds no share of ceremony %s", caller.MSPID, cer.CeremonyID)}
	}
	if !h.usable {
		return "", &ccerr.PreconditionError{Reason: fmt.Sprintf("the share of %s has not been distributed (or its extension completed) yet", caller.MSPID)}
	}
	idx := h.index
	key, err := state.Key(stub, objRelease, auditorID, caller.MSPID)
	if err != nil {
		return "", err
	}
	exists, err := state.Exists(stub, key)
	if err != nil {
		return "", err
	}
	if exists {
		return "", &ccerr.AlreadyExistsError{What: "release to auditor " + auditorID + " by", Key: caller.MSPID}
	}
	ts, err := state.TxTime(stub)
	if err != nil {
		return "", err
	}
	rel := Release{
		CeremonyID: cer.CeremonyID, Auditor: auditorID, Org: caller.MSPID, ShareIndex: idx,
		Envelope: envelope, EnvelopeSHA256: sha256Hex(envelope),
		ReleasedBy: Host{MSPID: caller.MSPID, Role: string(caller.Role), Subject: caller.Subject, ID: caller.ID},
		TxID:       stub.GetTxID(), Timestamp: ts,
	}
	if err := state.PutJSON(stub, key, rel); err != nil {
		return "", err
	}
	ev := ShareReleasedEvent{CeremonyID: rel.CeremonyID, Auditor: auditorID, Org: rel.Org, ShareIndex: idx, EnvelopeSHA256: rel.EnvelopeSHA256, TxID: rel.TxID}
	if err := state.Emit(stub, EventShareReleased, ev); err != nil {
		return "", err
	}
	return state.Marshal(rel)
}

// ListReleases returns every release to auditorID (Releases, sorted by org;
// empty list when none). Any consortium role. PRECONDITION_FAILED before the
// ceremony.
func (c *Contract) ListReleases(ctx contractapi.TransactionContextInterface, auditorID string) (string, error) {
	if err := validate.Key("auditorID", auditorID); err != nil {
		return "", err
	}
	if _, err := access.Require(ctx, access.AllRoles...); err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	cer, err := loadCeremony(stub)
	if err != nil {
		return "", err
	}
	it, err := stub.GetStateByPartialCompositeKey(objRelease, []string{auditorID})
	if err != nil {
		return "", ccerr.Internal("listing releases", err)
	}
	defer it.Close()
	out := Releases{CeremonyID: cer.CeremonyID, Auditor: auditorID, T: cer.T, Releases: []Release{}}
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return "", ccerr.Internal("iterating releases", err)
		}
		var rel Release
		if err := json.Unmarshal(kv.GetValue(), &rel); err != nil {
			return "", ccerr.Internal("decoding release "+kv.GetKey(), err)
		}
		out.Releases = append(out.Releases, rel)
	}
	return state.Marshal(out)
}
