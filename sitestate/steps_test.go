package sitestate

import (
	"bytes"
	"crypto/ed25519"
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
	registerAt(t, district, SiteRecord{Code: "cd-dgdj", Tier: "township", Parent: "cd"}, SiteRecord{Code: "cd-dgdj-ngj", Tier: "community", Parent: "cd-dgdj"})
	registerAt(t, township, SiteRecord{Code: "cd-dgdj-ngj", Tier: "community", Parent: "cd-dgdj"})
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
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	if a := district.apply(cmdSiteKey, &siteKeyCommand{Seed: seed}); a.Err != nil {
		t.Fatal(a.Err)
	}
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
	// The approval is sealed with the district's key; altered, the seal fails.
	sealed := district.record(c.Number).Seal
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	keyOf := func(site string, key []byte) casework.KeyStatus {
		if site == "cd" && bytes.Equal(key, pub) {
			return casework.KeyValid
		}
		return casework.KeyUnknown
	}
	if sealed == nil || sealed.Certificate.Decision != casework.DecisionApproved || sealed.Certificate.Applicant != "张*" || sealed.Verify("", keyOf) != nil {
		t.Fatalf("the seal: %+v", sealed)
	}
	forged := *sealed
	forged.Certificate.Decision = casework.DecisionDenied
	if err := forged.Verify("", keyOf); err != casework.ErrSealForged {
		t.Fatalf("an altered certificate: %v", err)
	}
	// The step's event is in the district's feed, for the mirrors above and the supervision.
	if f := district.feed(1); len(f) == 0 || f[len(f)-1].Case.Status != casework.StatusCompleted {
		t.Fatalf("the district's feed does not end with the completed case")
	}
	// Completed and approved, it goes down to where it was taken in (the collection site by
	// default) by itself, hop by hop along the district's registry, and is collected there.
	done := district.outbox()
	if len(done) != 1 || done[0].To != "cd-dgdj" || done[0].Move != casework.MoveHandDown {
		t.Fatalf("the completed case is not on its way down: %+v", done)
	}
	settleAll(t, district, deliver(t, district, township))
	if ob := township.outbox(); len(ob) != 1 || ob[0].To != "cd-dgdj-ngj" || ob[0].Move != casework.MoveHandDown {
		t.Fatalf("the township does not pass it on down: %+v", ob)
	}
	settleAll(t, township, deliver(t, township, community))
	got := community.record(c.Number)
	if got.Status != casework.StatusCompleted || got.Transit != nil {
		t.Fatalf("at the collection site: %s, transit %+v", got.Status, got.Transit)
	}
	r = clerk
	r.Step = casework.StepIssueCertificate
	if a := community.step(c.Number, r, rules); a.Err != nil || a.Case.Status != casework.StatusCertificateIssued {
		t.Fatalf("the certificate at the collection site: %+v", a.Err)
	}
	// The listing by status follows the steps.
	page, err := community.st.ListCases(Filter{Status: casework.StatusCertificateIssued, Limit: 10})
	if err != nil || len(page.Cases) != 1 {
		t.Fatalf("issued cases at the community: %v %v", page, err)
	}
	if page, _ := community.st.ListCases(Filter{Status: casework.StatusSubmitted, Limit: 10}); len(page.Cases) != 0 {
		t.Fatalf("the case is still listed as submitted: %d", len(page.Cases))
	}
	if err := community.record(c.Number).VerifyHistory(); err != nil {
		t.Fatal(err)
	}
}

// TestCompletedCaseFindsAFarCollectionSite: a case decided at a community for collection at a
// community of another township climbs until a site's registry knows the way, then goes down.
func TestCompletedCaseFindsAFarCollectionSite(t *testing.T) {
	ngj, township, district := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj"), newSite(t, "cd")
	registerAt(t, district, SiteRecord{Code: "cd-byl", Tier: "township", Parent: "cd"}, SiteRecord{Code: "cd-byl-xc", Tier: "community", Parent: "cd-byl"})
	sub := testSubmission(1)
	sub.CollectSite = "cd-byl-xc"
	a := ngj.apply(cmdSubmitCase, &submitCommand{Submission: sub, Site: ngj.code, Tier: ngj.tier, Parent: ngj.parent, QueryCode: "123456"})
	if a.Err != nil {
		t.Fatal(a.Err)
	}
	rules := casework.ItemRules{Mode: casework.ModeImmediate}
	for _, st := range []casework.Step{casework.StepAccept, casework.StepComplete} {
		if a := ngj.step(a.Case.Number, casework.StepRequest{Step: st, Actor: "窗口 (ngj.clerk)"}, rules); a.Err != nil {
			t.Fatalf("%s: %v", st, a.Err)
		}
	}
	if ob := ngj.outbox(); len(ob) != 1 || ob[0].To != "cd-dgdj" || ob[0].Move != casework.MoveEscalate {
		t.Fatalf("the community does not send it up: %+v", ob)
	}
	settleAll(t, ngj, deliver(t, ngj, township))
	settleAll(t, township, deliver(t, township, district))
	if ob := district.outbox(); len(ob) != 1 || ob[0].To != "cd-byl" || ob[0].Move != casework.MoveHandDown {
		t.Fatalf("the district does not hand it down toward 西川: %+v", ob)
	}
}

func registerAt(t *testing.T, s *site, recs ...SiteRecord) {
	t.Helper()
	if a := s.apply(cmdRegisterSites, &registerCommand{Sites: recs}); a.Err != nil {
		t.Fatal(a.Err)
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
