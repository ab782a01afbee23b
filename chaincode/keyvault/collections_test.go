package keyvault

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestCommittedCollectionsConfigMatchesGenerator(t *testing.T) {
	committed, err := os.ReadFile("collections_config.json")
	if err != nil {
		t.Fatal(err)
	}
	want, err := CollectionsJSON(ConsortiumMSPs(3))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, want) {
		t.Fatalf("collections_config.json is stale; regenerate with: go run ./cmd/kvcollections -n 3 > keyvault/collections_config.json")
	}
	var cfg []CollectionConfig
	if err := json.Unmarshal(committed, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg {
		org := strings.TrimPrefix(c.Name, CollectionPrefix)
		if c.Policy != "OR('"+org+".member')" || c.EndorsementPolicy.SignaturePolicy != "OR('"+org+".peer')" ||
			!c.MemberOnlyRead || c.MemberOnlyWrite || c.BlockToLive != 0 || c.RequiredPeerCount != 0 || c.MaxPeerCount != 0 {
			t.Fatalf("collection %+v", c)
		}
	}
}

func TestCollectionsForRejectsBadInput(t *testing.T) {
	for _, msps := range [][]string{nil, {"Registry1MSP", "Registry1MSP"}, {"org1.example.com"}, {"a/b"}} {
		if _, err := CollectionsFor(msps); err == nil {
			t.Fatalf("CollectionsFor(%v) accepted", msps)
		}
	}
	cfg, err := CollectionsFor(ConsortiumMSPs(5))
	if err != nil || len(cfg) != 5 || cfg[4].Name != "shares_Registry5MSP" {
		t.Fatalf("5 orgs: %v %+v", err, cfg)
	}
}
