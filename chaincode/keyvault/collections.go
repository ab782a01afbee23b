package keyvault

import (
	"encoding/json"
	"fmt"

	"github.com/synthreg/synthreg/chaincode/internal/members"
)

// CollectionConfig is one entry of the peer lifecycle --collections-config
// JSON (field names as the peer CLI expects them).
type CollectionConfig struct {
	Name              string            `json:"name"`
	Policy            string            `json:"policy"`
	RequiredPeerCount int               `json:"requiredPeerCount"`
	MaxPeerCount      int               `json:"maxPeerCount"`
	BlockToLive       int               `json:"blockToLive"`
	MemberOnlyRead    bool              `json:"memberOnlyRead"`
	MemberOnlyWrite   bool              `json:"memberOnlyWrite"`
	EndorsementPolicy EndorsementPolicy `json:"endorsementPolicy"`
}

// EndorsementPolicy is a collection-level endorsement policy.
type EndorsementPolicy struct {
	SignaturePolicy string `json:"signaturePolicy"`
}

// CollectionsFor returns the collections config of channel keys for the
// given org MSP IDs: one collection shares_<MSP> per org, members only that
// org, readable only by its members, writable by anyone (the ceremony host
// writes other orgs' shares), private writes endorsed by that org's peer
// only, kept forever, never disseminated beyond the endorsing peer.
// Used by cmd/kvcollections (the launcher) and to check collections_config.json.
func CollectionsFor(msps []string) ([]CollectionConfig, error) {
	if len(msps) == 0 {
		return nil, fmt.Errorf("collections: no MSP IDs given")
	}
	seen := map[string]bool{}
	out := make([]CollectionConfig, 0, len(msps))
	for _, msp := range msps {
		if !members.ValidMSPID(msp) {
			return nil, fmt.Errorf("collections: %q is not an MSP ID (%s)", msp, members.MSPIDPattern)
		}
		if seen[msp] {
			return nil, fmt.Errorf("collections: %q given twice", msp)
		}
		seen[msp] = true
		out = append(out, CollectionConfig{
			Name:              Collection(msp),
			Policy:            fmt.Sprintf("OR('%s.member')", msp),
			RequiredPeerCount: 0,
			MaxPeerCount:      0,
			BlockToLive:       0,
			MemberOnlyRead:    true,
			MemberOnlyWrite:   false,
			EndorsementPolicy: EndorsementPolicy{SignaturePolicy: fmt.Sprintf("OR('%s.peer')", msp)},
		})
	}
	return out, nil
}

// ConsortiumMSPs returns Registry1MSP .. Registry<n>MSP.
func ConsortiumMSPs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("Registry%dMSP", i+1)
	}
	return out
}

// CollectionsJSON renders CollectionsFor(msps) as indented JSON with a
// trailing newline (the format of collections_config.json).
func CollectionsJSON(msps []string) ([]byte, error) {
	cfg, err := CollectionsFor(msps)
	if err != nil {
		return nil, err
	}
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("collections: encoding: %w", err)
	}
	return append(raw, '\n'), nil
}
