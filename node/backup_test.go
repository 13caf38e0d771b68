package node_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

// TestDistrictIsRestoredFromABackup backs up a three-node district through a follower (the
// leader takes it), loses every node of it with their disks, and restores the backup into a
// fresh district of three new nodes (issue 9, point 5). Every node has the backup's cases; a
// case that climbed to the district after the backup comes back from the township (which handed
// it up and kept its copy); the district's new numbers are in the restore reserve; and the
// community's new cases reach the restored district's mirror.
func TestDistrictIsRestoredFromABackup(t *testing.T) {
	spec := testgrid.Spec{Sites: []testgrid.Site{
		{Code: "cd", Tier: tier.District, Nodes: 3},
		{Code: "cd-dgdj", Tier: tier.Township, Parent: "cd", Nodes: 1},
		{Code: "cd-dgdj-ngj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 1},
	}}
	g := testgrid.New(t, spec)
	district, community := g.WaitLeader("cd"), g.WaitLeader("cd-dgdj-ngj")
	waitRegistered(t, g, district, map[string]string{"cd-dgdj": "cd", "cd-dgdj-ngj": "cd-dgdj"}, 20*time.Second)
	var before []string
	for i := range 5 {
		before = append(before, submitDecided(t, district, i, "").Number)
	}

	// The backup, asked of a follower: it answers with a redirect to the leader.
	follower := g.Follower("cd")
	req, _ := http.NewRequest(http.MethodGet, "http://"+follower.Addrs().HTTP+"/v1/snapshot", nil)
	resp, err := http.DefaultClient.Do(testgrid.AsStaff(t, follower, req))
	if err != nil {
		t.Fatal(err)
	}
	backup, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(backup) == 0 {
		t.Fatalf("GET /v1/snapshot: %d, %d bytes, %v", resp.StatusCode, len(backup), err)
	}

	// After the backup a case climbs from the community to the district.
	after := submitDecided(t, community, 90, tier.District)
	waitHeld(t, g, district, after.Number, "cd", 30*time.Second)

	// Every node of the district is lost with its disk; three new machines form a fresh one.
	for _, n := range g.SiteNodes("cd") {
		g.Kill(n.Name())
	}
	site := testgrid.Site{Code: "cd", Tier: tier.District, Nodes: 3}
	for i := 1; i <= 3; i++ {
		g.Start(site, fmt.Sprintf("cd-new-%d", i))
	}
	// The new district has no accounts yet: its own host restores it (the administrators'
	// accounts come back with the backup).
	leader := g.WaitLeader("cd")
	resp, err = http.Post("http://"+leader.Addrs().HTTP+"/v1/snapshot/restore", "application/octet-stream", bytes.NewReader(backup))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/snapshot/restore: %d %s", resp.StatusCode, body)
	}
	waitRestored(t, g, g.SiteNodes("cd"), before, 60*time.Second)
	// The case that climbed after the backup is held by the district again, once.
	held := waitHeld(t, g, g.WaitLeader("cd"), after.Number, "cd", 30*time.Second)
	if err := held.VerifyHistory(); err != nil {
		t.Fatal(err)
	}

	// A second restore over a site that now holds cases is refused.
	restoreAs := func(n *node.Node, query string, backup []byte) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+n.Addrs().HTTP+"/v1/snapshot/restore"+query, bytes.NewReader(backup))
		return http.DefaultClient.Do(testgrid.AsStaff(t, n, req))
	}
	resp, err = restoreAs(g.WaitLeader("cd"), "", backup)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("a restore over a site with cases: %d, want 409", resp.StatusCode)
	}
	// A damaged backup is refused and changes nothing.
	damaged := bytes.Clone(backup)
	damaged[len(damaged)/2] ^= 1
	resp, err = restoreAs(g.WaitLeader("cd"), "?force=true", damaged)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a damaged backup: %d, want 400", resp.StatusCode)
	}

	// New numbers of the restore day come from the reserve; the community's new cases arrive.
	c := submitDecided(t, g.WaitLeader("cd"), 91, "")
	if _, _, seq, _ := casework.ParseNumber(c.Number); seq < 900_000 {
		t.Fatalf("the restored district issued %s: numbers of its restore day start at 900000", c.Number)
	}
	newer := submitDecided(t, community, 92, "")
	waitMirrored(t, g, g.WaitLeader("cd"), newer.Number, 30*time.Second)
}
