package validate

import (
	"errors"
	"strings"
	"testing"

	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
)

func TestKey(t *testing.T) {
	for _, ok := range []string{"a", "round/1/step:7", "x@y.z", strings.Repeat("k", 256)} {
		if err := Key("k", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/lead", "sp ace", "nul\x00", strings.Repeat("k", 257), "é"} {
		var ia *ccerr.InvalidArgumentError
		if err := Key("key", bad); !errors.As(err, &ia) || ia.Arg != "key" {
			t.Errorf("%q accepted or untyped: %v", bad, err)
		}
	}
}

func TestJSONObjectCompactsAndRejects(t *testing.T) {
	out, err := JSONObject("v", []byte(" {\"b\": 1, \"a\": [1, 2]}\n"), 100)
	if err != nil || string(out) != `{"b":1,"a":[1,2]}` {
		t.Fatalf("%s %v", out, err)
	}
	for _, bad := range []string{"", "null", "[]", "1", `{"a":1}x`, `{"a":1}{}`, `{"a":`, `{"a":"` + strings.Repeat("x", 100) + `"}`} {
		if _, err := JSONObject("v", []byte(bad), 100); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestStrictRefusesUnknownFields(t *testing.T) {
	var v struct {
		A int `json:"a"`
	}
	if err := Strict("x", []byte(`{"a":1}`), 100, &v); err != nil || v.A != 1 {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"a":1,"b":2}`, `{"a":"1"}`, `{"a":1} 2`} {
		if err := Strict("x", []byte(bad), 100, &v); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDigestsAndBase64(t *testing.T) {
	if err := SHA256Hex("h", strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{strings.Repeat("AB", 32), strings.Repeat("a", 63), strings.Repeat("g", 64)} {
		if SHA256Hex("h", bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if b, err := Base64("b", "aGVsbG8=", 1, 5); err != nil || string(b) != "hello" {
		t.Fatal(b, err)
	}
	if _, err := Base64("b", "aGVsbG8=", 1, 4); err == nil {
		t.Fatal("length limit ignored")
	}
	if _, err := Base64("b", "aGVsbG8", 1, 9); err == nil {
		t.Fatal("unpadded base64 accepted")
	}
}
