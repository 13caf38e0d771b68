// Package testgrid runs a grid of govgrid nodes inside one test process: real Raft, gossip, gRPC
// and HTTP on loopback with ports chosen by the OS, each node with its own data directory. It
// is how cluster behaviour is tested without processes or containers. Partition, Isolate and
// Heal cut and restore links between nodes (Raft, gossip and gRPC alike); SetFaults makes the
// calls between nodes lose, copy, delay and reorder messages.
//
//	g := testgrid.New(t, testgrid.Spec{Sites: []testgrid.Site{{Code: "cd", Tier: "district", Nodes: 3}}})
//	leader := g.WaitLeader("cd")
//	g.Kill(leader.Name())
//
// Nodes stop when the test ends. New takes a T, which *testing.T satisfies; benchmarks run outside
// go test pass an adapter of their own (bench/internal/benchkit) and set Spec.ProductionTimings.
package testgrid

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/pki"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/tier"
)

// Site describes one site of a test grid.
type Site struct {
	Code   string
	Tier   tier.Tier
	Parent string
	Nodes  int
	// BootstrapExpect defaults to Nodes: the site forms once all its nodes are up.
	BootstrapExpect int
}

// Spec describes a test grid.
type Spec struct {
	Sites []Site
	// GridName is the gossip label; "testgrid" when empty.
	GridName string
	// Configure, if set, adjusts each node's config before it starts.
	Configure func(*node.Config)
	// CertLifetime is how long the nodes' certificates are valid (those the grid writes, and
	// those district nodes issue when they are renewed); 0 means 30 days.
	CertLifetime time.Duration
	// ProductionTimings keeps node.DefaultConfig's timings (Raft's timeouts unscaled, the
	// gossip profile's push-pull interval, the default reconnect and dead-node reclaim
	// intervals) instead of the shortened ones that make tests fast: for benchmarks that
	// measure what an operator would see. The grid still sets what it must: addresses, data
	// directories, the gossip label and join address, and the links every node dials through.
	ProductionTimings bool
}

// T is what a grid needs of whoever runs it: *testing.T and *testing.B satisfy it (as does any
// testing.TB), and so does the adapter the benchmarks use outside go test. Fatalf must stop the
// caller's goroutine, as testing.T's does (runtime.Goexit); Cleanup's functions run, last
// registered first, when the caller is done; TempDir returns a new directory each call.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// Grid is a running test grid.
type Grid struct {
	t    T
	spec Spec

	base  string // parent of every node's data directory
	links *links
	// ca is the grid's CA (its key too: every district node issues); gossipKey encrypts gossip.
	ca        *pki.CA
	gossipKey []byte

	mu    sync.Mutex
	nodes map[string]*member // guarded by mu
	order []string           // node names in start order
}

type member struct {
	cfg  node.Config
	node *node.Node // nil while killed
}

// New starts every node of spec and waits until every site has a leader. The nodes stop, and
// their data directories (under t.TempDir) go, when t's cleanups run.
func New(t T, spec Spec) *Grid {
	t.Helper()
	if spec.GridName == "" {
		spec.GridName = "testgrid"
	}
	// The base directory is made before Close is registered: cleanups run last-in first-out,
	// so the nodes stop before their data directories are removed.
	g := &Grid{t: t, spec: spec, nodes: map[string]*member{}, base: t.TempDir(), links: newLinks()}
	var err error
	if g.ca, err = pki.NewCA(spec.GridName, 365*24*time.Hour); err != nil {
		t.Fatalf("grid CA: %v", err)
	}
	g.gossipKey = make([]byte, 32)
	if _, err := rand.Read(g.gossipKey); err != nil {
		t.Fatalf("gossip key: %v", err)
	}
	t.Cleanup(g.Close)
	for _, s := range spec.Sites {
		for i := 1; i <= s.Nodes; i++ {
			g.Start(s, fmt.Sprintf("%s-%d", s.Code, i))
		}
	}
	for _, s := range spec.Sites {
		g.WaitLeader(s.Code)
	}
	return g
}

