package node_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

var (
	keyOld = bytes.Repeat([]byte{0x11}, 32)
	keyNew = bytes.Repeat([]byte{0x22}, 32)
)

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// keyringOp calls POST /v1/keyring/{op} on n from its own host (the test grid has no accounts).
func keyringOp(t *testing.T, n *node.Node, op string, key []byte) (int, string) {
	t.Helper()
	return authCall(t, n, "POST", "/v1/keyring/"+op, "", api.KeyRequest{Key: b64(key)}, nil)
}

// fingerprints is n's keyring as GET /v1/keyring answers it: fingerprints, the primary first.
func fingerprints(t *testing.T, n *node.Node) []string {
	t.Helper()
	var v api.KeyringView
	if code, body := authCall(t, n, "GET", "/v1/keyring", "", nil, &v); code != http.StatusOK {
		t.Fatalf("GET /v1/keyring on %s: %d %s", n.Name(), code, body)
	}
	var out []string
	for i, k := range v.Keys {
		if k.Primary != (i == 0) {
			t.Fatalf("%s: the primary is not listed first: %+v", n.Name(), v)
		}
		out = append(out, k.Fingerprint)
	}
	return out
}

// allAlive: every node sees every other as alive.
func allAlive(nodes []*node.Node) error {
	for _, n := range nodes {
		for _, o := range nodes {
			if m, ok := memberOf(n, o.Name()); !ok || m.Status != "alive" {
				return fmt.Errorf("%s sees %s as %q", n.Name(), o.Name(), m.Status)
			}
		}
	}
	return nil
}

// TestGossipKeyRotationOnRunningGrid: on a running 3-node site, a new key is installed on every
// node, made primary on every node, and the old one removed, while every node keeps seeing the
// others alive; each node's keyring file follows; afterwards a node with only the new key joins
// and a node with only the old key cannot. Along the way the endpoints refuse what would cut
// gossip (409) and bad keys (400).
func TestGossipKeyRotationOnRunningGrid(t *testing.T) {
	g := testgrid.New(t, testgrid.Spec{Sites: []testgrid.Site{{Code: "cd", Tier: tier.District, Nodes: 3}},
		Configure: func(c *node.Config) { c.GossipKey = keyOld }})
	nodes := g.SiteNodes("cd")
	g.Eventually(10*time.Second, func() error { return allAlive(nodes) })
	n1 := nodes[0]

	if code, body := keyringOp(t, n1, "remove", keyOld); code != http.StatusConflict || !strings.Contains(body, "primary") {
		t.Fatalf("removing the primary: %d %s", code, body)
	}
	if code, body := keyringOp(t, n1, "use", keyNew); code != http.StatusConflict || !strings.Contains(body, "not installed") {
		t.Fatalf("using a key not installed: %d %s", code, body)
	}
	if code, body := keyringOp(t, n1, "install", []byte("too short")); code != http.StatusBadRequest || !strings.Contains(body, "16, 24 or 32 bytes") {
		t.Fatalf("installing a 9-byte key: %d %s", code, body)
	}
	if code, body := authCall(t, n1, "POST", "/v1/keyring/install", "", map[string]string{"key": "%%%"}, nil); code != http.StatusBadRequest || !strings.Contains(body, "base64") {
		t.Fatalf("installing a key that is not base64: %d %s", code, body)
	}

	for _, step := range []struct {
		op   string
		key  []byte
		want []string // each node's keyring afterwards, primary first
	}{
		{"install", keyNew, []string{node.KeyFingerprint(keyOld), node.KeyFingerprint(keyNew)}},
		{"use", keyNew, []string{node.KeyFingerprint(keyNew), node.KeyFingerprint(keyOld)}},
		{"remove", keyOld, []string{node.KeyFingerprint(keyNew)}},
	} {
		for _, n := range nodes {
			if code, body := keyringOp(t, n, step.op, step.key); code != http.StatusOK {
				t.Fatalf("%s on %s: %d %s", step.op, n.Name(), code, body)
			}
			if got := fingerprints(t, n); strings.Join(got, " ") != strings.Join(step.want, " ") {
				t.Fatalf("after %s on %s: keyring %v, want %v", step.op, n.Name(), got, step.want)
			}
			saved, err := node.ReadGossipKeyring(n.DataPath())
			if err != nil {
				t.Fatal(err)
			}
			var fps []string
			for _, k := range saved {
				fps = append(fps, node.KeyFingerprint(k))
			}
			if strings.Join(fps, " ") != strings.Join(step.want, " ") {
				t.Fatalf("after %s on %s: keyring file %v, want %v", step.op, n.Name(), fps, step.want)
			}
			if err := allAlive(nodes); err != nil {
				t.Fatalf("after %s on %s: %v", step.op, n.Name(), err)
			}
		}
	}

	// Gossip runs on the new key: a node that has only it joins, and every node sees it.
	cfg := g.Config(testgrid.Site{Code: "cd", Tier: tier.District, Nodes: 4}, "cd-4")
	cfg.GossipKey = keyNew
	fresh := g.StartConfig(cfg)
	g.Eventually(15*time.Second, func() error { return allAlive(append(nodes, fresh)) })
	// And no longer on the old one: a node that has only it never merges.
	cfg = g.Config(testgrid.Site{Code: "cd-old", Tier: tier.Township, Parent: "cd", Nodes: 1}, "cd-old-1")
	cfg.GossipKey = keyOld
	stale := g.StartConfig(cfg)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := memberOf(n1, stale.Name()); ok {
			t.Fatal("a node with only the removed key joined the grid")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := allAlive(append(nodes, fresh)); err != nil {
		t.Fatal(err)
	}
}

// TestGossipKeyringSurvivesRestart: a node restarted after a rotation gossips with the keyring it
// saved, not the (old) --gossip-key of its config, and rejoins.
func TestGossipKeyringSurvivesRestart(t *testing.T) {
	logs := &capture{}
	g := testgrid.New(t, testgrid.Spec{Sites: []testgrid.Site{{Code: "cd", Tier: tier.District, Nodes: 2}},
		Configure: func(c *node.Config) { c.GossipKey = keyOld; c.Logger = logs.tee(c.Logger) }})
	nodes := g.SiteNodes("cd")
	for _, op := range []struct {
		op  string
		key []byte
	}{{"install", keyNew}, {"use", keyNew}, {"remove", keyOld}} {
		for _, n := range nodes {
			if code, body := keyringOp(t, n, op.op, op.key); code != http.StatusOK {
				t.Fatalf("%s on %s: %d %s", op.op, n.Name(), code, body)
			}
		}
	}
	g.Eventually(10*time.Second, func() error { return allAlive(nodes) })
	victim := nodes[1].Name()
	g.Kill(victim)
	g.Eventually(30*time.Second, func() error {
		if m, _ := memberOf(nodes[0], victim); m.Status == "alive" {
			return fmt.Errorf("%s still alive in %s's view", victim, nodes[0].Name())
		}
		return nil
	})
	back := g.Restart(victim) // its config still says keyOld
	g.Eventually(15*time.Second, func() error { return allAlive([]*node.Node{nodes[0], back}) })
	if got := fingerprints(t, back); len(got) != 1 || got[0] != node.KeyFingerprint(keyNew) {
		t.Fatalf("restarted node's keyring %v, want only the new key", got)
	}
	if !logs.has("gossip keys from the keyring file", "gossip_key_ignored=true") {
		t.Errorf("the restart did not log that the keyring file was used over --gossip-key:\n%s", logs)
	}
}

// TestGossipWrongKeyNeverMergesAndSaysSo: a node with another key never joins; its join error
// names the gossip key, and the node it tried logs that it refused gossip it could not decrypt,
// with the sender's address.
func TestGossipWrongKeyNeverMergesAndSaysSo(t *testing.T) {
	logs := &capture{}
	g := testgrid.New(t, testgrid.Spec{Sites: []testgrid.Site{{Code: "cd", Tier: tier.District, Nodes: 1}},
		Configure: func(c *node.Config) { c.GossipKey = keyOld; c.Logger = logs.tee(c.Logger) }})
	cfg := g.Config(testgrid.Site{Code: "cd-x", Tier: tier.Township, Parent: "cd", Nodes: 1}, "cd-x-1")
	cfg.GossipKey = keyNew
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("a node whose join fails keeps retrying; start failed: %v", err)
	}
	defer n.Close()
	g.Eventually(10*time.Second, func() error {
		if !logs.has("could not join the grid yet", "gossip key") {
			return fmt.Errorf("no join error naming the gossip key yet:\n%s", logs)
		}
		if !logs.has("refused gossip that none of this node's gossip keys decrypts", "from=127.0.0.1:", "cause=key") {
			return fmt.Errorf("the grid's node did not say it refused undecryptable gossip:\n%s", logs)
		}
		return nil
	})
	if _, ok := memberOf(g.Node("cd-1"), "cd-x-1"); ok {
		t.Fatal("a node with another gossip key joined the grid")
	}
	if _, ok := memberOf(n, "cd-1"); ok {
		t.Fatal("the node with another gossip key merged the grid's members")
	}
}

