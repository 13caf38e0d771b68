package node

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/govgrid/govgrid/internal/wake"
	"github.com/hashicorp/memberlist"
)

// Member is one node as the gossip pool sees it.
type Member struct {
	Name   string    `json:"name"`
	Addr   string    `json:"addr"`
	Status string    `json:"status"` // alive, dead or left (memberlist reports no suspicion events)
	Since  time.Time `json:"since,omitzero"`
	Meta   Meta      `json:"meta"`
}

// gossip wraps memberlist: it publishes this node's Meta, remembers members that died or left
// (memberlist forgets them), and signals changes on changed.
type gossip struct {
	list    *memberlist.Memberlist
	logger  *slog.Logger
	grid    string // the gossip label
	dataDir string // where the keyring file is kept
	// keyring holds the keys gossip is encrypted with (nil: gossip in the clear); keyMu
	// serializes its changes, each saved to the keyring file (keyring.go).
	keyring *memberlist.Keyring
	keyMu   sync.Mutex
	changed chan struct{} // membership changed: the leader reconciles the site
	saved   chan struct{} // membership changed: the node rewrites its peers file
	// news wakes every worker waiting on a peer (handoff senders, feed pullers) when membership
	// changed: the site they wait for may be back.
	news wake.Signal

	mu    sync.Mutex
	meta  []byte            // guarded by mu: this node's encoded Meta
	nodes map[string]Member // guarded by mu: every member seen, by name, as of its last event
}

func newGossip(cfg Config, meta Meta, logger *slog.Logger) (*gossip, error) {
	encoded, err := meta.Encode()
	if err != nil {
		return nil, err
	}
	host, port := gossipPort(cfg.GossipAddr)
	var mc *memberlist.Config
	if cfg.GossipProfile == "wan" {
		mc = memberlist.DefaultWANConfig()
	} else {
		mc = memberlist.DefaultLANConfig()
	}
	if cfg.GossipPushPull > 0 {
		mc.PushPullInterval = cfg.GossipPushPull
	}
	if cfg.Network != nil {
		t, bound, err := cfg.Network.GossipTransport(host, port)
		if err != nil {
			return nil, fmt.Errorf("gossip on %s: %w", cfg.GossipAddr, err)
		}
		mc.Transport, port = t, bound
	}
	mc.Name = cfg.Name
	// memberlist's default (0) never lets a name move to another address; Consul uses 30 s.
	mc.DeadNodeReclaimTime = cfg.DeadNodeReclaim
	mc.BindAddr = host
	mc.BindPort = port
	mc.AdvertisePort = port
	if cfg.AdvertiseAddr != "" {
		mc.AdvertiseAddr = cfg.AdvertiseAddr
	}
	mc.Label = cfg.GridName
	keyring, from, err := gossipKeyring(cfg)
	if err != nil {
		return nil, err
	}
	switch {
	case keyring == nil:
		logger.Info("gossip is not encrypted: no --gossip-key and no keyring file", "keyring", filepath.Join(cfg.DataDir, GossipKeyringFile))
	case from == "--gossip-key":
		logger.Info("gossip keys from --gossip-key, saved to the keyring file", "keyring", filepath.Join(cfg.DataDir, GossipKeyringFile),
			"primary", KeyFingerprint(keyring.GetPrimaryKey()))
	default:
		logger.Info("gossip keys from the keyring file (it takes precedence over --gossip-key)", "keyring", from,
			"keys", len(keyring.GetKeys()), "primary", KeyFingerprint(keyring.GetPrimaryKey()), "gossip_key_ignored", len(cfg.GossipKey) > 0)
	}
	// Only the keyring: memberlist would make a SecretKey primary over it.
	mc.Keyring = keyring
	mc.Logger = log.New(&memberlistLog{l: logger.With("component", "memberlist")}, "", 0)
	g := &gossip{meta: encoded, logger: logger, grid: cfg.GridName, dataDir: cfg.DataDir, keyring: keyring, changed: make(chan struct{}, 1), saved: make(chan struct{}, 1), nodes: map[string]Member{}}
	mc.Delegate = g
	mc.Events = g
	mc.Merge = g
	list, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip on %s: %w", cfg.GossipAddr, err)
	}
	g.list = list
	return g, nil
}

// keys are the gossip keys in use, the primary first (none when gossip is not encrypted).
func (g *gossip) keys() [][]byte {
	if g.keyring == nil {
		return nil
	}
	return g.keyring.GetKeys()
}

