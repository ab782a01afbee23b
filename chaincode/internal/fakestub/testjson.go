package fakestub

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
)

// Decode unmarshals a chaincode's JSON result into a T, failing the test
// (with the start of the payload) when it does not decode.
func Decode[T any](t testing.TB, raw []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoding %.300q: %v", raw, err)
	}
	return v
}

// SHA256Hex is the lowercase hex sha256 of b, the hash format the chaincodes store.
func SHA256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
