package sitestate

import (
	"testing"

	"github.com/govgrid/govgrid/casework"
)

// TestRestoringSiteTakesNoCasesOnAnyNode: the restore's beginning is in the log, so every replica
// refuses submissions, moves and arrivals until its end (a node that did not start the restore
// must not accept a case whose number the restore would then reuse), and a new leader sees the
// restore unfinished and finishes it.
func TestRestoringSiteTakesNoCasesOnAnyNode(t *testing.T) {
	s, other := newSite(t, "cd-dgdj"), newSite(t, "cd-dgdj-ngj")
	held := s.submit(1, "")
	c := other.submit(2, "township")
	if st, _ := s.st.Restored(); st.Restoring {
		t.Fatal("a site never restored says it is restoring")
	}
	if a := s.apply(cmdRestore, &restoreCommand{Site: s.code, Begin: true, Parent: "cd"}); a.Err != nil {
		t.Fatal(a.Err)
	}
	before := s.export()
	sub := testSubmission(3)
	if a := s.apply(cmdSubmitCase, &submitCommand{Submission: sub, Site: s.code, Tier: s.tier, Parent: s.parent, QueryCode: "1"}); a.Err == nil || a.Err.Code != CodeUnavailable {
		t.Fatalf("a submission while restoring: %+v, want unavailable", a.Err)
	}
	if a := s.apply(cmdDepart, &departCommand{Number: held.Number, Move: casework.MoveEscalate, Site: s.code, To: "cd"}); a.Err == nil || a.Err.Code != CodeUnavailable {
		t.Fatalf("a move while restoring: %+v, want unavailable", a.Err)
	}
	rec, _, _ := other.st.HandoffRecord(c.Number, c.Transit.HandoffID)
	if a := s.apply(cmdArrive, &arriveCommand{Site: s.code, Tier: s.tier, Parent: s.parent, Arrivals: []Arrival{{ID: c.Transit.HandoffID, From: other.code, Record: rec}}}); a.Err == nil || a.Err.Code != CodeUnavailable {
		t.Fatalf("an arrival while restoring: %+v, want unavailable (the sender retries; a refusal would unlock the case)", a.Err)
	}
	assertStateUnchanged(t, s, before)
	if st, _ := s.st.Restored(); !st.Restoring {
		t.Fatal("the state does not say the restore is running: a new leader would not finish it")
	}
	if a := s.apply(cmdRestore, &restoreCommand{Site: s.code, Done: true}); a.Err != nil {
		t.Fatal(a.Err)
	}
	// Restored is kept in memory between restore commands: the end must show at once.
	if st, _ := s.st.Restored(); st.Restoring || !st.Restored {
		t.Fatalf("after the restore's end the state says %+v", st)
	}
	if out := s.arrive([]Arrival{{ID: c.Transit.HandoffID, From: other.code, Record: rec}}); out[0].Outcome != OutcomeApplied {
		t.Fatalf("the arrival after the restore: %+v", out)
	}
}
