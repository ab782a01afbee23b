package validate

// Validators added for the per-iteration step records of ganledger
// (DESIGN.md §3, chaincode/spec/steps.md): a strict JSON object decoder that also
// refuses duplicate, null and missing fields, and numeric range checks. Same
// contract as the rest of this package: every failure is a
// *ccerr.InvalidArgumentError naming the argument (or "argument.field").

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
)

// Complete is Strict for a struct whose JSON fields are all required: raw
// must be one JSON object with every field of *v (by its json tag, fields
// tagged omitempty excepted) present exactly once and none null, and no
// other field. encoding/json alone would keep the last of two duplicate
// keys and leave a missing or null field at its zero value; both would let
// two spellings of one argument store different records.
func Complete(arg string, raw []byte, maxBytes int, v any) error {
	if len(raw) > maxBytes {
		return &ccerr.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf("%d bytes exceeds the limit of %d", len(raw), maxBytes)}
	}
	seen, err := topLevelFields(arg, raw)
	if err != nil {
		return err
	}
	if err := Strict(arg, raw, maxBytes, v); err != nil {
		return err
	}
	for _, name := range requiredFields(v) {
		if !seen[name] {
			return &ccerr.InvalidArgumentError{Arg: arg + "." + name, Reason: "missing"}
		}
	}
	return nil
}

// topLevelFields returns the set of field names of the JSON object raw,
// refusing a non-object, a duplicate name and a null value.
func topLevelFields(arg string, raw []byte) (map[string]bool, error) {
	bad := func(a, reason string) error { return &ccerr.InvalidArgumentError{Arg: a, Reason: reason} }
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, bad(arg, "not a JSON object: "+err.Error())
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, bad(arg, fmt.Sprintf("not a JSON object (starts with %v)", tok))
	}
	seen := map[string]bool{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, bad(arg, "malformed JSON object: "+err.Error())
		}
		name, _ := kt.(string) // object keys are always strings
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, bad(arg, "malformed JSON object: "+err.Error())
		}
		if seen[name] {
			return nil, bad(arg, fmt.Sprintf("duplicate field %q", name))
		}
		if string(value) == "null" {
			return nil, bad(arg+"."+name, "null")
		}
		seen[name] = true
	}
	return seen, nil
}

// requiredFields lists the JSON names of the exported fields of the struct
// v points to, except those tagged omitempty.
func requiredFields(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || strings.Contains(opts, "omitempty") {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

// IntRange checks lo <= x <= hi.
func IntRange(arg string, x, lo, hi int64) error {
	if x < lo || x > hi {
		return &ccerr.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf("%d outside [%d, %d]", x, lo, hi)}
	}
	return nil
}

// Bounded checks that x is finite and |x| <= bound.
func Bounded(arg string, x, bound float64) error {
	if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > bound {
		return &ccerr.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf("%v is not a finite number with |x| <= %g", x, bound)}
	}
	return nil
}