// addr is the gossip address others should join.
func (g *gossip) addr() string {
	n := g.list.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

func (g *gossip) join(addrs []string) (int, error) {
	if len(addrs) == 0 {
		return 0, nil
	}
	n, err := g.list.Join(addrs)
	return n, explainJoin(err, g.grid, g.keyring != nil)
}

// explainJoin says what a failed join most likely means: memberlist's own error for a peer of
// another grid is a bare EOF (the peer drops a stream whose label it does not accept, and logs
// "unacceptable label"), and a peer with another key answers with an error encrypted under it.
func explainJoin(err error, grid string, keyed bool) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no installed keys could decrypt") || strings.Contains(msg, "encryption is configured") ||
		strings.Contains(msg, "is encrypted and encryption is not configured"):
		return fmt.Errorf("%w: the nodes answered with another gossip key: this node's --gossip-key or keyring (set: %v) must hold the grid's primary key", err, keyed)
	case strings.Contains(msg, "EOF") || strings.Contains(msg, "connection reset"):
		return fmt.Errorf("%w: the nodes closed the connection without answering: most likely their grid label differs from this node's --grid %q (they log \"unacceptable label\"), or their gossip key does", err, grid)
	}
	return err
}

// memberlistLog sends memberlist's log lines to slog at the level their prefix names, so that a
// peer of another grid or with another key is seen at warn level, not thrown away. The lines
// that mean such a peer (refused label, undecryptable gossip) become one warning that says which
// it is and who sent it, at most once a minute per sender and cause (a refused peer retries
// every probe); the repeats go to debug.
type memberlistLog struct {
	l *slog.Logger

	mu     sync.Mutex
	warned map[string]time.Time // guarded by mu: last warning, by cause and sender
}

// refusedWarnEvery bounds how often a refused sender is warned about.
const refusedWarnEvery = time.Minute

