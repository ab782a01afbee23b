package ganledger

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/synthreg/synthreg/chaincode/internal/sbe"
)

// ownerOf names the registry whose peer must endorse changes of a state key
// (internal/sbe), "" for shared keys (run documents, aggregation config,
// round status, votes, blobs).
func ownerOf(t *testing.T, key string, value []byte) string {
	t.Helper()
	parts := strings.Split(strings.Trim(key, "\x00"), "\x00")
	switch parts[0] {
	case objStepHead, objStepGenerator, objStepDiscrimin, objStepStop, objStepFault, objStepUpdate:
		return parts[2]
	case objAggAdvert, objAggShares, objAggSubmission, objAggReveal, objAggResult:
		return parts[3]
	case objRecord:
		var rec Record
		if err := json.Unmarshal(value, &rec); err != nil {
			t.Fatal(err)
		}
		return rec.MSPID
	}
	return ""
}

// Issue 10 attack 5: every key that belongs to one registry carries the
// key-level policy "that registry's peer", so a later change of it cannot be
// validated with the other registries' endorsements alone.
func TestRegistryKeysAreBoundToTheirPeer(t *testing.T) {
	s := newSteps(t)
	s.open(3, 2, 60)
	s.toShared("0", []int{1, 2, 3}, []int{1, 2, 3})
	for n := 1; n <= 2; n++ {
		s.complete(n, 0, 0)
		s.complete(n, 0, 1) // an update of the (bound) head
		s.ok(s.update(n, updateArg(n, 0, 1)))
		s.ok(s.call(s.d(n), "RecordFault", testRun, toJSON(t, faultArg(0, 1, "fake_hash_mismatch"))))
		s.ok(s.stop(n, 0, 1))
		s.ok(s.call(s.m(n), "PutRecord", "run/other/round/0/"+msp(n), `{"round":0}`))
	}
	s.ok(s.call(s.as(msp(3), "admin"), "PutRecord", "notes/x", `{"v":1}`))
	owned := map[string]int{}
	for key, value := range s.ledger.State {
		owner := ownerOf(t, key, value)
		got := s.ledger.Validation[key]
		if owner == "" {
			if got != nil {
				t.Errorf("shared key %q has a key-level policy", key)
			}
			continue
		}
		want, err := sbe.Policy(owner)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("key %q: key-level policy %x, want %s's peer", key, got, owner)
		}
		owned[owner]++
	}
	// per registry 1, 2: head, 2 G, 2 D, update, fault, stop, record, advert, shares; Registry3: advert, shares, a record
	if owned[msp(1)] != 11 || owned[msp(2)] != 11 || owned[msp(3)] != 3 {
		t.Fatalf("bound keys per registry %v", owned)
	}
}
