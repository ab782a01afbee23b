package keyvault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/members"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// CeremonyInput is the RecordCeremony argument: exactly the JSON of
// synthreg.crypto.ceremony.CeremonyOutput.public_record(). Unknown fields are
// refused. Blobs are inline base64 (public context ~260 KB; no chunking —
// one transaction keeps the record atomic; see MaxCeremonyBytes).
type CeremonyInput struct {
	CeremonyID           string            `json:"ceremony_id"`
	T                    int               `json:"t"`
	N                    int               `json:"n"`
	PublicContextHash    string            `json:"public_context_hash"`
	PublicContextB64     string            `json:"public_context_b64"`
	SealedKey            json.RawMessage   `json:"sealed_key"`
	Commitments          Commitments       `json:"commitments"`
	ShareIndex           map[string]int    `json:"share_index"`
	RecipientPublicKeys  map[string]string `json:"recipient_public_keys"`
	TestCiphertextSHA256 string            `json:"test_ciphertext_sha256"`
	TestCiphertextB64    string            `json:"test_ciphertext_b64"`
}

// Commitments are the published per-share commitments: digests keyed by the
// decimal share index (synthreg.crypto.shamir.ShareCommitments.to_dict()).
type Commitments struct {
	CeremonyID string            `json:"ceremony_id"`
	Digests    map[string]string `json:"digests"`
}

// Host is the identity that recorded the ceremony, taken from the signed
// proposal, never from arguments.
type Host struct {
	MSPID   string `json:"msp"`
	Role    string `json:"role"`
	Subject string `json:"subject"`
	ID      string `json:"id"`
}

// Ceremony is the public ceremony record returned by GetCeremony (blobs
// replaced by their hashes and sizes; GetCeremonyRecord returns them).
type Ceremony struct {
	CeremonyID           string            `json:"ceremony_id"`
	T                    int               `json:"t"`
	N                    int               `json:"n"`
	PublicContextHash    string            `json:"public_context_hash"`
	PublicContextBytes   int               `json:"public_context_bytes"`
	SealedKeySHA256      string            `json:"sealed_key_sha256"` // of the compacted sealed_key JSON
	Commitments          Commitments       `json:"commitments"`
	ShareIndex           map[string]int    `json:"share_index"`
	RecipientPublicKeys  map[string]string `json:"recipient_public_keys"`
	TestCiphertextSHA256 string            `json:"test_ciphertext_sha256"`
	TestCiphertextBytes  int               `json:"test_ciphertext_bytes"`
	Host                 Host              `json:"host"`
	TxID                 string            `json:"txid"`
	Timestamp            string            `json:"timestamp"`
	// Shares maps org -> on-chain sha256 of its distributed share (GetCeremony
	// only; orgs whose share is not distributed yet are absent).
	Shares map[string]string `json:"shares,omitempty"`
}

// CeremonyRecordedEvent is the payload of CeremonyRecorded.
type CeremonyRecordedEvent struct {
	CeremonyID        string `json:"ceremony_id"`
	T                 int    `json:"t"`
	N                 int    `json:"n"`
	PublicContextHash string `json:"public_context_hash"`
	HostMSPID         string `json:"host_msp"`
	TxID              string `json:"txid"`
}