func (m *memberlistLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelDebug
	for prefix, l := range map[string]slog.Level{"[ERR]": slog.LevelError, "[ERROR]": slog.LevelError, "[WARN]": slog.LevelWarn, "[INFO]": slog.LevelInfo, "[DEBUG]": slog.LevelDebug} {
		if strings.HasPrefix(line, prefix) {
			level, line = l, strings.TrimSpace(strings.TrimPrefix(line, prefix))
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	if r, ok := explainRefused(line); ok {
		level = slog.LevelWarn
		if !m.firstIn(r.cause+" "+r.from, time.Now()) {
			level = slog.LevelDebug
		}
		attrs := []any{"from", r.from, "cause", r.cause, "memberlist", line}
		if r.label != "" {
			attrs = append(attrs, "their_grid", r.label)
		}
		m.l.Log(context.Background(), level, r.msg, attrs...)
		return len(p), nil
	}
	if level == slog.LevelError && strings.Contains(line, "failed to receive") && strings.Contains(line, "EOF") {
		level = slog.LevelDebug // a peer that hung up mid-stream: routine on a flaky link
	}
	m.l.Log(context.Background(), level, line)
	return len(p), nil
}

// firstIn says whether key was not warned about within refusedWarnEvery, and records now.
func (m *memberlistLog) firstIn(key string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.warned == nil {
		m.warned = map[string]time.Time{}
	}
	if last, ok := m.warned[key]; ok && now.Sub(last) < refusedWarnEvery {
		return false
	}
	if len(m.warned) > 1000 { // many senders: start over rather than grow
		clear(m.warned)
	}
	m.warned[key] = now
	return true
}

// refused is gossip this node dropped: the cause ("label" or "key"), the sender's address, the
// sender's label when that was the cause, and what to tell the operator.
type refused struct {
	cause, from, label, msg string
}

// labelInLine finds the quoted label of memberlist's "unacceptable label %q" lines.
var labelInLine = regexp.MustCompile(`unacceptable label ("(?:[^"\\]|\\.)*")`)

// explainRefused reads a memberlist log line (its prefixes removed) that says received gossip
// was dropped for its label or its encryption: memberlist v0.7's handleConn and ingestPacket
// write "discarding stream|packet with unacceptable label %q: from=ADDR", "failed to receive:
// no installed keys could decrypt the message from=ADDR" (and "Decrypt packet failed: ..."),
// "failed to receive: encryption is configured but remote state is not encrypted from=ADDR" and
// "failed to receive: remote state is encrypted and encryption is not configured from=ADDR".
func explainRefused(line string) (refused, bool) {
	from := "unknown"
	if i := strings.LastIndex(line, "from="); i >= 0 {
		from = strings.TrimSpace(line[i+len("from="):])
	}
	switch {
	case strings.Contains(line, "unacceptable label"):
		r := refused{cause: "label", from: from}
		if m := labelInLine.FindStringSubmatch(line); m != nil {
			if l, err := strconv.Unquote(m[1]); err == nil {
				r.label = l
			}
		}
		r.msg = fmt.Sprintf("refused gossip from a node of another grid (its --grid is %q): it can never join this one; start it with this grid's --grid", r.label)
		return r, true
	case strings.Contains(line, "encryption is configured but remote state is not encrypted"):
		return refused{cause: "key", from: from, msg: "refused gossip from a node without a gossip key: this grid encrypts gossip; give that node the grid's --gossip-key (or keyring)"}, true
	case strings.Contains(line, "remote state is encrypted and encryption is not configured"):
		return refused{cause: "key", from: from, msg: "refused encrypted gossip: this node has no gossip key (no --gossip-key, no keyring); give it the grid's key"}, true
	case strings.Contains(line, "no installed keys could decrypt the message") || strings.Contains(line, "Decrypt packet failed"):
		return refused{cause: "key", from: from, msg: "refused gossip that none of this node's gossip keys decrypts: the sender has another gossip key (or none); check its --gossip-key or keyring (govgrid keyring list)"}, true
	}
	return refused{}, false
}

// members returns every node gossip knows of, alive or not, sorted by name. It reads the copy
// kept from memberlist's events: memberlist.Members returns pointers into its own state, which
// its goroutines update without our lock (a data race that Serf avoids the same way).
func (g *gossip) members() []Member {
	g.mu.Lock()
	out := make([]Member, 0, len(g.nodes))
	for _, m := range g.nodes {
		out = append(out, m)
	}
	g.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (g *gossip) member(name string) (Member, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.nodes[name]
	return m, ok
}

func (g *gossip) signal() {
	nudge(g.changed)
	nudge(g.saved)
	g.news.Notify()
}

// announceLeaving republishes this node's metadata with Leaving set, so the site leader removes
// it from Raft before it goes.
func (g *gossip) announceLeaving(meta Meta, timeout time.Duration) error {
	meta.Leaving = true
	b, err := meta.Encode()
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.meta = b
	g.mu.Unlock()
	return g.list.UpdateNode(timeout)
}

// leave tells the grid this node is going away for good, then stops gossip.
func (g *gossip) leave(timeout time.Duration) error {
	err := g.list.Leave(timeout)
	if e := g.list.Shutdown(); err == nil {
		err = e
	}
	return err
}

func (g *gossip) shutdown() error { return g.list.Shutdown() }

// memberlist.Delegate

func (g *gossip) NodeMeta(limit int) []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.meta) > limit {
		// Encode checked this against MetaMaxSize already; memberlist would panic.
		return nil
	}
	return g.meta
}
func (g *gossip) NotifyMsg([]byte)                {}
func (g *gossip) GetBroadcasts(int, int) [][]byte { return nil }
func (g *gossip) LocalState(bool) []byte          { return nil }
func (g *gossip) MergeRemoteState([]byte, bool)   {}

// memberlist.EventDelegate: memberlist calls these with its node lock held, so reading n here
// is safe; keep a copy.

func (g *gossip) NotifyJoin(n *memberlist.Node)   { g.record(n, "alive") }
func (g *gossip) NotifyUpdate(n *memberlist.Node) { g.record(n, "alive") }

// NotifyLeave cannot tell left from dead: memberlist passes its node with a State that it never
// updates (the real one sits beside it). Leaving is told by the Leaving flag in the metadata.
func (g *gossip) NotifyLeave(n *memberlist.Node) { g.record(n, "dead") }

func (g *gossip) record(n *memberlist.Node, status string) {
	m, err := DecodeMeta(n.Meta)
	if err != nil {
		return
	}
	if m.Leaving {
		status = "left"
	}
	g.mu.Lock()
	prev, seen := g.nodes[n.Name]
	since := time.Now()
	if seen && prev.Status == status {
		since = prev.Since
	}
	g.nodes[n.Name] = Member{Name: n.Name, Addr: n.Address(), Status: status, Since: since, Meta: m}
	g.mu.Unlock()
	g.signal()
}

// memberlist.MergeDelegate: refuse nodes that are not govgrid nodes (no readable Meta). The
// gossip label already keeps other grids out; this keeps out anything else that speaks memberlist.
func (g *gossip) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if _, err := DecodeMeta(p.Meta); err != nil {
			g.logger.Warn("refusing a foreign gossip member", "member", p.Name, "addr", p.Address(), "error", err)
			return fmt.Errorf("member %s is not a govgrid node: %w", p.Name, err)
		}
	}
	return nil
}

// gossipPort parses the port of a host:port the config already validated.
func gossipPort(addr string) (string, int) {
	host, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	return host, port
}
