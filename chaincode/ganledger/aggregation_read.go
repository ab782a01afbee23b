package ganledger

import (
	"encoding/base64"
	"sort"

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
	Shares      map[string]map[string]string `json:"shares"`   // sender -> recipient -> b64
	Dealings    map[string]Dealing           `json:"dealings"` // sender -> Feldman commitments
	Submissions map[string]Submission        `json:"submissions"`
	Survivors   []string                     `json:"survivors"` // U, sorted; [] while open
	Dropped     []string                     `json:"dropped"`   // D sorted; [] while open
	Excluded    []string                     `json:"excluded"`  // both sides of every rejection (in D); [] while open
	Reveals     map[string]RevealView        `json:"reveals"`
	Results     map[string]string            `json:"results"`        // msp -> average_sha256
	Votes       map[string][]string          `json:"votes"`          // phase -> voters (sorted), every phase listed
	Agreed      *bool                        `json:"agreed"`         // true once t survivors posted one hash; false once none can
	Average     string                       `json:"average_sha256"` // the agreed hash; "" until agreed
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
	agg, err := loadAggregation(stub, run)
	if err != nil {
		return "", err
	}
	v := RoundView{
		Run: run, Round: r, Status: StatusOpen,
		Advertised: map[string]Advert{}, Shares: map[string]map[string]string{}, Dealings: map[string]Dealing{},
		Reveals: map[string]RevealView{}, Results: map[string]string{},
		Survivors: []string{}, Dropped: []string{}, Excluded: []string{}, Mismatched: []string{},
	}
	if v.Votes, err = rangeAllVotes(stub, run, r); err != nil {
		return "", err
	}
	if err := rangeDecoded(stub, objAggAdvert, run, r, func(msp string, a Advert) { v.Advertised[msp] = a }); err != nil {
		return "", err
	}
	if err := rangeDecoded(stub, objAggShares, run, r, func(msp string, s SharesEntry) {
		v.Shares[msp], v.Dealings[msp] = s.Shares, s.Dealing
	}); err != nil {
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
	if st == nil && len(v.Submissions) > 0 && len(v.Submissions) == len(v.Shares) { // frozen by its submissions (roundStatus)
		posted := make([]string, 0, len(v.Shares))
		for msp := range v.Shares {
			posted = append(posted, msp)
		}
		sort.Strings(posted)
		derived := statusOf(agg, posted, v.Submissions, "", "", "")
		st = &derived
	}
	if st != nil {
		v.Status, v.Survivors, v.Dropped = st.Status, st.Survivors, st.Dropped
		if st.Excluded != nil {
			v.Excluded = st.Excluded
		}
		if st.Status == StatusFrozen {
			v.Agreed, v.Average, v.Mismatched = agreement(st.Survivors, v.Results, agg.Threshold)
		}
	}
	return state.Marshal(v)
}

// agreement applies the t-of-n rule to the survivors' result hashes: agreed
// (true, with that hash) once threshold-many survivors posted the same hash
// (t > N/2, so at most one hash can get there); false once no hash can reach
// t any more, even with every missing result; null otherwise, so a survivor
// that never posts (or never reveals) does not hold the round up. mismatched
// lists, in U order, the survivors that posted a hash other than the agreed
// one; with agreement impossible, every survivor that posted.
func agreement(survivors []string, results map[string]string, threshold int) (*bool, string, []string) {
	votes := map[string]int{}
	posted := 0
	for _, msp := range survivors {
		if h, ok := results[msp]; ok {
			votes[h]++
			posted++
		}
	}
	best, bestN := "", 0
	for h, n := range votes {
		if n > bestN || (n == bestN && h < best) {
			best, bestN = h, n
		}
	}
	mismatched := []string{}
	switch {
	case bestN >= threshold:
		for _, msp := range survivors {
			if h, ok := results[msp]; ok && h != best {
				mismatched = append(mismatched, msp)
			}
		}
		agreed := true
		return &agreed, best, mismatched
	case bestN+len(survivors)-posted < threshold:
		for _, msp := range survivors {
			if _, ok := results[msp]; ok {
				mismatched = append(mismatched, msp)
			}
		}
		agreed := false
		return &agreed, "", mismatched
	}
	return nil, "", mismatched
}