// validateCeremony checks every field of in and returns the decoded sizes of
// the public context and test ciphertext.
func validateCeremony(in *CeremonyInput) (ctxBytes, ctBytes int, err error) {
	bad := func(arg, format string, a ...any) (int, int, error) {
		return 0, 0, &ccerr.InvalidArgumentError{Arg: "ceremony." + arg, Reason: fmt.Sprintf(format, a...)}
	}
	if err := validate.Key("ceremony.ceremony_id", in.CeremonyID); err != nil {
		return 0, 0, err
	}
	if in.N < 2 || in.N > MaxShares {
		return bad("n", "%d outside [2, %d]", in.N, MaxShares)
	}
	if in.T < 2 || in.T > in.N {
		return bad("t", "%d must satisfy 2 <= t <= n = %d", in.T, in.N)
	}
	if err := validate.SHA256Hex("ceremony.public_context_hash", in.PublicContextHash); err != nil {
		return 0, 0, err
	}
	pubCtx, err := validate.Base64("ceremony.public_context_b64", in.PublicContextB64, 1, MaxCeremonyBytes)
	if err != nil {
		return 0, 0, err
	}
	if got := sha256Hex(pubCtx); got != in.PublicContextHash {
		return bad("public_context_hash", "%s does not match sha256 of public_context_b64 (%s)", in.PublicContextHash, got)
	}
	if err := validate.SHA256Hex("ceremony.test_ciphertext_sha256", in.TestCiphertextSHA256); err != nil {
		return 0, 0, err
	}
	testCt, err := validate.Base64("ceremony.test_ciphertext_b64", in.TestCiphertextB64, 1, MaxCeremonyBytes)
	if err != nil {
		return 0, 0, err
	}
	if got := sha256Hex(testCt); got != in.TestCiphertextSHA256 {
		return bad("test_ciphertext_sha256", "%s does not match sha256 of test_ciphertext_b64 (%s)", in.TestCiphertextSHA256, got)
	}
	if err := validateSealedKey(in); err != nil {
		return 0, 0, err
	}
	if in.Commitments.CeremonyID != in.CeremonyID {
		return bad("commitments.ceremony_id", "%q differs from ceremony_id %q", in.Commitments.CeremonyID, in.CeremonyID)
	}
	if len(in.Commitments.Digests) != in.N {
		return bad("commitments.digests", "%d commitments for n = %d", len(in.Commitments.Digests), in.N)
	}
	for idx, d := range in.Commitments.Digests {
		i, err := strconv.Atoi(idx)
		if err != nil || i < 1 || i > MaxShares || strconv.Itoa(i) != idx {
			return bad("commitments.digests", "share index %q is not an integer in [1, %d]", idx, MaxShares)
		}
		if err := validate.SHA256Hex("ceremony.commitments.digests."+idx, d); err != nil {
			return 0, 0, err
		}
	}
	if len(in.ShareIndex) != in.N {
		return bad("share_index", "%d recipients for n = %d", len(in.ShareIndex), in.N)
	}
	seen := map[int]string{}
	for org, i := range in.ShareIndex {
		if !members.ValidMSPID(org) {
			return bad("share_index", "recipient %q is not an MSP ID (%s)", org, members.MSPIDPattern)
		}
		if prev, dup := seen[i]; dup {
			return bad("share_index", "index %d given to both %s and %s", i, prev, org)
		}
		seen[i] = org
		if _, ok := in.Commitments.Digests[strconv.Itoa(i)]; !ok {
			return bad("share_index", "index %d of %s has no commitment", i, org)
		}
	}
	if len(in.RecipientPublicKeys) != in.N {
		return bad("recipient_public_keys", "%d keys for n = %d", len(in.RecipientPublicKeys), in.N)
	}
	for org, k := range in.RecipientPublicKeys {
		if _, ok := in.ShareIndex[org]; !ok {
			return bad("recipient_public_keys", "%q has a key but no share index", org)
		}
		if len(k) != 64 || validate.SHA256Hex("ceremony.recipient_public_keys."+org, k) != nil {
			return bad("recipient_public_keys."+org, "must be a raw 32-byte X25519 key in lower-case hex")
		}
	}
	return len(pubCtx), len(testCt), nil
}

// validateSealedKey requires a JSON object whose t, n and public_context_hash,
// when present, agree with the ceremony (they are bound as GCM associated data).
func validateSealedKey(in *CeremonyInput) error {
	var sk map[string]json.RawMessage
	if err := json.Unmarshal(in.SealedKey, &sk); err != nil || len(sk) == 0 {
		return &ccerr.InvalidArgumentError{Arg: "ceremony.sealed_key", Reason: "must be a non-empty JSON object"}
	}
	check := func(field string, want any) error {
		raw, ok := sk[field]
		if !ok {
			return nil
		}
		wantRaw, _ := json.Marshal(want)
		if !bytes.Equal(bytes.TrimSpace(raw), wantRaw) {
			return &ccerr.InvalidArgumentError{Arg: "ceremony.sealed_key." + field, Reason: fmt.Sprintf("%s differs from the ceremony's %s", raw, wantRaw)}
		}
		return nil
	}
	for field, want := range map[string]any{"t": in.T, "n": in.N, "public_context_hash": in.PublicContextHash} {
		if err := check(field, want); err != nil {
			return err
		}
	}
	return nil
}

// loadCeremony returns the recorded ceremony, or PRECONDITION_FAILED.
func loadCeremony(stub shim.ChaincodeStubInterface) (Ceremony, error) {
	key, err := state.Key(stub, objCeremony)
	if err != nil {
		return Ceremony{}, err
	}
	var cer Ceremony
	found, err := state.GetJSON(stub, key, &cer)
	if err != nil {
		return Ceremony{}, err
	}
	if !found {
		return Ceremony{}, &ccerr.PreconditionError{Reason: "no key ceremony has been recorded on channel " + stub.GetChannelID()}
	}
	return cer, nil
}

