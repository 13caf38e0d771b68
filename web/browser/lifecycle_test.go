package browser

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
)

// signIn signs user in at the console of base (each node's console keeps its own session).
func (b *browser) signIn(base, user string) {
	b.t.Helper()
	b.run("sign in "+user,
		chromedp.Navigate(base+"/login.html"),
		chromedp.WaitVisible(chromedp.CSS("body")),
		chromedp.Evaluate[chromedp.Void](`sessionStorage.removeItem("govgrid.session")`),
		chromedp.Navigate(base+"/login.html"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SetValue(chromedp.CSS(`#login input[name="user"]`), user),
		chromedp.SetValue(chromedp.CSS(`#login input[name="password"]`), testgrid.StaffPassword),
		chromedp.Click(chromedp.CSS("#login button")),
		chromedp.WaitVisible(chromedp.CSS("#signed-in")))
}

// openCase opens a case's page and waits for the steps the account may take.
func (b *browser) openCase(base, number string) []string {
	b.t.Helper()
	b.run("open "+number,
		chromedp.Navigate(base+"/case.html?number="+number),
		chromedp.WaitVisible(chromedp.CSS("#case-status")),
		chromedp.WaitVisible(chromedp.CSS("#step-buttons > *")))
	return eval[[]string](b, "the steps offered", `[...document.querySelectorAll("#step-buttons button")].map((b) => b.dataset.step)`)
}

// takeStep clicks a step's button on the open case page, fills its fields and confirms it.
func (b *browser) takeStep(step string, fields map[string]string) {
	b.t.Helper()
	actions := []chromedp.Action[chromedp.Void]{
		chromedp.Click(chromedp.CSS(`#step-buttons button[data-step="` + step + `"]`)),
		chromedp.WaitVisible(chromedp.CSS("#step-form")),
	}
	for k, v := range fields {
		actions = append(actions, chromedp.SetValue(chromedp.CSS(`#step-form input[name="`+k+`"]`), v))
	}
	actions = append(actions, chromedp.Evaluate[chromedp.Void](`document.querySelector("#step-result").textContent = ""`),
		chromedp.Click(chromedp.CSS(`#step-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#step-result > span")))
	b.run(step, actions...)
	if got := b.text("#step-result"); !strings.HasPrefix(got, "已") {
		b.t.Fatalf("%s: %s", step, got)
	}
}

// TestApplicationThroughTheConsole is the life of an application, through the console of each
// site in headless Chromium: a village clerk takes an application for an item the district
// decides, two materials missing, and prints the one-time notice; the materials come, the case
// is accepted and climbs by itself; at the district one officer processes it, one person
// reviews it (and is not offered its approval), another approves it, the officer completes it;
// it comes back down and the clerk issues it; the certificate page says its seal is valid. The
// history verifies at the three levels and the certificate offline.
func TestApplicationThroughTheConsole(t *testing.T) {
	g, district, community := catalogueGrid(t)
	township := g.WaitLeader("cd-dgdj")
	clerkTok := testgrid.SignIn(t, township, "cd-dgdj-ngj", community, "ngj.clerk", auth.RoleClerk)
	testgrid.SignIn(t, district, "cd", district, "cd.officer", auth.RoleOfficer)
	testgrid.SignIn(t, district, "cd", district, "cd.reviewer", auth.RoleReviewer, auth.RoleApprover)
	testgrid.SignIn(t, district, "cd", district, "cd.approver", auth.RoleApprover)
	ngjBase, cdBase := "http://"+community.Addrs().HTTP, "http://"+district.Addrs().HTTP
	b := newBrowser(t)

	// Intake at the village: two of the four required materials.
	b.signIn(ngjBase, "ngj.clerk")
	b.run("intake",
		chromedp.Navigate(ngjBase+"/intake.html?item=MZ-002"),
		chromedp.WaitVisible(chromedp.CSS("#materials tbody tr")),
		chromedp.Click(chromedp.CSS(`#materials input[data-material="特困人员救助供养申请书"]`)),
		chromedp.Click(chromedp.CSS(`#materials input[data-material="居民身份证"]`)),
		chromedp.SetValue(chromedp.CSS(`#intake input[name="name"]`), "李梅"),
		chromedp.SetValue(chromedp.CSS(`#intake input[name="id_number"]`), "630102198506151227"),
		chromedp.SetValue(chromedp.CSS(`#intake input[name="phone"]`), "13909710001"),
		chromedp.WaitVisible(chromedp.CSS("#notice-button")))
	b.screenshot("intake")
	b.run("the one-time notice", chromedp.Click(chromedp.CSS("#notice-button")), chromedp.WaitVisible(chromedp.CSS("#notice-missing")))
	if got := b.text("#notice-missing"); !strings.Contains(got, "户口簿") || !strings.Contains(got, "家庭收入证明") {
		t.Fatalf("the notice names %q", got)
	}
	number, code := b.text("#receipt-number"), b.text("#receipt-code")
	b.screenshot("one-time-notice")
	citizen := func(what, wait string) {
		b.run(what,
			chromedp.Navigate(ngjBase+"/status.html"),
			chromedp.WaitVisible(chromedp.CSS("#status")),
			chromedp.SetValue(chromedp.CSS(`#status input[name="number"]`), number),
			chromedp.SetValue(chromedp.CSS(`#status input[name="query_code"]`), code),
			chromedp.Click(chromedp.CSS("#status button")),
			chromedp.WaitVisible(chromedp.CSS(wait)))
	}
	// The citizen's status page shows the notice too.
	citizen("the citizen sees the notice", "#case-missing")
	if got := b.text("#case-missing"); !strings.Contains(got, "户口簿") {
		t.Fatalf("the citizen's page lists %q", got)
	}

	// The materials come: supplement, then accept; the case climbs to the district.
	if steps := b.openCase(ngjBase, number); !slices.Contains(steps, "supplement") {
		t.Fatalf("the clerk is offered %v", steps)
	}
	b.takeStep("supplement", map[string]string{"materials": "户口簿，家庭收入证明"})
	b.openCase(ngjBase, number)
	b.takeStep("accept", nil)
	b.screenshot("accepted")
	waitHeld(t, g, district, number, "cd")

	// At the district: process, review, approve by another, complete.
	b.signIn(cdBase, "cd.officer")
	b.openCase(cdBase, number)
	b.takeStep("process", map[string]string{"comment": "材料齐全，予以承办"})
	b.signIn(cdBase, "cd.reviewer")
	b.openCase(cdBase, number)
	b.takeStep("review", map[string]string{"comment": "符合特困人员认定条件"})
	if steps := b.openCase(cdBase, number); slices.Contains(steps, "approve") {
		t.Fatalf("the reviewer is offered the approval: %v", steps)
	}
	b.screenshot("reviewer-not-offered-approval")
	b.signIn(cdBase, "cd.approver")
	if steps := b.openCase(cdBase, number); !slices.Contains(steps, "approve") {
		t.Fatalf("the approver is offered %v", steps)
	}
	b.takeStep("approve", nil)
	b.signIn(cdBase, "cd.officer")
	b.openCase(cdBase, number)
	b.takeStep("complete", nil)

	// Back at the village: the certificate is issued, and its page says the seal is valid.
	waitHeld(t, g, community, number, "cd-dgdj-ngj")
	b.signIn(ngjBase, "ngj.clerk")
	b.openCase(ngjBase, number)
	b.takeStep("issue-certificate", nil)
	b.run("the certificate", chromedp.WaitVisible(chromedp.CSS("#certificate-button")), chromedp.Click(chromedp.CSS("#certificate-button")),
		chromedp.WaitVisible(chromedp.CSS("#cert-verified")))
	if got := b.text("#cert-verified"); !strings.Contains(got, "有效") {
		t.Fatalf("the certificate page says %q", got)
	}
	b.screenshot("certificate")
	// The citizen finds the decision and the certificate on the status page.
	citizen("the citizen sees the decision", "#case-certificate")
	if got := b.text("#case-decision"); got != "准予" {
		t.Fatalf("the citizen's page says the decision is %q", got)
	}
	b.screenshot("citizen-decided")

	// The history verifies wherever a copy is; the certificate, offline, against saved keys.
	for _, n := range []*node.Node{district, township, community} {
		g.Eventually(20*time.Second, func() error {
			var c casework.Case
			if code := testgrid.GetJSON(t, n, "/v1/cases/"+number, &c); code != http.StatusOK || c.Status != casework.StatusCertificateIssued {
				return fmt.Errorf("at %s: %d %s", n.Site(), code, c.Status)
			}
			return c.VerifyHistory()
		})
	}
	var cert api.CertificateAnswer
	if code := getAs(t, ngjBase+"/v1/cases/"+number+"/certificate", clerkTok, &cert); code != http.StatusOK {
		t.Fatalf("the certificate: %d", code)
	}
	var keys api.SealKeys
	if code := testgrid.GetJSON(t, township, "/v1/seal/keys", &keys); code != http.StatusOK || keys.Verify(cert.Seal) != nil {
		t.Fatalf("the certificate offline: %d %v", code, keys.Verify(cert.Seal))
	}
}

// waitHeld waits until site holds case number, as n sees it.
func waitHeld(t *testing.T, g *testgrid.Grid, n *node.Node, number, site string) {
	t.Helper()
	g.Eventually(30*time.Second, func() error {
		var c casework.Case
		if code := testgrid.GetJSON(t, n, "/v1/cases/"+number, &c); code != http.StatusOK || c.HolderSite != site || c.Transit != nil {
			return fmt.Errorf("%s at %s: %d, held by %s", number, n.Site(), code, c.HolderSite)
		}
		return nil
	})
}
