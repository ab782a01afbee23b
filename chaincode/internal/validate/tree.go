package validate

// Validators added for the training runs of ganledger (chaincode/spec/runs.md):
// a document whose exact bytes are stored and hashed must have exactly one
// reading at every depth, not only at its top level (which Complete checks),
// and free text must be UTF-8 within a character limit. Same contract as the
// rest of this package: every failure is a *ccerr.InvalidArgumentError naming
// the argument (or "argument.field..." down to the offending value).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
)

// StrictTree checks the whole JSON document raw for what encoding/json lets
// through silently below the top level: a duplicate object key at any depth
// (Go keeps the last, other parsers the first, so two readers of the same
// hashed bytes would see different values), null anywhere except inside the
// top-level fields named in nullableUnder (opaque sub-documents whose nulls
// are the client's business; Go decodes a null list element into its zero
// value), bytes that are not UTF-8 (Go replaces them, so the decoded text
// would differ from the stored bytes), malformed JSON and trailing data.
// Errors name the path of the offending value, e.g. "specJSON.config.lr" or
// "specJSON.audit_rounds[2]".
func StrictTree(arg string, raw []byte, nullableUnder ...string) error {
	if !utf8.Valid(raw) {
		return &ccerr.InvalidArgumentError{Arg: arg, Reason: "not valid UTF-8"}
	}
	w := treeWalker{dec: json.NewDecoder(bytes.NewReader(raw)), arg: arg, nullable: map[string]bool{}}
	w.dec.UseNumber() // numbers are only checked for syntax, never converted
	for _, name := range nullableUnder {
		w.nullable[name] = true
	}
	if err := w.value(arg, true, false); err != nil {
		return err
	}
	if _, err := w.dec.Token(); !errors.Is(err, io.EOF) {
		return &ccerr.InvalidArgumentError{Arg: arg, Reason: "trailing data after the JSON document"}
	}
	return nil
}

// treeWalker reads one JSON document token by token (StrictTree).
type treeWalker struct {
	dec      *json.Decoder
	arg      string
	nullable map[string]bool // top-level fields under which null is allowed
}

// token reads the next token; a syntax error is reported on the argument.
func (w *treeWalker) token() (json.Token, error) {
	tok, err := w.dec.Token()
	if err != nil {
		return nil, &ccerr.InvalidArgumentError{Arg: w.arg, Reason: "malformed JSON: " + err.Error()}
	}
	return tok, nil
}

// value checks the value starting at the next token, found at path; top is
// true for the document itself, nullOK inside a nullable field.
func (w *treeWalker) value(path string, top, nullOK bool) error {
	tok, err := w.token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case nil:
		if !nullOK {
			return &ccerr.InvalidArgumentError{Arg: path, Reason: "null"}
		}
	case json.Delim:
		if t == '{' {
			return w.object(path, top, nullOK)
		}
		for i := 0; w.dec.More(); i++ { // t == '[' (the decoder never starts a value with a closing delimiter)
			if err := w.value(fmt.Sprintf("%s[%d]", path, i), false, nullOK); err != nil {
				return err
			}
		}
		_, err = w.token() // ']'
		return err
	}
	return nil
}

// object checks the members of an object whose '{' was just read.
func (w *treeWalker) object(path string, top, nullOK bool) error {
	seen := map[string]bool{}
	for w.dec.More() {
		kt, err := w.token()
		if err != nil {
			return err
		}
		name, _ := kt.(string) // object keys are always strings
		if seen[name] {
			return &ccerr.InvalidArgumentError{Arg: path, Reason: fmt.Sprintf("duplicate field %q", name)}
		}
		seen[name] = true
		if err := w.value(path+"."+name, false, nullOK || (top && w.nullable[name])); err != nil {
			return err
		}
	}
	_, err := w.token() // '}'
	return err
}

// Text checks that s is valid UTF-8 of minChars..maxChars characters
// (Unicode code points, not bytes).
func Text(arg, s string, minChars, maxChars int) error {
	if !utf8.ValidString(s) {
		return &ccerr.InvalidArgumentError{Arg: arg, Reason: "not valid UTF-8"}
	}
	if n := utf8.RuneCountInString(s); n < minChars || n > maxChars {
		return &ccerr.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf("%d characters outside [%d, %d]", n, minChars, maxChars)}
	}
	return nil
}
