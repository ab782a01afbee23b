package validate

import (
	"errors"
	"math"
	"testing"

	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
)

type sample struct {
	A int     `json:"a"`
	B string  `json:"b"`
	C float64 `json:"c,omitempty"`
}

func TestCompleteAcceptsEveryRequiredFieldOnce(t *testing.T) {
	var s sample
	if err := Complete("x", []byte(` {"b": "q", "a": 3} `), 100, &s); err != nil || s.A != 3 || s.B != "q" {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestCompleteRefusesDuplicateMissingNullUnknownAndOversized(t *testing.T) {
	for raw, wantArg := range map[string]string{
		`{"a": 1, "b": "q", "a": 2}`: "x",
		`{"a": 1}`:                   "x.b",
		`{"a": null, "b": "q"}`:      "x.a",
		`{"a": 1, "b": "q", "z": 0}`: "x",
		`{"a": 1.5, "b": "q"}`:       "x",
		`[1]`:                        "x",
		`{"a": 1, "b": "q"} {}`:      "x",
		`{"a": 1, "b": "q", "c": 1}`: "", // omitempty field may be present: accepted
		`{"a": 1, "b": "` + string(make([]byte, 100)) + `"}`: "x",
	} {
		var s sample
		err := Complete("x", []byte(raw), 100, &s)
		if wantArg == "" {
			if err != nil {
				t.Errorf("%.40q refused: %v", raw, err)
			}
			continue
		}
		var ia *ccerr.InvalidArgumentError
		if !errors.As(err, &ia) || ia.Arg != wantArg {
			t.Errorf("%.40q: got %v, want INVALID_ARGUMENT on %q", raw, err, wantArg)
		}
	}
}

func TestIntRangeAndBounded(t *testing.T) {
	if IntRange("r", 0, 0, 5) != nil || IntRange("r", 5, 0, 5) != nil || IntRange("r", 6, 0, 5) == nil || IntRange("r", -1, 0, 5) == nil {
		t.Fatal("IntRange bounds wrong")
	}
	if Bounded("l", -1e12, 1e12) != nil || Bounded("l", 0.5, 1e12) != nil {
		t.Fatal("Bounded refused a valid value")
	}
	for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1.0000001e12, -2e12} {
		if Bounded("l", x, 1e12) == nil {
			t.Errorf("%v accepted", x)
		}
	}
}
