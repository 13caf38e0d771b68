package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
)

// TestAgentBoundToAllInterfacesAdvertisesItsAddress: a district node bound to 0.0.0.0 (as in a
// container) with --advertise-addr 127.0.0.1 announces 127.0.0.1 with each port, forms its site
// (Raft refuses to announce 0.0.0.0), and a township started beside it joins it, registers with
// it over gRPC at the announced address, and is in its tree.
func TestAgentBoundToAllInterfacesAdvertisesItsAddress(t *testing.T) {
	addrs := newAgentAddrs(t)
	any := func(a string) string { return "0.0.0.0:" + a[strings.LastIndex(a, ":")+1:] }
	args := []string{"--node", "adv-cd-1", "--site", "cd", "--tier", "district", "--data-dir", t.TempDir() + "/adv-cd-1",
		"--http-addr", any(addrs.HTTP), "--grpc-addr", any(addrs.GRPC), "--raft-addr", any(addrs.Raft), "--gossip-addr", any(addrs.Gossip),
		"--advertise-addr", "127.0.0.1"}
	district := newAgentProc(t, "adv-cd-1", addrs, args, nil)
	district.start()
	district.waitHealthy(30 * time.Second)

	var members api.MembersView
	if err := getJSON(district.baseURL()+"/v1/members", &members); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range members.Members {
		if m.Name != "adv-cd-1" {
			continue
		}
		found = true
		if m.HTTP != addrs.HTTP || m.GRPC != addrs.GRPC || m.Raft != addrs.Raft || m.Addr != addrs.Gossip {
			t.Fatalf("the node announces http %s grpc %s raft %s gossip %s, want %s %s %s %s", m.HTTP, m.GRPC, m.Raft, m.Addr, addrs.HTTP, addrs.GRPC, addrs.Raft, addrs.Gossip)
		}
	}
	if !found {
		t.Fatalf("the node is not among the members: %+v", members.Members)
	}

	township := startAgent(t, agentSpec{Name: "adv-dgdj-1", Site: "cd-dgdj", Tier: "township", Parent: "cd", Join: []string{addrs.Gossip}})
	township.waitHealthy(30 * time.Second)
	waitUntil(t, 30*time.Second, "the township in the district's tree", func() bool {
		var sites api.SitesView
		if err := getJSON(district.baseURL()+"/v1/sites", &sites); err != nil {
			return false
		}
		for _, s := range sites.Sites {
			if s.Site == "cd-dgdj" && s.Registered {
				return true
			}
		}
		return false
	})
}
