package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/govgrid/govgrid/catalog/sample"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

// browser is one headless Chromium for a test, with what its pages reported.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string // where screenshots go

	mu     sync.Mutex
	errors []string // JavaScript exceptions and console errors, in order
}

// newBrowser starts Chromium at 1366×768 (the centre's counter PCs) for t.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no chromium: .ci/run installs it (apt-get install chromium fonts-noto-cjk)")
		}
		t.Skip("no chromium on this machine (apt-get install chromium fonts-noto-cjk)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // CI runs as root
		chromedp.WindowSize(1366, 768),
		chromedp.Flag("lang", "zh-CN"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, dir: os.Getenv("GOVGRID_SCREENSHOTS")}
	if b.dir == "" {
		b.dir = t.TempDir()
	}
	b.dir = filepath.Join(b.dir, t.Name())
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.errors = append(b.errors, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				b.errors = append(b.errors, "console.error: "+strings.Join(args, " "))
			}
		}
	})
	if err != nil {
		t.Fatalf("listening to the page: %v", err)
	}
	return b
}

// run runs steps, failing the test with what was being done, or if the page reported an error.
func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	b.noErrors(what)
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, what, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	b.noErrors(what)
	return v
}

// noErrors fails the test if a page reported a JavaScript error.
func (b *browser) noErrors(what string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errors) > 0 {
		b.t.Fatalf("%s: the page reported errors:\n%s", what, strings.Join(b.errors, "\n"))
	}
}

