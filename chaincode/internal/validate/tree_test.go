package validate

import (
	"errors"
	"strings"
	"testing"

	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
)

func TestStrictTreeAcceptsNestedDocumentsAndNullsInNullableFields(t *testing.T) {
	for _, raw := range []string{
		`{}`,
		` {"a": [1, 2.5e3, "x", true, {"b": {}}], "c": {"d": null, "e": [null]}} `,
		`{"c": null}`,
		`{"a": {"x": 1}, "c": {"x": 1}, "d": [{"x": 1}, {"x": 2}]}`, // same key in sibling objects
		`{"s": "<>&\u00e9é\n"}`,
	} {
		if err := StrictTree("doc", []byte(raw), "c"); err != nil {
			t.Errorf("%s refused: %v", raw, err)
		}
	}
}

func TestStrictTreeRefusesDuplicatesNullsBadUTF8AndMalformed(t *testing.T) {
	for raw, wantArg := range map[string]string{
		`{"a": 1, "a": 2}`:                   "doc",
		`{"a": {"b": 1, "b": 1}}`:            "doc.a",
		`{"c": {"b": 1, "b": 1}}`:            "doc.c", // nullable does not mean lax
		`{"a": [{"b": [{"x": 1, "x": 1}]}]}`: "doc.a[0].b[0]",
		`{"a": null}`:                        "doc.a",
		`{"a": [1, null]}`:                   "doc.a[1]",
		`{"a": {"c": null}}`:                 "doc.a.c", // only the top-level field c is nullable
		"{\"a\": \"\xff\"}":                  "doc",
		`{"a": 1`:                            "doc",
		`{"a": 1} {}`:                        "doc",
		`{"a": 1}]`:                          "doc",
		``:                                   "doc",
	} {
		var ia *ccerr.InvalidArgumentError
		if err := StrictTree("doc", []byte(raw), "c"); !errors.As(err, &ia) || ia.Arg != wantArg {
			t.Errorf("%q: got %v, want INVALID_ARGUMENT on %q", raw, err, wantArg)
		}
	}
}

func TestText(t *testing.T) {
	for _, ok := range []string{"a", strings.Repeat("é", 4), "<&>"} {
		if err := Text("t", ok, 1, 4); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for bad, part := range map[string]string{"": "0 characters", strings.Repeat("é", 5): "5 characters", "a\xff": "UTF-8"} {
		var ia *ccerr.InvalidArgumentError
		if err := Text("t", bad, 1, 4); !errors.As(err, &ia) || ia.Arg != "t" || !strings.Contains(err.Error(), part) {
			t.Errorf("%q: got %v, want INVALID_ARGUMENT mentioning %q", bad, err, part)
		}
	}
}
