package ganledger

import (
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/synthreg/synthreg/chaincode/internal/fakestub"
)

const testRun = "run-1"

// agg is a fixture for aggregation tests: cached identities (certificate
// generation is the slow part) and helpers that build valid arguments.
type agg struct {
	*fixture
	ids map[string]fakestub.Identity
}

func newAgg(t *testing.T) *agg {
	return &agg{fixture: newFixture(t), ids: map[string]fakestub.Identity{}}
}

func msp(n int) string { return fmt.Sprintf("Registry%dMSP", n) }

func (a *agg) as(msp, role string) fakestub.Identity {
	k := msp + "/" + role
	if id, ok := a.ids[k]; ok {
		return id
	}
	id := a.id(msp, role)
	a.ids[k] = id
	return id
}

func (a *agg) m(n int) fakestub.Identity { return a.as(msp(n), "merger") }

func (a *agg) ok(r fakestub.Result) fakestub.Result {
	a.t.Helper()
	if !r.OK() {
		a.t.Fatalf("unexpected failure: %s %s", r.Message, r.Invalid)
	}
	return r
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func fill(n int, c byte) []byte { return []byte(strings.Repeat(string(c), n)) }

func config(n, threshold int, timeoutS int64) map[string]any {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = msp(i + 1)
	}
	sort.Strings(parts)
	return map[string]any{"participants": parts, "threshold": threshold, "vector_len": 4, "scale_bits": 32, "round_timeout_s": timeoutS}
}

// open opens testRun with Registry1..n, as Registry1's merger.
func (a *agg) open(n, threshold int, timeoutS int64) {
	a.t.Helper()
	a.ok(a.call(a.m(1), "OpenAggregation", testRun, toJSON(a.t, config(n, threshold, timeoutS))))
}

func pubKey(n int) string { return b64(fill(32, byte('a'+n))) }
func commit(n int) string { return fakestub.SHA256Hex([]byte(fmt.Sprint("seed", n))) }
func envelope(from, to int) string {
	return b64([]byte(fmt.Sprintf(`{"from":%d,"to":%d}`, from, to)))
}

// point is the compressed P-256 point k·G (a valid Feldman commitment).
func point(k int) string {
	x, y := elliptic.P256().ScalarBaseMult(big.NewInt(int64(k)).Bytes())
	return b64(elliptic.MarshalCompressed(elliptic.P256(), x, y))
}

// dealingOf is a well-formed dealingJSON of sender n for threshold 2.
func dealingOf(n int) string {
	return fmt.Sprintf(`{"seed":[%q,%q],"key":[%q,%q]}`, point(10*n+1), point(10*n+2), point(10*n+3), point(10*n+4))
}

func (a *agg) advertise(n int, round string) fakestub.Result {
	return a.call(a.m(n), "Advertise", testRun, round, pubKey(n), commit(n))
}

// sharesFor builds sender n's sharesJSON to the given recipients.
func (a *agg) sharesFor(n int, to ...int) string {
	m := map[string]string{}
	for _, r := range to {
		m[msp(r)] = envelope(n, r)
	}
	return toJSON(a.t, m)
}

func (a *agg) postShares(n int, round string, to ...int) fakestub.Result {
	return a.call(a.m(n), "PostShares", testRun, round, a.sharesFor(n, to...), dealingOf(n))
}

// blob puts a masked blob of party n (content depends on n and round) and
// returns its hash.
func (a *agg) blob(n int, round string) string {
	a.t.Helper()
	data := []byte(fmt.Sprintf("masked-%d-%s-........", n, round))
	h := fakestub.SHA256Hex(data)
	a.ok(a.putBlob(a.m(n), testRun, h, data))
	return h
}

func (a *agg) submission(masked, audit string, peers ...int) string {
	p := []string{}
	for _, n := range peers {
		p = append(p, msp(n))
	}
	return toJSON(a.t, map[string]any{"masked_sha256": masked, "audit_sha256": audit, "peers": p})
}

func (a *agg) submit(n int, round string, peers ...int) fakestub.Result {
	a.t.Helper()
	return a.call(a.m(n), "Submit", testRun, round, a.submission(a.blob(n, round), "", peers...))
}

func shareOf(n int) string { return b64(fill(34, byte('A'+n))) }

func revealJSON(seedOf, keyOf []int) string {
	seeds, keys := map[string]string{}, map[string]string{}
	for _, n := range seedOf {
		seeds[msp(n)] = shareOf(n)
	}
	for _, n := range keyOf {
		keys[msp(n)] = shareOf(n)
	}
	raw, _ := json.Marshal(map[string]any{"seed_shares": seeds, "key_shares": keys})
	return string(raw)
}

func resultJSON(h string) string { return `{"average_sha256":"` + h + `"}` }

func (a *agg) round(round string) RoundView {
	a.t.Helper()
	return fakestub.Decode[RoundView](a.t, a.ok(a.call(a.as(msp(3), "auditor"), "GetRound", testRun, round)).Payload)
}

// toShared runs advertise (all of adv) and post shares (all of post, to
// everyone advertised) for round.
func (a *agg) toShared(round string, adv, post []int) {
	a.t.Helper()
	for _, n := range adv {
		a.ok(a.advertise(n, round))
	}
	for _, n := range post {
		var to []int
		for _, m := range adv {
			if m != n {
				to = append(to, m)
			}
		}
		a.ok(a.postShares(n, round, to...))
	}
}

func others(all []int, n int) []int {
	var out []int
	for _, m := range all {
		if m != n {
			out = append(out, m)
		}
	}
	return out
}

func (a *agg) lastEvent() (string, AggEvent) {
	a.t.Helper()
	ev := a.ledger.Events[len(a.ledger.Events)-1]
	return ev.Name, fakestub.Decode[AggEvent](a.t, ev.Payload)
}

func (a *agg) wantEvent(r fakestub.Result, name, round string, n int, status string) {
	a.t.Helper()
	a.wantEventWith(r, name, round, n, AggEvent{Status: status})
}

// wantResultEvent checks the last event is r's AggResultPosted by msp(n) naming average.
func (a *agg) wantResultEvent(r fakestub.Result, round string, n int, average string) {
	a.t.Helper()
	a.wantEventWith(r, EventAggResultPosted, round, n, AggEvent{AverageSHA256: average})
}

// wantEventWith checks the last event is r's name by msp(n) in round, with extra's optional fields.
func (a *agg) wantEventWith(r fakestub.Result, name, round string, n int, extra AggEvent) {
	a.t.Helper()
	gotName, ev := a.lastEvent()
	rn := 0
	fmt.Sscan(round, &rn)
	want := extra
	want.Run, want.Round, want.MSPID, want.TxID = testRun, rn, msp(n), r.TxID
	if gotName != name || ev != want {
		a.t.Fatalf("event %s %+v, want %s %+v", gotName, ev, name, want)
	}
}

