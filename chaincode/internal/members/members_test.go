package members

import (
	"strings"
	"testing"
)

func TestValidMSPID(t *testing.T) {
	for _, ok := range []string{"Registry1MSP", "Registry12MSP", "Org1MSP", "HospitalA-MSP", "x", "a_b", strings.Repeat("A", 64)} {
		if !ValidMSPID(ok) {
			t.Errorf("%q rejected", ok)
		}
	}
	for _, bad := range []string{"", "-MSP", "_implicit", "org1.example.com", "a/b", "a b", "a\x00b", strings.Repeat("A", 65)} {
		if ValidMSPID(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := CheckMSPID("org", "a/b"); err == nil || !strings.HasPrefix(err.Error(), `INVALID_ARGUMENT: argument "org"`) {
		t.Fatalf("CheckMSPID: %v", err)
	}
}