// TestGossipKeyringUnencryptedNode: a node started without a key gossips in the clear, writes
// no keyring file, lists no keys, and refuses to change its keyring (409: installing a key
// would start encrypting at once and cut it off from its peers).
func TestGossipKeyringUnencryptedNode(t *testing.T) {
	g := testgrid.New(t, testgrid.Spec{Sites: []testgrid.Site{{Code: "cd", Tier: tier.District, Nodes: 1}},
		Configure: func(c *node.Config) { c.GossipKey, c.InsecurePeers = nil, true }})
	n := g.Node("cd-1")
	if fps := fingerprints(t, n); len(fps) != 0 {
		t.Fatalf("keys %v on a node without a gossip key", fps)
	}
	if _, err := node.ReadGossipKeyring(n.DataPath()); err == nil {
		t.Fatal("a keyring file was written without a key")
	}
	if code, body := keyringOp(t, n, "install", keyNew); code != http.StatusConflict || !strings.Contains(body, "not encrypted") {
		t.Fatalf("install on an unencrypted node: %d %s", code, body)
	}
}

// capture keeps the log lines of the nodes it tees (text format) for a test to search.
type capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// has says whether one line holds every one of parts.
func (c *capture) has(parts ...string) bool {
	for _, line := range strings.Split(c.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// tee is l, whose records also go to c.
func (c *capture) tee(l *slog.Logger) *slog.Logger {
	return slog.New(fanout{l.Handler(), slog.NewTextHandler(c, &slog.HandlerOptions{Level: slog.LevelInfo})})
}

type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			_ = h.Handle(ctx, r.Clone())
		}
	}
	return nil
}

func (f fanout) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (f fanout) WithGroup(name string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(name)
	}
	return out
}