func TestAggregationRoundWithOneDropout(t *testing.T) {
	a := newAgg(t)
	a.open(3, 2, 30)
	got := fakestub.Decode[Aggregation](t, a.ok(a.call(a.as(msp(2), "generator"), "GetAggregation", testRun)).Payload)
	if got.OpenedBy != msp(1) || got.Threshold != 2 || !reflect.DeepEqual(got.Participants, []string{msp(1), msp(2), msp(3)}) || got.RoundTimeoutS != 30 || got.TxID == "" {
		t.Fatalf("aggregation %+v", got)
	}

	for n := 1; n <= 3; n++ {
		r := a.ok(a.advertise(n, "7"))
		a.wantEvent(r, EventAggAdvertised, "7", n, "")
	}
	for n := 1; n <= 3; n++ {
		r := a.ok(a.postShares(n, "7", others([]int{1, 2, 3}, n)...))
		a.wantEvent(r, EventAggSharesPosted, "7", n, "")
	}
	// Registry2 submits first, then Registry1; Registry3 drops out.
	r2 := a.ok(a.submit(2, "7", 1, 3))
	a.wantEvent(r2, EventAggSubmitted, "7", 2, "")
	if rc := fakestub.Decode[Receipt](t, r2.Payload); rc.MSPID != msp(2) || rc.Round != 7 || rc.TxID != r2.TxID {
		t.Fatalf("receipt %s", r2.Payload)
	}
	r1 := a.ok(a.submit(1, "7", 2, 3))
	if v := a.round("7"); v.Status != StatusOpen || len(v.Survivors) != 0 || v.Agreed != nil {
		t.Fatalf("open round view %+v", v)
	}

	// Not everyone who shared has submitted: freeze waits for t votes of P,
	// whatever the clock says.
	mustFail(t, a.call(a.m(3), "Freeze", testRun, "7"), "PRECONDITION_FAILED", "submit phase", "2 of 3 in", "0 of 2 votes")
	a.ledger.Advance(100 * 365 * 24 * time.Hour)
	mustFail(t, a.call(a.m(3), "Freeze", testRun, "7"), "PRECONDITION_FAILED", "0 of 2 votes")
	vr := a.ok(a.call(a.m(2), "VoteClose", testRun, "7", PhaseSubmit))
	if name, ev := a.lastEvent(); name != EventAggVoted || ev != (AggEvent{Run: testRun, Round: 7, MSPID: msp(2), TxID: vr.TxID, Phase: PhaseSubmit}) {
		t.Fatalf("vote event %s %+v", name, ev)
	}
	mustFail(t, a.call(a.m(3), "Freeze", testRun, "7"), "PRECONDITION_FAILED", "1 of 2 votes")
	a.ok(a.call(a.m(1), "VoteClose", testRun, "7", PhaseSubmit))
	fr := a.ok(a.call(a.m(3), "Freeze", testRun, "7"))
	a.wantEvent(fr, EventAggFrozen, "7", 3, StatusFrozen)
	st := fakestub.Decode[RoundStatus](t, fr.Payload)
	if st.Status != StatusFrozen || !reflect.DeepEqual(st.Survivors, []string{msp(1), msp(2)}) || !reflect.DeepEqual(st.Dropped, []string{msp(3)}) {
		t.Fatalf("frozen status %+v", st)
	}

	// Late submission of the dropped party is refused.
	mustFail(t, a.submit(3, "7", 1, 2), "PRECONDITION_FAILED", "round frozen", msp(3))

	for _, n := range []int{2, 1} {
		rv := a.ok(a.call(a.m(n), "Reveal", testRun, "7", revealJSON([]int{1, 2}, []int{3})))
		a.wantEvent(rv, EventAggRevealed, "7", n, "")
	}
	avg := fakestub.SHA256Hex([]byte("average"))
	rr := a.ok(a.call(a.m(1), "PostResult", testRun, "7", resultJSON(avg)))
	a.wantResultEvent(rr, "7", 1, avg) // the hash in the event: t of them with one hash are the agreement
	if v := a.round("7"); v.Agreed != nil || len(v.Mismatched) != 0 || v.Average != "" {
		t.Fatalf("agreement before t survivors posted: %v %v", v.Agreed, v.Mismatched)
	}
	a.ok(a.call(a.m(2), "PostResult", testRun, "7", resultJSON(avg)))

	v := a.round("7")
	if v.Run != testRun || v.Round != 7 || v.Status != StatusFrozen || v.Agreed == nil || !*v.Agreed || len(v.Mismatched) != 0 || v.Average != avg {
		t.Fatalf("final view %+v", v)
	}
	if !reflect.DeepEqual(v.Survivors, []string{msp(1), msp(2)}) || !reflect.DeepEqual(v.Dropped, []string{msp(3)}) {
		t.Fatalf("U/D %v %v", v.Survivors, v.Dropped)
	}
	if len(v.Advertised) != 3 || v.Advertised[msp(3)].PublicKey != pubKey(3) || v.Advertised[msp(3)].SeedCommit != commit(3) {
		t.Fatalf("advertised %+v", v.Advertised)
	}
	if len(v.Shares) != 3 || v.Shares[msp(3)][msp(1)] != envelope(3, 1) || len(v.Shares[msp(3)]) != 2 {
		t.Fatalf("shares %+v", v.Shares)
	}
	if s := v.Submissions[msp(1)]; len(v.Submissions) != 2 || !reflect.DeepEqual(s.Peers, []string{msp(2), msp(3)}) || s.AuditSHA256 != "" || s.TxID != r1.TxID {
		t.Fatalf("submissions %+v", v.Submissions)
	}
	if rv := v.Reveals[msp(2)]; len(v.Reveals) != 2 || rv.KeyShares[msp(3)] != shareOf(3) || len(rv.SeedShares) != 2 {
		t.Fatalf("reveals %+v", v.Reveals)
	}
	if !reflect.DeepEqual(v.Results, map[string]string{msp(1): avg, msp(2): avg}) {
		t.Fatalf("results %+v", v.Results)
	}
	if want := map[string][]string{PhaseAdvertise: {}, PhaseShares: {}, PhaseSubmit: {msp(1), msp(2)}}; !reflect.DeepEqual(v.Votes, want) {
		t.Fatalf("votes %+v", v.Votes)
	}
	// Exactly the wire-spec fields, and byte-identical on every evaluation.
	raw := a.ok(a.call(a.m(1), "GetRound", testRun, "7")).Payload
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(raw, &fields)
	var names []string
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "advertised,agreed,average_sha256,dealings,dropped,excluded,mismatched,results,reveals,round,run,shares,status,submissions,survivors,votes" {
		t.Fatalf("GetRound fields %v", names)
	}
	if again := a.ok(a.call(a.m(2), "GetRound", testRun, "7")).Payload; string(again) != string(raw) {
		t.Fatal("GetRound not deterministic")
	}
	// Other rounds are independent.
	if v := a.round("8"); v.Status != StatusOpen || len(v.Advertised) != 0 || v.Advertised == nil {
		t.Fatalf("round 8 view %+v", v)
	}
}

func TestARoundEveryoneSubmittedToIsFrozenWithoutAWrite(t *testing.T) {
	a := newAgg(t)
	a.open(3, 2, 3600)
	all := []int{1, 2, 3}
	a.toShared("0", all, all)
	for _, n := range all[:2] {
		a.wantEvent(a.ok(a.submit(n, "0", others(all, n)...)), EventAggSubmitted, "0", n, "")
	}
	if v := a.round("0"); v.Status != StatusOpen {
		t.Fatalf("frozen before the last submission: %+v", v)
	}
	mustFail(t, a.call(a.m(1), "Reveal", testRun, "0", revealJSON(all, nil)), "PRECONDITION_FAILED", "not frozen")
	last := a.ok(a.submit(3, "0", others(all, 3)...))
	a.wantEvent(last, EventAggSubmitted, "0", 3, "") // a submission like any other: no status written
	st := a.round("0")
	if st.Status != StatusFrozen || !reflect.DeepEqual(st.Survivors, []string{msp(1), msp(2), msp(3)}) || len(st.Dropped) != 0 || st.Dropped == nil {
		t.Fatalf("status %+v", st)
	}
	if key := "\x00" + objAggRoundStatus + "\x00" + testRun + "\x000\x00"; a.ledger.State[key] != nil {
		t.Fatalf("a status was written: %s", a.ledger.State[key])
	}
	mustFail(t, a.call(a.m(1), "Freeze", testRun, "0"), "ALREADY_EXISTS", "everyone who shared submitted", "run-1/0")
	// Frozen as Freeze would have: the survivors reveal and post their results.
	for _, n := range all {
		a.wantEvent(a.ok(a.call(a.m(n), "Reveal", testRun, "0", revealJSON(all, nil))), EventAggRevealed, "0", n, "")
	}
	for _, n := range all[:2] {
		a.ok(a.call(a.m(n), "PostResult", testRun, "0", resultJSON(commit(9))))
	}
	if v := a.round("0"); v.Agreed == nil || !*v.Agreed || v.Average != commit(9) {
		t.Fatalf("agreed %v average %q", v.Agreed, v.Average)
	}
	// Nothing submitted yet in another round: nothing to freeze.
	a.toShared("1", all, all)
	mustFail(t, a.call(a.m(1), "Freeze", testRun, "1"), "PRECONDITION_FAILED", "no submission")
}

func TestARoundFrozenByItsSubmissionsStillExcludesBothSidesOfARejection(t *testing.T) {
	a := newAgg(t)
	a.open(3, 2, 3600)
	all := []int{1, 2, 3}
	a.toShared("0", all, all)
	a.ok(a.submit(1, "0", 2, 3))
	a.ok(a.call(a.m(2), "Submit", testRun, "0", `{"masked_sha256":"`+a.blob(2, "0")+`","audit_sha256":"","peers":["Registry1MSP","Registry3MSP"],"rejected":["Registry3MSP"]}`))
	a.ok(a.submit(3, "0", 1, 2))
	v := a.round("0")
	if v.Status != StatusVoid || !reflect.DeepEqual(v.Survivors, []string{msp(1)}) || !reflect.DeepEqual(v.Excluded, []string{msp(2), msp(3)}) ||
		!reflect.DeepEqual(v.Dropped, []string{msp(2), msp(3)}) {
		t.Fatalf("status %+v", v)
	}
	mustFail(t, a.call(a.m(1), "Reveal", testRun, "0", revealJSON([]int{1}, []int{2, 3})), "PRECONDITION_FAILED", "is void")
}