// Config returns the node config the grid would use for a new node of site s.
func (g *Grid) Config(s Site, name string) node.Config {
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Site, cfg.Tier, cfg.Parent = name, s.Code, s.Tier, s.Parent
	dir, err := os.MkdirTemp(g.base, name+"-")
	if err != nil {
		g.t.Fatalf("%v", err)
	}
	cfg.DataDir = dir
	g.Provision(dir, s, name)
	// Encrypted at rest, with a key kept beside the data dir (a restart uses the same config).
	_, keyFile, err := replication.NewEncryptionKey()
	if err != nil {
		g.t.Fatalf("%v", err)
	}
	cfg.EncryptionKeyFile = dir + ".key"
	if err := os.WriteFile(cfg.EncryptionKeyFile, keyFile, 0o600); err != nil {
		g.t.Fatalf("%v", err)
	}
	cfg.GossipKey = g.gossipKey
	cfg.CertLifetime = g.spec.CertLifetime
	cfg.HTTPAddr, cfg.GRPCAddr, cfg.RaftAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.BootstrapExpect = s.BootstrapExpect
	if cfg.BootstrapExpect == 0 {
		cfg.BootstrapExpect = max(s.Nodes, 1)
	}
	cfg.GridName = g.spec.GridName
	cfg.Logger = testLogger(g.t, name)
	cfg.Network = network{allow: g.links.allowFor(name)}
	cfg.PeerCalls = g.links.faultsFor(name).UnaryClientInterceptor()
	if !g.spec.ProductionTimings {
		cfg.RaftTimeScale = 0.3
		cfg.ReconnectInterval = time.Second
		// A gossip message lost while the test machine is busy is repaired by the next full
		// state exchange: every 2 s here instead of memberlist's 30 s.
		cfg.GossipPushPull = 2 * time.Second
		cfg.DeadNodeReclaim = time.Second
	}
	if first := g.firstAlive(); first != nil {
		cfg.Join = []string{first.Addrs().Gossip}
	}
	if g.spec.Configure != nil {
		g.spec.Configure(&cfg)
	}
	return cfg
}

// CA is the grid's certificate authority (with its key).
func (g *Grid) CA() *pki.CA { return g.ca }

// GossipKey is the key that encrypts the grid's gossip.
func (g *Grid) GossipKey() []byte { return g.gossipKey }

// Provision writes a certificate for node name of site s into dataDir's TLS directory, as an
// operator does with `govgrid tls cert create`; a district node also gets the CA's key, so that
// it issues certificates for join tokens and renewals.
func (g *Grid) Provision(dataDir string, s Site, name string) {
	g.t.Helper()
	life := g.spec.CertLifetime
	if life == 0 {
		life = 30 * 24 * time.Hour
	}
	id := pki.Identity{Grid: g.spec.GridName, Site: s.Code, Node: name}
	if err := pki.Provision(filepath.Join(dataDir, node.TLSDirName), g.ca, id, life, s.Tier == tier.District); err != nil {
		g.t.Fatalf("certificate for %s: %v", name, err)
	}
}

// Start starts a new node of site s (an operator adding a node) and returns it.
func (g *Grid) Start(s Site, name string) *node.Node {
	g.t.Helper()
	return g.StartConfig(g.Config(s, name))
}

// StartConfig starts a node with an explicit config.
func (g *Grid) StartConfig(cfg node.Config) *node.Node {
	g.t.Helper()
	n, err := node.New(cfg)
	if err != nil {
		g.t.Fatalf("start %s: %v", cfg.Name, err)
	}
	// Pin the ports the OS chose, so that a restart comes back at the same addresses.
	a := n.Addrs()
	g.links.register(cfg.Name, a.GRPC, a.Raft, a.Gossip)
	cfg.HTTPAddr, cfg.GRPCAddr, cfg.RaftAddr, cfg.GossipAddr = a.HTTP, a.GRPC, a.Raft, a.Gossip
	g.mu.Lock()
	if _, ok := g.nodes[cfg.Name]; !ok {
		g.order = append(g.order, cfg.Name)
	}
	g.nodes[cfg.Name] = &member{cfg: cfg, node: n}
	g.mu.Unlock()
	return n
}

func (g *Grid) firstAlive() *node.Node {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, name := range g.order {
		if m := g.nodes[name]; m.node != nil {
			return m.node
		}
	}
	return nil
}

// Node returns a running node by name, failing the test if it is not running.
func (g *Grid) Node(name string) *node.Node {
	g.t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.nodes[name]
	if !ok || m.node == nil {
		g.t.Fatalf("node %s is not running", name)
	}
	return m.node
}

