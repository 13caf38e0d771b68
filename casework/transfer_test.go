package casework

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func depart(t *testing.T, c *Case, m Move, from, to string, at time.Time) string {
	t.Helper()
	id, err := c.Depart(Departure{Move: m, Site: from, To: to, Actor: "王芳", Reason: "需区级审批", At: at})
	if err != nil {
		t.Fatalf("Depart %s %s→%s: %v", m, from, to, err)
	}
	return id
}

// roundTrip stands for the wire: the target sees only the record's JSON.
func roundTrip(t *testing.T, c *Case) *Case {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	out := new(Case)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCaseGoesUpAndBackDown(t *testing.T) {
	c := mustAccept(t)
	at := c.CreatedAt
	community, township, district := c.HolderSite, "cd-dgdj", "cd"

	id1 := depart(t, c, MoveEscalate, community, township, at.Add(time.Minute))
	if c.Transit == nil || c.Transit.HandoffID != id1 || c.Transit.To != township || c.Version != 2 {
		t.Fatalf("after escalate: transit %+v version %d", c.Transit, c.Version)
	}
	if n, v, err := ParseHandoffID(id1); err != nil || n != c.Number || v != 2 {
		t.Fatalf("ParseHandoffID(%q) = %q, %d, %v", id1, n, v, err)
	}
	var ce *ConflictError
	if _, err := c.Depart(Departure{Move: MoveEscalate, Site: community, To: township, At: at}); !errors.As(err, &ce) {
		t.Fatalf("second departure while in transit: %v, want a ConflictError", err)
	}

	up := roundTrip(t, c)
	if err := up.Arrive(id1, township, at.Add(2*time.Minute)); err != nil {
		t.Fatalf("Arrive at township: %v", err)
	}
	if up.HolderSite != township || up.Transit != nil || up.Version != 3 || up.CameFrom() != community {
		t.Fatalf("at township: holder %s transit %+v version %d came from %q", up.HolderSite, up.Transit, up.Version, up.CameFrom())
	}

	id2 := depart(t, up, MoveRelay, township, district, at.Add(3*time.Minute))
	top := roundTrip(t, up)
	if err := top.Arrive(id2, district, at.Add(4*time.Minute)); err != nil {
		t.Fatalf("Arrive at district: %v", err)
	}
	id3 := depart(t, top, MoveHandDown, district, township, at.Add(5*time.Minute))
	back := roundTrip(t, top)
	if err := back.Arrive(id3, township, at.Add(6*time.Minute)); err != nil {
		t.Fatalf("Arrive back: %v", err)
	}
	if err := back.VerifyHistory(); err != nil {
		t.Fatalf("history after three hops: %v", err)
	}
	var types []EventType
	for _, e := range back.History {
		types = append(types, e.Type)
	}
	want := []EventType{EventSubmitted, EventEscalated, EventReceived, EventRelayed, EventReceived, EventHandedDown, EventReceived}
	if len(types) != len(want) {
		t.Fatalf("history %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("history %v, want %v", types, want)
		}
	}
	if back.Number != c.Number || back.CameFrom() != district {
		t.Fatalf("number %s, came from %q", back.Number, back.CameFrom())
	}
	if e := back.History[1]; e.FromSite != community || e.ToSite != township || e.Actor != "王芳" || e.Note != "需区级审批" {
		t.Fatalf("escalation event %+v lacks from, to, who or why", e)
	}
}

func TestArriveRefusesABadRecord(t *testing.T) {
	base := mustAccept(t)
	id := depart(t, base, MoveEscalate, base.HolderSite, "cd-dgdj", base.CreatedAt)
	for name, tc := range map[string]struct {
		mutate func(*Case)
		id     string
		site   string
	}{
		"tampered history": {mutate: func(c *Case) { c.History[0].Actor = "someone else" }, id: id, site: "cd-dgdj"},
		"dropped event":    {mutate: func(c *Case) { c.History = c.History[:1] }, id: id, site: "cd-dgdj"},
		"other handoff":    {mutate: func(*Case) {}, id: id + "0", site: "cd-dgdj"},
		"other target":     {mutate: func(*Case) {}, id: id, site: "cd-byl"},
		"not in transit":   {mutate: func(c *Case) { c.Transit = nil }, id: id, site: "cd-dgdj"},
	} {
		t.Run(name, func(t *testing.T) {
			c := roundTrip(t, base)
			tc.mutate(c)
			before := c.Version
			if err := c.Arrive(tc.id, tc.site, base.CreatedAt); err == nil {
				t.Fatal("Arrive accepted the record")
			}
			if c.Version != before {
				t.Fatalf("a refused arrival changed the version from %d to %d", before, c.Version)
			}
		})
	}
}

func TestRefusedUnlocks(t *testing.T) {
	c := mustAccept(t)
	id := depart(t, c, MoveEscalate, c.HolderSite, "cd-dgdj", c.CreatedAt)
	if err := c.Refused("other#1", "x", c.CreatedAt); err == nil {
		t.Fatal("Refused accepted another handoff's id")
	}
	if err := c.Refused(id, "站点已撤销", c.CreatedAt.Add(time.Second)); err != nil {
		t.Fatalf("Refused: %v", err)
	}
	last := c.History[len(c.History)-1]
	if c.Transit != nil || last.Type != EventHandoffRefused || last.Note != "站点已撤销" || c.Version != 3 {
		t.Fatalf("after refusal: transit %+v, last event %+v, version %d", c.Transit, last, c.Version)
	}
	if err := c.VerifyHistory(); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckChangeable(c.HolderSite); err != nil {
		t.Fatalf("unlocked case is not changeable: %v", err)
	}
}

func TestDepartValidates(t *testing.T) {
	c := mustAccept(t)
	for name, d := range map[string]Departure{
		"unknown move":  {Move: "teleport", Site: c.HolderSite, To: "cd-dgdj"},
		"no target":     {Move: MoveEscalate, Site: c.HolderSite},
		"to itself":     {Move: MoveEscalate, Site: c.HolderSite, To: c.HolderSite},
		"long reason":   {Move: MoveEscalate, Site: c.HolderSite, To: "cd-dgdj", Reason: string(make([]rune, MaxReason+1))},
		"not the owner": {Move: MoveEscalate, Site: "cd-byl-qyl", To: "cd-byl"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Depart(d); err == nil {
				t.Fatal("Depart accepted it")
			}
			if c.Version != 1 || c.Transit != nil {
				t.Fatal("a refused departure changed the case")
			}
		})
	}
}