func TestFreezeVoidWhenTooFewSurvivors(t *testing.T) {
	a := newAgg(t)
	a.open(3, 2, 10)
	all := []int{1, 2, 3}
	a.toShared("2", all, all)
	a.ok(a.submit(1, "2", 2, 3))
	// Registry2 shared but cannot submit (say its update failed): it may still
	// vote, so the round is closed as void instead of staying open forever.
	a.ok(a.call(a.m(1), "VoteClose", testRun, "2", PhaseSubmit))
	a.ok(a.call(a.m(2), "VoteClose", testRun, "2", PhaseSubmit))
	fr := a.ok(a.call(a.m(1), "Freeze", testRun, "2"))
	a.wantEvent(fr, EventAggFrozen, "2", 1, StatusVoid)
	v := a.round("2")
	if v.Status != StatusVoid || !reflect.DeepEqual(v.Survivors, []string{msp(1)}) || !reflect.DeepEqual(v.Dropped, []string{msp(2), msp(3)}) || v.Agreed != nil {
		t.Fatalf("void view %+v", v)
	}
	mustFail(t, a.call(a.m(1), "Reveal", testRun, "2", revealJSON([]int{1}, []int{2, 3})), "PRECONDITION_FAILED", "void")
	mustFail(t, a.call(a.m(1), "PostResult", testRun, "2", resultJSON(commit(1))), "PRECONDITION_FAILED", "void")
	mustFail(t, a.submit(2, "2", 1, 3), "PRECONDITION_FAILED", "round frozen")
}

// Issue 10, attack 1: client-set transaction timestamps decided freezing.
// A Freeze dated an hour (or a century) ahead must not exclude a party, a
// Submit dated far ahead must not make Freeze impossible, and a survivor that
// never reveals must not hold the round up.
func TestAttackClientClockDecidesFreezing(t *testing.T) {
	a := newAgg(t)
	a.open(3, 2, 1)
	all := []int{1, 2, 3}
	a.toShared("0", all, all)
	a.ledger.Advance(100 * 365 * 24 * time.Hour) // a first Submit dated a century ahead
	a.ok(a.submit(1, "0", 2, 3))
	a.ledger.Advance(-100 * 365 * 24 * time.Hour)
	a.ok(a.submit(2, "0", 1, 3))
	a.ledger.Advance(time.Hour) // a Freeze dated an hour ahead, round timeout 1 s
	mustFail(t, a.call(a.m(1), "Freeze", testRun, "0"), "PRECONDITION_FAILED", "2 of 3 in")
	// One merger's vote (its own clock ran out) is not enough...
	a.ok(a.call(a.m(1), "VoteClose", testRun, "0", PhaseSubmit))
	mustFail(t, a.call(a.m(1), "Freeze", testRun, "0"), "PRECONDITION_FAILED", "1 of 2 votes")
	// ...t of them are, whatever the timestamps say.
	a.ok(a.call(a.m(2), "VoteClose", testRun, "0", PhaseSubmit))
	a.ok(a.call(a.m(1), "Freeze", testRun, "0"))
	// Registry3 submitted in time in round 1 but never reveals: t = 2 reveals
	// and results agree the round without it.
	a.toShared("1", all, all)
	for _, n := range all {
		a.ok(a.submit(n, "1", others(all, n)...)) // the last one freezes
	}
	avg := fakestub.SHA256Hex([]byte("avg"))
	for _, n := range []int{1, 2} {
		a.ok(a.call(a.m(n), "Reveal", testRun, "1", revealJSON(all, nil)))
		a.ok(a.call(a.m(n), "PostResult", testRun, "1", resultJSON(avg)))
	}
	if v := a.round("1"); v.Agreed == nil || !*v.Agreed || v.Average != avg || len(v.Reveals) != 2 {
		t.Fatalf("round without Registry3's reveal: agreed %v average %q reveals %d", v.Agreed, v.Average, len(v.Reveals))
	}
}

// Each phase closes when everyone it waits for is in, or by t votes of the
// parties that are in; a party left out cannot join a closed phase.
func TestPhasesCloseByVotes(t *testing.T) {
	a := newAgg(t)
	a.open(3, 2, 30)
	vote := func(n int, round, phase string) fakestub.Result {
		return a.call(a.m(n), "VoteClose", testRun, round, phase)
	}
	a.ok(a.advertise(1, "0"))
	a.ok(a.advertise(2, "0"))
	// Registry3 is missing: nobody may share early to leave it out.
	mustFail(t, a.postShares(1, "0", 2), "PRECONDITION_FAILED", "advertise phase", "2 of 3 in", "0 of 2 votes")
	mustFail(t, vote(3, "0", PhaseAdvertise), "PRECONDITION_FAILED", msp(3)+" has not advertised")
	mustFail(t, vote(1, "0", "freeze"), "INVALID_ARGUMENT", "phase")
	a.ok(vote(1, "0", PhaseAdvertise))
	mustFail(t, vote(1, "0", PhaseAdvertise), "ALREADY_EXISTS", "vote")
	mustFail(t, a.postShares(1, "0", 2), "PRECONDITION_FAILED", "1 of 2 votes")
	a.ok(vote(2, "0", PhaseAdvertise))
	// A is closed: a late Advertise is refused, sharing among {1, 2} goes on.
	mustFail(t, a.advertise(3, "0"), "PRECONDITION_FAILED", "advertise phase", "voted to close")
	a.ok(a.postShares(1, "0", 2))
	mustFail(t, a.call(a.m(1), "Submit", testRun, "0", a.submission(a.blob(1, "0x"), "", 2)), "PRECONDITION_FAILED", "shares phase", "1 of 2 in")
	a.ok(a.postShares(2, "0", 1))
	a.ok(a.submit(1, "0", 2))
	a.ok(a.submit(2, "0", 1)) // P = {1, 2} all in: frozen
	st := a.round("0")
	if st.Status != StatusFrozen || len(st.Survivors) != 2 || len(st.Dropped) != 0 {
		t.Fatalf("status %+v", st)
	}
	mustFail(t, vote(1, "0", PhaseSubmit), "PRECONDITION_FAILED", "frozen")

	// Round 1: everyone advertised, Registry3 never shares; 1 and 2 vote the
	// share phase closed; Registry3's late shares are refused.
	all := []int{1, 2, 3}
	for _, n := range all {
		a.ok(a.advertise(n, "1"))
	}
	a.ok(a.postShares(1, "1", 2, 3))
	a.ok(a.postShares(2, "1", 1, 3))
	mustFail(t, vote(3, "1", PhaseShares), "PRECONDITION_FAILED", msp(3)+" has not posted shares")
	a.ok(vote(1, "1", PhaseShares))
	a.ok(vote(2, "1", PhaseShares))
	mustFail(t, a.postShares(3, "1", 1, 2), "PRECONDITION_FAILED", "share phase", "voted to close")
	a.ok(a.submit(1, "1", 2))
	a.ok(a.submit(2, "1", 1)) // P = {1, 2} (the shares phase closed by votes) all in: frozen
	st = a.round("1")
	if !reflect.DeepEqual(st.Survivors, []string{msp(1), msp(2)}) || len(st.Dropped) != 0 {
		t.Fatalf("status %+v", st)
	}
	// GetRound lists each round's votes by phase (one range read per round, not per
	// phase): round 0's are not round 1's, nor round 10's (a key prefix of neither).
	for _, n := range all {
		a.ok(a.advertise(n, "10"))
	}
	a.ok(vote(3, "10", PhaseAdvertise))
	for round, want := range map[string]map[string][]string{
		"0":  {PhaseAdvertise: {msp(1), msp(2)}, PhaseShares: {}, PhaseSubmit: {}},
		"1":  {PhaseAdvertise: {}, PhaseShares: {msp(1), msp(2)}, PhaseSubmit: {}},
		"10": {PhaseAdvertise: {msp(3)}, PhaseShares: {}, PhaseSubmit: {}},
	} {
		if v := a.round(round); !reflect.DeepEqual(v.Votes, want) {
			t.Fatalf("round %s votes %+v, want %+v", round, v.Votes, want)
		}
	}
}

