package sitestate

import (
	"testing"
	"time"
)

// TestAuditTrailIsChained: entries are numbered densely across batches, each hashes its content and
// the one before; a page reports its chain intact; empty or unstamped batches are refused.
func TestAuditTrailIsChained(t *testing.T) {
	s := newSite(t, "cd")
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	for i := range 3 {
		res := s.apply(cmdAudit, &auditCommand{Events: []AuditEvent{
			{At: at, Kind: AuditSignIn, User: "admin", Client: "10.0.0.1"},
			{At: at.Add(time.Duration(i) * time.Second), Kind: AuditRecordRead, Subject: "cd-20261203-000001"},
		}})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	before := s.export()
	for _, bad := range [][]AuditEvent{nil, {{Kind: AuditSignIn}}, {{At: at}}} {
		if res := s.apply(cmdAudit, &auditCommand{Events: bad}); res.Err == nil {
			t.Fatalf("%v: applied", bad)
		}
	}
	assertStateUnchanged(t, s, before)

	page, err := s.st.Audit(1, 4)
	if err != nil || len(page.Entries) != 4 || page.Next != 5 || !page.ChainOK {
		t.Fatalf("first page: %+v %v", page, err)
	}
	rest, err := s.st.Audit(page.Next, 100)
	if err != nil || len(rest.Entries) != 2 || rest.Next != 0 || !rest.ChainOK || rest.Entries[0].PrevHash != page.Entries[3].Hash {
		t.Fatalf("second page: %+v %v", rest, err)
	}
	for i, e := range append(page.Entries, rest.Entries...) {
		if e.Seq != uint64(i+1) || e.Hash != e.ComputeHash() {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	// An entry altered in place breaks the chain where it is.
	e := page.Entries[1]
	e.User = "someone else"
	if e.ComputeHash() == page.Entries[1].Hash {
		t.Fatal("the hash does not cover the user")
	}
}