// SiteNodes returns the running nodes of a site, by name.
func (g *Grid) SiteNodes(site string) []*node.Node {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*node.Node
	for _, name := range g.order {
		if m := g.nodes[name]; m.node != nil && m.cfg.Site == site {
			out = append(out, m.node)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// Leader returns the site's current leader among running nodes, or nil.
func (g *Grid) Leader(site string) *node.Node {
	for _, n := range g.SiteNodes(site) {
		if n.Raft().IsLeader() {
			return n
		}
	}
	return nil
}

// WaitLeader waits (up to 20 s) until the site has a leader that every running node of the
// site agrees on and can reach, and returns it.
func (g *Grid) WaitLeader(site string) *node.Node {
	g.t.Helper()
	var leader *node.Node
	g.Eventually(20*time.Second, func() error {
		leader = g.Leader(site)
		if leader == nil {
			return fmt.Errorf("site %s has no leader", site)
		}
		for _, n := range g.SiteNodes(site) {
			if ok, why := n.Ready(); !ok {
				return fmt.Errorf("%s not ready: %s", n.Name(), why)
			}
			if id, _ := n.Raft().Leader(); string(id) != leader.Name() {
				return fmt.Errorf("%s follows %q, not %s", n.Name(), id, leader.Name())
			}
		}
		return nil
	})
	return leader
}

// Follower waits for the site's leader and returns another running node of the site (the
// test fails if it has none).
func (g *Grid) Follower(site string) *node.Node {
	g.t.Helper()
	leader := g.WaitLeader(site)
	for _, n := range g.SiteNodes(site) {
		if n != leader {
			return n
		}
	}
	g.t.Fatalf("site %s has no node but its leader", site)
	return nil
}

// Kill stops a node abruptly: no leave, no goodbye to its site. Its data stays for Restart.
func (g *Grid) Kill(name string) {
	g.t.Helper()
	g.mu.Lock()
	m := g.nodes[name]
	n := m.node
	m.node = nil
	g.mu.Unlock()
	if n == nil {
		g.t.Fatalf("node %s is not running", name)
	}
	_ = n.Close()
}

// Restart starts a killed node again with its data and addresses.
func (g *Grid) Restart(name string) *node.Node {
	g.t.Helper()
	return g.RestartAt(name, "")
}

// RestartAt starts a killed node again with its data; when addr is not empty (e.g.
// "127.0.0.1:0") every listen address moves there, as when a machine comes back renumbered.
func (g *Grid) RestartAt(name, addr string) *node.Node {
	g.t.Helper()
	g.mu.Lock()
	m := g.nodes[name]
	g.mu.Unlock()
	if m == nil || m.node != nil {
		g.t.Fatalf("node %s is not killed", name)
	}
	cfg := m.cfg
	if addr != "" {
		cfg.HTTPAddr, cfg.GRPCAddr, cfg.RaftAddr, cfg.GossipAddr = addr, addr, addr, addr
	}
	cfg.Join = nil
	if first := g.firstAlive(); first != nil {
		cfg.Join = []string{first.Addrs().Gossip}
	}
	return g.StartConfig(cfg)
}

// Close stops every node. It runs at the end of the test.
func (g *Grid) Close() {
	g.mu.Lock()
	var running []*node.Node
	for _, name := range g.order {
		if m := g.nodes[name]; m.node != nil {
			running = append(running, m.node)
			m.node = nil
		}
	}
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range running {
		wg.Add(1)
		go func() { defer wg.Done(); _ = n.Close() }()
	}
	wg.Wait()
}

// Eventually polls cond every 20 ms until it returns nil, failing the test with cond's last
// error when timeout passes; it returns how long that took.
func (g *Grid) Eventually(timeout time.Duration, cond func() error) time.Duration {
	g.t.Helper()
	return Eventually(g.t, timeout, cond)
}

// Submission returns a valid test submission; i makes its title unique.
func Submission(i int) *casework.Submission {
	return &casework.Submission{
		Kind: casework.KindApplication, ItemCode: "GA-001", Title: fmt.Sprintf("户籍证明 %d", i),
		Description: "开具户籍证明", Actor: "窗口 3",
		Applicant: &casework.Applicant{Name: "张三", IDNumber: "630102199001011234", Phone: "13800000000"},
		Materials: []casework.Material{{Name: "身份证复印件"}},
	}
}

// PostJSON sends body as JSON to a node's HTTP API, as the harness's staff (StaffToken), and decodes the answer into out (if not nil),
// returning the status code.
func PostJSON(t T, n *node.Node, path string, body, out any) int {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatalf("%v", err)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+n.Addrs().HTTP+path, bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(AsStaff(t, n, req))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return decode(t, resp, out)
}

// GetJSON fetches path from a node's HTTP API, as the harness's staff, into out (if not nil), returning the status code.
func GetJSON(t T, n *node.Node, path string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+n.Addrs().HTTP+path, nil)
	if err != nil {
		t.Fatalf("%v", err)
	}
	resp, err := http.DefaultClient.Do(AsStaff(t, n, req))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return decode(t, resp, out)
}

func decode(t T, resp *http.Response, out any) int {
	t.Helper()
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
	}
	return resp.StatusCode
}

// testLogger writes a node's logs to the test log when GOVGRID_TEST_LOG is set, else nowhere.
func testLogger(t T, name string) *slog.Logger {
	if os.Getenv("GOVGRID_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test_node", name)
}

type testWriter struct{ t T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}
