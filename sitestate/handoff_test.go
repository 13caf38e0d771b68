package replication

import (
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/hashicorp/raft"
)

// site is one FSM standing for a whole site, driven command by command.
type site struct {
	t    *testing.T
	code string
	f    *fsm
	idx  uint64
	logs []*raft.Log
}

func newSite(t *testing.T, code string) *site {
	return &site{t: t, code: code, f: mustNewFSM(t, t.TempDir())}
}

var handoffClock = time.Date(2026, 11, 25, 9, 0, 0, 0, testLoc)

func (s *site) apply(ct commandType, payload any) *result {
	s.t.Helper()
	data, err := encodeCommand(ct, payload)
	if err != nil {
		s.t.Fatal(err)
	}
	s.idx++
	stampCommand(data, handoffClock.Add(time.Duration(s.idx)*time.Second))
	l := &raft.Log{Index: s.idx, Term: 1, Type: raft.LogCommand, Data: data}
	s.logs = append(s.logs, l)
	res, _ := s.f.ApplyBatch([]*raft.Log{l})[0].(*result)
	return res
}

func (s *site) submit(i int, relayTo string) *casework.Case {
	s.t.Helper()
	sub := testSubmission(i)
	sub.DecideTier = "district"
	res := s.apply(cmdSubmitCase, &submitCommand{Submission: sub, Site: s.code, RelayTo: relayTo, QueryCodeHash: "h"})
	if res.Err != nil {
		s.t.Fatalf("submit at %s: %v", s.code, res.Err)
	}
	return res.Case
}

