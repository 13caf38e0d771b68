package node_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

// TestLostTownshipIsRestoredExactly restores a township lost with its disk (issue 9, point 4;
// review findings 2, 5 and 9). Before the loss: its community trimmed its feed (the township had
// mirrored it); the township owned a configuration document; a case was submitted at the
// township with a request id; and, while the township was cut off from the district, it handed
// a case down to the community, which took it: the district never heard of that. After the
// restore: the handed-down case is held once, by the community (the township points to it); the
// community's new cases reach the township's and the district's mirrors (the township's cursor
// came back through a resync of the community's mirror); the township's document and its
// version counter came back from the community; the retried submission answers the same case
// and code; and the township's new numbers are in the restore reserve.
func TestLostTownshipIsRestoredExactly(t *testing.T) {
	g := testgrid.New(t, threeTiers)
	district, township, community := g.WaitLeader("cd"), g.WaitLeader("cd-dgdj"), g.WaitLeader("cd-dgdj-ngj")
	waitRegistered(t, g, district, map[string]string{"cd-dgdj": "cd", "cd-dgdj-ngj": "cd-dgdj"}, 20*time.Second)

	// The community's cases, mirrored by the township, which lets the community trim its feed.
	var kept []string
	for i := range 4 {
		kept = append(kept, submitDecided(t, community, i, "").Number)
	}
	g.Eventually(30*time.Second, func() error {
		if _, _, err := community.State().ReadFeed(1, 1, 1<<20); err == nil {
			return fmt.Errorf("the community has not trimmed its feed yet")
		}
		return nil
	})

	// A document the township owns, and a submission with a request id.
	if code := putConfig(t, township, "notices/street", `"本街道周六不办公"`); code != 200 {
		t.Fatalf("PUT config at the township: %d", code)
	}
	sub := testgrid.Submission(50)
	sub.RequestID = "township-retry-1"
	first := submitWith(t, township, sub)
	waitMirrored(t, g, district, first.Number, 20*time.Second)
	// The document reaches the community before the loss.
	g.Eventually(20*time.Second, func() error {
		snap, err := community.Configuration()
		if err != nil || !strings.Contains(fmt.Sprint(snap.Docs), "notices/street") {
			return fmt.Errorf("the community lacks the township's document: %v", err)
		}
		return nil
	})

	// Cut off from the district, the township hands a case down; the community takes it.
	g.Partition(township.Name(), district.Name())
	down := submitDecided(t, township, 60, "")
	if code := testgrid.PostJSON(t, township, "/v1/cases/"+down.Number+"/handdown", api.MoveRequest{ToSite: "cd-dgdj-ngj", Instructions: "请社区核实"}, nil); code != 202 {
		t.Fatalf("handdown: %d", code)
	}
	waitOutboxesEmpty(t, g, []string{"cd-dgdj"}, 20*time.Second)
	waitHeld(t, g, community, down.Number, "cd-dgdj-ngj", 10*time.Second)

	// The township's only node and its disk are lost; a fresh machine restores it.
	g.Kill(township.Name())
	g.Heal()
	cfg := g.Config(testgrid.Site{Code: "cd-dgdj", Tier: tier.Township, Parent: "cd", Nodes: 1}, "cd-dgdj-new")
	cfg.RestoreFromParent = true
	fresh := g.StartConfig(cfg)
	g.Eventually(60*time.Second, func() error {
		if fresh.Restoring() {
			return fmt.Errorf("still restoring")
		}
		if ok, why := fresh.Ready(); !ok {
			return fmt.Errorf("not ready: %s", why)
		}
		return nil
	})

	// The case handed down just before the loss is held once: by the community.
	if _, err := fresh.State().GetCase(down.Number); err == nil {
		t.Fatalf("the restored township holds %s, which the community took before the loss", down.Number)
	}
	if st, err := fresh.State().GetStub(down.Number); err != nil || st.Holder != "cd-dgdj-ngj" {
		t.Fatalf("the restored township's stub for %s: %+v %v, want one to the community", down.Number, st, err)
	}
	waitHeld(t, g, fresh, down.Number, "cd-dgdj-ngj", 10*time.Second)

	// The retried submission answers the same case and code.
	again := submitWith(t, fresh, sub)
	if again.Number != first.Number || again.QueryCode != first.QueryCode || again.QueryCode == "" {
		t.Fatalf("retry after the restore: %s code %q, want %s code %q", again.Number, again.QueryCode, first.Number, first.QueryCode)
	}

	// The township's document and version came back: a new change numbers on.
	snap, err := fresh.Configuration()
	if err != nil || !strings.Contains(fmt.Sprint(snap.Docs), "notices/street") {
		t.Fatalf("the restored township's configuration: %+v %v", snap, err)
	}
	if v := snap.Versions["cd-dgdj"]; v == 0 {
		t.Fatalf("the township's own version was not restored: %v", snap.Versions)
	}

	// Its new numbers are in the restore reserve.
	c := submitDecided(t, fresh, 70, "")
	if _, _, seq, _ := casework.ParseNumber(c.Number); seq < 900_000 {
		t.Fatalf("the restored township issued %s: numbers of its restore day start at 900000", c.Number)
	}

	// The community's new cases reach both ancestors: the township's cursor came back.
	newer := submitDecided(t, community, 80, "")
	waitMirrored(t, g, fresh, newer.Number, 30*time.Second)
	waitMirrored(t, g, district, newer.Number, 30*time.Second)
	for _, n := range kept {
		waitMirrored(t, g, fresh, n, 5*time.Second)
	}
	cur, _ := fresh.State().FeedCursors()
	if cur["cd-dgdj-ngj"].Cursor == 0 {
		t.Fatal("the restored township has no cursor for its community")
	}
}

// putConfig changes a document the node's site owns (PUT /v1/config/{path}) and returns the status.
func putConfig(t *testing.T, n *node.Node, path, value string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, "http://"+n.Addrs().HTTP+"/v1/config/"+path, strings.NewReader(value))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(testgrid.AsStaff(t, n, req))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// submitWith submits sub at n's site and returns the case with its query code.
func submitWith(t *testing.T, n *node.Node, sub *casework.Submission) *casework.Case {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := n.State().SubmitCase(ctx, sub)
	if err != nil {
		t.Fatalf("submit at %s: %v", n.Name(), err)
	}
	return c
}

// waitMirrored waits until n's site mirrors case number.
func waitMirrored(t *testing.T, g *testgrid.Grid, n *node.Node, number string, timeout time.Duration) {
	t.Helper()
	g.Eventually(timeout, func() error {
		if _, err := n.State().MirrorCase(number); err != nil {
			return fmt.Errorf("%s does not mirror %s: %v", n.Site(), number, err)
		}
		return nil
	})
}