func TestAdvertiseRules(t *testing.T) {
	a := newAgg(t)
	a.open(3, 2, 30)
	m1 := a.m(1)
	mustFail(t, a.call(m1, "Advertise", testRun, "0", b64(fill(31, 'k')), commit(1)), "INVALID_ARGUMENT", "publicKeyB64", "31")
	mustFail(t, a.call(m1, "Advertise", testRun, "0", pubKey(1)+"\n", commit(1)), "INVALID_ARGUMENT", "publicKeyB64")
	mustFail(t, a.call(m1, "Advertise", testRun, "0", pubKey(1), strings.ToUpper(commit(1))), "INVALID_ARGUMENT", "seedCommitHex")
	mustFail(t, a.call(m1, "Advertise", testRun, "0", pubKey(1), commit(1)[:62]), "INVALID_ARGUMENT", "seedCommitHex")
	mustFail(t, a.call(m1, "Advertise", "other-run", "0", pubKey(1), commit(1)), "NOT_FOUND", "other-run")
	a.ok(a.advertise(1, "0"))
	mustFail(t, a.advertise(1, "0"), "ALREADY_EXISTS", "advertisement", "run-1/0/Registry1MSP")
	a.ok(a.advertise(2, "0"))
	a.ok(a.call(a.m(1), "VoteClose", testRun, "0", PhaseAdvertise))
	a.ok(a.call(a.m(2), "VoteClose", testRun, "0", PhaseAdvertise))
	a.ok(a.postShares(1, "0", 2))
	// Advertise phase is closed once any shares are posted.
	mustFail(t, a.advertise(3, "0"), "PRECONDITION_FAILED", "advertise phase", "closed", msp(1))
	if v := a.round("0"); len(v.Advertised) != 2 {
		t.Fatalf("advertised %v", v.Advertised)
	}
}

func TestPostSharesRules(t *testing.T) {
	a := newAgg(t)
	a.open(3, 2, 30)
	a.ok(a.advertise(1, "0"))
	// |A| = 1 < t = 2.
	mustFail(t, a.postShares(1, "0"), "PRECONDITION_FAILED", "only 1 advertised", "threshold is 2")
	a.ok(a.advertise(2, "0"))
	mustFail(t, a.postShares(3, "0", 1, 2), "PRECONDITION_FAILED", msp(3)+" has not advertised")
	a.ok(a.advertise(3, "0"))
	cases := []struct {
		to    []int
		parts []string
	}{
		{[]int{2}, []string{"missing [" + msp(3) + "]"}},
		{[]int{1, 2, 3}, []string{"unexpected [" + msp(1) + "]"}},
		{[]int{2, 3, 4}, []string{"unexpected [" + msp(4) + "]"}},
		{nil, []string{"missing [" + msp(2) + " " + msp(3) + "]"}},
	}
	for _, c := range cases {
		mustFail(t, a.postShares(1, "0", c.to...), "INVALID_ARGUMENT", append([]string{"sharesJSON", "recipients"}, c.parts...)...)
	}
	big := toJSON(t, map[string]string{msp(2): b64(fill(MaxEnvelopeBytes+1, 'e')), msp(3): envelope(1, 3)})
	mustFail(t, a.call(a.m(1), "PostShares", testRun, "0", big, dealingOf(1)), "INVALID_ARGUMENT", `sharesJSON[\"Registry2MSP\"]`, "4097")
	dup := `{"` + msp(2) + `":"` + envelope(1, 2) + `","` + msp(2) + `":"` + envelope(1, 2) + `","` + msp(3) + `":"` + envelope(1, 3) + `"}`
	mustFail(t, a.call(a.m(1), "PostShares", testRun, "0", dup, dealingOf(1)), "INVALID_ARGUMENT", "duplicate")
	mustFail(t, a.call(a.m(1), "PostShares", testRun, "0", `[]`, dealingOf(1)), "INVALID_ARGUMENT", "sharesJSON")
	mustFail(t, a.call(a.m(1), "PostShares", testRun, "0", `{"`+msp(2)+`":""}`, dealingOf(1)), "INVALID_ARGUMENT", "decoded length 0")

	a.ok(a.postShares(1, "0", 2, 3))
	mustFail(t, a.postShares(1, "0", 2, 3), "ALREADY_EXISTS", "shares", "run-1/0/Registry1MSP")
	a.ok(a.postShares(2, "0", 1, 3))
	a.ok(a.call(a.m(1), "VoteClose", testRun, "0", PhaseShares))
	a.ok(a.call(a.m(2), "VoteClose", testRun, "0", PhaseShares))
	a.ok(a.submit(1, "0", 2))
	// Share phase is closed once anyone submitted.
	mustFail(t, a.postShares(3, "0", 1, 2), "PRECONDITION_FAILED", "share phase", "closed")
}

// A run whose config says "blobs": "served" keeps only the hashes: Submit
// takes hashes of blobs never put, the config reads back with the placement,
// and the rest of Submit's rules still hold.
func TestSubmitServedBlobs(t *testing.T) {
	a := newAgg(t)
	cfg := config(3, 2, 30)
	cfg["blobs"] = BlobsServed
	a.ok(a.call(a.m(1), "OpenAggregation", testRun, toJSON(t, cfg)))
	var got Aggregation
	if err := json.Unmarshal(a.ok(a.call(a.m(2), "GetAggregation", testRun)).Payload, &got); err != nil || got.Blobs != BlobsServed {
		t.Fatalf("GetAggregation: blobs %q, err %v", got.Blobs, err)
	}
	a.toShared("0", []int{1, 2, 3}, []int{1, 2, 3})
	sub := func(n int, s string) fakestub.Result { return a.call(a.m(n), "Submit", testRun, "0", s) }
	mustFail(t, sub(1, a.submission("xyz", "", 2, 3)), "INVALID_ARGUMENT", "submissionJSON.masked_sha256")
	mustFail(t, sub(1, a.submission(commit(7), "", 2)), "INVALID_ARGUMENT", "submissionJSON.peers")
	a.ok(sub(1, a.submission(commit(7), commit(8), 2, 3)))
	a.ok(sub(2, a.submission(commit(9), "", 1, 3)))
	mustFail(t, sub(2, a.submission(commit(9), "", 1, 3)), "ALREADY_EXISTS")
	// The default placement still needs the blob on the ledger.
	a.ok(a.call(a.m(1), "OpenAggregation", "onledger", toJSON(t, config(3, 2, 30))))
	for n := 1; n <= 3; n++ {
		a.ok(a.call(a.m(n), "Advertise", "onledger", "0", pubKey(n), commit(n)))
	}
	for n := 1; n <= 3; n++ {
		var to []int
		for m := 1; m <= 3; m++ {
			if m != n {
				to = append(to, m)
			}
		}
		a.ok(a.call(a.m(n), "PostShares", "onledger", "0", a.sharesFor(n, to...), dealingOf(n)))
	}
	mustFail(t, a.call(a.m(1), "Submit", "onledger", "0", a.submission(commit(7), "", 2, 3)), "PRECONDITION_FAILED", "PutBlob")
}

func TestSubmitRules(t *testing.T) {
	a := newAgg(t)
	a.open(3, 2, 30)
	a.toShared("4", []int{1, 2, 3}, []int{1, 2})
	a.ok(a.call(a.m(1), "VoteClose", testRun, "4", PhaseShares))
	a.ok(a.call(a.m(2), "VoteClose", testRun, "4", PhaseShares))
	masked := a.blob(1, "4")
	sub := func(n int, s string) fakestub.Result { return a.call(a.m(n), "Submit", testRun, "4", s) }

	mustFail(t, sub(3, a.submission(a.blob(3, "4"), "", 1, 2)), "PRECONDITION_FAILED", msp(3)+" has not posted shares")
	// peers must be P \ {caller} = [Registry2MSP] (Registry3 advertised but did not share).
	for _, peers := range [][]int{{2, 3}, {}, {1, 2}, {3}} {
		mustFail(t, sub(1, a.submission(masked, "", peers...)), "INVALID_ARGUMENT", "submissionJSON.peers", "P \\ {Registry1MSP}")
	}
	unsorted := `{"masked_sha256":"` + masked + `","audit_sha256":"","peers":["Registry3MSP","Registry2MSP"]}`
	mustFail(t, sub(1, unsorted), "INVALID_ARGUMENT", "submissionJSON.peers")
	mustFail(t, sub(1, a.submission(commit(9), "", 2)), "PRECONDITION_FAILED", "masked_sha256 blob", "PutBlob")
	mustFail(t, sub(1, a.submission(masked, commit(9), 2)), "PRECONDITION_FAILED", "audit_sha256 blob")
	mustFail(t, sub(1, a.submission("xyz", "", 2)), "INVALID_ARGUMENT", "submissionJSON.masked_sha256")
	mustFail(t, sub(1, a.submission(masked, "ABC", 2)), "INVALID_ARGUMENT", "submissionJSON.audit_sha256")
	mustFail(t, sub(1, `{"masked_sha256":"`+masked+`","peers":["Registry2MSP"],"extra":1}`), "INVALID_ARGUMENT", "submissionJSON", "unknown field")
	mustFail(t, sub(1, `{"masked_sha256":"`+masked+`"} {}`), "INVALID_ARGUMENT", "trailing")

	audit := []byte("ckks-ciphertexts")
	a.ok(a.putBlob(a.m(1), testRun, fakestub.SHA256Hex(audit), audit))
	r := a.ok(sub(1, a.submission(masked, fakestub.SHA256Hex(audit), 2)))
	a.wantEvent(r, EventAggSubmitted, "4", 1, "")
	mustFail(t, sub(1, a.submission(masked, "", 2)), "ALREADY_EXISTS", "submission", "run-1/4/Registry1MSP")
	if s := a.round("4").Submissions[msp(1)]; s.AuditSHA256 != fakestub.SHA256Hex(audit) || s.MaskedSHA256 != masked {
		t.Fatalf("stored submission %+v", s)
	}
}