func (s *site) outbox() []OutboxEntry {
	s.t.Helper()
	st := &Store{fsm: s.f}
	out, err := st.Outbox("", 0)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

func (s *site) record(number string) *casework.Case {
	s.t.Helper()
	c, err := s.f.getCase(number)
	if err != nil {
		s.t.Fatalf("case %s at %s: %v", number, s.code, err)
	}
	return c
}

// deliver sends each outbox entry of from to to, as the worker would, and returns the outcomes.
func deliver(t *testing.T, from, to *site, relayTo string) []ArrivalOutcome {
	t.Helper()
	var arrivals []Arrival
	for _, e := range from.outbox() {
		if e.To == to.code {
			arrivals = append(arrivals, Arrival{ID: e.ID, From: from.code, Case: from.record(e.Number), RelayTo: relayTo})
		}
	}
	res := to.apply(cmdArrive, &arriveCommand{Site: to.code, Arrivals: arrivals})
	if res.Err != nil {
		t.Fatalf("arrive at %s: %v", to.code, res.Err)
	}
	return res.Arrivals
}

func settleAll(t *testing.T, s *site, outcomes []ArrivalOutcome) {
	t.Helper()
	var settle []Settlement
	for _, o := range outcomes {
		settle = append(settle, Settlement{ID: o.ID, Refused: o.Outcome == OutcomeRefused, Reason: o.Reason})
	}
	if res := s.apply(cmdSettle, &settleCommand{Settlements: settle}); res.Err != nil {
		t.Fatalf("settle at %s: %v", s.code, res.Err)
	}
}

func TestHandoffIsAppliedOnceAndLeavesAStub(t *testing.T) {
	community, township := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj")
	c := community.submit(1, township.code)
	if c.Transit == nil || c.Transit.To != township.code || c.Version != 2 {
		t.Fatalf("accepted case is not on its way up: transit %+v version %d", c.Transit, c.Version)
	}
	if ob := community.outbox(); len(ob) != 1 || ob[0].ID != c.Transit.HandoffID {
		t.Fatalf("outbox %+v, want the one handoff %s", ob, c.Transit.HandoffID)
	}
	// A step on a case in transit is a conflict and changes nothing.
	before := mustExport(t, community.f)
	if res := community.apply(cmdDepart, &departCommand{Number: c.Number, Move: casework.MoveEscalate, Site: community.code, To: township.code}); res.Err == nil || res.Err.Code != CodeConflict {
		t.Fatalf("departure of a case in transit: %+v, want a conflict", res.Err)
	}
	assertStateUnchanged(t, community.f, before)

	first := deliver(t, community, township, "")
	if len(first) != 1 || first[0].Outcome != OutcomeApplied {
		t.Fatalf("first delivery: %+v", first)
	}
	held := mustExport(t, township.f)
	again := deliver(t, community, township, "")
	if len(again) != 1 || again[0].Outcome != OutcomeDuplicate {
		t.Fatalf("second delivery: %+v, want duplicate", again)
	}
	assertStateUnchanged(t, township.f, held)

	got := township.record(c.Number)
	if got.HolderSite != township.code || got.Transit != nil || got.Version != 3 {
		t.Fatalf("at the township: holder %s transit %+v version %d", got.HolderSite, got.Transit, got.Version)
	}
	if err := got.VerifyHistory(); err != nil {
		t.Fatal(err)
	}

	settleAll(t, community, first)
	settled := mustExport(t, community.f)
	settleAll(t, community, first) // a leader change may settle twice
	assertStateUnchanged(t, community.f, settled)
	if _, err := community.f.getCase(c.Number); err == nil {
		t.Fatal("the source still holds a live copy after settling")
	}
	st, err := (&Store{fsm: community.f}).GetStub(c.Number)
	if err != nil || st.Holder != township.code {
		t.Fatalf("stub %+v, %v; want a pointer to %s", st, err, township.code)
	}
	if len(community.outbox()) != 0 {
		t.Fatal("outbox not empty after settling")
	}
	// The source no longer holds the case: a move is refused naming the holder.
	res := community.apply(cmdDepart, &departCommand{Number: c.Number, Move: casework.MoveEscalate, Site: community.code, To: township.code})
	if res.Err == nil || res.Err.Code != CodeConflict {
		t.Fatalf("move of a handed-on case: %+v, want a conflict", res.Err)
	}
	if res := community.apply(cmdDepart, &departCommand{Number: "cd-dgdj-ngj-20261125-999999", Move: casework.MoveEscalate, Site: community.code, To: township.code}); res.Err == nil || res.Err.Code != CodeNotFound {
		t.Fatalf("move of an unknown case: %+v, want not found", res.Err)
	}
}

func TestRefusedHandoffUnlocksAndStaysRefused(t *testing.T) {
	community, township := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj")
	township.apply(cmdRetire, &retireCommand{Retired: true, Reason: "并入八一路街道"})
	c := community.submit(1, township.code)
	out := deliver(t, community, township, "")
	if len(out) != 1 || out[0].Outcome != OutcomeRefused || out[0].Reason == "" {
		t.Fatalf("delivery to a retired site: %+v, want refused with a reason", out)
	}
	if _, err := township.f.getCase(c.Number); err == nil {
		t.Fatal("a retired site took the case")
	}
	// Reinstated, a late duplicate of the refused handoff is still refused: the source may
	// already have unlocked the case, and taking it now would give it two holders.
	township.apply(cmdRetire, &retireCommand{Retired: false})
	if again := deliver(t, community, township, ""); again[0].Outcome != OutcomeRefused {
		t.Fatalf("late duplicate of a refused handoff: %+v", again)
	}
	settleAll(t, community, out)
	got := community.record(c.Number)
	last := got.History[len(got.History)-1]
	if got.Transit != nil || last.Type != casework.EventHandoffRefused || last.Note != out[0].Reason {
		t.Fatalf("after refusal: transit %+v, last event %+v", got.Transit, last)
	}
	if len(community.outbox()) != 0 {
		t.Fatal("refused handoff still in the outbox")
	}
	if err := got.VerifyHistory(); err != nil {
		t.Fatal(err)
	}
}

func TestArrivalRelaysOnAndReturnSettlesTheFirstHandoff(t *testing.T) {
	community, township, district := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj"), newSite(t, "cd")
	c := community.submit(1, township.code)
	up := deliver(t, community, township, district.code)
	if up[0].Outcome != OutcomeApplied {
		t.Fatalf("arrival: %+v", up)
	}
	mid := township.record(c.Number)
	if mid.Transit == nil || mid.Transit.To != district.code || mid.Transit.Move != casework.MoveRelay {
		t.Fatalf("arrival with relay: transit %+v", mid.Transit)
	}
	top := deliver(t, township, district, "")
	settleAll(t, township, top)
	if h := district.record(c.Number); h.HolderSite != district.code || h.Version != 5 {
		t.Fatalf("at the district: holder %s version %d", h.HolderSite, h.Version)
	}

	// The district hands it down to the township and on to the community before the community
	// ever settled its first handoff (its answer was lost).
	res := district.apply(cmdDepart, &departCommand{Number: c.Number, Move: casework.MoveHandDown, Site: district.code, To: township.code, Reason: "请社区核实"})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	settleAll(t, district, deliver(t, district, township, ""))
	if res := township.apply(cmdDepart, &departCommand{Number: c.Number, Move: casework.MoveHandDown, Site: township.code, To: community.code}); res.Err != nil {
		t.Fatal(res.Err)
	}
	back := deliver(t, township, community, "")
	if back[0].Outcome != OutcomeApplied {
		t.Fatalf("arrival back at the community: %+v", back)
	}
	if len(community.outbox()) != 0 {
		t.Fatal("the first handoff is still in the community's outbox after the case came back")
	}
	settleAll(t, community, up) // the lost answer finally arrives: it must change nothing
	got := community.record(c.Number)
	if got.HolderSite != community.code || got.Transit != nil || got.CameFrom() != township.code {
		t.Fatalf("back home: holder %s transit %+v came from %s", got.HolderSite, got.Transit, got.CameFrom())
	}
	if err := got.VerifyHistory(); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Store{fsm: community.f}).GetStub(c.Number); err == nil {
		t.Fatal("a stub remains beside the live copy")
	}
	page, err := community.f.listCases(Filter{})
	if err != nil || len(page.Cases) != 1 {
		t.Fatalf("listing at the community: %d cases, %v", len(page.Cases), err)
	}
}

