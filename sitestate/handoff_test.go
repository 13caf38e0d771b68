package sitestate

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/tier"
	"github.com/hashicorp/raft"
)

func TestHandoffIsAppliedOnceAndLeavesAStub(t *testing.T) {
	community, township := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj")
	c := community.submit(1, "township")
	if c.Transit == nil || c.Transit.To != township.code || c.Version != 2 {
		t.Fatalf("accepted case is not on its way up: transit %+v version %d", c.Transit, c.Version)
	}
	if ob := community.outbox(); len(ob) != 1 || ob[0].ID != c.Transit.HandoffID {
		t.Fatalf("outbox %+v, want the one handoff %s", ob, c.Transit.HandoffID)
	}
	// A step on a case in transit is a conflict and changes nothing.
	before := community.export()
	if a := community.apply(cmdDepart, &departCommand{Number: c.Number, Move: casework.MoveEscalate, Site: community.code, To: township.code}); a.Err == nil || a.Err.Code != CodeConflict {
		t.Fatalf("departure of a case in transit: %+v, want a conflict", a.Err)
	}
	assertStateUnchanged(t, community, before)

	first := deliver(t, community, township)
	if len(first) != 1 || first[0].Outcome != OutcomeApplied {
		t.Fatalf("first delivery: %+v", first)
	}
	held := township.export()
	again := deliver(t, community, township)
	if len(again) != 1 || again[0].Outcome != OutcomeDuplicate {
		t.Fatalf("second delivery: %+v, want duplicate", again)
	}
	assertStateUnchanged(t, township, held)

	got := township.record(c.Number)
	if got.HolderSite != township.code || got.Transit != nil || got.Version != 3 {
		t.Fatalf("at the township: holder %s transit %+v version %d", got.HolderSite, got.Transit, got.Version)
	}
	if err := got.VerifyHistory(); err != nil {
		t.Fatal(err)
	}

	settleAll(t, community, first)
	settled := community.export()
	settleAll(t, community, first) // a leader change may settle twice
	assertStateUnchanged(t, community, settled)
	if community.holds(c.Number) {
		t.Fatal("the source still holds a live copy after settling")
	}
	st, err := community.st.GetStub(c.Number)
	if err != nil || st.Holder != township.code {
		t.Fatalf("stub %+v, %v; want a pointer to %s", st, err, township.code)
	}
	if len(community.outbox()) != 0 {
		t.Fatal("outbox not empty after settling")
	}
	// The source no longer holds the case: a move is refused naming the holder.
	a := community.apply(cmdDepart, &departCommand{Number: c.Number, Move: casework.MoveEscalate, Site: community.code, To: township.code})
	if a.Err == nil || a.Err.Code != CodeConflict {
		t.Fatalf("move of a handed-on case: %+v, want a conflict", a.Err)
	}
	if a := community.apply(cmdDepart, &departCommand{Number: "cd-dgdj-ngj-20261125-999999", Move: casework.MoveEscalate, Site: community.code, To: township.code}); a.Err == nil || a.Err.Code != CodeNotFound {
		t.Fatalf("move of an unknown case: %+v, want not found", a.Err)
	}
}

