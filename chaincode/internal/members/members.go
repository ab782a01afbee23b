// Package members keeps the consortium membership of a channel on that
// channel's ledger: one record per registry MSP under the composite key
// ("member", <MSP ID>), written once by the registry's own admin
// (RegisterMember in ganledger and keyvault, via access.RegisterMember).
//
// Why a self-registration is enough: the peer has already validated the
// caller's certificate against the channel's MSP definitions before the
// chaincode runs, so only an org that is in the channel configuration can
// call at all. Who is in that configuration is decided by the channel's
// genesis block or, when a registry joins later, by a config update signed by
// a MAJORITY of the member admins. That configuration is the gate; the member
// record is the chaincode's view of it, and the org registered is always the
// caller's MSP (never an argument), so no org can enrol another. What the
// record adds over the MSP definitions: an org that is in the channel
// configuration but has not registered (e.g. an orderer-only org, or a
// registry whose chaincode definition is not yet approved) is refused by
// every other transaction, and the consortium's member list is readable
// from the ledger (ListMembers) instead of being guessed from an MSP-name
// pattern.
//
// Who calls: internal/access (Require checks the caller, RegisterMember and
// ListMembers are the transaction bodies) and the contracts, which check every
// org named in their arguments with RequireNamed. Membership never ends, so a
// read of a member key (one GetState per checked org, never a range scan) does
// not conflict with concurrent transactions.
// What fails when: a malformed MSP ID -> INVALID_ARGUMENT (ValidMSPID is the
// stateless syntax check, for places without state such as key parsing and
// the collections config generator); an org named in an argument that is not
// registered -> INVALID_ARGUMENT naming the field; a second registration ->
// ALREADY_EXISTS; stub failures -> INTERNAL.
package members

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"

	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/state"
)

// Wire names.
const (
	// EventRegistered is the chaincode event of RegisterMember.
	EventRegistered = "MemberRegistered"
	objMember       = "member"
)

// MSPIDPattern is the syntax of an MSP ID this project accepts: it must fit a
// composite-key attribute, a "/"-separated record key segment and a private
// collection name (shares_<MSP ID>, Fabric allows [A-Za-z0-9_-] there).
const MSPIDPattern = `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`

var mspIDRE = regexp.MustCompile(MSPIDPattern)

// ValidMSPID reports whether id is syntactically an MSP ID (MSPIDPattern).
// It says nothing about membership.
func ValidMSPID(id string) bool { return mspIDRE.MatchString(id) }

// CheckMSPID returns INVALID_ARGUMENT naming arg unless id is ValidMSPID.
func CheckMSPID(arg, id string) error {
	if !ValidMSPID(id) {
		return &ccerr.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf("%q is not an MSP ID (%s)", id, MSPIDPattern)}
	}
	return nil
}

// Member is the membership record of one registry, as ListMembers returns it.
type Member struct {
	MSPID        string `json:"msp"`
	AdminSubject string `json:"admin_subject"` // certificate subject DN of the registering admin
	TxID         string `json:"txid"`
	Timestamp    string `json:"timestamp"` // tx timestamp, RFC 3339 UTC
}

// RegisteredEvent is the payload of the MemberRegistered event.
type RegisteredEvent struct {
	MSPID string `json:"msp"`
	TxID  string `json:"txid"`
}

func memberKey(stub shim.ChaincodeStubInterface, msp string) (string, error) {
	return state.Key(stub, objMember, msp)
}

// IsMember reports whether msp has registered on this channel (one GetState;
// false for a syntactically invalid msp without reading).
func IsMember(stub shim.ChaincodeStubInterface, msp string) (bool, error) {
	if !ValidMSPID(msp) {
		return false, nil
	}
	key, err := memberKey(stub, msp)
	if err != nil {
		return false, err
	}
	return state.Exists(stub, key)
}

// RequireNamed checks that every msp named in argument field is a registered
// member (one GetState per distinct org, in the order given); INVALID_ARGUMENT
// naming field and the first org that is not.
func RequireNamed(stub shim.ChaincodeStubInterface, field string, msps ...string) error {
	seen := make(map[string]bool, len(msps))
	for _, m := range msps {
		if seen[m] {
			continue
		}
		seen[m] = true
		ok, err := IsMember(stub, m)
		if err != nil {
			return err
		}
		if !ok {
			return &ccerr.InvalidArgumentError{Arg: field, Reason: fmt.Sprintf(
				"%q is not a registered member of channel %s (its admin must call RegisterMember)", m, stub.GetChannelID())}
		}
	}
	return nil
}

// Register writes the member record of msp (the caller's own MSP, checked by
// the caller of this function) stamped with the admin's subject, the txid and
// the tx timestamp, and emits MemberRegistered. ALREADY_EXISTS when msp has
// registered before; nothing is written then.
func Register(stub shim.ChaincodeStubInterface, msp, adminSubject string) (Member, error) {
	if err := CheckMSPID("msp", msp); err != nil {
		return Member{}, err
	}
	key, err := memberKey(stub, msp)
	if err != nil {
		return Member{}, err
	}
	exists, err := state.Exists(stub, key)
	if err != nil {
		return Member{}, err
	}
	if exists {
		return Member{}, &ccerr.AlreadyExistsError{What: "member of channel " + stub.GetChannelID(), Key: msp}
	}
	ts, err := state.TxTime(stub)
	if err != nil {
		return Member{}, err
	}
	m := Member{MSPID: msp, AdminSubject: adminSubject, TxID: stub.GetTxID(), Timestamp: ts}
	if err := state.PutJSON(stub, key, m); err != nil {
		return Member{}, err
	}
	if err := state.Emit(stub, EventRegistered, RegisteredEvent{MSPID: msp, TxID: m.TxID}); err != nil {
		return Member{}, err
	}
	return m, nil
}

// List returns every member record sorted by MSP ID ([] when none). A range
// scan: for evaluate (ListMembers), not for transaction hot paths.
func List(stub shim.ChaincodeStubInterface) ([]Member, error) {
	it, err := stub.GetStateByPartialCompositeKey(objMember, nil)
	if err != nil {
		return nil, ccerr.Internal("range query members", err)
	}
	defer it.Close()
	out := []Member{}
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return nil, ccerr.Internal("range query members", err)
		}
		var m Member
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return nil, ccerr.Internal(fmt.Sprintf("decoding member %q", kv.Key), err)
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MSPID < out[j].MSPID })
	return out, nil
}