// screenshot saves the whole page as name.png and logs where.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// text is the text of the first element matching sel, once it is visible.
func (b *browser) text(sel string) string {
	b.t.Helper()
	b.run("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

// catalogueGrid starts a district and a community under a township, imports the sample
// catalogue at the district and waits until the community serves it.
func catalogueGrid(t *testing.T) (g *testgrid.Grid, district, community *node.Node) {
	g = testgrid.New(t, testgrid.Spec{Sites: []testgrid.Site{
		{Code: "cd", Tier: tier.District, Nodes: 1},
		{Code: "cd-dgdj", Tier: tier.Township, Parent: "cd", Nodes: 1},
		{Code: "cd-dgdj-ngj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 1},
	}})
	district, community = g.WaitLeader("cd"), g.WaitLeader("cd-dgdj-ngj")
	g.Eventually(30*time.Second, func() error {
		resp, err := http.Post("http://"+district.Addrs().HTTP+"/v1/catalog/import", "application/json", strings.NewReader(string(sample.JSON())))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("import: %s", resp.Status)
		}
		return nil
	})
	g.Eventually(30*time.Second, func() error {
		var p struct{ Total int }
		if code := testgrid.GetJSON(t, community, "/v1/catalog/items?page_size=1", &p); code != http.StatusOK || p.Total != 89 {
			return fmt.Errorf("the community has %d items (%d)", p.Total, code)
		}
		return nil
	})
	return g, district, community
}

// TestCitizenFindsAnItemAndPrintsItsNotice: at a community's console, without signing in, a
// citizen searches the catalogue, filters it, opens an item's guide (its seven publics), opens
// the printable one-time notice, and switches the page to English and back.
func TestCitizenFindsAnItemAndPrintsItsNotice(t *testing.T) {
	_, _, community := catalogueGrid(t)
	b := newBrowser(t)
	base := "http://" + community.Addrs().HTTP

	b.run("open the catalogue", chromedp.Navigate(base+"/catalog.html"), chromedp.WaitVisible(chromedp.CSS("#items tbody tr")))
	if got := b.text("#found"); !strings.Contains(got, "89") {
		t.Fatalf("the catalogue says %q, want 89 items", got)
	}
	b.screenshot("catalogue")

	b.run("search",
		chromedp.SetValue(chromedp.CSS(`#search input[name="q"]`), "最低生活保障"),
		chromedp.Click(chromedp.CSS("#search button")),
		chromedp.WaitVisible(chromedp.CSS(`a[href="#/item/MZ-001"]`)))
	if got := b.text("#found"); !strings.Contains(got, "共 1 项") {
		t.Fatalf("the search found %q, want 1 item", got)
	}
	b.run("filter by tier and mode",
		chromedp.Navigate(base+"/catalog.html#/?tier=community&mode=immediate"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="#/item/MZ-010"]`)))
	rows := eval[int](b, "count rows", `document.querySelectorAll("#items tbody tr").length`)
	if rows == 0 || rows > 20 {
		t.Fatalf("%d rows for community immediate items", rows)
	}

	b.run("open a guide", chromedp.Navigate(base+"/catalog.html#/item/JS-007"), chromedp.WaitVisible(chromedp.CSS("dl.publics")))
	guide := b.text("main")
	for _, want := range []string{"房屋安全鉴定申请", "设定依据", "申请材料", "办理流程", "20个工作日", "200.00 元", "住房和城乡建设局"} {
		if !strings.Contains(guide, want) {
			t.Fatalf("the guide lacks %q:\n%s", want, guide)
		}
	}
	b.screenshot("guide")

	b.run("open the notice", chromedp.Click(chromedp.CSS("#to-notice")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	notice := b.text("#notice")
	for _, want := range []string{"一次性告知书", "房屋安全鉴定委托书", "房屋产权证明", "居民身份证", "合计 200.00 元", "☐"} {
		if !strings.Contains(notice, want) {
			t.Fatalf("the notice lacks %q:\n%s", want, notice)
		}
	}
	printHidden := eval[bool](b, "print styles", `(() => { const s = [...document.styleSheets].flatMap(x => [...x.cssRules]).find(r => r.media && r.media.mediaText === "print"); return !!s && s.cssText.includes(".noprint"); })()`)
	if !printHidden {
		t.Fatal("no print style hides the page's controls")
	}
	b.screenshot("notice")

	b.run("switch to English", chromedp.Click(chromedp.CSS("#lang")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if got := b.text("#notice"); !strings.Contains(got, "One-time notice") || !strings.Contains(got, "Inspection of a building's safety") {
		t.Fatalf("the English notice reads:\n%s", got)
	}
	b.screenshot("notice-en")
	b.run("back to Chinese", chromedp.Click(chromedp.CSS("#lang")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if got := b.text("#notice"); !strings.Contains(got, "一次性告知书") {
		t.Fatalf("after switching back the notice reads:\n%s", got)
	}

	// A tablet held upright: nothing wider than the screen, the notice still whole.
	b.run("a tablet's screen", chromedp.EmulateViewport(768, 1024), chromedp.Navigate(base+"/catalog.html#/notice/MZ-001"), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if w := eval[int](b, "page width", `document.documentElement.scrollWidth`); w > 768 {
		t.Fatalf("on a 768-pixel screen the notice is %d pixels wide", w)
	}
	b.screenshot("notice-tablet")
	b.run("a catalogue page on a tablet", chromedp.Navigate(base+"/catalog.html#/"), chromedp.WaitVisible(chromedp.CSS("#items")))
	if w := eval[int](b, "page width", `document.documentElement.scrollWidth`); w > 768 {
		t.Fatalf("on a 768-pixel screen the catalogue is %d pixels wide", w)
	}
	b.run("back to the counter's screen", chromedp.EmulateViewport(1366, 768))

	b.run("an unknown item", chromedp.Navigate(base+"/catalog.html#/item/XX-404"), chromedp.WaitVisible(chromedp.CSS("p.err")))
	if got := b.text("p.err"); !strings.Contains(got, "目录中没有这个事项") {
		t.Fatalf("an unknown item shows %q", got)
	}
}

// TestCitizenChecksACaseWithItsCode: a case accepted at a community and decided at the district
// climbs there; its citizen, at the community's console, enters the number and the code of the
// receipt and sees where the case is and what happened, masked; a wrong code reads "not found".
func TestCitizenChecksACaseWithItsCode(t *testing.T) {
	g, _, community := catalogueGrid(t)
	body := `{"kind":"application","item_code":"MZ-001","title":"最低生活保障申请","decide_tier":"district",
		"applicant":{"name":"李梅","id_number":"630102198506151227","phone":"13909710001"},"materials":[{"name":"居民身份证","pages":1}]}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+community.Addrs().HTTP+"/v1/cases", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(testgrid.AsStaff(t, community, req)) // a clerk takes it in
	if err != nil {
		t.Fatal(err)
	}
	var receipt struct{ Number, QueryCode string }
	err = json.NewDecoder(resp.Body).Decode(&struct {
		Number    *string `json:"number"`
		QueryCode *string `json:"query_code"`
	}{&receipt.Number, &receipt.QueryCode})
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated || receipt.QueryCode == "" {
		t.Fatalf("submit: %d %v", resp.StatusCode, err)
	}

	b := newBrowser(t)
	base := "http://" + community.Addrs().HTTP
	wrong := fmt.Sprintf("%06d", (atoi(receipt.QueryCode)+1)%1_000_000)
	b.run("a wrong code",
		chromedp.Navigate(base+"/status.html"),
		chromedp.SetValue(chromedp.CSS(`#status input[name="number"]`), receipt.Number),
		chromedp.SetValue(chromedp.CSS(`#status input[name="query_code"]`), wrong),
		chromedp.Click(chromedp.CSS("#status button")),
		chromedp.WaitVisible(chromedp.CSS("#status-error")))
	if got := b.text("#status-error"); !strings.Contains(got, "没有找到这个办件") {
		t.Fatalf("a wrong code shows %q", got)
	}
	b.screenshot("status-wrong-code")

	// The case climbs to the district by itself; once it is held there, the page says so.
	g.Eventually(30*time.Second, func() error {
		var c struct {
			HolderSite string `json:"holder_site"`
			Transit    any    `json:"transit"`
		}
		if code := testgrid.GetJSON(t, community, "/v1/cases/"+receipt.Number, &c); code != http.StatusOK || c.HolderSite != "cd" || c.Transit != nil {
			return fmt.Errorf("%s: held by %q (transit %v, %d)", receipt.Number, c.HolderSite, c.Transit, code)
		}
		return nil
	})
	b.run("the right code",
		chromedp.SetValue(chromedp.CSS(`#status input[name="query_code"]`), receipt.QueryCode),
		chromedp.Click(chromedp.CSS("#status button")),
		chromedp.WaitVisible(chromedp.CSS("#case")))
	if got := b.text("#case-holder"); strings.TrimSpace(got) != "cd" {
		t.Fatalf("the page says the case is held by %q, want cd", got)
	}
	page := b.text("#case")
	for _, want := range []string{"最低生活保障申请", "已受理", "李*", "6301**********1227", "139****0001", "居民身份证", "上报"} {
		if !strings.Contains(page, want) {
			t.Fatalf("the case's page lacks %q:\n%s", want, page)
		}
	}
	for _, secret := range []string{"李梅", "630102198506151227", "13909710001"} {
		if strings.Contains(page, secret) {
			t.Fatalf("the case's page shows %q", secret)
		}
	}
	b.screenshot("status")
}

// getAs fetches url with a bearer token into out, returning the status.
func getAs(t *testing.T, url, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestClerkSignsIn: at a community's console a clerk's wrong password is refused with a
// message, the right one signs in (the token kept in the tab, not in a cookie), and signing out
// revokes it.
func TestClerkSignsIn(t *testing.T) {
	g, district, community := catalogueGrid(t)
	post := func(n *node.Node, path, token string, body any, out any) int {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", "http://"+n.Addrs().HTTP+path, strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	var first struct{ User, Password string }
	if code := post(district, "/v1/auth/bootstrap", "", nil, &first); code != http.StatusCreated {
		t.Fatalf("bootstrap: %d", code)
	}
	var admin struct{ Token string }
	if code := post(district, "/v1/auth/login", "", map[string]string{"user": first.User, "password": first.Password}, &admin); code != http.StatusOK {
		t.Fatalf("admin's sign-in: %d", code)
	}
	clerk := map[string]any{"user": "ngj.clerk", "password": "ngj-clerk-2026", "name": "王芳", "site": "cd-dgdj-ngj", "roles": []string{"clerk"}}
	g.Eventually(30*time.Second, func() error { // the district learns its subtree as the sites register
		if code := post(district, "/v1/accounts", admin.Token, clerk, nil); code != http.StatusCreated {
			return fmt.Errorf("create the clerk: %d", code)
		}
		return nil
	})
	g.Eventually(30*time.Second, func() error {
		docs, err := community.State().Config()
		if err != nil {
			return err
		}
		for _, d := range docs {
			if d.Path == "accounts/ngj.clerk" {
				return nil
			}
		}
		return fmt.Errorf("the clerk's account has not reached the community")
	})

	b := newBrowser(t)
	base := "http://" + community.Addrs().HTTP
	b.run("a wrong password",
		chromedp.Navigate(base+"/login.html"),
		chromedp.SetValue(chromedp.CSS(`#login input[name="user"]`), "ngj.clerk"),
		chromedp.SetValue(chromedp.CSS(`#login input[name="password"]`), "not-the-password"),
		chromedp.Click(chromedp.CSS("#login button")),
		chromedp.WaitVisible(chromedp.CSS("#login-error:not(:empty)")))
	if got := b.text("#login-error"); !strings.Contains(got, "用户名或密码错误") {
		t.Fatalf("a wrong password shows %q", got)
	}
	b.screenshot("login-refused")
	b.run("the right password",
		chromedp.SetValue(chromedp.CSS(`#login input[name="password"]`), "ngj-clerk-2026"),
		chromedp.Click(chromedp.CSS("#login button")),
		chromedp.WaitVisible(chromedp.CSS("#signed-in")))
	if got := b.text("#who"); !strings.Contains(got, "王芳 (ngj.clerk)") {
		t.Fatalf("signed in as %q", got)
	}
	if cookies := eval[string](b, "cookies", `document.cookie`); cookies != "" {
		t.Fatalf("the console set cookies: %q", cookies)
	}
	token := eval[string](b, "the kept token", `JSON.parse(sessionStorage.getItem("govgrid.session")).token`)
	b.screenshot("login")

	// The console takes a case in as the signed-in clerk, who is its event's actor: the intake
	// page lists the item's materials; with every one ticked the case is accepted at once.
	b.run("accept a case",
		chromedp.Navigate(base+"/intake.html?item=MZ-001"),
		chromedp.WaitVisible(chromedp.CSS("#materials tbody tr")),
		chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("#materials input[type=checkbox]").forEach((c) => c.click())`),
		chromedp.SetValue(chromedp.CSS(`#intake input[name="name"]`), "赵丽"),
		chromedp.SetValue(chromedp.CSS(`#intake input[name="id_number"]`), "630102199203041223"),
		chromedp.SetValue(chromedp.CSS(`#intake input[name="phone"]`), "13909710003"),
		chromedp.Click(chromedp.CSS("#accept-button")),
		chromedp.WaitVisible(chromedp.CSS("#paper")))
	number := eval[string](b, "the receipt's number", `document.querySelector("#receipt-number")?.textContent || ""`)
	if number == "" {
		t.Fatalf("the console did not accept the case: %q", b.text("#intake-error"))
	}
	b.screenshot("console-receipt")
	var accepted struct {
		Status  string                   `json:"status"`
		History []struct{ Actor string } `json:"history"`
	}
	if code := getAs(t, base+"/v1/cases/"+number, token, &accepted); code != http.StatusOK || len(accepted.History) == 0 || accepted.History[0].Actor != "王芳 (ngj.clerk)" {
		t.Fatalf("the console's case %s: %d, %+v", number, code, accepted.History)
	}
	b.noErrors("the console")
	b.run("sign out",
		chromedp.Navigate(base+"/login.html"),
		chromedp.WaitVisible(chromedp.CSS("#signed-in")),
		chromedp.Click(chromedp.CSS("#logout")),
		chromedp.WaitVisible(chromedp.CSS("#signed-out")))
	// Signed out, the console asks to sign in and shows no cases.
	b.run("the console signed out", chromedp.Navigate(base+"/index.html"), chromedp.WaitVisible(chromedp.CSS("#signin-first")))
	b.screenshot("console-signed-out")
	g.Eventually(10*time.Second, func() error {
		req, _ := http.NewRequest("GET", base+"/v1/auth/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("the signed-out token answers %d", resp.StatusCode)
		}
		return nil
	})
}
