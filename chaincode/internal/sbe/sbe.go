// Package sbe binds a world-state key to the registry that owns it with a
// key-level (state-based) endorsement policy: AND('<MSP>.peer').
//
// Who calls: the ganledger write functions, for every key that belongs to one
// registry (its step records and head, local updates, faults, the records it
// puts, its per-party secure-aggregation entries), right where they write it.
//
// What it protects, by Fabric's validation rule (core/common/validation/
// statebased): a write (or delete, or metadata change) of a key that already
// carries a validation parameter in committed state must satisfy that
// parameter instead of the chaincode's policy. So once a registry's key is
// committed, any later change to it needs an endorsement by that registry's
// peer, whatever chaincode the other peers run. What it does NOT protect: the
// creation of a key that does not exist yet is validated against the
// chaincode policy (MAJORITY) only, and the parameter the creating
// transaction sets is the creator's choice; a majority running modified
// chaincode can therefore create a key in another registry's name (and bind
// it to itself). That case is left to the auditor, which checks each record's
// transaction (creator and endorsers, services/synthreg/trail/txcheck.py).
package sbe

import (
	"bytes"
	"fmt"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/statebased"
	"github.com/hyperledger/fabric-chaincode-go/v2/shim"

	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
)

// Policy returns the serialized SignaturePolicyEnvelope "one signature of a
// peer of msp" (AND('<msp>.peer'); peers carry the peer OU: NodeOUs are on).
func Policy(msp string) ([]byte, error) {
	ep, err := statebased.NewStateEP(nil)
	if err != nil {
		return nil, ccerr.Internal("building key-level policy", err)
	}
	if err := ep.AddOrgs(statebased.RoleTypePeer, msp); err != nil {
		return nil, ccerr.Internal("building key-level policy for "+msp, err)
	}
	raw, err := ep.Policy()
	if err != nil {
		return nil, ccerr.Internal("encoding key-level policy for "+msp, err)
	}
	return raw, nil
}

// Bind makes each key require msp's peer endorsement for every later change.
// It reads a key's committed validation parameter and sets it only when it
// differs (a new key, or a key written before this rule), so an update of a
// bound key (a registry's step head) writes no metadata again.
func Bind(stub shim.ChaincodeStubInterface, msp string, keys ...string) error {
	want, err := Policy(msp)
	if err != nil {
		return err
	}
	for _, key := range keys {
		have, err := stub.GetStateValidationParameter(key)
		if err != nil {
			return ccerr.Internal(fmt.Sprintf("reading validation parameter of %q", key), err)
		}
		if bytes.Equal(have, want) {
			continue
		}
		if err := stub.SetStateValidationParameter(key, want); err != nil {
			return ccerr.Internal(fmt.Sprintf("setting validation parameter of %q", key), err)
		}
	}
	return nil
}