// RecordCeremony records the one key ceremony of the channel from
// ceremonyJSON (CeremonyInput) after validating it completely: 2 <= t <= n,
// n commitments, n recipients with share indices matching the commitments,
// hashes matching the base64 blobs, sealed_key consistent with t/n/hash.
// Only role admin; the host identity (MSP, role, certificate subject, id) is
// taken from the caller. A second ceremony is ALREADY_EXISTS. Emits
// CeremonyRecorded. Returns GetCeremony's JSON.
func (c *Contract) RecordCeremony(ctx contractapi.TransactionContextInterface, ceremonyJSON string) (string, error) {
	raw := []byte(ceremonyJSON)
	var in CeremonyInput
	if err := validate.Strict("ceremony", raw, MaxCeremonyBytes, &in); err != nil {
		return "", err
	}
	ctxBytes, ctBytes, err := validateCeremony(&in)
	if err != nil {
		return "", err
	}
	caller, err := access.Require(ctx, access.RoleAdmin)
	if err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	recipients := make([]string, 0, len(in.ShareIndex))
	for org := range in.ShareIndex {
		recipients = append(recipients, org)
	}
	sort.Strings(recipients)
	if err := members.RequireNamed(stub, "ceremony.share_index", recipients...); err != nil {
		return "", err
	}
	key, err := state.Key(stub, objCeremony)
	if err != nil {
		return "", err
	}
	var existing Ceremony
	found, err := state.GetJSON(stub, key, &existing)
	if err != nil {
		return "", err
	}
	if found {
		return "", &ccerr.AlreadyExistsError{What: fmt.Sprintf("key ceremony (recorded by %s in tx %s)", existing.Host.MSPID, existing.TxID), Key: existing.CeremonyID}
	}
	ts, err := state.TxTime(stub)
	if err != nil {
		return "", err
	}
	var sealed bytes.Buffer
	if err := json.Compact(&sealed, in.SealedKey); err != nil {
		return "", ccerr.Internal("compacting sealed key", err)
	}
	cer := Ceremony{
		CeremonyID: in.CeremonyID, T: in.T, N: in.N,
		PublicContextHash: in.PublicContextHash, PublicContextBytes: ctxBytes,
		SealedKeySHA256: sha256Hex(sealed.Bytes()),
		Commitments:     in.Commitments, ShareIndex: in.ShareIndex, RecipientPublicKeys: in.RecipientPublicKeys,
		TestCiphertextSHA256: in.TestCiphertextSHA256, TestCiphertextBytes: ctBytes,
		Host: Host{MSPID: caller.MSPID, Role: string(caller.Role), Subject: caller.Subject, ID: caller.ID},
		TxID: stub.GetTxID(), Timestamp: ts,
	}
	if err := state.PutJSON(stub, key, cer); err != nil {
		return "", err
	}
	inputKey, err := state.Key(stub, objCeremonyInput)
	if err != nil {
		return "", err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return "", ccerr.Internal("compacting ceremony record", err)
	}
	if err := stub.PutState(inputKey, compact.Bytes()); err != nil {
		return "", ccerr.Internal("writing ceremony record", err)
	}
	ev := CeremonyRecordedEvent{CeremonyID: cer.CeremonyID, T: cer.T, N: cer.N, PublicContextHash: cer.PublicContextHash, HostMSPID: caller.MSPID, TxID: cer.TxID}
	if err := state.Emit(stub, EventCeremonyRecorded, ev); err != nil {
		return "", err
	}
	return state.Marshal(cer)
}

// GetCeremony returns the public ceremony facts (Ceremony, without blobs)
// including the hashes of the shares distributed so far. Any consortium
// role. PRECONDITION_FAILED before the ceremony.
func (c *Contract) GetCeremony(ctx contractapi.TransactionContextInterface) (string, error) {
	if _, err := access.Require(ctx, access.AllRoles...); err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	cer, err := loadCeremony(stub)
	if err != nil {
		return "", err
	}
	orgs := make([]string, 0, len(cer.ShareIndex))
	for org := range cer.ShareIndex {
		orgs = append(orgs, org)
	}
	sort.Strings(orgs)
	for _, org := range orgs {
		h, err := shareHash(stub, org)
		if err != nil {
			return "", err
		}
		if h != "" {
			if cer.Shares == nil {
				cer.Shares = map[string]string{}
			}
			cer.Shares[org] = h
		}
	}
	return state.Marshal(cer)
}

// GetCeremonyRecord returns the ceremony input exactly as recorded (the
// public_record() JSON with the base64 public context, sealed key and test
// ciphertext) — what an auditor needs to unseal. Any consortium role.
func (c *Contract) GetCeremonyRecord(ctx contractapi.TransactionContextInterface) (string, error) {
	if _, err := access.Require(ctx, access.AllRoles...); err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	key, err := state.Key(stub, objCeremonyInput)
	if err != nil {
		return "", err
	}
	raw, err := stub.GetState(key)
	if err != nil {
		return "", ccerr.Internal("reading ceremony record", err)
	}
	if raw == nil {
		return "", &ccerr.PreconditionError{Reason: "no key ceremony has been recorded on channel " + stub.GetChannelID()}
	}
	return string(raw), nil
}