func TestBlobs(t *testing.T) {
	a := newAgg(t)
	data := []byte{0, 1, 2, 250, 255, 7, 8, 9}
	h := fakestub.SHA256Hex(data)
	mustFail(t, a.putBlob(a.m(1), testRun, fakestub.SHA256Hex([]byte("other")), data), "INVALID_ARGUMENT", "transient:blob", "sha256 of the 8 bytes")
	mustFail(t, a.putBlob(a.m(1), testRun, h, nil), "INVALID_ARGUMENT", "transient:blob", "missing or empty")
	mustFail(t, a.call(a.m(1), "PutBlob", testRun, h), "INVALID_ARGUMENT", "transient:blob", "missing or empty")
	mustFail(t, a.call(a.m(1), "PutBlob", testRun, h, b64(data)), "INVALID_ARGUMENT", "transient:blob") // bytes as an argument: refused
	mustFail(t, a.putBlob(a.m(1), testRun, strings.ToUpper(h), data), "INVALID_ARGUMENT", "sha256Hex")
	mustFail(t, a.putBlob(a.as(msp(1), "generator"), testRun, h, data), "ACCESS_DENIED", "generator")
	mustFail(t, a.call(a.m(1), "GetBlob", testRun, h), "NOT_FOUND", "blob", h)

	meta := fakestub.Decode[BlobMeta](t, a.ok(a.putBlob(a.m(2), testRun, h, data)).Payload)
	if meta.Size != 8 || meta.SHA256 != h || meta.MSPID != msp(2) || meta.Run != testRun {
		t.Fatalf("meta %+v", meta)
	}
	got := a.ok(a.call(a.as(msp(3), "auditor"), "GetBlob", testRun, h))
	if string(got.Payload) != b64(data) {
		t.Fatalf("GetBlob = %q", got.Payload)
	}
	mustFail(t, a.putBlob(a.m(3), testRun, h, data), "ALREADY_EXISTS", "blob", h)
	mustFail(t, a.call(a.m(1), "GetBlob", "run-2", h), "NOT_FOUND") // blobs are per run
	if len(a.ledger.Events) != 0 {
		t.Fatalf("PutBlob emitted events: %+v", a.ledger.Events)
	}
	mustFail(t, a.putBlob(a.m(1), testRun, h, make([]byte, MaxBlobBytes+1)), "INVALID_ARGUMENT", "transient:blob", "16777217")
}

// twoOfThreeSubmitted opens a 3-party run (threshold 2, timeout 30 s) and
// brings round to: everyone advertised and posted shares, only 1 and 2
// submitted, and both voted to close the submit phase (Freeze allowed).
func twoOfThreeSubmitted(t *testing.T, round string) *agg {
	a := newAgg(t)
	a.open(3, 2, 30)
	all := []int{1, 2, 3}
	a.toShared(round, all, all)
	a.ok(a.submit(1, round, 2, 3))
	a.ok(a.submit(2, round, 1, 3))
	a.ok(a.call(a.m(1), "VoteClose", testRun, round, PhaseSubmit))
	a.ok(a.call(a.m(2), "VoteClose", testRun, round, PhaseSubmit))
	return a
}

// frozenWithDropout runs round "5" of a 3-party run to frozen with U =
// [1, 2] and D = [3].
func frozenWithDropout(t *testing.T) *agg {
	a := twoOfThreeSubmitted(t, "5")
	a.ok(a.call(a.m(2), "Freeze", testRun, "5"))
	return a
}

func TestRevealRules(t *testing.T) {
	a := newAgg(t)
	a.open(3, 2, 30)
	a.toShared("5", []int{1, 2, 3}, []int{1, 2, 3})
	a.ok(a.submit(1, "5", 2, 3))
	mustFail(t, a.call(a.m(1), "Reveal", testRun, "5", revealJSON([]int{1, 2}, []int{3})), "PRECONDITION_FAILED", "not frozen")

	a = frozenWithDropout(t)
	rev := func(n int, s string) fakestub.Result { return a.call(a.m(n), "Reveal", testRun, "5", s) }
	mustFail(t, rev(1, revealJSON([]int{1}, []int{3})), "INVALID_ARGUMENT", "revealJSON.seed_shares", "missing ["+msp(2)+"]")
	mustFail(t, rev(1, revealJSON([]int{1, 2, 3}, nil)), "INVALID_ARGUMENT", "revealJSON.seed_shares", "unexpected ["+msp(3)+"]")
	mustFail(t, rev(1, revealJSON([]int{1, 2}, nil)), "INVALID_ARGUMENT", "revealJSON.key_shares", "missing ["+msp(3)+"]")
	mustFail(t, rev(1, revealJSON([]int{1, 2}, []int{2, 3})), "INVALID_ARGUMENT", "revealJSON", "Registry2MSP has both")
	mustFail(t, rev(1, revealJSON([]int{1, 2}, []int{1, 3})), "INVALID_ARGUMENT", "has both")
	mustFail(t, rev(1, `{"seed_shares":{}}`), "INVALID_ARGUMENT", "revealJSON.key_shares", "missing")
	short := `{"seed_shares":{"Registry1MSP":"` + b64(fill(33, 's')) + `","Registry2MSP":"` + shareOf(2) + `"},"key_shares":{"Registry3MSP":"` + shareOf(3) + `"}}`
	mustFail(t, rev(1, short), "INVALID_ARGUMENT", `revealJSON.seed_shares[\"Registry1MSP\"]`, "decoded length 33")
	// The dropped party is not a survivor.
	mustFail(t, rev(3, revealJSON([]int{1, 2}, []int{3})), "PRECONDITION_FAILED", msp(3)+" is not a survivor")
	mustFail(t, a.call(a.m(1), "PostResult", testRun, "5", resultJSON(commit(1))), "PRECONDITION_FAILED", "has not revealed")

	a.ok(rev(1, revealJSON([]int{1, 2}, []int{3})))
	mustFail(t, rev(1, revealJSON([]int{1, 2}, []int{3})), "ALREADY_EXISTS", "reveal")
	mustFail(t, a.call(a.m(1), "PostResult", testRun, "5", `{"average_sha256":"no"}`), "INVALID_ARGUMENT", "resultJSON.average_sha256")
	mustFail(t, a.call(a.m(3), "PostResult", testRun, "5", resultJSON(commit(1))), "PRECONDITION_FAILED", "not a survivor")
	a.ok(a.call(a.m(1), "PostResult", testRun, "5", resultJSON(commit(1))))
	mustFail(t, a.call(a.m(1), "PostResult", testRun, "5", resultJSON(commit(2))), "ALREADY_EXISTS", "result")
	if v := a.round("5"); v.Results[msp(1)] != commit(1) || v.Agreed != nil {
		t.Fatalf("results %v agreed %v", v.Results, v.Agreed)
	}
}

func TestAgreementNamesTheMismatchedMerger(t *testing.T) {
	a := newAgg(t)
	a.open(3, 2, 30)
	all := []int{1, 2, 3}
	a.toShared("1", all, all)
	for _, n := range []int{3, 1, 2} {
		a.ok(a.submit(n, "1", others(all, n)...))
	}
	good, bad := fakestub.SHA256Hex([]byte("good")), fakestub.SHA256Hex([]byte("bad"))
	for _, n := range all {
		a.ok(a.call(a.m(n), "Reveal", testRun, "1", revealJSON(all, nil)))
	}
	a.ok(a.call(a.m(1), "PostResult", testRun, "1", resultJSON(good)))
	a.ok(a.call(a.m(2), "PostResult", testRun, "1", resultJSON(bad)))
	if v := a.round("1"); v.Agreed != nil || len(v.Mismatched) != 0 {
		t.Fatalf("partial: agreed %v mismatched %v", v.Agreed, v.Mismatched)
	}
	a.ok(a.call(a.m(3), "PostResult", testRun, "1", resultJSON(good)))
	v := a.round("1")
	if v.Agreed == nil || !*v.Agreed || v.Average != good || !reflect.DeepEqual(v.Mismatched, []string{msp(2)}) {
		t.Fatalf("agreed %v average %q mismatched %v", v.Agreed, v.Average, v.Mismatched)
	}
	if !reflect.DeepEqual(v.Survivors, []string{msp(1), msp(2), msp(3)}) {
		t.Fatalf("survivors not sorted: %v", v.Survivors)
	}
}

