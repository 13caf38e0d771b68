package sitestate

import (
	"bytes"
	"maps"
	"testing"

	"github.com/govgrid/govgrid/casework"
)

// step takes a step of case number at the site as its leader would propose it.
func (s *site) step(number string, r casework.StepRequest, rules casework.ItemRules) *Answer {
	s.t.Helper()
	r.Site, r.SiteTier = s.code, string(s.tier)
	return s.apply(cmdCaseStep, &stepCommand{Number: number, Request: r, Rules: rules, Tier: s.tier, Parent: s.parent})
}

// TestAcceptedCaseClimbsToItsDecidingTier: a community takes a case in for an item the district
// decides; a step there from the wrong status changes nothing; the acceptance commits the climb
// with it; the township passes it on; at the district the decision steps are taken, by two people.
func TestAcceptedCaseClimbsToItsDecidingTier(t *testing.T) {
	community, township, district := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj"), newSite(t, "cd")
	rules := casework.ItemRules{Mode: casework.ModePromised, DecideTier: "district", RequiredMaterials: []string{"身份证复印件", "户口簿"}}
	c := community.submit(1, "")
	if c.Transit != nil {
		t.Fatalf("a case without a decide tier left at once: %+v", c.Transit)
	}
	clerk := casework.StepRequest{Actor: "王芳 (ngj.clerk)", Role: "clerk"}

	before := community.export()
	r := clerk
	r.Step = casework.StepApprove
	if a := community.step(c.Number, r, rules); a.Err == nil || a.Err.Code != CodeConflict {
		t.Fatalf("approval of a submitted case: %+v", a.Err)
	}
	r.Step = casework.StepAccept
	if a := community.step(c.Number, r, rules); a.Err == nil || a.Err.Code != CodeConflict {
		t.Fatalf("acceptance with 户口簿 missing: %+v", a.Err)
	}
	assertStateUnchanged(t, community, before)

	r = clerk
	r.Step, r.Missing = casework.StepRequestSupplement, []string{"户口簿"}
	if a := community.step(c.Number, r, rules); a.Err != nil || a.Case.Status != casework.StatusSupplementRequested {
		t.Fatalf("supplement request: %+v", a.Err)
	}
	r = clerk
	r.Step, r.Materials = casework.StepSupplement, []casework.Material{{Name: "户口簿", Pages: 2}}
	if a := community.step(c.Number, r, rules); a.Err != nil {
		t.Fatalf("supplement: %+v", a.Err)
	}
	r = clerk
	r.Step = casework.StepAccept
	a := community.step(c.Number, r, rules)
	if a.Err != nil || a.Case.Status != casework.StatusAccepted || a.Case.Transit == nil || a.Case.Transit.To != "cd-dgdj" {
		t.Fatalf("acceptance: %+v, transit %+v", a.Err, a.Case)
	}
	// The township passes it on to the district, where it is decided.
	settleAll(t, community, deliver(t, community, township))
	if got := township.record(c.Number); got.Transit == nil || got.Transit.To != "cd" {
		t.Fatalf("at the township: transit %+v", got.Transit)
	}
	settleAll(t, township, deliver(t, township, district))
	officer := casework.StepRequest{Actor: "区中心 承办人 (cd.officer)", Role: "officer"}
	for _, s := range []struct {
		step  casework.Step
		actor string
		want  casework.Status
	}{
		{casework.StepProcess, officer.Actor, casework.StatusProcessing},
		{casework.StepReview, "张审 (cd.reviewer)", casework.StatusReviewed},
		{casework.StepApprove, "李核 (cd.approver)", casework.StatusApproved},
		{casework.StepComplete, officer.Actor, casework.StatusCompleted},
	} {
		r := casework.StepRequest{Step: s.step, Actor: s.actor, Role: "x"}
		if a := district.step(c.Number, r, rules); a.Err != nil || a.Case.Status != s.want {
			t.Fatalf("%s at the district: %+v", s.step, a.Err)
		}
	}
	// The listing by status follows the step.
	page, err := district.st.ListCases(Filter{Status: casework.StatusCompleted, Limit: 10})
	if err != nil || len(page.Cases) != 1 {
		t.Fatalf("completed cases at the district: %v %v", page, err)
	}
	if page, _ := district.st.ListCases(Filter{Status: casework.StatusSubmitted, Limit: 10}); len(page.Cases) != 0 {
		t.Fatalf("the case is still listed as submitted: %d", len(page.Cases))
	}
	got := district.record(c.Number)
	if err := got.VerifyHistory(); err != nil {
		t.Fatal(err)
	}
	// The step's event is in the district's feed, for the mirrors above and the supervision.
	if f := district.feed(1); len(f) == 0 || f[len(f)-1].Case.Status != casework.StatusCompleted {
		t.Fatalf("the district's feed does not end with the completed case")
	}
}

// TestStepReplayGivesTheSameState: a site's steps replayed from its log give the same bytes.
func TestStepReplayGivesTheSameState(t *testing.T) {
	s := newSite(t, "cd")
	rules := casework.ItemRules{Mode: casework.ModeImmediate}
	c := s.submit(1, "")
	for _, st := range []casework.Step{casework.StepAccept, casework.StepComplete, casework.StepIssueCertificate} {
		if a := s.step(c.Number, casework.StepRequest{Step: st, Actor: "窗口 (cd.clerk)", Role: "clerk"}, rules); a.Err != nil {
			t.Fatalf("%s: %v", st, a.Err)
		}
	}
	replay := openSite(t, s.code, s.tier, s.parent, t.TempDir())
	replay.local.Apply(s.logs)
	if !maps.EqualFunc(s.export(), replay.export(), bytes.Equal) {
		t.Fatal("replaying the site's steps gave other bytes")
	}
}