func TestHandoffReplayGivesTheSameState(t *testing.T) {
	community, township := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj")
	for i := range 20 {
		community.submit(i, township.code)
	}
	out := deliver(t, community, township, "")
	settleAll(t, community, out[:10])
	replay := mustNewFSM(t, t.TempDir())
	replay.ApplyBatch(community.logs)
	replay.ApplyBatch(community.logs) // replay after a restart: a no-op
	if !maps.EqualFunc(mustExport(t, community.f), mustExport(t, replay), func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatal("replaying the community's log gave other bytes")
	}
}

func TestArrivalRefusesAForgedRecord(t *testing.T) {
	community, township := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj")
	c := community.submit(1, township.code)
	forged := community.record(c.Number)
	forged.Title = "改过的标题"
	forged.History[0].Note = "tampered"
	res := township.apply(cmdArrive, &arriveCommand{Site: township.code, Arrivals: []Arrival{{ID: c.Transit.HandoffID, From: community.code, Case: forged}}})
	if res.Arrivals[0].Outcome != OutcomeRefused {
		t.Fatalf("forged record: %+v", res.Arrivals)
	}
	if _, err := township.f.getCase(c.Number); err == nil {
		t.Fatal("forged record stored")
	}
	b, _ := json.Marshal(res.Arrivals[0])
	t.Logf("refusal: %s", b)
}

func assertStateUnchanged(t *testing.T, f *fsm, before map[string][]byte) {
	t.Helper()
	after := mustExport(t, f)
	delete(after, string(keyApplied))
	b := maps.Clone(before)
	delete(b, string(keyApplied))
	if !maps.EqualFunc(b, after, func(x, y []byte) bool { return string(x) == string(y) }) {
		t.Fatal("state changed")
	}
}

func TestArrivalRecognisedFromHistoryWhenTheTableIsLost(t *testing.T) {
	community, township := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj")
	c := community.submit(1, township.code)
	if out := deliver(t, community, township, ""); out[0].Outcome != OutcomeApplied {
		t.Fatalf("first delivery: %+v", out)
	}
	// A site rebuilt from its parent's mirror has its cases but not its applied-handoff table.
	txn := township.f.db.NewTransaction(true)
	if err := txn.Delete(handoffKey(c.Transit.HandoffID)); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	held := mustExport(t, township.f)
	if again := deliver(t, community, township, ""); again[0].Outcome != OutcomeDuplicate {
		t.Fatalf("late copy after the table was lost: %+v, want duplicate (a refusal would unlock the case at its source)", again)
	}
	assertStateUnchanged(t, township.f, held)
}