func TestAgreementTOfN(t *testing.T) {
	u := []string{"B", "A", "C"}
	cases := []struct {
		results    map[string]string
		agreed     *bool
		average    string
		mismatched []string
	}{
		{map[string]string{"A": "x"}, nil, "", []string{}},
		{map[string]string{"A": "x", "B": "y"}, nil, "", []string{}},
		{map[string]string{"A": "x", "C": "x"}, ptr(true), "x", []string{}},
		{map[string]string{"A": "x", "B": "y", "C": "x"}, ptr(true), "x", []string{"B"}},
		{map[string]string{"A": "x", "B": "y", "C": "z"}, ptr(false), "", []string{"B", "A", "C"}},
	}
	for _, c := range cases {
		agreed, avg, mismatched := agreement(u, c.results, 2)
		if !reflect.DeepEqual(agreed, c.agreed) || avg != c.average || !reflect.DeepEqual(mismatched, c.mismatched) {
			t.Fatalf("%v: got %v %q %v", c.results, agreed, avg, mismatched)
		}
	}
}

func ptr(b bool) *bool { return &b }

func TestAggregationAccess(t *testing.T) {
	a := frozenWithDropout(t)
	before := len(a.ledger.State)
	h := commit(1)
	writes := [][]string{
		{"OpenAggregation", "run-x", toJSON(t, config(3, 2, 30))},
		{"Advertise", testRun, "6", pubKey(1), commit(1)},
		{"PostShares", testRun, "6", a.sharesFor(1, 2, 3), dealingOf(1)},
		{"PutBlob", testRun, fakestub.SHA256Hex([]byte("b"))}, // refused before its transient bytes are read
		{"Submit", testRun, "6", a.submission(h, "", 2, 3)},
		{"Freeze", testRun, "6"},
		{"Reveal", testRun, "5", revealJSON([]int{1, 2}, []int{3})},
		{"PostResult", testRun, "5", resultJSON(h)},
	}
	for _, role := range []string{"admin", "generator", "discriminator", "auditor"} {
		for _, w := range writes {
			mustFail(t, a.call(a.as(msp(1), role), w[0], w[1:]...), "ACCESS_DENIED", msp(1), role, "merger")
		}
	}
	outsider := a.as("OutsiderMSP", "merger")
	for _, w := range writes {
		mustFail(t, a.call(outsider, w[0], w[1:]...), "ACCESS_DENIED", "OutsiderMSP")
	}
	for _, rd := range [][]string{{"GetAggregation", testRun}, {"GetRound", testRun, "5"}, {"GetBlob", testRun, h}} {
		mustFail(t, a.call(outsider, rd[0], rd[1:]...), "ACCESS_DENIED", "OutsiderMSP")
		if r := a.call(a.as(msp(2), "discriminator"), rd[0], rd[1:]...); !r.OK() && !strings.HasPrefix(r.Message, "NOT_FOUND") {
			t.Fatalf("%s by a consortium role: %s", rd[0], r.Message)
		}
	}
	// A consortium merger that is not a participant of the run.
	m4 := a.m(4)
	for _, w := range writes[1:] {
		if w[0] == "PutBlob" { // any merger may put a blob
			continue
		}
		mustFail(t, a.call(m4, w[0], w[1:]...), "ACCESS_DENIED", msp(4), "not a participant", testRun)
	}
	mustFail(t, a.call(m4, "OpenAggregation", "run-x", toJSON(t, config(3, 2, 30))), "ACCESS_DENIED", "not a participant")
	if len(a.ledger.State) != before {
		t.Fatalf("refused callers wrote state: %d -> %d keys", before, len(a.ledger.State))
	}
}

func TestOpenAggregationValidation(t *testing.T) {
	a := newAgg(t)
	set := func(k string, v any) string {
		c := config(3, 2, 30)
		c[k] = v
		return toJSON(t, c)
	}
	cases := []struct{ cfg, part string }{
		{set("participants", []string{msp(1)}), "configJSON.participants"},
		{set("participants", []string{msp(2), msp(1), msp(3)}), "not sorted"},
		{set("participants", []string{msp(1), msp(1), msp(2)}), "not sorted and unique"},
		{set("participants", []string{msp(1), "Registry2.MSP"}), "not an MSP id"},
		{set("participants", []string{"OrgXMSP", msp(1), msp(2)}), `"OrgXMSP" is not a registered member of channel gan`},
		{set("participants", nil), "configJSON.participants"},
		{set("threshold", 1), "configJSON.threshold"},
		{set("threshold", 4), "configJSON.threshold"},
		{set("threshold", 2.5), "configJSON"},
		{set("vector_len", 0), "configJSON.vector_len"},
		{set("vector_len", MaxVectorLen+1), "configJSON.vector_len"},
		{set("scale_bits", 7), "configJSON.scale_bits"},
		{set("scale_bits", 41), "configJSON.scale_bits"},
		{set("round_timeout_s", 0), "configJSON.round_timeout_s"},
		{set("blobs", "cloud"), "configJSON.blobs"},
		{set("blobs", 1), "configJSON"},
		{set("extra", 1), "unknown field"},
		{`{"participants":`, "malformed"},
		{"", "malformed"},
	}
	for _, c := range cases {
		mustFail(t, a.call(a.m(1), "OpenAggregation", testRun, c.cfg), "INVALID_ARGUMENT", c.part)
	}
	mustFail(t, a.call(a.m(1), "OpenAggregation", "bad run", toJSON(t, config(3, 2, 30))), "INVALID_ARGUMENT", `"run"`)
	mustFail(t, a.call(a.m(1), "GetAggregation", testRun), "NOT_FOUND", "aggregation run", testRun)
	mustFail(t, a.call(a.m(1), "GetRound", testRun, "0"), "NOT_FOUND", "aggregation run")
	// 2 participants: threshold must be 2; a 4-party run has t in {3, 4}.
	a.ok(a.call(a.m(1), "OpenAggregation", "two", toJSON(t, config(2, 2, 30))))
	mustFail(t, a.call(a.m(1), "OpenAggregation", "four", toJSON(t, config(4, 2, 30))), "INVALID_ARGUMENT", "threshold")
	a.ok(a.call(a.m(1), "OpenAggregation", "four", toJSON(t, config(4, 3, 30))))
	mustFail(t, a.call(a.m(2), "OpenAggregation", "four", toJSON(t, config(4, 3, 30))), "ALREADY_EXISTS", "aggregation run", "four")
}

func TestRoundArgumentValidation(t *testing.T) {
	a := newAgg(t)
	a.open(3, 2, 30)
	for _, bad := range []string{"", "-1", "01", "1000001", "1.5", "x"} {
		mustFail(t, a.advertise(1, bad), "INVALID_ARGUMENT", `"round"`)
		mustFail(t, a.call(a.m(1), "GetRound", testRun, bad), "INVALID_ARGUMENT", `"round"`)
		mustFail(t, a.call(a.m(1), "Freeze", testRun, bad), "INVALID_ARGUMENT", `"round"`)
	}
	a.ok(a.advertise(1, "1000000"))
	if v := a.round("1000000"); v.Round != 1_000_000 || len(v.Advertised) != 1 {
		t.Fatalf("%+v", v)
	}
}

// The following tests run transactions in one block (endorsed against the
// same state, validated in order) to check that phases close in ledger order.

func (a *agg) callOf(n int, fn string, args ...string) fakestub.Call {
	return fakestub.Call{Chaincode: a.cc, ID: a.m(n), Fn: fn, Args: args}
}

