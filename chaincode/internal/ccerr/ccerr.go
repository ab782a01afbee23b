// Package ccerr defines the typed errors every synthreg chaincode returns.
//
// Who calls: the contracts in ganledger/ and keyvault/ and the access helper.
// Where it goes: contract-api turns a returned error into a shim.Error, so the
// peer sends only the message string back to the client (Python Gateway client,
// synthreg.ledger). Every message therefore starts with a stable upper-case code
// followed by ": " (e.g. "ALREADY_EXISTS: record \"k1\" already exists"), so a
// client can map the string back to a typed exception without parsing prose.
// Inside Go, callers use errors.As on the concrete types below.
package ccerr

import "fmt"

// Code is the stable, machine-readable prefix of a chaincode error message.
type Code string

// Codes, one per failure kind.
const (
	CodeAccessDenied       Code = "ACCESS_DENIED"
	CodeInvalidArgument    Code = "INVALID_ARGUMENT"
	CodeAlreadyExists      Code = "ALREADY_EXISTS"
	CodeNotFound           Code = "NOT_FOUND"
	CodePreconditionFailed Code = "PRECONDITION_FAILED"
	CodeInternal           Code = "INTERNAL"
)

// Coded is implemented by every error of this package.
type Coded interface {
	error
	Code() Code
}

// InvalidArgumentError: an argument or transient value failed validation.
// Nothing was written.
type InvalidArgumentError struct {
	Arg    string // argument or transient key name
	Reason string
}

func (e *InvalidArgumentError) Error() string {
	return fmt.Sprintf("%s: argument %q: %s", CodeInvalidArgument, e.Arg, e.Reason)
}

// Code implements Coded.
func (e *InvalidArgumentError) Code() Code { return CodeInvalidArgument }

// AlreadyExistsError: a write-once entry (record, ceremony, share, release)
// exists already. Nothing was written.
type AlreadyExistsError struct {
	What string // kind of entry, e.g. "record", "ceremony"
	Key  string
}

func (e *AlreadyExistsError) Error() string {
	return fmt.Sprintf("%s: %s %q already exists and is immutable", CodeAlreadyExists, e.What, e.Key)
}

// Code implements Coded.
func (e *AlreadyExistsError) Code() Code { return CodeAlreadyExists }

// NotFoundError: the requested entry does not exist (in the public state or in
// the named private collection on this peer).
type NotFoundError struct {
	What string
	Key  string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s: %s %q not found", CodeNotFound, e.What, e.Key)
}

// Code implements Coded.
func (e *NotFoundError) Code() Code { return CodeNotFound }

// PreconditionError: the call is valid but the ledger is not in the state it
// requires (e.g. a share before the ceremony). Nothing was written.
type PreconditionError struct {
	Reason string
}

func (e *PreconditionError) Error() string {
	return fmt.Sprintf("%s: %s", CodePreconditionFailed, e.Reason)
}

// Code implements Coded.
func (e *PreconditionError) Code() Code { return CodePreconditionFailed }

// InternalError wraps a stub/ledger failure (state read/write, event). Cause is
// kept for errors.Unwrap.
type InternalError struct {
	Op    string
	Cause error
}

func (e *InternalError) Error() string {
	return fmt.Sprintf("%s: %s: %v", CodeInternal, e.Op, e.Cause)
}

// Code implements Coded.
func (e *InternalError) Code() Code { return CodeInternal }

// Unwrap returns the cause.
func (e *InternalError) Unwrap() error { return e.Cause }

// Internal wraps a stub error with the operation that failed.
func Internal(op string, cause error) error {
	return &InternalError{Op: op, Cause: cause}
}
