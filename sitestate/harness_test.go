package sitestate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/tier"
	"github.com/hashicorp/raft"
)

var testLoc = time.FixedZone("CST", 8*3600)

var handoffClock = time.Date(2026, 11, 25, 9, 0, 0, 0, testLoc)

// site is one local state standing for a whole site, driven command by command: what its
// leader would propose is applied at once, and the log is kept for replay tests.
type site struct {
	t      *testing.T
	code   string
	tier   tier.Tier
	parent string
	st     *State
	local  *replication.Local
	idx    uint64
	logs   []*raft.Log
	// now, if set, stamps the next commands; else each command is a second after the last.
	now time.Time
}

// newSite opens a site of the 城东 tree by code: cd (district), cd-dgdj (township), anything
// else a community of cd-dgdj.
func newSite(t *testing.T, code string) *site {
	t.Helper()
	tr, parent := tier.Community, "cd-dgdj"
	switch code {
	case "cd":
		tr, parent = tier.District, ""
	case "cd-dgdj", "cd-byl":
		tr, parent = tier.Township, "cd"
	}
	return openSite(t, code, tr, parent, t.TempDir())
}

func openSite(t *testing.T, code string, tr tier.Tier, parent, dir string) *site {
	t.Helper()
	s := &site{t: t, code: code, tier: tr, parent: parent}
	st, err := OpenLocal(Config{Site: code, Tier: tr, Parent: parent, Location: testLoc, Logger: slog.New(slog.DiscardHandler)}, dir, s.clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s.st, s.local = st, st.b.(*replication.Local)
	s.idx = s.local.AppliedIndex()
	return s
}

func (s *site) clock() time.Time {
	if !s.now.IsZero() {
		return s.now
	}
	return handoffClock.Add(time.Duration(s.idx+1) * time.Second)
}

// apply proposes one command as the site's leader would and returns the answer, refusals
// included.
func (s *site) apply(ct replication.CommandType, payload any) *Answer {
	s.t.Helper()
	body, err := json.Marshal(payload)
	if err != nil {
		s.t.Fatal(err)
	}
	s.idx = max(s.idx, s.local.AppliedIndex()) // commands proposed through the State count too
	at := s.clock()
	s.idx++
	l := &raft.Log{Index: s.idx, Term: 1, Type: raft.LogCommand, Data: replication.StampedCommand(ct, body, at)}
	s.logs = append(s.logs, l)
	a, _ := s.local.Apply([]*raft.Log{l})[0].(*Answer)
	if a == nil {
		s.t.Fatalf("%s at %s: no answer", commandName(ct), s.code)
	}
	return a
}

func testSubmission(i int) casework.Submission {
	return casework.Submission{
		Kind: casework.KindApplication, ItemCode: "GA-001", Title: fmt.Sprintf("户籍证明 %d", i),
		Applicant: &casework.Applicant{Name: "张三", IDNumber: "630102199001011234", Phone: "13800000000"},
		Materials: []casework.Material{{Name: "身份证复印件"}},
		RequestID: fmt.Sprintf("req-%d", i),
	}
}

// submit opens case i at the site, decided at decideTier ("" for here): a case decided above the
// site departs for its parent in the same commit.
func (s *site) submit(i int, decideTier string) *casework.Case {
	s.t.Helper()
	sub := testSubmission(i)
	sub.DecideTier = decideTier
	a := s.apply(cmdSubmitCase, &submitCommand{Submission: sub, Site: s.code, Tier: s.tier, Parent: s.parent, QueryCode: "123456"})
	if a.Err != nil {
		s.t.Fatalf("submit at %s: %v", s.code, a.Err)
	}
	return a.Case
}

func (s *site) outbox() []OutboxEntry {
	s.t.Helper()
	out, err := s.st.Outbox()
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

func (s *site) record(number string) *casework.Case {
	s.t.Helper()
	c, err := s.st.GetCase(number)
	if err != nil {
		s.t.Fatalf("case %s at %s: %v", number, s.code, err)
	}
	return c
}

func (s *site) holds(number string) bool {
	s.t.Helper()
	_, err := s.st.GetCase(number)
	return err == nil
}

func (s *site) export() map[string][]byte {
	s.t.Helper()
	m, err := s.st.ExportState()
	if err != nil {
		s.t.Fatal(err)
	}
	return m
}

// deliver sends each outbox entry of from toward to, as the worker would, and returns the
// outcomes.
func deliver(t *testing.T, from, to *site) []ArrivalOutcome {
	t.Helper()
	var arrivals []Arrival
	for _, e := range from.outbox() {
		if e.To != to.code {
			continue
		}
		rec, ok, err := from.st.HandoffRecord(e.Number, e.ID)
		if err != nil || !ok {
			t.Fatalf("record of %s at %s: %v %v", e.ID, from.code, ok, err)
		}
		arrivals = append(arrivals, Arrival{ID: e.ID, From: from.code, Record: rec})
	}
	return to.arrive(arrivals)
}

func (s *site) arrive(arrivals []Arrival) []ArrivalOutcome {
	s.t.Helper()
	a := s.apply(cmdArrive, &arriveCommand{Site: s.code, Tier: s.tier, Parent: s.parent, Arrivals: arrivals})
	if a.Err != nil {
		s.t.Fatalf("arrive at %s: %v", s.code, a.Err)
	}
	return a.Arrivals
}

func settleAll(t *testing.T, s *site, outcomes []ArrivalOutcome) {
	t.Helper()
	var settle []Settlement
	for _, o := range outcomes {
		settle = append(settle, Settlement{ID: o.ID, Refused: o.Outcome == OutcomeRefused, Reason: o.Reason})
	}
	if a := s.apply(cmdSettle, &settleCommand{Settlements: settle}); a.Err != nil {
		t.Fatalf("settle at %s: %v", s.code, a.Err)
	}
}

// feed reads the site's feed from seq from on, decoded.
func (s *site) feed(from uint64) []FeedEntry {
	s.t.Helper()
	raw, _, err := s.st.ReadFeed(from, 1<<20, 1<<30)
	if err != nil {
		s.t.Fatal(err)
	}
	out := make([]FeedEntry, len(raw))
	for i, b := range raw {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			s.t.Fatal(err)
		}
	}
	return out
}

// mirrorOf commits entries of child's feed at s, as the puller would.
func (s *site) mirrorOf(child *site, entries []FeedEntry) *Answer {
	s.t.Helper()
	raw := make([]json.RawMessage, len(entries))
	for i, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			s.t.Fatal(err)
		}
		raw[i] = b
	}
	return s.apply(cmdMirror, &mirrorCommand{Child: child.code, Entries: raw, Head: uint64(len(entries))})
}

func assertStateUnchanged(t *testing.T, s *site, before map[string][]byte) {
	t.Helper()
	after := s.export()
	delete(after, string(keyApplied))
	b := maps.Clone(before)
	delete(b, string(keyApplied))
	if !maps.EqualFunc(b, after, bytes.Equal) {
		t.Fatalf("the state of %s changed", s.code)
	}
}
