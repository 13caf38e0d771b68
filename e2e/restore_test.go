package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
)

// TestSiteRestoreFromParent loses a community's only node with its disk (SIGKILL, data dir
// removed) and rebuilds it on a fresh node with `govgrid site restore --from-parent`: every case
// it held comes back from the township's mirror, the progress bar and the "restored" line are
// printed, the node then serves like an agent, and its new numbers do not repeat old ones.
//
// Every case call needs a signed-in account, and the first account is made at the district: so
// the grid has a district node too (the test used to run a township and a community alone), whose
// staff account's token reaches the sites beneath through the configuration feed.
func TestSiteRestoreFromParent(t *testing.T) {
	binary(t)
	t.Parallel()
	const townSite, commSite = "cd-dgdj", "cd-dgdj-ngj"
	district := startAgent(t, agentSpec{Name: "rs-cd-1", Site: "cd", Tier: "district"})
	township := startAgent(t, agentSpec{Name: "rs-dgdj-1", Site: townSite, Tier: "township", Parent: "cd",
		Join: []string{district.addrs.Gossip}})
	join := []string{township.addrs.Gossip}
	community := startAgent(t, agentSpec{Name: "rs-ngj-1", Site: commSite, Tier: "community", Parent: townSite, Join: join})
	waitAllHealthy(t, 20*time.Second, district, township, community)
	token := signInStaff(t, district)
	waitToken(t, token, 30*time.Second, township, community)

	held := map[string]bool{}
	for i := range 20 {
		status, c, err := submitCase(context.Background(), community.baseURL(), token, fmt.Sprintf("restore e2e %d", i))
		if status != http.StatusCreated {
			t.Fatalf("submit %d: %d %v", i, status, err)
		}
		held[c.Number] = true
	}
	waitUntil(t, 30*time.Second, "the township to mirror the community's 20 cases", func() bool {
		var page api.SubtreePage
		err := getJSONAs(township.baseURL()+"/v1/cases?scope=subtree&site="+commSite+"&page_size=100", token, &page)
		return err == nil && len(page.Cases) == 20
	})

	community.kill()
	if err := os.RemoveAll(community.dataDir); err != nil {
		t.Fatal(err)
	}
	addrs := newAgentAddrs(t)
	dataDir := filepath.Join(t.TempDir(), "rs-ngj-2")
	args := append([]string{"--node", "rs-ngj-2", "--site", commSite, "--tier", "community", "--parent", townSite,
		"--data-dir", dataDir, "--join", strings.Join(join, ",")}, addrs.flags()...)
	restorer := newAgentProc(t, "rs-ngj-2", addrs, args, nil)
	restorer.command = []string{"site", "restore", "--from-parent"}
	restorer.start()
	restorer.waitHealthy(60 * time.Second)
	waitUntil(t, 10*time.Second, "the restore to report it is done", func() bool {
		log, _ := os.ReadFile(restorer.logPath)
		return strings.Contains(string(log), "已恢复 restored") && strings.Contains(string(log), "20/20 cases")
	})
	// The rebuilt node learns the district's key and accounts from its parent's feed again.
	waitToken(t, token, 30*time.Second, restorer)
	for number := range held {
		status, c, err := getCase(restorer.baseURL(), token, number)
		if status != http.StatusOK || c.HolderSite != commSite {
			t.Fatalf("case %s after the restore: %d %+v %v", number, status, c, err)
		}
	}
	status, c, err := submitCase(context.Background(), restorer.baseURL(), token, "after the restore")
	if status != http.StatusCreated || held[c.Number] {
		t.Fatalf("new case after the restore: %d %s %v", status, c.Number, err)
	}
	// Restoring again over the same data is refused: that site is not lost.
	restorer.stop(10 * time.Second)
	again := newAgentProc(t, "rs-ngj-2b", addrs, args, nil)
	again.command = []string{"site", "restore", "--from-parent"}
	again.start()
	state := again.waitExit(20 * time.Second)
	log, _ := os.ReadFile(again.logPath)
	if state == nil || state.ExitCode() != 1 || !strings.Contains(string(log), "already holds a site's data") {
		t.Fatalf("restore over a site's data: exit %v, log %s", state, log)
	}
}