func TestRefusedHandoffUnlocksAndStaysRefused(t *testing.T) {
	community, township := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj")
	township.apply(cmdRetire, &retireCommand{Retired: true, Reason: "并入八一路街道"})
	c := community.submit(1, "township")
	out := deliver(t, community, township)
	if len(out) != 1 || out[0].Outcome != OutcomeRefused || out[0].Reason == "" {
		t.Fatalf("delivery to a retired site: %+v, want refused with a reason", out)
	}
	if township.holds(c.Number) {
		t.Fatal("a retired site took the case")
	}
	// Reinstated, a late duplicate of the refused handoff is still refused: the source may
	// already have unlocked the case, and taking it now would give it two holders.
	township.apply(cmdRetire, &retireCommand{Retired: false})
	if again := deliver(t, community, township); again[0].Outcome != OutcomeRefused {
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
	c := community.submit(1, "district")
	up := deliver(t, community, township)
	if up[0].Outcome != OutcomeApplied {
		t.Fatalf("arrival: %+v", up)
	}
	mid := township.record(c.Number)
	if mid.Transit == nil || mid.Transit.To != district.code || mid.Transit.Move != casework.MoveRelay {
		t.Fatalf("arrival of a case decided above: transit %+v, want relayed on", mid.Transit)
	}
	top := deliver(t, township, district)
	settleAll(t, township, top)
	if h := district.record(c.Number); h.HolderSite != district.code || h.Version != 5 {
		t.Fatalf("at the district: holder %s version %d", h.HolderSite, h.Version)
	}

	// The district hands it down to the township and on to the community before the community
	// ever settled its first handoff (its answer was lost). Handed down, it stays where it lands.
	if a := district.apply(cmdDepart, &departCommand{Number: c.Number, Move: casework.MoveHandDown, Site: district.code, To: township.code, Reason: "请社区核实"}); a.Err != nil {
		t.Fatal(a.Err)
	}
	settleAll(t, district, deliver(t, district, township))
	if township.record(c.Number).Transit != nil {
		t.Fatal("a case handed down was relayed back up")
	}
	if a := township.apply(cmdDepart, &departCommand{Number: c.Number, Move: casework.MoveHandDown, Site: township.code, To: community.code}); a.Err != nil {
		t.Fatal(a.Err)
	}
	back := deliver(t, township, community)
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
	if _, err := community.st.GetStub(c.Number); err == nil {
		t.Fatal("a stub remains beside the live copy")
	}
	page, err := community.st.ListCases(Filter{})
	if err != nil || len(page.Cases) != 1 {
		t.Fatalf("listing at the community: %d cases, %v", len(page.Cases), err)
	}
}

func TestHandoffReplayGivesTheSameState(t *testing.T) {
	community, township := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj")
	for i := range 20 {
		community.submit(i, "township")
	}
	out := deliver(t, community, township)
	settleAll(t, community, out[:10])
	replay := openSite(t, community.code, community.tier, community.parent, t.TempDir())
	replay.local.Apply(community.logs)
	replay.local.Apply(community.logs) // replay after a restart: a no-op
	if !maps.EqualFunc(community.export(), replay.export(), bytes.Equal) {
		t.Fatal("replaying the community's log gave other bytes")
	}
}

func TestArrivalRefusesAForgedRecord(t *testing.T) {
	community, township := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj")
	c := community.submit(1, "township")
	forged := community.record(c.Number)
	forged.Title = "改过的标题"
	forged.History[0].Note = "tampered"
	b, _ := json.Marshal(forged)
	out := township.arrive([]Arrival{{ID: c.Transit.HandoffID, From: community.code, Record: b}})
	if out[0].Outcome != OutcomeRefused {
		t.Fatalf("forged record: %+v", out)
	}
	if township.holds(c.Number) {
		t.Fatal("forged record stored")
	}
	for name, rec := range map[string]json.RawMessage{"null": json.RawMessage(`null`), "empty object": json.RawMessage(`{}`), "none": nil, "array": json.RawMessage(`[1]`)} {
		out := township.arrive([]Arrival{{ID: "x#" + name, From: community.code, Record: rec}})
		if out[0].Outcome != OutcomeRefused {
			t.Fatalf("%s record: %+v, want refused", name, out)
		}
	}
}

// TestStaleArrivalIsNeverAppliedAgain: the applied-handoff table keeps only refusals; an old copy
// of a handoff applied before is recognised by the version, even after the case has moved on,
// and a site rebuilt without any table answers it the same way.
func TestStaleArrivalIsNeverAppliedAgain(t *testing.T) {
	community, township, district := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj"), newSite(t, "cd")
	c := community.submit(1, "district")
	rec, _, _ := community.st.HandoffRecord(c.Number, c.Transit.HandoffID)
	stale := []Arrival{{ID: c.Transit.HandoffID, From: community.code, Record: rec}}
	if out := township.arrive(stale); out[0].Outcome != OutcomeApplied {
		t.Fatalf("first delivery: %+v", out)
	}
	settleAll(t, township, deliver(t, township, district)) // relayed on to the district
	held := township.export()
	for _, k := range []string{string(handoffKey(c.Transit.HandoffID))} {
		if _, ok := held[k]; ok {
			t.Fatalf("an applied handoff was written to the table (%s): it would grow without bound", k)
		}
	}
	if out := township.arrive(stale); out[0].Outcome != OutcomeDuplicate {
		t.Fatalf("late copy after the case moved on: %+v, want duplicate", out)
	}
	assertStateUnchanged(t, township, held)
	if township.holds(c.Number) {
		t.Fatal("the late copy gave the case a second holder")
	}
}

func TestRetriedSubmissionAnswersTheSameCaseWhereverItWent(t *testing.T) {
	community, township := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj")
	sub := testSubmission(7)
	sub.DecideTier = "township"
	first := community.apply(cmdSubmitCase, &submitCommand{Submission: sub, Site: community.code, Tier: tier.Community, Parent: township.code, QueryCode: "246810"})
	if first.Err != nil || first.QueryCode != "246810" {
		t.Fatalf("first submission: %+v", first)
	}
	settleAll(t, community, deliver(t, community, township)) // the case has left: a stub is all that is held
	// The retry (a client that lost the 201) draws another code; it must get the first case and
	// the first code, and the site must not stop.
	retry := community.apply(cmdSubmitCase, &submitCommand{Submission: sub, Site: community.code, Tier: tier.Community, Parent: township.code, QueryCode: "999999"})
	if retry.Err != nil || !retry.Duplicate || retry.Case.Number != first.Case.Number || retry.QueryCode != "246810" {
		t.Fatalf("retry after the case left: %+v", retry)
	}
	if !retry.Case.CheckQueryCode(nil, retry.QueryCode) {
		t.Fatal("the code answered does not match the case")
	}
}

func TestSubmitRulesAndDense(t *testing.T) {
	s := newSite(t, "cd")
	var answers []*Answer
	for i := range 12 {
		sub := testSubmission(i)
		if i == 9 {
			sub.RequestID = "req-4"
		}
		if i == 6 {
			sub.Applicant = nil
		}
		answers = append(answers, s.apply(cmdSubmitCase, &submitCommand{Submission: sub, Site: "cd", Tier: tier.District, QueryCode: "000001"}))
	}
	if a := answers[0]; a.Err != nil || a.Case.Number != "cd-20261125-000001" {
		t.Fatalf("first case: %+v", a)
	}
	if a := answers[6]; a.Err == nil || a.Err.Code != CodeInvalid || a.Case != nil {
		t.Errorf("invalid submission: %+v", a)
	}
	if dup := answers[9]; !dup.Duplicate || dup.Case.Number != answers[4].Case.Number {
		t.Errorf("retry of req-4 answered %+v, want the case of req-4", dup)
	}
	page, err := s.st.ListCases(Filter{Limit: MaxPageSize})
	if err != nil || len(page.Cases) != 10 {
		t.Fatalf("listed %d cases (%v), want 10: the invalid and duplicate entries used no number", len(page.Cases), err)
	}
}

func TestDayTurnsInGridTimeZone(t *testing.T) {
	s := newSite(t, "cd")
	s.now = handoffClock.Add(15 * time.Hour) // 2026-11-26 00:00 in Shanghai
	if got := s.submit(1, "").Number; got != "cd-20261126-000001" {
		t.Fatalf("number %s, want cd-20261126-000001", got)
	}
}

// TestStateBytesDoNotDependOnTheNodesTimeZone applies the same log in two processes whose TZ
// differs (time.Local cannot be changed safely inside one) and compares the state's bytes.
func TestStateBytesDoNotDependOnTheNodesTimeZone(t *testing.T) {
	if os.Getenv("GOVGRID_TZ_HELPER") != "" {
		s := newSite(t, "cd-dgdj")
		for i := range 5 {
			s.submit(i, "district")
		}
		settleAll(t, s, []ArrivalOutcome{{ID: s.outbox()[0].ID, Outcome: OutcomeApplied}})
		sum := sha256.New()
		state := s.export()
		for _, k := range slices.Sorted(maps.Keys(state)) {
			fmt.Fprintf(sum, "%q=%q\n", k, state[k])
		}
		fmt.Printf("STATE %x\n", sum.Sum(nil))
		return
	}
	hashes := map[string]string{}
	for _, tz := range []string{"Asia/Shanghai", "America/New_York", "UTC"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStateBytesDoNotDependOnTheNodesTimeZone$", "-test.count=1")
		cmd.Env = append(os.Environ(), "GOVGRID_TZ_HELPER=1", "TZ="+tz)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("TZ=%s: %v\n%s", tz, err, out)
		}
		_, h, ok := strings.Cut(string(out), "STATE ")
		if !ok {
			t.Fatalf("TZ=%s: no state hash in %s", tz, out)
		}
		hashes[tz], _, _ = strings.Cut(h, "\n")
	}
	if hashes["Asia/Shanghai"] != hashes["America/New_York"] || hashes["UTC"] != hashes["America/New_York"] {
		t.Fatalf("the same log gave other bytes in other time zones: %v", hashes)
	}
}

func TestUndecodableCommandsAreRefused(t *testing.T) {
	s := newSite(t, "cd")
	before := s.export()
	for _, ct := range []replication.CommandType{cmdSubmitCase, cmdSubmitCasePB, cmdDepart, cmdArrive, cmdSettle, cmdMirror, cmdRestore, cmdConfigPut, cmdConfigSync, cmdConfigPutMany, cmdSiteKey, cmdAudit, cmdRegisterSites, cmdTrimFeed, cmdRetire, cmdCaseStep} {
		s.idx++
		l := &raft.Log{Index: s.idx, Type: raft.LogCommand, Data: replication.StampedCommand(ct, []byte(`{"broken`), handoffClock)}
		a, _ := s.local.Apply([]*raft.Log{l})[0].(*Answer)
		if a == nil || a.Err == nil {
			t.Errorf("%s with a broken payload: %+v, want a refusal", commandName(ct), a)
		}
	}
	assertStateUnchanged(t, s, before)
	if _, err := s.st.GetCase("cd-20261125-000001"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetCase of a case never opened: %v", err)
	}
}