func TestLedgerOrderSubmitVersusFreezeInOneBlock(t *testing.T) {
	// Submit ordered first: U = P, and the Freeze's range read of the
	// submissions is a phantom.
	a := twoOfThreeSubmitted(t, "0")
	sub3 := a.submission(a.blob(3, "0"), "", 1, 2)
	res := a.ledger.Block(a.callOf(3, "Submit", testRun, "0", sub3), a.callOf(1, "Freeze", testRun, "0"))
	if !res[0].OK() || res[1].Invalid != fakestub.PhantomReadConflict {
		t.Fatalf("submit %+v / freeze %+v", res[0], res[1])
	}
	if v := a.round("0"); v.Status != StatusFrozen || len(v.Submissions) != 3 || len(v.Survivors) != 3 { // frozen by its submissions
		t.Fatalf("%+v", v)
	}

	// Freeze ordered first: the Submit read the status key Freeze wrote.
	b := twoOfThreeSubmitted(t, "0")
	sub3 = b.submission(b.blob(3, "0"), "", 1, 2)
	res = b.ledger.Block(b.callOf(1, "Freeze", testRun, "0"), b.callOf(3, "Submit", testRun, "0", sub3))
	if !res[0].OK() || res[1].Invalid != fakestub.MVCCReadConflict {
		t.Fatalf("freeze %+v / submit %+v", res[0], res[1])
	}
	if v := b.round("0"); v.Status != StatusFrozen || len(v.Submissions) != 2 || !reflect.DeepEqual(v.Dropped, []string{msp(3)}) {
		t.Fatalf("%+v", v)
	}
}

func TestLedgerOrderPhaseRaces(t *testing.T) {
	a := newAgg(t)
	a.open(3, 2, 30)
	// Concurrent advertisements do not conflict (one key per msp).
	res := a.ledger.Block(
		a.callOf(1, "Advertise", testRun, "0", pubKey(1), commit(1)),
		a.callOf(2, "Advertise", testRun, "0", pubKey(2), commit(2)),
	)
	for _, r := range res {
		a.ok(r)
	}
	// The t-th vote ordered before an Advertise closes the advertise phase.
	a.ok(a.call(a.m(1), "VoteClose", testRun, "0", PhaseAdvertise))
	res = a.ledger.Block(
		a.callOf(2, "VoteClose", testRun, "0", PhaseAdvertise),
		a.callOf(3, "Advertise", testRun, "0", pubKey(3), commit(3)),
	)
	if !res[0].OK() || res[1].Invalid != fakestub.PhantomReadConflict {
		t.Fatalf("vote %+v / advertise %+v", res[0], res[1])
	}
	// An Advertise ordered before a PostShares changes A: the shares are invalid.
	b := newAgg(t)
	b.open(3, 2, 30)
	b.ok(b.advertise(1, "0"))
	b.ok(b.advertise(2, "0"))
	b.ok(b.call(b.m(1), "VoteClose", testRun, "0", PhaseAdvertise))
	// A late Advertise in the block of the closing vote: both stand (the vote
	// does not read A), so A = {1, 2, 3} and everyone shares with Registry3.
	res = b.ledger.Block(
		b.callOf(3, "Advertise", testRun, "0", pubKey(3), commit(3)),
		b.callOf(2, "VoteClose", testRun, "0", PhaseAdvertise),
	)
	if !res[0].OK() || !res[1].OK() {
		t.Fatalf("advertise %+v / vote %+v", res[0], res[1])
	}
	// Concurrent PostShares of all three do not conflict with each other.
	res = b.ledger.Block(
		b.callOf(1, "PostShares", testRun, "0", b.sharesFor(1, 2, 3), dealingOf(1)),
		b.callOf(2, "PostShares", testRun, "0", b.sharesFor(2, 1, 3), dealingOf(2)),
		b.callOf(3, "PostShares", testRun, "0", b.sharesFor(3, 1, 2), dealingOf(3)),
	)
	for _, r := range res {
		b.ok(r)
	}
	// Every Submit of a round in one block: none reads another's, none conflicts,
	// and the round is frozen by them (U = P).
	res = b.ledger.Block(
		b.callOf(1, "Submit", testRun, "0", b.submission(b.blob(1, "0"), "", 2, 3)),
		b.callOf(2, "Submit", testRun, "0", b.submission(b.blob(2, "0"), "", 1, 3)),
		b.callOf(3, "Submit", testRun, "0", b.submission(b.blob(3, "0"), "", 1, 2)),
	)
	for _, r := range res {
		b.ok(r)
	}
	if v := b.round("0"); v.Status != StatusFrozen || len(v.Survivors) != 3 {
		t.Fatalf("%+v", v)
	}
	// ... and the reveals that follow in one block do not conflict either (no status write).
	res = b.ledger.Block(
		b.callOf(1, "Reveal", testRun, "0", revealJSON([]int{1, 2, 3}, nil)),
		b.callOf(2, "Reveal", testRun, "0", revealJSON([]int{1, 2, 3}, nil)),
		b.callOf(3, "Reveal", testRun, "0", revealJSON([]int{1, 2, 3}, nil)),
	)
	for _, r := range res {
		b.ok(r)
	}
	// A PostShares racing the first Submit: either order, one is invalid.
	c := newAgg(t)
	c.open(3, 2, 30)
	c.toShared("0", all3(), []int{1, 2})
	c.ok(c.call(c.m(1), "VoteClose", testRun, "0", PhaseShares))
	res = c.ledger.Block(
		c.callOf(2, "VoteClose", testRun, "0", PhaseShares),
		c.callOf(3, "PostShares", testRun, "0", c.sharesFor(3, 1, 2), dealingOf(3)),
	)
	if !res[0].OK() || res[1].Invalid != fakestub.PhantomReadConflict {
		t.Fatalf("vote %+v / shares %+v", res[0], res[1])
	}
	c.ok(c.submit(1, "0", 2))
	// After the freeze, reveals of all survivors in one block do not conflict.
	c.ok(c.submit(2, "0", 1)) // P = {1, 2}: the last submission freezes
	res = c.ledger.Block(
		c.callOf(1, "Reveal", testRun, "0", revealJSON([]int{1, 2}, nil)),
		c.callOf(2, "Reveal", testRun, "0", revealJSON([]int{1, 2}, nil)),
	)
	for _, r := range res {
		c.ok(r)
	}
}

func all3() []int { return []int{1, 2, 3} }

func TestPostSharesDealingRules(t *testing.T) {
	a := newAgg(t)
	a.open(3, 2, 30)
	a.toShared("0", all3(), nil)
	shares := a.sharesFor(1, 2, 3)
	post := func(dealing string) fakestub.Result {
		return a.call(a.m(1), "PostShares", testRun, "0", shares, dealing)
	}
	mustFail(t, post(fmt.Sprintf(`{"seed":[%q],"key":[%q,%q]}`, point(1), point(2), point(3))), "INVALID_ARGUMENT", "dealingJSON.seed", "1 commitments, threshold is 2")
	offCurve := b64(append([]byte{2}, []byte(strings.Repeat("\xff", 32))...))
	mustFail(t, post(fmt.Sprintf(`{"seed":[%q,%q],"key":[%q,%q]}`, point(1), point(2), point(3), offCurve)), "INVALID_ARGUMENT", "dealingJSON.key[1]", "not a compressed P-256 point")
	mustFail(t, post(fmt.Sprintf(`{"seed":[%q,%q],"key":[%q,%q]}`, point(1), point(2), point(3), b64(fill(34, 2)))), "INVALID_ARGUMENT", "dealingJSON.key[1]")
	mustFail(t, post(`{"seed":[],"key":[],"extra":1}`), "INVALID_ARGUMENT", "dealingJSON")
	a.ok(post(dealingOf(1)))
	if got := a.round("0").Dealings[msp(1)]; len(got.Seed) != 2 || got.Key[1] != point(14) {
		t.Fatalf("GetRound dealings %+v", got)
	}
}

