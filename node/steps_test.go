package node_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/catalog/sample"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
)

// TestApplicationLivesAcrossTheTiers: a citizen applies at a community for an item the district
// decides (MZ-002, 特困人员救助供养). Two required materials are missing: acceptance is refused
// naming them, the one-time notice asks for both, they are handed in, the case is accepted and
// climbs to the district by itself; there one officer processes it, one person reviews it and may
// not also approve it, another approves it, and it is completed; it comes back down to the
// community, where the certificate is issued; its history verifies at every level, and each event
// names the signed-in account and its role.
func TestApplicationLivesAcrossTheTiers(t *testing.T) {
	g := testgrid.New(t, fourSites)
	district, township, ngj := g.WaitLeader("cd"), g.WaitLeader("cd-dgdj"), g.WaitLeader("cd-dgdj-ngj")
	waitRegistered(t, g, district, map[string]string{"cd-dgdj": "cd", "cd-dgdj-ngj": "cd-dgdj", "cd-dgdj-bgj": "cd-dgdj"}, 20*time.Second)
	if code, body := authCall(t, district, "POST", "/v1/catalog/import", testgrid.StaffToken(t, district), json.RawMessage(sample.JSON()), nil); code != http.StatusOK {
		t.Fatalf("import the sample catalogue: %d %s", code, body)
	}
	g.Eventually(30*time.Second, func() error {
		if code := testgrid.GetJSON(t, ngj, "/v1/catalog/items/MZ-002", nil); code != http.StatusOK {
			return fmt.Errorf("MZ-002 at the community: %d", code)
		}
		return nil
	})
	clerk := testgrid.SignIn(t, township, "cd-dgdj-ngj", ngj, "s.clerk", auth.RoleClerk)
	officer := testgrid.SignIn(t, district, "cd", district, "s.officer", auth.RoleOfficer)
	reviewer := testgrid.SignIn(t, district, "cd", district, "s.reviewer", auth.RoleReviewer, auth.RoleApprover)
	approver := testgrid.SignIn(t, district, "cd", district, "s.approver", auth.RoleApprover)

	sub := testgrid.Submission(1)
	sub.ItemCode, sub.Title = "MZ-002", "特困人员救助供养申请"
	sub.Materials = []casework.Material{{Name: "特困人员救助供养申请书"}, {Name: "居民身份证"}}
	var c casework.Case
	if code, body := authCall(t, ngj, "POST", "/v1/cases", clerk, sub, &c); code != http.StatusCreated || c.Transit != nil {
		t.Fatalf("submit: %d %s", code, body)
	}
	step := func(n *node.Node, tok, step string, body any, want int) *casework.Case {
		t.Helper()
		var out casework.Case
		code, text := authCall(t, n, "POST", "/v1/cases/"+c.Number+"/"+step, tok, body, &out)
		if code != want {
			t.Fatalf("%s at %s: %d %s, want %d", step, n.Site(), code, text, want)
		}
		if code == http.StatusConflict {
			return &casework.Case{History: []casework.Event{{Note: text}}}
		}
		return &out
	}
	refused := step(ngj, clerk, "accept", nil, http.StatusConflict)
	if note := refused.History[0].Note; !strings.Contains(note, "户口簿") || !strings.Contains(note, "家庭收入证明") {
		t.Fatalf("the refusal does not name every missing material: %s", note)
	}
	if got := step(ngj, clerk, "supplement", api.StepRequest{Materials: []casework.Material{{Name: "户口簿"}}}, http.StatusConflict).History[0].Note; !strings.Contains(got, "allowed now: accept, reject, request-supplement, withdraw") {
		t.Fatalf("a step from the wrong status: %s", got)
	}
	notice := step(ngj, clerk, "request-supplement", api.StepRequest{Missing: []string{"户口簿", "家庭收入证明"}}, http.StatusOK)
	if notice.Status != casework.StatusSupplementRequested || notice.PausedSince == nil {
		t.Fatalf("after the notice: %s, paused %v", notice.Status, notice.PausedSince)
	}
	step(ngj, clerk, "supplement", api.StepRequest{Materials: []casework.Material{{Name: "户口簿", Pages: 4}, {Name: "家庭收入证明", Pages: 1}}}, http.StatusOK)
	accepted := step(ngj, clerk, "accept", nil, http.StatusOK)
	if accepted.Transit == nil || accepted.Transit.To != "cd-dgdj" || accepted.DecideTier != "district" {
		t.Fatalf("the accepted case does not climb: transit %+v, decide tier %q", accepted.Transit, accepted.DecideTier)
	}
	waitHeld(t, g, district, c.Number, "cd", 30*time.Second)

	step(district, officer, "process", nil, http.StatusOK)
	step(district, reviewer, "review", api.StepRequest{Comment: "材料齐全，符合条件"}, http.StatusOK)
	// What each may do now: the reviewer may not approve what they reviewed; the approver may.
	stepsOf := func(n *node.Node, tok string) string {
		var a api.StepsAnswer
		if code, body := authCall(t, n, "GET", "/v1/cases/"+c.Number+"/steps", tok, nil, &a); code != http.StatusOK {
			t.Fatalf("steps at %s: %d %s", n.Site(), code, body)
		}
		return fmt.Sprint(a.Steps)
	}
	if got, want := stepsOf(district, reviewer), "[]"; got != want {
		t.Errorf("the reviewer's steps: %s, want %s", got, want)
	}
	if got, want := stepsOf(district, approver), "[approve deny]"; got != want {
		t.Errorf("the approver's steps: %s, want %s", got, want)
	}
	if got, want := stepsOf(district, officer), "[withdraw]"; got != want {
		t.Errorf("the officer's steps: %s, want %s", got, want)
	}
	if got := step(district, reviewer, "approve", nil, http.StatusConflict).History[0].Note; !strings.Contains(got, "一审一核") {
		t.Fatalf("the reviewer approving: %s", got)
	}
	step(district, approver, "approve", nil, http.StatusOK)
	done := step(district, officer, "complete", nil, http.StatusOK)
	if done.Status != casework.StatusCompleted || done.Decision != casework.DecisionApproved {
		t.Fatalf("completed: %s %s", done.Status, done.Decision)
	}
	// The steps' events name the account and the role it acted in.
	roles := map[casework.EventType]string{}
	for _, e := range done.History {
		roles[e.Type] = e.Role + " " + e.Actor
	}
	for typ, want := range map[casework.EventType]string{
		casework.EventAccepted: "clerk 测试员 (s.clerk)", casework.EventReviewed: "reviewer 测试员 (s.reviewer)",
		casework.EventApproved: "approver 测试员 (s.approver)", casework.EventCompleted: "officer 测试员 (s.officer)",
	} {
		if roles[typ] != want {
			t.Errorf("%s by %q, want %q", typ, roles[typ], want)
		}
	}
	// Approved and completed, it comes down to the community where it was taken in (the
	// collection site by default), where the clerk issues the certificate.
	waitHeld(t, g, ngj, c.Number, "cd-dgdj-ngj", 30*time.Second)
	if got := step(district, officer, "complete", nil, http.StatusConflict).History[0].Note; !strings.Contains(got, "handed on") {
		t.Fatalf("a step at the district after the case left: %s", got)
	}
	step(ngj, clerk, "issue-certificate", nil, http.StatusOK)

	// The decision is sealed by the district. The certificate verifies at the community (the
	// district's key reaches it as seal/keys), for its clerk and for the citizen with the code,
	// and offline against the keys saved from any site; forged, it does not.
	var cert api.CertificateAnswer
	g.Eventually(30*time.Second, func() error {
		if code, body := authCall(t, ngj, "GET", "/v1/cases/"+c.Number+"/certificate", clerk, nil, &cert); code != http.StatusOK || cert.Verified != "valid" {
			return fmt.Errorf("the certificate at the community: %d %s", code, body)
		}
		return nil
	})
	if crt := cert.Seal.Certificate; crt.Number != c.Number || crt.Site != "cd" || crt.Decision != casework.DecisionApproved || crt.Applicant != "张*" || crt.ItemName != "特困人员救助供养申请" {
		t.Fatalf("the certificate says %+v", crt)
	}
	var citizen api.CertificateAnswer
	if code, body := authCall(t, ngj, "GET", "/v1/cases/"+c.Number+"/certificate?query_code="+c.QueryCode, "", nil, &citizen); code != http.StatusOK || citizen.Verified != "valid" {
		t.Fatalf("the citizen's certificate: %d %s", code, body)
	}
	var keys api.SealKeys
	if code := testgrid.GetJSON(t, township, "/v1/seal/keys", &keys); code != http.StatusOK || keys.Verify(cert.Seal) != nil {
		t.Fatalf("offline against the township's keys: %d %v", code, keys.Verify(cert.Seal))
	}
	forged := *cert.Seal
	forged.Certificate.Applicant = "王*"
	if err := keys.Verify(&forged); err != casework.ErrSealForged {
		t.Fatalf("a forged certificate: %v", err)
	}
	page, _ := authCall(t, ngj, "GET", "/v1/cases/"+c.Number+"/certificate?format=html&query_code="+c.QueryCode, "", nil, nil)
	if page != http.StatusOK {
		t.Fatalf("the printable certificate: %d", page)
	}
	// The district's administrator revokes its key: the certificate then shows as revoked
	// wherever the revocation reaches.
	admin := testgrid.SignIn(t, district, "cd", district, "s.admin", auth.RoleAdmin)
	if code, body := authCall(t, district, "POST", "/v1/seal/keys/cd/revoke", admin, map[string]any{"public_key": cert.Seal.PublicKey, "reason": "密钥泄露"}, nil); code != http.StatusOK {
		t.Fatalf("revoke the district's key: %d %s", code, body)
	}
	if code, _ := authCall(t, district, "POST", "/v1/seal/keys/cd/revoke", officer, map[string]any{"public_key": cert.Seal.PublicKey, "reason": "x"}, nil); code != http.StatusForbidden {
		t.Fatalf("an officer revoking a key: %d, want 403", code)
	}
	g.Eventually(30*time.Second, func() error {
		if code, body := authCall(t, ngj, "GET", "/v1/cases/"+c.Number+"/certificate", clerk, nil, &cert); code != http.StatusOK || cert.Verified != "revoked" {
			return fmt.Errorf("the certificate at the community after the revocation: %d %s", code, body)
		}
		return nil
	})
	// Its history verifies at every level that has a copy.
	for _, n := range []*node.Node{district, township, ngj} {
		g.Eventually(20*time.Second, func() error {
			var got casework.Case
			if code := testgrid.GetJSON(t, n, "/v1/cases/"+c.Number, &got); code != http.StatusOK {
				return fmt.Errorf("GET at %s: %d", n.Site(), code)
			}
			if got.Status != casework.StatusCertificateIssued {
				return fmt.Errorf("at %s the case is %s", n.Site(), got.Status)
			}
			return got.VerifyHistory()
		})
	}
}
