package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/testgrid"
)

// TestNewGridAdmitsASiteWithAJoinToken: a bare district node (no certificate, no gossip key, a
// one-node site joining nobody) starts a new grid with its own CA and gossip key; the district
// issues a join token for a township; a township node started with only the token and a join
// address gets its certificate and the gossip keys and serves its site under the district; the
// used-up token admits nobody more.
func TestNewGridAdmitsASiteWithAJoinToken(t *testing.T) {
	addrs := newAgentAddrs(t)
	dataDir := filepath.Join(t.TempDir(), "jt-cd-1")
	args := append([]string{"--node", "jt-cd-1", "--site", "cd", "--tier", "district", "--data-dir", dataDir}, addrs.flags()...)
	district := newAgentProc(t, "jt-cd-1", addrs, args, []string{"GOVGRID_GOSSIP_KEY="})
	district.bare = true
	district.start()
	district.waitHealthy(30 * time.Second)
	for _, f := range []string{"tls/ca.pem", "tls/ca.key", "tls/grid.secret", "tls/node.pem", "gossip.keyring"} {
		if _, err := os.Stat(filepath.Join(dataDir, f)); err != nil {
			t.Fatalf("the new grid's first node lacks %s: %v", f, err)
		}
	}

	// Before the grid's first account, the node's own host administers it.
	var tok api.JoinToken
	if status, err := postJSON(district.baseURL()+"/v1/join-tokens", "", api.JoinTokenRequest{Site: "cd-dgdj", TTL: "1h", Uses: 1}, &tok); status != http.StatusCreated || err != nil {
		t.Fatalf("POST /v1/join-tokens: %d %v", status, err)
	}
	township := func(name string) *agentProc {
		a := newAgentAddrs(t)
		args := append([]string{"--node", name, "--site", "cd-dgdj", "--tier", "township", "--parent", "cd",
			"--data-dir", filepath.Join(t.TempDir(), name), "--join", addrs.Gossip, "--join-token", tok.Token}, a.flags()...)
		p := newAgentProc(t, name, a, args, []string{"GOVGRID_GOSSIP_KEY="})
		p.bare = true
		p.start()
		return p
	}
	first := township("jt-dgdj-1")
	first.waitHealthy(30 * time.Second)
	testgrid.Eventually(t, 30*time.Second, func() error {
		_, err := siteLeader(district.baseURL(), "cd-dgdj")
		return err
	})

	second := township("jt-dgdj-2")
	if st := second.waitExit(30 * time.Second); st == nil || st.ExitCode() == 0 {
		t.Fatalf("a node with a used-up token: %v", st)
	}
	if log := second.readLog(); !strings.Contains(log, "used up") {
		t.Fatalf("the refused node does not say why:\n%s", log)
	}
}