// TestFreezeExcludesBothSidesOfARejection: attack "bad share dealing blames the
// honest": a recipient that found its share off the dealer's commitments names
// the dealer in its Submit; Freeze takes both out (the chaincode cannot tell who
// lies), so the dealer is named and never a survivor.
func TestFreezeExcludesBothSidesOfARejection(t *testing.T) {
	a := newAgg(t)
	a.open(3, 2, 30)
	a.toShared("0", all3(), all3())
	blob2 := a.blob(2, "0")
	rejecting := func(_ int, rejected []string, peers ...int) string {
		var sub map[string]any
		if err := json.Unmarshal([]byte(a.submission(blob2, "", peers...)), &sub); err != nil {
			t.Fatal(err)
		}
		sub["rejected"] = rejected
		return toJSON(t, sub)
	}
	mustFail(t, a.call(a.m(2), "Submit", testRun, "0", rejecting(2, []string{msp(2)}, 1, 3)), "INVALID_ARGUMENT", "submissionJSON.rejected")
	mustFail(t, a.call(a.m(2), "Submit", testRun, "0", rejecting(2, []string{msp(3), msp(1)}, 1, 3)), "INVALID_ARGUMENT", "sorted")
	a.ok(a.call(a.m(2), "Submit", testRun, "0", rejecting(2, []string{msp(1)}, 1, 3)))
	a.ok(a.submit(1, "0", 2, 3))
	a.ok(a.submit(3, "0", 1, 2)) // the last of P: freezes (void)
	v := a.round("0")
	if v.Status != StatusVoid || !reflect.DeepEqual(v.Excluded, []string{msp(1), msp(2)}) ||
		!reflect.DeepEqual(v.Survivors, []string{msp(3)}) || !reflect.DeepEqual(v.Dropped, []string{msp(1), msp(2)}) {
		t.Fatalf("status %s survivors %v dropped %v excluded %v", v.Status, v.Survivors, v.Dropped, v.Excluded)
	}
	if got := v.Submissions[msp(2)].Rejected; !reflect.DeepEqual(got, []string{msp(1)}) {
		t.Fatalf("rejected on the ledger %v", got)
	}

	// With 5 parties and t = 3 the round goes on without the two.
	b := newAgg(t)
	b.ok(b.call(b.m(1), "OpenAggregation", testRun, toJSON(t, config(5, 3, 30))))
	five := []int{1, 2, 3, 4, 5}
	for _, n := range five {
		b.ok(b.advertise(n, "0"))
	}
	for _, n := range five {
		var to []int
		for _, m := range five {
			if m != n {
				to = append(to, m)
			}
		}
		d := fmt.Sprintf(`{"seed":[%q,%q,%q],"key":[%q,%q,%q]}`, point(1), point(2), point(3), point(4), point(5), point(6))
		b.ok(b.call(b.m(n), "PostShares", testRun, "0", b.sharesFor(n, to...), d))
	}
	peersOf := func(n int) []int {
		var p []int
		for _, m := range five {
			if m != n {
				p = append(p, m)
			}
		}
		return p
	}
	var sub map[string]any
	if err := json.Unmarshal([]byte(b.submission(b.blob(4, "0"), "", peersOf(4)...)), &sub); err != nil {
		t.Fatal(err)
	}
	sub["rejected"] = []string{msp(5)}
	b.ok(b.call(b.m(4), "Submit", testRun, "0", toJSON(t, sub)))
	for _, n := range []int{1, 2, 3, 5} {
		b.ok(b.submit(n, "0", peersOf(n)...)) // the last of P freezes
	}
	w := b.round("0")
	if w.Status != StatusFrozen || !reflect.DeepEqual(w.Survivors, []string{msp(1), msp(2), msp(3)}) ||
		!reflect.DeepEqual(w.Dropped, []string{msp(4), msp(5)}) || !reflect.DeepEqual(w.Excluded, []string{msp(4), msp(5)}) {
		t.Fatalf("status %s survivors %v dropped %v excluded %v", w.Status, w.Survivors, w.Dropped, w.Excluded)
	}
	// the excluded submitter is unmasked like a dropped party: it cannot reveal
	mustFail(t, b.call(b.m(4), "Reveal", testRun, "0", `{"seed_shares":{},"key_shares":{}}`), "PRECONDITION_FAILED", "not a survivor")
}

func TestPostResultCarriesTheRoundRecord(t *testing.T) {
	a := frozenWithDropout(t) // round "5": U = [1, 2], D = [3]
	for _, n := range []int{1, 2} {
		a.ok(a.call(a.m(n), "Reveal", testRun, "5", revealJSON([]int{1, 2}, []int{3})))
	}
	with := func(h, rec string) string { return `{"average_sha256":"` + h + `","record":` + rec + `}` }
	key := func(n int) string { return "run/" + testRun + "/round/5/" + msp(n) }
	entry := `{"round": 5, "average_sha256": "` + commit(1) + `"}`
	mustFail(t, a.call(a.m(1), "PostResult", testRun, "5", with(commit(1), `[1]`)), "INVALID_ARGUMENT", "resultJSON.record")
	mustFail(t, a.call(a.m(1), "PostResult", testRun, "5", with(commit(1), `{"pad":"`+strings.Repeat("x", 13<<10)+`"}`)),
		"INVALID_ARGUMENT", "resultJSON")
	mustFail(t, a.call(a.m(1), "PostResult", testRun, "5", with(commit(1), `"text"`)), "INVALID_ARGUMENT", "resultJSON.record")
	if got := a.call(a.m(1), "GetRecord", key(1)); got.OK() {
		t.Fatalf("a refused result left a record: %s", got.Payload)
	}

	r := a.ok(a.call(a.m(1), "PostResult", testRun, "5", with(commit(1), entry)))
	a.wantResultEvent(r, "5", 1, commit(1)) // the transaction's one event
	rec := fakestub.Decode[Record](t, []byte(a.ok(a.call(a.m(2), "GetRecord", key(1))).Payload))
	if rec.Key != key(1) || rec.MSPID != msp(1) || rec.Role != "merger" || rec.TxID != r.TxID ||
		string(rec.Value) != `{"round":5,"average_sha256":"`+commit(1)+`"}` {
		t.Fatalf("record %+v", rec)
	}
	mustFail(t, a.call(a.m(1), "PutRecord", key(1), entry), "ALREADY_EXISTS", "record")

	// A round record already there refuses the whole call: no result either.
	a.ok(a.call(a.m(2), "PutRecord", key(2), entry))
	mustFail(t, a.call(a.m(2), "PostResult", testRun, "5", with(commit(1), entry)), "ALREADY_EXISTS", "record")
	if v := a.round("5"); v.Results[msp(2)] != "" {
		t.Fatalf("a refused call posted a result: %v", v.Results)
	}
	a.ok(a.call(a.m(2), "PostResult", testRun, "5", resultJSON(commit(1))))
	if v := a.round("5"); v.Agreed == nil || !*v.Agreed || v.Average != commit(1) {
		t.Fatalf("agreed %v average %q", v.Agreed, v.Average)
	}
}

// A merger advertises the next round with its result (issue 11: one
// transaction per merger and round fewer): stored as Advertise stores it, in
// the same transaction, under Advertise's rules; a refused advert refuses the
// whole call (no result either).
func TestPostResultAdvertisesTheNextRound(t *testing.T) {
	a := frozenWithDropout(t) // round "5": U = [1, 2], D = [3]
	for _, n := range []int{1, 2} {
		a.ok(a.call(a.m(n), "Reveal", testRun, "5", revealJSON([]int{1, 2}, []int{3})))
	}
	next := func(n int) string {
		return `{"average_sha256":"` + commit(9) + `","next":{"public_key":"` + pubKey(n) + `","seed_commit":"` + commit(n) + `"}}`
	}
	for _, bad := range []string{
		`{"average_sha256":"` + commit(9) + `","next":{"public_key":"xx","seed_commit":"` + commit(1) + `"}}`,
		`{"average_sha256":"` + commit(9) + `","next":{"public_key":"` + pubKey(1) + `","seed_commit":"nothex"}}`,
		`{"average_sha256":"` + commit(9) + `","next":{"public_key":"` + pubKey(1) + `","seed_commit":"` + commit(1) + `","x":1}}`,
	} {
		mustFail(t, a.call(a.m(1), "PostResult", testRun, "5", bad), "INVALID_ARGUMENT", "resultJSON")
	}

	r := a.ok(a.call(a.m(1), "PostResult", testRun, "5", next(1)))
	a.wantEventWith(r, EventAggResultPosted, "5", 1, AggEvent{AverageSHA256: commit(9), NextAdvertised: true})
	adv := a.round("6").Advertised[msp(1)]
	if adv.PublicKey != pubKey(1) || adv.SeedCommit != commit(1) || adv.TxID != r.TxID {
		t.Fatalf("round 6 advertisement %+v", adv)
	}
	if v := a.round("5"); v.Results[msp(1)] != commit(9) {
		t.Fatalf("results %v", v.Results)
	}
	mustFail(t, a.advertise(1, "6"), "ALREADY_EXISTS")

	// Round 6 goes on with registries 1 and 3 (2 is late): the advert of 2 with its
	// result is refused as a plain Advertise would be, and so is its result.
	a.ok(a.advertise(3, "6"))
	a.ok(a.call(a.m(1), "VoteClose", testRun, "6", "advertise"))
	a.ok(a.call(a.m(3), "VoteClose", testRun, "6", "advertise"))
	mustFail(t, a.call(a.m(2), "PostResult", testRun, "5", next(2)), "PRECONDITION_FAILED", "advertise")
	if v := a.round("5"); v.Results[msp(2)] != "" {
		t.Fatalf("a refused call posted a result: %v", v.Results)
	}
	if _, in := a.round("6").Advertised[msp(2)]; in {
		t.Fatal("a refused call advertised")
	}
	r = a.ok(a.call(a.m(2), "PostResult", testRun, "5", resultJSON(commit(9))))
	a.wantResultEvent(r, "5", 2, commit(9))
}
