package validate

// Validators added for the secure-aggregation functions of ganledger
// (DESIGN.md §4, chaincode/spec/secagg.md): round numbers, canonical base64 and
// flat JSON string maps with duplicate-key detection. Same contract as the
// rest of this package: every failure is a *ccerr.InvalidArgumentError
// naming the argument (or "argument.field").

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
)

// MaxRound is the largest accepted aggregation round number.
const MaxRound = 1_000_000

// Round parses a round number given as a canonical decimal string
// ("0".."1000000", no sign, no leading zeros, so every round has exactly one
// spelling and therefore one state key).
func Round(arg, s string) (int, error) {
	bad := func(reason string) error {
		return &ccerr.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf("%q %s", s, reason)}
	}
	if s == "" || len(s) > 7 {
		return 0, bad(fmt.Sprintf("is not a decimal round number in [0, %d]", MaxRound))
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, bad("is not a decimal round number (digits only)")
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, bad("has leading zeros")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > MaxRound {
		return 0, bad(fmt.Sprintf("is outside [0, %d]", MaxRound))
	}
	return n, nil
}

// CanonicalBase64 is Base64 that also refuses every non-canonical spelling
// (embedded newlines, non-zero padding bits), so the stored text is exactly
// base64(decoded) and endorsements agree byte for byte.
func CanonicalBase64(arg, s string, minBytes, maxBytes int) ([]byte, error) {
	if len(s) > base64.StdEncoding.EncodedLen(maxBytes) {
		return nil, &ccerr.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf("%d base64 characters exceed the limit of %d decoded bytes", len(s), maxBytes)}
	}
	b, err := Base64(arg, s, minBytes, maxBytes)
	if err != nil {
		return nil, err
	}
	if base64.StdEncoding.EncodeToString(b) != s {
		return nil, &ccerr.InvalidArgumentError{Arg: arg, Reason: "not canonical standard base64 (padding, line breaks or trailing bits)"}
	}
	return b, nil
}

// StringMap decodes raw (at most maxBytes) as one JSON object whose values
// are all strings. Unlike encoding/json it refuses duplicate keys (which Go
// would silently resolve to the last one), null, and trailing data.
func StringMap(arg string, raw []byte, maxBytes int) (map[string]string, error) {
	if len(raw) > maxBytes {
		return nil, &ccerr.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf("%d bytes exceeds the limit of %d", len(raw), maxBytes)}
	}
	bad := func(reason string) error { return &ccerr.InvalidArgumentError{Arg: arg, Reason: reason} }
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, bad("not a JSON object: " + err.Error())
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, bad(fmt.Sprintf("not a JSON object (starts with %v)", tok))
	}
	out := map[string]string{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, bad("malformed JSON object: " + err.Error())
		}
		key, _ := kt.(string) // object keys are always strings
		vt, err := dec.Token()
		if err != nil {
			return nil, bad("malformed JSON object: " + err.Error())
		}
		val, ok := vt.(string)
		if !ok {
			return nil, bad(fmt.Sprintf("value of %q is not a JSON string", key))
		}
		if _, dup := out[key]; dup {
			return nil, bad(fmt.Sprintf("duplicate key %q", key))
		}
		out[key] = val
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, bad("malformed JSON object: " + err.Error())
	}
	if len(bytes.TrimSpace(raw[dec.InputOffset():])) != 0 {
		return nil, bad("trailing data after the JSON object")
	}
	return out, nil
}

// Transient returns the entry name of the transient map tm: present,
// non-empty and at most max bytes. why ends the refusal's reason (why the
// value travels in the transient map rather than as an argument).
func Transient(tm map[string][]byte, name string, max int, why string) ([]byte, error) {
	v, ok := tm[name]
	if !ok || len(v) == 0 {
		return nil, &ccerr.InvalidArgumentError{Arg: "transient:" + name, Reason: "missing or empty (" + why + ")"}
	}
	if len(v) > max {
		return nil, &ccerr.InvalidArgumentError{Arg: "transient:" + name, Reason: fmt.Sprintf("%d bytes exceeds the limit of %d", len(v), max)}
	}
	return v, nil
}
