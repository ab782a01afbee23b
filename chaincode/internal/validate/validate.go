// Package validate holds the argument checks shared by the synthreg contracts.
//
// Who calls: contract functions, before authorisation and before any read or
// write. Every failure is a *ccerr.InvalidArgumentError naming the argument.
package validate

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
)

// KeyPattern is the syntax of application keys (record keys, private keys,
// auditor ids): printable, no NUL (composite key separator), at most 256.
const KeyPattern = `^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,255}$`

var keyRE = regexp.MustCompile(KeyPattern)

// Key checks an application key.
func Key(arg, key string) error {
	if !keyRE.MatchString(key) {
		return &ccerr.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf("%q does not match %s", key, KeyPattern)}
	}
	return nil
}

// JSONObject checks that raw is one JSON object of at most maxBytes and
// returns it compacted (key order kept).
func JSONObject(arg string, raw []byte, maxBytes int) ([]byte, error) {
	if len(raw) == 0 {
		return nil, &ccerr.InvalidArgumentError{Arg: arg, Reason: "empty"}
	}
	if len(raw) > maxBytes {
		return nil, &ccerr.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf("%d bytes exceeds the limit of %d", len(raw), maxBytes)}
	}
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&obj); err != nil {
		return nil, &ccerr.InvalidArgumentError{Arg: arg, Reason: "not a JSON object: " + err.Error()}
	}
	if dec.More() {
		return nil, &ccerr.InvalidArgumentError{Arg: arg, Reason: "trailing data after the JSON object"}
	}
	if obj == nil {
		return nil, &ccerr.InvalidArgumentError{Arg: arg, Reason: "not a JSON object: null"}
	}
	var out bytes.Buffer
	if err := json.Compact(&out, bytes.TrimSpace(raw)); err != nil {
		return nil, &ccerr.InvalidArgumentError{Arg: arg, Reason: "not valid JSON: " + err.Error()}
	}
	return out.Bytes(), nil
}

// Strict decodes one JSON object into v, refusing unknown fields and trailing data.
func Strict(arg string, raw []byte, maxBytes int, v any) error {
	if len(raw) > maxBytes {
		return &ccerr.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf("%d bytes exceeds the limit of %d", len(raw), maxBytes)}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &ccerr.InvalidArgumentError{Arg: arg, Reason: "malformed JSON: " + err.Error()}
	}
	if dec.More() {
		return &ccerr.InvalidArgumentError{Arg: arg, Reason: "trailing data after the JSON object"}
	}
	return nil
}

// SHA256Hex checks a lower-case hex SHA-256 digest (64 characters).
func SHA256Hex(arg, s string) error {
	if len(s) != 64 || s != hexLower(s) {
		return &ccerr.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf("%q is not a lower-case hex SHA-256 digest", s)}
	}
	if _, err := hex.DecodeString(s); err != nil {
		return &ccerr.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf("%q is not hex", s)}
	}
	return nil
}

func hexLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'F' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Base64 decodes standard, padded base64 and checks the decoded length.
func Base64(arg, s string, minBytes, maxBytes int) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, &ccerr.InvalidArgumentError{Arg: arg, Reason: "not standard base64: " + err.Error()}
	}
	if len(b) < minBytes || len(b) > maxBytes {
		return nil, &ccerr.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf("decoded length %d outside [%d, %d]", len(b), minBytes, maxBytes)}
	}
	return b, nil
}
