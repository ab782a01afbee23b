// Package access is the one place where synthreg chaincode authorises a caller.
//
// Who calls: every transaction function of ganledger and keyvault, first thing
// after argument validation, via Require (registered member + role check) and
// RequireOrg (caller must belong to a given org); RegisterMember and
// ListMembers are the bodies of the two membership transactions both
// chaincodes expose (members.go).
// Where the data lives: the caller's MSP ID and X.509 certificate come from the
// signed proposal (stub.GetCreator, parsed by contract-api into a
// cid.ClientIdentity). The role is the Fabric-CA style certificate attribute
// "synthreg.role" (extension OID 1.2.3.4.5.6.7.8.1, raw JSON value
// {"attrs":{"synthreg.role":"generator"}}), read with GetAttributeValue.
// Membership is the member record of the caller's MSP on the channel's ledger
// (internal/members; one GetState per call).
// What fails when: no parsable identity -> *NoIdentityError; MSP not a
// registered member of the channel -> *NotMemberError; attribute missing,
// unknown or not in the allowed set -> *RoleError; wrong org -> *OrgError.
// All are ACCESS_DENIED.
//
// The peer already rejects identities not issued by a channel MSP; this helper
// narrows that to the registries that registered on the channel, and to roles.
package access

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/cid"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/members"
)

// RoleAttribute is the certificate attribute carrying the caller's role.
const RoleAttribute = "synthreg.role"

// Role is an application role inside a registry.
type Role string

// The roles of DESIGN.md §2.
const (
	RoleAdmin         Role = "admin"
	RoleGenerator     Role = "generator"
	RoleDiscriminator Role = "discriminator"
	RoleMerger        Role = "merger"
	RoleAuditor       Role = "auditor"
)

// AllRoles lists every known role; Require(ctx, AllRoles...) admits any
// consortium app.
var AllRoles = []Role{RoleAdmin, RoleGenerator, RoleDiscriminator, RoleMerger, RoleAuditor}

func knownRole(r Role) bool {
	for _, k := range AllRoles {
		if k == r {
			return true
		}
	}
	return false
}

// Caller is the authenticated, authorised identity of a transaction.
type Caller struct {
	MSPID   string
	Role    Role
	ID      string // cid GetID: base64("x509::<subject DN>::<issuer DN>")
	Subject string // certificate subject DN (RFC 2253 string)
}

// NoIdentityError: the transaction carries no parsable X.509 identity.
type NoIdentityError struct{ Reason string }

func (e *NoIdentityError) Error() string {
	return fmt.Sprintf("%s: caller identity unavailable: %s", ccerr.CodeAccessDenied, e.Reason)
}

// Code implements ccerr.Coded.
func (e *NoIdentityError) Code() ccerr.Code { return ccerr.CodeAccessDenied }

// NotMemberError: the caller's MSP has no member record on the channel.
type NotMemberError struct {
	MSPID   string
	Channel string
}

func (e *NotMemberError) Error() string {
	return fmt.Sprintf("%s: MSP %q is not a registered member of channel %s: its admin must call RegisterMember first",
		ccerr.CodeAccessDenied, e.MSPID, e.Channel)
}

// Code implements ccerr.Coded.
func (e *NotMemberError) Code() ccerr.Code { return ccerr.CodeAccessDenied }

// RoleError: the caller's role attribute is missing, unknown or not allowed.
type RoleError struct {
	MSPID   string
	Role    string // "" when the attribute is missing
	Allowed []Role
}

func (e *RoleError) Error() string {
	allowed := make([]string, len(e.Allowed))
	for i, r := range e.Allowed {
		allowed[i] = string(r)
	}
	role := e.Role
	if role == "" {
		role = "<no " + RoleAttribute + " attribute>"
	}
	return fmt.Sprintf("%s: caller %s role %q not allowed (allowed: %s)",
		ccerr.CodeAccessDenied, e.MSPID, role, strings.Join(allowed, ","))
}

// Code implements ccerr.Coded.
func (e *RoleError) Code() ccerr.Code { return ccerr.CodeAccessDenied }

// OrgError: the caller is a consortium member but not of the org the action
// requires (e.g. reading another org's share).
type OrgError struct {
	MSPID    string
	Role     Role
	Required string // required MSP ID
	Action   string
}

func (e *OrgError) Error() string {
	return fmt.Sprintf("%s: caller %s role %q may not %s: only %s may",
		ccerr.CodeAccessDenied, e.MSPID, e.Role, e.Action, e.Required)
}

// Code implements ccerr.Coded.
func (e *OrgError) Code() ccerr.Code { return ccerr.CodeAccessDenied }

// Identify reads MSP ID, role and certificate of the caller and checks that
// the role is a known one. It checks neither membership nor the role against
// an allowed set (Require does both).
func Identify(ci cid.ClientIdentity) (Caller, error) {
	// contract-api stores a typed nil *cid.ClientID when the creator cannot be
	// parsed, so a plain nil check is not enough.
	if ci == nil || isNilPointer(ci) {
		return Caller{}, &NoIdentityError{Reason: "no parsable client identity in the transaction"}
	}
	mspID, err := ci.GetMSPID()
	if err != nil {
		return Caller{}, &NoIdentityError{Reason: err.Error()}
	}
	cert, err := ci.GetX509Certificate()
	if err != nil || cert == nil {
		return Caller{}, &NoIdentityError{Reason: "caller of " + mspID + " has no X.509 certificate"}
	}
	id, err := ci.GetID()
	if err != nil {
		return Caller{}, &NoIdentityError{Reason: err.Error()}
	}
	value, found, err := ci.GetAttributeValue(RoleAttribute)
	if err != nil {
		return Caller{}, &NoIdentityError{Reason: "reading " + RoleAttribute + ": " + err.Error()}
	}
	role := Role(value)
	if !found || !knownRole(role) {
		return Caller{}, &RoleError{MSPID: mspID, Role: value, Allowed: AllRoles}
	}
	return Caller{MSPID: mspID, Role: role, ID: id, Subject: cert.Subject.String()}, nil
}

func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// Require identifies the caller and admits it only when its MSP is a
// registered member of the channel (*NotMemberError otherwise) and only with
// one of roles (none given = any known role).
func Require(ctx contractapi.TransactionContextInterface, roles ...Role) (Caller, error) {
	caller, err := Identify(ctx.GetClientIdentity())
	if err != nil {
		return Caller{}, err
	}
	stub := ctx.GetStub()
	ok, err := members.IsMember(stub, caller.MSPID)
	if err != nil {
		return Caller{}, err
	}
	if !ok {
		return Caller{}, &NotMemberError{MSPID: caller.MSPID, Channel: stub.GetChannelID()}
	}
	return requireRole(caller, roles)
}

// requireRole admits caller only with one of roles (none = any known role).
func requireRole(caller Caller, roles []Role) (Caller, error) {
	if len(roles) == 0 {
		return caller, nil
	}
	for _, r := range roles {
		if caller.Role == r {
			return caller, nil
		}
	}
	allowed := append([]Role(nil), roles...)
	sort.Slice(allowed, func(i, j int) bool { return allowed[i] < allowed[j] })
	return Caller{}, &RoleError{MSPID: caller.MSPID, Role: string(caller.Role), Allowed: allowed}
}

// RequireOrg returns an *OrgError unless caller belongs to mspID.
func RequireOrg(caller Caller, mspID, action string) error {
	if caller.MSPID != mspID {
		return &OrgError{MSPID: caller.MSPID, Role: caller.Role, Required: mspID, Action: action}
	}
	return nil
}
