package ganledger

import (
	"encoding/base64"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/state"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// RevealView is one survivor's reveal as GetRound shows it.
type RevealView struct {
	SeedShares map[string]string `json:"seed_shares"`
	KeyShares  map[string]string `json:"key_shares"`
}

// RoundView is the result of GetRound (wire spec field names). Maps are
// never null; encoding/json sorts map keys, lists have a defined order, so
// every endorser returns the same bytes.
type RoundView struct {
	Run         string                       `json:"run"`
	Round       int                          `json:"round"`
	Status      string                       `json:"status"` // open | frozen | void
	Advertised  map[string]Advert            `json:"advertised"`
	Shares      map[string]map[string]string `json:"shares"` // sender -> recipient -> b64
	Submissions map[string]Submission        `json:"submissions"`
	Survivors   []string                     `json:"survivors"` // U in submission order; [] while open
	Dropped     []string                     `json:"dropped"`   // D sorted; [] while open
	Reveals     map[string]RevealView        `json:"reveals"`
	Results     map[string]string            `json:"results"` // msp -> average_sha256
	Agreed      *bool                        `json:"agreed"`  // null until every member of U posted
	Mismatched  []string                     `json:"mismatched"`
}

// GetAggregation returns the stored run configuration (Aggregation JSON:
// the config plus run, opened_by, txid, timestamp); NOT_FOUND when absent.
// Any consortium role.
func (c *Contract) GetAggregation(ctx contractapi.TransactionContextInterface, run string) (string, error) {
	if err := validate.Key("run", run); err != nil {
		return "", err
	}
	if _, err := access.Require(ctx, access.AllRoles...); err != nil {
		return "", err
	}
	agg, err := loadAggregation(ctx.GetStub(), run)
	if err != nil {
		return "", err
	}
	return state.Marshal(agg)
}

// GetBlob returns the blob of run with SHA-256 sha256Hex as plain base64 text
// (not JSON); NOT_FOUND when absent. Any consortium role.
func (c *Contract) GetBlob(ctx contractapi.TransactionContextInterface, run string, sha256Hex string) (string, error) {
	if err := validate.Key("run", run); err != nil {
		return "", err
	}
	if err := validate.SHA256Hex("sha256Hex", sha256Hex); err != nil {
		return "", err
	}
	if _, err := access.Require(ctx, access.AllRoles...); err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	key, err := state.Key(stub, objAggBlob, run, sha256Hex)
	if err != nil {
		return "", err
	}
	data, err := stub.GetState(key)
	if err != nil {
		return "", ccerr.Internal("reading blob "+run+"/"+sha256Hex, err)
	}
	if data == nil {
		return "", &ccerr.NotFoundError{What: "blob", Key: run + "/" + sha256Hex}
	}
	return base64.StdEncoding.EncodeToString(data), nil
}

// GetRound returns everything recorded for run/round as a RoundView.
// NOT_FOUND when the run was never opened; a round with no entries is
// "open" with empty maps. Any consortium role.
func (c *Contract) GetRound(ctx contractapi.TransactionContextInterface, run string, round string) (string, error) {
	r, err := runAndRound(run, round)
	if err != nil {
		return "", err
	}
	if _, err := access.Require(ctx, access.AllRoles...); err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	if _, err := loadAggregation(stub, run); err != nil {
		return "", err
	}
	v := RoundView{
		Run: run, Round: r, Status: StatusOpen,
		Advertised: map[string]Advert{}, Shares: map[string]map[string]string{},
		Reveals: map[string]RevealView{}, Results: map[string]string{},
		Survivors: []string{}, Dropped: []string{}, Mismatched: []string{},
	}
	if err := rangeDecoded(stub, objAggAdvert, run, r, func(msp string, a Advert) { v.Advertised[msp] = a }); err != nil {
		return "", err
	}
	if err := rangeDecoded(stub, objAggShares, run, r, func(msp string, s SharesEntry) { v.Shares[msp] = s.Shares }); err != nil {
		return "", err
	}
	if v.Submissions, err = rangeSubmissions(stub, run, r); err != nil {
		return "", err
	}
	if err := rangeDecoded(stub, objAggReveal, run, r, func(msp string, e RevealEntry) {
		v.Reveals[msp] = RevealView{SeedShares: e.SeedShares, KeyShares: e.KeyShares}
	}); err != nil {
		return "", err
	}
	if err := rangeDecoded(stub, objAggResult, run, r, func(msp string, e ResultEntry) { v.Results[msp] = e.AverageSHA256 }); err != nil {
		return "", err
	}
	st, err := loadRoundStatus(stub, run, r)
	if err != nil {
		return "", err
	}
	if st != nil {
		v.Status, v.Survivors, v.Dropped = st.Status, st.Survivors, st.Dropped
		if st.Status == StatusFrozen {
			v.Agreed, v.Mismatched = agreement(st.Survivors, v.Results)
		}
	}
	return state.Marshal(v)
}

// agreement compares the survivors' result hashes: nil (null) until every
// member of U posted; then true when all are equal. mismatched lists, in U
// order, the survivors whose hash differs from the majority hash (held by
// more than half of U); with no majority hash every survivor is listed,
// since no result can be vouched for.
func agreement(survivors []string, results map[string]string) (*bool, []string) {
	votes := map[string]int{}
	for _, msp := range survivors {
		h, ok := results[msp]
		if !ok {
			return nil, []string{}
		}
		votes[h]++
	}
	majority := ""
	for h, n := range votes {
		if 2*n > len(survivors) {
			majority = h
		}
	}
	mismatched := []string{}
	for _, msp := range survivors {
		if results[msp] != majority {
			mismatched = append(mismatched, msp)
		}
	}
	agreed := len(votes) == 1
	return &agreed, mismatched
}
