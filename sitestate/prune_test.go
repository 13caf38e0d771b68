package sitestate

import (
	"context"
	"testing"
	"time"
)

// TestPruneDropsWhatIsPastItsWindow: request ids go after RetryWindow, stubs after StubWindow,
// handoff records of earlier versions (applied) at once; refusals stay; recent entries stay.
func TestPruneDropsWhatIsPastItsWindow(t *testing.T) {
	community, township := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj")
	community.now = time.Now().Add(-40 * 24 * time.Hour)
	old := community.submit(1, "township") // accepted and handed on 40 days ago
	township.now = community.now
	settleAll(t, community, deliver(t, community, township))
	community.now = time.Now().Add(-time.Hour)
	community.submit(2, "")
	// A refusal (kept) and an applied record written by an earlier version (dropped).
	township.apply(cmdRetire, &retireCommand{Retired: true, Reason: "合并"})
	refusedCase := community.submit(3, "township")
	deliver(t, community, township)
	township.apply(cmdRetire, &retireCommand{Retired: false})
	township.now = time.Now()
	legacy := handoffKey("cd-dgdj-ngj-20261001-000009#2")
	writeRaw(t, township, legacy, []byte(`{"from_site":"cd-dgdj-ngj","outcome":"applied"}`))

	community.now = time.Now()
	n, err := community.st.Prune(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("community pruned %d entries (%v), want 2: the old request id and its stub", n, err)
	}
	state := community.export()
	if _, ok := state[string(requestKey("req-1"))]; ok {
		t.Error("the 40-day-old request id is still kept")
	}
	if _, ok := state[string(stubKey(old.Number))]; ok {
		t.Error("the 40-day-old stub is still kept")
	}
	if _, ok := state[string(requestKey("req-2"))]; !ok {
		t.Error("a request id an hour old was dropped: a retry within the window must find it")
	}
	if n, err := community.st.Prune(context.Background()); err != nil || n != 0 {
		t.Fatalf("a second prune named %d entries (%v), want 0", n, err)
	}
	if n, err := township.st.Prune(context.Background()); err != nil || n != 1 {
		t.Fatalf("township pruned %d entries (%v), want 1: the applied record", n, err)
	}
	tstate := township.export()
	if _, ok := tstate[string(legacy)]; ok {
		t.Error("an applied handoff record is still kept")
	}
	if _, ok := tstate[string(handoffKey(refusedCase.Transit.HandoffID))]; !ok {
		t.Error("a refusal was dropped: a late copy of the refused handoff must be refused again")
	}
}

// writeRaw writes a key directly, standing for state an earlier version left.
func writeRaw(t *testing.T, s *site, key, value []byte) {
	t.Helper()
	if err := s.local.WriteForTest(key, value); err != nil {
		t.Fatal(err)
	}
}
