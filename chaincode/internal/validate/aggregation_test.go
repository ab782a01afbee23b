package validate

import (
	"errors"
	"strings"
	"testing"

	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
)

func TestRoundAcceptsCanonicalDecimalsOnly(t *testing.T) {
	for s, want := range map[string]int{"0": 0, "7": 7, "1000000": 1_000_000, "999999": 999_999} {
		if got, err := Round("round", s); err != nil || got != want {
			t.Errorf("%q = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "+1", "01", "00", "1000001", "1e3", " 1", "1.0", "x", "99999999999999999999"} {
		var ia *ccerr.InvalidArgumentError
		if _, err := Round("round", bad); !errors.As(err, &ia) || ia.Arg != "round" {
			t.Errorf("%q accepted or untyped: %v", bad, err)
		}
	}
}

func TestCanonicalBase64(t *testing.T) {
	if b, err := CanonicalBase64("k", "AAEC", 3, 3); err != nil || string(b) != "\x00\x01\x02" {
		t.Fatalf("%q %v", b, err)
	}
	for _, bad := range []string{"AAE", "AAEC\n", "AAF=", "AAE=", "!!!!", "AAECAw=="} {
		if _, err := CanonicalBase64("k", bad, 3, 3); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestStringMap(t *testing.T) {
	m, err := StringMap("m", []byte(` {"b": "2", "a": "1"} `), 100)
	if err != nil || len(m) != 2 || m["a"] != "1" || m["b"] != "2" {
		t.Fatalf("%v %v", m, err)
	}
	if m, err := StringMap("m", []byte(`{}`), 100); err != nil || len(m) != 0 {
		t.Fatalf("empty object: %v %v", m, err)
	}
	cases := map[string]string{
		`{"a":"1","a":"2"}`: "duplicate",
		`{"a":1}`:           "not a JSON string",
		`{"a":{"b":"c"}}`:   "not a JSON string",
		`null`:              "not a JSON object",
		`["a"]`:             "not a JSON object",
		`{"a":"1"}}`:        "trailing",
		`{"a":"1"} x`:       "trailing",
		`{"a":"1"`:          "malformed",
		``:                  "not a JSON object",
		`{"a":"` + strings.Repeat("x", 100) + `"}`: "limit",
	}
	for raw, part := range cases {
		_, err := StringMap("m", []byte(raw), 100)
		var ia *ccerr.InvalidArgumentError
		if !errors.As(err, &ia) || ia.Arg != "m" || !strings.Contains(err.Error(), part) {
			t.Errorf("%q: %v, want INVALID_ARGUMENT mentioning %q", raw, err, part)
		}
	}
}

func TestTransient(t *testing.T) {
	tm := map[string][]byte{"blob": []byte("abc"), "empty": {}}
	if v, err := Transient(tm, "blob", 3, "why"); err != nil || string(v) != "abc" {
		t.Fatalf("Transient = %q, %v", v, err)
	}
	for _, c := range []struct {
		name string
		max  int
		want string
	}{{"absent", 3, "missing or empty (why)"}, {"empty", 3, "missing or empty"}, {"blob", 2, "3 bytes exceeds the limit of 2"}} {
		_, err := Transient(tm, c.name, c.max, "why")
		if err == nil || !strings.Contains(err.Error(), "transient:"+c.name) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("Transient(%s, %d) = %v, want %q", c.name, c.max, err, c.want)
		}
	}
}
