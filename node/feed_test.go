package node_test

import (
	"fmt"
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

// ancestors of each site of fourSites-shaped grids.
var ancestorsOf = map[string][]string{
	"cd": nil, "cd-dgdj": {"cd"}, "cd-dgdj-ngj": {"cd-dgdj", "cd"}, "cd-dgdj-bgj": {"cd-dgdj", "cd"},
}

// waitMirrorsConverge waits until, for every case held anywhere, every ancestor of its holder
// (and the holder itself) has a mirror copy at the holder's version with the same history hash.
func waitMirrorsConverge(t *testing.T, g *testgrid.Grid, sites []string, timeout time.Duration) int {
	t.Helper()
	var n int
	g.Eventually(timeout, func() error {
		n = 0
		for _, site := range sites {
			l := g.Leader(site)
			if l == nil {
				return fmt.Errorf("%s has no leader", site)
			}
			page, err := l.State().ListCases(sitestate.Filter{Limit: sitestate.MaxPageSize})
			if err != nil {
				return err
			}
			if page.NextPageToken != "" {
				return fmt.Errorf("test grid holds more than a page at %s", site)
			}
			for _, c := range page.Cases {
				if c.Transit != nil {
					return fmt.Errorf("%s still in transit", c.Number)
				}
				n++
				for _, a := range append([]string{site}, ancestorsOf[site]...) {
					al := g.Leader(a)
					if al == nil {
						return fmt.Errorf("%s has no leader", a)
					}
					rec, err := al.State().MirrorCase(c.Number)
					if err != nil {
						return fmt.Errorf("%s's mirror lacks %s held by %s: %v", a, c.Number, site, err)
					}
					if rec.Case.Version != c.Version || rec.Case.LastHash() != c.LastHash() || rec.Case.HolderSite != site {
						return fmt.Errorf("%s's mirror has %s at version %d held by %s, the holder %s has version %d",
							a, c.Number, rec.Case.Version, rec.Case.HolderSite, site, c.Version)
					}
				}
			}
		}
		return nil
	})
	return n
}

func TestMirrorsConvergeAfterFaults(t *testing.T) {
	g := testgrid.New(t, testgrid.Spec{Sites: []testgrid.Site{
		{Code: "cd", Tier: tier.District, Nodes: 1},
		{Code: "cd-dgdj", Tier: tier.Township, Parent: "cd", Nodes: 3},
		{Code: "cd-dgdj-ngj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 1},
		{Code: "cd-dgdj-bgj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 1},
	}})
	sites := []string{"cd", "cd-dgdj", "cd-dgdj-ngj", "cd-dgdj-bgj"}
	waitRegistered(t, g, g.WaitLeader("cd"), map[string]string{"cd-dgdj": "cd", "cd-dgdj-ngj": "cd-dgdj", "cd-dgdj-bgj": "cd-dgdj"}, 20*time.Second)
	g.SetFaults(netfault.Policy{Methods: []string{"/govgrid.v1.Cluster/Handoff"}, DropReply: 0.3, Duplicate: 0.3, MaxDelay: 20 * time.Millisecond})

	decide := []tier.Tier{"", tier.Township, tier.District}
	i := 0
	submitBatch := func(n int) {
		for range n {
			site := []string{"cd-dgdj-ngj", "cd-dgdj-bgj"}[i%2]
			submitDecided(t, g.WaitLeader(site), i, decide[i%3])
			i++
		}
	}
	submitBatch(30)
	// A community is cut off while it keeps accepting; the township's leader dies; both heal.
	ngj := g.WaitLeader("cd-dgdj-ngj")
	g.Isolate(ngj.Name())
	for range 10 {
		submitDecided(t, ngj, i, "")
		i++
	}
	victim := g.WaitLeader("cd-dgdj").Name()
	g.Kill(victim)
	submitBatch(20)
	g.Heal()
	g.Restart(victim)
	submitBatch(10)
	g.SetFaults(netfault.Policy{})

	waitOutboxesEmpty(t, g, sites, 60*time.Second)
	if n := waitMirrorsConverge(t, g, sites, 60*time.Second); n != i {
		t.Fatalf("%d cases held, %d accepted", n, i)
	}
	// Each parent has mirrored its children's feeds to their heads, with no gap (the FSM
	// refuses one) and nothing twice (entries at or below the cursor are skipped).
	g.Eventually(30*time.Second, func() error {
		for child, parent := range map[string]string{"cd-dgdj-ngj": "cd-dgdj", "cd-dgdj-bgj": "cd-dgdj", "cd-dgdj": "cd"} {
			head, err := g.WaitLeader(child).State().FeedHead()
			if err != nil {
				return err
			}
			cur, err := g.WaitLeader(parent).State().FeedCursors()
			if err != nil {
				return err
			}
			if cur[child].Cursor != head {
				return fmt.Errorf("%s has mirrored %s up to %d of %d", parent, child, cur[child].Cursor, head)
			}
		}
		return nil
	})
}

func TestSubtreeListingAndLag(t *testing.T) {
	g := testgrid.New(t, fourSites)
	district, township := g.WaitLeader("cd"), g.WaitLeader("cd-dgdj")
	waitRegistered(t, g, district, map[string]string{"cd-dgdj": "cd", "cd-dgdj-ngj": "cd-dgdj", "cd-dgdj-bgj": "cd-dgdj"}, 20*time.Second)
	ngj, bgj := g.WaitLeader("cd-dgdj-ngj"), g.WaitLeader("cd-dgdj-bgj")
	for i := range 6 {
		submitDecided(t, []*node.Node{ngj, bgj}[i%2], i, "")
	}
	submitDecided(t, township, 6, "")
	var list api.SubtreePage
	g.Eventually(20*time.Second, func() error {
		list.Cases = nil
		testgrid.GetJSON(t, district, "/v1/cases?scope=subtree&tier=community&page_size=10", &list)
		if len(list.Cases) != 6 {
			return fmt.Errorf("district lists %d community cases, want 6", len(list.Cases))
		}
		return nil
	})
	for _, c := range list.Cases {
		if c.Mirror.Origin != c.HolderSite || c.Mirror.MirroredAt.IsZero() {
			t.Fatalf("listing entry %+v lacks where it came from or when", c)
		}
	}
	// Filters and paging: one site's cases, two per page.
	seen := map[string]bool{}
	token := ""
	for page := 0; ; page++ {
		list.Cases, list.NextPageToken = nil, ""
		testgrid.GetJSON(t, township, "/v1/cases?scope=subtree&site=cd-dgdj-bgj&status=submitted&kind=application&page_size=2&page_token="+token, &list)
		for _, c := range list.Cases {
			if c.HolderSite != "cd-dgdj-bgj" || seen[c.Number] {
				t.Fatalf("page %d: %+v (seen before: %v)", page, c, seen[c.Number])
			}
			seen[c.Number] = true
		}
		if token = list.NextPageToken; token == "" {
			break
		}
	}
	if len(seen) != 3 {
		t.Fatalf("paged through %d of bgj's 3 cases", len(seen))
	}
	// The township's own case is in its subtree; the district sees lag per child, caught up.
	var own struct {
		Cases []casework.Case `json:"cases"`
	}
	testgrid.GetJSON(t, township, "/v1/cases?scope=subtree&site=cd-dgdj", &own)
	if len(own.Cases) != 1 {
		t.Fatalf("township's own cases in its subtree: %d", len(own.Cases))
	}
	g.Eventually(20*time.Second, func() error {
		var v api.SitesView
		testgrid.GetJSON(t, district, "/v1/sites", &v)
		for _, s := range v.Sites {
			if s.Site == "cd-dgdj" {
				if s.Feed == nil || s.Feed.Head == 0 || !s.Feed.LagKnown || s.Feed.LagEntries == nil || *s.Feed.LagEntries != 0 || !s.Feed.StreamUp {
					return fmt.Errorf("district's view of the township's feed: %+v", s.Feed)
				}
				return nil
			}
		}
		return fmt.Errorf("township not in the district's tree")
	})
	g.Eventually(10*time.Second, func() error {
		if v := metric(t, district, `govgrid_feed_entries_mirrored_total{child="cd-dgdj"}`); v < 7 {
			return fmt.Errorf("district mirrored %v of the township's entries, want at least 7", v)
		}
		if v := metric(t, district, `govgrid_feed_lag_entries{child="cd-dgdj"}`); v != 0 {
			return fmt.Errorf("district's lag behind the township %v entries", v)
		}
		return nil
	})
}

func TestAncestorAnswersFromItsMirrorWhenTheHolderIsCutOff(t *testing.T) {
	g := testgrid.New(t, threeTiers)
	township, community := g.WaitLeader("cd-dgdj"), g.WaitLeader("cd-dgdj-ngj")
	waitRegistered(t, g, township, map[string]string{"cd-dgdj-ngj": "cd-dgdj"}, 20*time.Second)
	c := submitDecided(t, community, 1, "")
	g.Eventually(20*time.Second, func() error {
		if _, err := township.State().MirrorCase(c.Number); err != nil {
			return err
		}
		_, err := g.WaitLeader("cd").State().MirrorCase(c.Number)
		return err
	})
	g.Isolate(community.Name())
	var got casework.Case
	if code := testgrid.GetJSON(t, township, "/v1/cases/"+c.Number, &got); code != 200 || got.Number != c.Number || got.Version != c.Version {
		t.Fatalf("GET %s at the township with its holder cut off: %d %+v", c.Number, code, got)
	}
	if code := testgrid.GetJSON(t, g.WaitLeader("cd"), "/v1/cases/"+c.Number, &got); code != 200 || got.HolderSite != "cd-dgdj-ngj" {
		t.Fatalf("GET %s at the district with the holder cut off: %d %+v", c.Number, code, got)
	}
}
