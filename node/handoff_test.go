package node_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/netfault"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

// fourSites is a district, a township and two communities under it, one node each.
var fourSites = testgrid.Spec{Sites: []testgrid.Site{
	{Code: "cd", Tier: tier.District, Nodes: 1},
	{Code: "cd-dgdj", Tier: tier.Township, Parent: "cd", Nodes: 1},
	{Code: "cd-dgdj-ngj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 1},
	{Code: "cd-dgdj-bgj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 1},
}}

// submitDecided opens a case at n that must be decided by tier decide ("" keeps it at n).
func submitDecided(t *testing.T, n *node.Node, i int, decide tier.Tier) *casework.Case {
	t.Helper()
	sub := testgrid.Submission(i)
	sub.DecideTier = string(decide)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := n.State().SubmitCase(ctx, sub)
	if err != nil {
		t.Fatalf("submit %d at %s: %v", i, n.Name(), err)
	}
	return c
}

// waitHeld waits until GET /v1/cases/{number} at n shows site as the holder, not in transit.
func waitHeld(t *testing.T, g *testgrid.Grid, n *node.Node, number, site string, timeout time.Duration) *casework.Case {
	t.Helper()
	var c casework.Case
	g.Eventually(timeout, func() error {
		c = casework.Case{}
		if code := testgrid.GetJSON(t, n, "/v1/cases/"+number, &c); code != http.StatusOK {
			return fmt.Errorf("GET %s at %s: %d", number, n.Name(), code)
		}
		if c.HolderSite != site || c.Transit != nil {
			last := c.History[len(c.History)-1]
			return fmt.Errorf("%s held by %s (transit %+v, last event %s: %s), want %s", number, c.HolderSite, c.Transit, last.Type, last.Note, site)
		}
		return nil
	})
	return &c
}

func eventTypes(c *casework.Case) []casework.EventType {
	var out []casework.EventType
	for _, e := range c.History {
		out = append(out, e.Type)
	}
	return out
}

func TestCaseGoesUpTheTreeAndDownAgain(t *testing.T) {
	g := testgrid.New(t, fourSites)
	district, township := g.WaitLeader("cd"), g.WaitLeader("cd-dgdj")
	ngj, bgj := g.WaitLeader("cd-dgdj-ngj"), g.WaitLeader("cd-dgdj-bgj")
	waitRegistered(t, g, township, map[string]string{"cd-dgdj-ngj": "cd-dgdj", "cd-dgdj-bgj": "cd-dgdj"}, 20*time.Second)

	// Accepted at a community, decided by the district: it goes up hop by hop on its own.
	c := submitDecided(t, ngj, 1, tier.District)
	if c.Transit == nil || c.Transit.To != "cd-dgdj" {
		t.Fatalf("accepted case is not on its way to the township: %+v", c.Transit)
	}
	held := waitHeld(t, g, district, c.Number, "cd", 20*time.Second)
	want := []casework.EventType{casework.EventSubmitted, casework.EventEscalated, casework.EventReceived, casework.EventRelayed, casework.EventReceived}
	if fmt.Sprint(eventTypes(held)) != fmt.Sprint(want) {
		t.Fatalf("history %v, want %v", eventTypes(held), want)
	}
	if held.Number != c.Number || held.Version != uint64(len(held.History)) {
		t.Fatalf("number %s version %d with %d events", held.Number, held.Version, len(held.History))
	}
	// Every site it passed finds it, the origin following its stubs; a sibling community's staff
	// may not read it (it is neither held nor begun in their subtree).
	for _, n := range []*node.Node{ngj, township, district} {
		waitHeld(t, g, n, c.Number, "cd", 10*time.Second)
	}
	if code := testgrid.GetJSON(t, bgj, "/v1/cases/"+c.Number, nil); code != http.StatusForbidden {
		t.Fatalf("a sibling community's staff read the case: %d, want 403", code)
	}

	// The district hands it down to the township with instructions, and the township returns it.
	var moved casework.Case
	if code := testgrid.PostJSON(t, district, "/v1/cases/"+c.Number+"/handdown", api.MoveRequest{ToSite: "cd-dgdj", Instructions: "请街道核实现场", Actor: "区中心 李明"}, &moved); code != http.StatusAccepted {
		t.Fatalf("handdown: %d", code)
	}
	if moved.Transit == nil || moved.Transit.Move != casework.MoveHandDown {
		t.Fatalf("handdown answer without transit: %+v", moved.Transit)
	}
	// While in transit (or once handed on), the district may not change it.
	if code := testgrid.PostJSON(t, district, "/v1/cases/"+c.Number+"/handdown", api.MoveRequest{ToSite: "cd-dgdj"}, nil); code != http.StatusConflict {
		t.Fatalf("second handdown: %d, want 409", code)
	}
	waitHeld(t, g, township, c.Number, "cd-dgdj", 20*time.Second)
	if code := testgrid.PostJSON(t, township, "/v1/cases/"+c.Number+"/return", api.MoveRequest{Reason: "核实完毕，退回区中心", Actor: "街道 王芳"}, nil); code != http.StatusAccepted {
		t.Fatalf("return: %d", code)
	}
	back := waitHeld(t, g, ngj, c.Number, "cd", 20*time.Second)
	last := back.History[len(back.History)-2]
	// The actor is the signed-in account, not the request's actor field.
	if last.Type != casework.EventReturned || last.FromSite != "cd-dgdj" || last.ToSite != "cd" || last.Actor != "测试员 (tg.cd-dgdj)" || last.Note == "" {
		t.Fatalf("return event %+v lacks from, to, who (the signed-in account) or why", last)
	}
	if err := back.VerifyHistory(); err != nil {
		t.Fatalf("history at the end: %v", err)
	}
}

func TestMovesFollowTheRules(t *testing.T) {
	g := testgrid.New(t, fourSites)
	district, township := g.WaitLeader("cd"), g.WaitLeader("cd-dgdj")
	ngj := g.WaitLeader("cd-dgdj-ngj")
	g.WaitLeader("cd-dgdj-bgj")
	waitRegistered(t, g, district, map[string]string{"cd-dgdj": "cd", "cd-dgdj-ngj": "cd-dgdj", "cd-dgdj-bgj": "cd-dgdj"}, 20*time.Second)

	local := submitDecided(t, ngj, 1, "")
	atDistrict := submitDecided(t, district, 2, "")
	for _, tc := range []struct {
		name   string
		n      *node.Node
		number string
		verb   string
		body   api.MoveRequest
		want   int
	}{
		{"district has no parent", district, atDistrict.Number, "escalate", api.MoveRequest{Reason: "x"}, http.StatusBadRequest},
		{"hand down to a grandchild", district, atDistrict.Number, "handdown", api.MoveRequest{ToSite: "cd-dgdj-ngj"}, http.StatusBadRequest},
		{"hand down to a sibling", ngj, local.Number, "handdown", api.MoveRequest{ToSite: "cd-dgdj-bgj"}, http.StatusBadRequest},
		{"hand down to the parent", ngj, local.Number, "handdown", api.MoveRequest{ToSite: "cd-dgdj"}, http.StatusBadRequest},
		{"hand down to an unknown site", district, atDistrict.Number, "handdown", api.MoveRequest{ToSite: "cd-nowhere"}, http.StatusNotFound},
		{"hand down without a target", district, atDistrict.Number, "handdown", api.MoveRequest{}, http.StatusBadRequest},
		{"escalate past the parent", ngj, local.Number, "escalate", api.MoveRequest{ToSite: "cd"}, http.StatusBadRequest},
		{"return a case accepted here", ngj, local.Number, "return", api.MoveRequest{}, http.StatusConflict},
		{"relay a case accepted here", ngj, local.Number, "relay", api.MoveRequest{}, http.StatusConflict},
		{"a case another site holds", township, local.Number, "escalate", api.MoveRequest{}, http.StatusNotFound},
		{"an unknown case", ngj, "cd-dgdj-ngj-20261125-999999", "escalate", api.MoveRequest{}, http.StatusNotFound},
		{"not a case number", ngj, "nonsense", "escalate", api.MoveRequest{}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := caseState(t, tc.n)
			var e api.ErrorBody
			if code := testgrid.PostJSON(t, tc.n, "/v1/cases/"+tc.number+"/"+tc.verb, tc.body, &e); code != tc.want {
				t.Fatalf("%s %s at %s: %d, want %d", tc.verb, tc.number, tc.n.Site(), code, tc.want)
			}
			if after := caseState(t, tc.n); before != after {
				t.Fatal("a refused move changed the site's cases, outbox or stubs")
			}
		})
	}

	// Once moved, the source keeps only a pointer: a second move there is a conflict naming
	// the holder.
	if code := testgrid.PostJSON(t, ngj, "/v1/cases/"+local.Number+"/escalate", api.MoveRequest{Reason: "需街道协调", Actor: "社区 赵敏"}, nil); code != http.StatusAccepted {
		t.Fatalf("escalate: %d", code)
	}
	waitHeld(t, g, ngj, local.Number, "cd-dgdj", 20*time.Second)
	g.Eventually(10*time.Second, func() error {
		if _, err := ngj.State().GetStub(local.Number); err != nil {
			return fmt.Errorf("no stub yet: %v", err)
		}
		return nil
	})
	if code := testgrid.PostJSON(t, ngj, "/v1/cases/"+local.Number+"/escalate", api.MoveRequest{}, nil); code != http.StatusConflict {
		t.Fatalf("escalate a handed-on case: %d, want 409", code)
	}
	// GET of a number that never existed is 404 everywhere.
	for _, n := range []*node.Node{ngj, township, district} {
		if code := testgrid.GetJSON(t, n, "/v1/cases/cd-dgdj-ngj-20261125-999999", nil); code != http.StatusNotFound {
			t.Fatalf("GET unknown case at %s: %d", n.Site(), code)
		}
	}
}

func TestRetiredTargetRefusesAndTheCaseIsUnlocked(t *testing.T) {
	g := testgrid.New(t, threeTiers)
	township, ngj := g.WaitLeader("cd-dgdj"), g.WaitLeader("cd-dgdj-ngj")
	waitRegistered(t, g, township, map[string]string{"cd-dgdj-ngj": "cd-dgdj"}, 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := township.SetRetired(ctx, true, "并入八一路街道"); err != nil {
		t.Fatal(err)
	}
	c := submitDecided(t, ngj, 1, tier.Township)
	var got *casework.Case
	g.Eventually(20*time.Second, func() error {
		var err error
		if got, err = ngj.State().GetCase(c.Number); err != nil {
			return err
		}
		if got.Transit != nil {
			return fmt.Errorf("still in transit")
		}
		return nil
	})
	last := got.History[len(got.History)-1]
	if got.HolderSite != "cd-dgdj-ngj" || last.Type != casework.EventHandoffRefused || last.Note == "" {
		t.Fatalf("after refusal: holder %s, last event %+v", got.HolderSite, last)
	}
	if _, err := township.State().GetCase(c.Number); err == nil {
		t.Fatal("the retired township holds the case")
	}
	// Both sides count it: the source its refusals and delivery time, the target what it refused.
	if v := metric(t, ngj, "govgrid_handoff_refusals_total"); v != 1 {
		t.Fatalf("source's refusals metric %v, want 1", v)
	}
	if v := metric(t, ngj, "govgrid_handoff_delivery_seconds_count"); v < 1 {
		t.Fatalf("source's delivery latency histogram counted %v handoffs", v)
	}
	if v := metric(t, township, "govgrid_handoffs_refused_by_target_total"); v != 1 {
		t.Fatalf("target's refused metric %v, want 1", v)
	}
	// Reinstated, the township takes a new escalation of the same case.
	if err := township.SetRetired(ctx, false, ""); err != nil {
		t.Fatal(err)
	}
	if code := testgrid.PostJSON(t, ngj, "/v1/cases/"+c.Number+"/escalate", api.MoveRequest{Reason: "再次上报"}, nil); code != http.StatusAccepted {
		t.Fatalf("escalate after reinstatement: %d", code)
	}
	waitHeld(t, g, ngj, c.Number, "cd-dgdj", 20*time.Second)
}

// liveCopies returns, per case number, the sites whose leader holds a live (not stub) copy.
func liveCopies(t *testing.T, g *testgrid.Grid, sites []string) map[string][]*casework.Case {
	t.Helper()
	out := map[string][]*casework.Case{}
	for _, site := range sites {
		l := g.WaitLeader(site)
		token := ""
		for {
			page, err := l.State().ListCases(sitestate.Filter{Limit: sitestate.MaxPageSize, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page.Cases {
				out[c.Number] = append(out[c.Number], c)
			}
			if token = page.NextPageToken; token == "" {
				break
			}
		}
	}
	return out
}

// waitOutboxesEmpty waits until no site's leader has a handoff waiting.
func waitOutboxesEmpty(t *testing.T, g *testgrid.Grid, sites []string, timeout time.Duration) {
	t.Helper()
	g.Eventually(timeout, func() error {
		for _, site := range sites {
			l := g.Leader(site)
			if l == nil {
				return fmt.Errorf("%s has no leader", site)
			}
			waiting, err := l.State().Outbox()
			if err != nil {
				return err
			}
			if len(waiting) > 0 {
				return fmt.Errorf("%s still has %d handoffs waiting, the first %+v", site, len(waiting), waiting[0])
			}
		}
		return nil
	})
}

// checkSettled checks every case after the faults: one holder, the one its decide tier names,
// not locked, with a complete history in which each hop appears exactly once.
func checkSettled(t *testing.T, g *testgrid.Grid, sites []string, want map[string]string) {
	t.Helper()
	copies := liveCopies(t, g, sites)
	for number, holder := range want {
		cs := copies[number]
		if len(cs) != 1 {
			held := []string{}
			for _, c := range cs {
				held = append(held, c.HolderSite)
			}
			t.Fatalf("case %s has %d live copies (at %v), want exactly one at %s", number, len(cs), held, holder)
		}
		c := cs[0]
		if c.HolderSite != holder || c.Transit != nil {
			t.Fatalf("case %s held by %s (transit %+v), want %s", number, c.HolderSite, c.Transit, holder)
		}
		if err := c.VerifyHistory(); err != nil {
			t.Fatalf("case %s: %v", number, err)
		}
		hops := map[string]int{"cd-dgdj-ngj": 0, "cd-dgdj-bgj": 0, "cd-dgdj": 1, "cd": 2}[holder]
		if got := len(c.History); got != 1+2*hops {
			t.Fatalf("case %s has %d events %v, want %d: a hop was lost or applied twice", number, got, eventTypes(c), 1+2*hops)
		}
	}
	if len(copies) != len(want) {
		t.Fatalf("%d cases held, want %d", len(copies), len(want))
	}
}

func TestHandoffsAreExactlyOnceOverBadLinksAndLeaderLoss(t *testing.T) {
	g := testgrid.New(t, testgrid.Spec{Sites: []testgrid.Site{
		{Code: "cd", Tier: tier.District, Nodes: 3},
		{Code: "cd-dgdj", Tier: tier.Township, Parent: "cd", Nodes: 3},
		{Code: "cd-dgdj-ngj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 1},
		{Code: "cd-dgdj-bgj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 1},
	}, Configure: func(c *node.Config) { c.HandoffBatch = 4 }})
	sites := []string{"cd", "cd-dgdj", "cd-dgdj-ngj", "cd-dgdj-bgj"}
	waitRegistered(t, g, g.WaitLeader("cd-dgdj"), map[string]string{"cd-dgdj-ngj": "cd-dgdj", "cd-dgdj-bgj": "cd-dgdj"}, 20*time.Second)
	g.SetFaults(netfault.Policy{
		Methods:     []string{"/govgrid.v1.Cluster/Handoff"},
		DropRequest: 0.2, DropReply: 0.2, Duplicate: 0.2, LateDuplicate: 0.2,
		MaxDelay: 30 * time.Millisecond,
	})
	want := map[string]string{}
	decide := []tier.Tier{tier.District, tier.Township, "", tier.District}
	submitSome := func(from, to int) {
		for i := from; i < to; i++ {
			site := []string{"cd-dgdj-ngj", "cd-dgdj-bgj"}[i%2]
			d := decide[i%len(decide)]
			c := submitDecided(t, g.WaitLeader(site), i, d)
			want[c.Number] = map[tier.Tier]string{tier.District: "cd", tier.Township: "cd-dgdj", "": site}[d]
		}
	}
	// Cases keep coming while faults are injected and leaders die: the township's leader in the
	// middle of its handoffs, then the district's; both come back later.
	killed := map[int]string{}
	for i := 0; ; i++ {
		faults, calls := g.FaultsInjected()
		if i >= 80 && faults >= 60 {
			break
		}
		switch i {
		case 20:
			killed[i] = g.WaitLeader("cd-dgdj").Name()
			g.Kill(killed[i])
		case 40:
			killed[i] = g.WaitLeader("cd").Name()
			g.Kill(killed[i])
		case 60:
			g.Restart(killed[20])
			g.Restart(killed[40])
		}
		submitSome(i, i+1)
		if decide[i%len(decide)] == "" {
			continue // stays where it was accepted
		}
		// Pace the cases to the deliveries, so that the faults hit many small calls.
		g.Eventually(20*time.Second, func() error {
			if _, now := g.FaultsInjected(); now <= calls {
				return fmt.Errorf("no delivery since case %d (%d faults in %d calls)", i, faults, calls)
			}
			return nil
		})
	}
	injected := g.SetFaults(netfault.Policy{})
	if injected == 0 {
		t.Fatal("no fault was injected: the test proved nothing")
	}
	waitOutboxesEmpty(t, g, sites, 60*time.Second)
	checkSettled(t, g, sites, want)
	t.Logf("%d cases, %d faults injected", len(want), injected)
}

func TestCutOffCommunityQueuesEscalationsAndDeliversThemOnHealing(t *testing.T) {
	g := testgrid.New(t, threeTiers)
	sites := []string{"cd", "cd-dgdj", "cd-dgdj-ngj"}
	township, community := g.WaitLeader("cd-dgdj"), g.WaitLeader("cd-dgdj-ngj")
	waitRegistered(t, g, township, map[string]string{"cd-dgdj-ngj": "cd-dgdj"}, 20*time.Second)
	g.Isolate(community.Name())

	want := map[string]string{}
	for i := range 30 {
		c := submitDecided(t, community, i, tier.District)
		want[c.Number] = "cd"
	}
	waiting, err := community.State().Outbox()
	if err != nil || len(waiting) != 30 || waiting[0].To != "cd-dgdj" {
		t.Fatalf("outbox toward the township: %d waiting, %v; want 30 queued", len(waiting), err)
	}
	// The queue shows in GET /v1/sites, so operators see what waits.
	var sitesView api.SitesView
	testgrid.GetJSON(t, community, "/v1/sites", &sitesView)
	var shown int
	for _, s := range sitesView.Sites {
		for _, o := range s.Outbox {
			shown += o.Depth
		}
	}
	if shown != 30 {
		t.Fatalf("GET /v1/sites shows %d handoffs waiting, want 30", shown)
	}
	// And on /metrics: the depth toward the township, and the failed deliveries being retried.
	g.Eventually(10*time.Second, func() error {
		if v := metric(t, community, `govgrid_handoff_outbox_depth{target="cd-dgdj"}`); v != 30 {
			return fmt.Errorf("outbox depth metric %v, want 30", v)
		}
		if v := metric(t, community, "govgrid_handoff_retries_total"); v < 1 {
			return fmt.Errorf("retries metric %v", v)
		}
		return nil
	})

	g.Heal()
	waitOutboxesEmpty(t, g, sites, 60*time.Second)
	checkSettled(t, g, sites, want)
}

// caseState is a site's cases, outbox, stubs and handoff table as one string: what a move may
// change (the registry, mirror and feed change on their own while a grid runs).
func caseState(t *testing.T, n *node.Node) string {
	t.Helper()
	all, err := n.State().ExportState()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(all)) {
		switch k[:2] {
		case "c/", "o/", "p/", "h/", "t/", "s/", "q/", "r/":
			fmt.Fprintf(&b, "%q=%q\n", k, all[k])
		}
	}
	return b.String()
}

// metric reads one sample of n's /metrics by its name and labels as printed ("name{l=\"v\"}").
func metric(t *testing.T, n *node.Node, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.Addrs().HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", sample, err)
			}
			return v
		}
	}
	return -1
}
