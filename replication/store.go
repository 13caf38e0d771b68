package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/internal/backoff"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Store. Build one from DefaultConfig and check it with Validate.
type Config struct {
	// NodeID is this node's Raft server ID (the node name).
	NodeID string
	// DataDir holds wal/ (log and stable store), snapshots/ and state/.
	DataDir string
	// RaftAddr is the TCP address Raft listens on; RaftAdvertise, if set, is what peers dial.
	RaftAddr      string
	RaftAdvertise string
	// Dial, if set, opens Raft's connections to peers (tests route them through their own
	// network); nil dials TCP.
	Dial func(addr string, timeout time.Duration) (net.Conn, error)
	// Listen, if set, makes Raft's listener (the node wraps it in TLS); nil listens on TCP.
	Listen func(addr string) (net.Listener, error)

	// Commands are the state machine's commands. Answers encodes and decodes their answers
	// for the hop from the leader back to a follower that forwarded the command, and Refuse
	// builds the answer for a command the frame itself refuses (undecodable, too big: wrapping
	// ErrCommandTooLarge, or one whose applier panicked).
	Commands *Commands
	Answers  AnswerCodec
	Refuse   func(err error) any
	// OnCommit, if set, receives the effects (Tx.Emit) of committed commands, in log order,
	// once their batch is committed; OnRestore, if set, hears that the whole state was replaced
	// from a snapshot. Both run on the FSM goroutine and must not block.
	OnCommit  func(effects []any)
	OnRestore func()

	// Forwarder sends writes to the site leader when this node is a follower.
	Forwarder Forwarder
	Logger    *slog.Logger
	// Registerer receives the store's metrics; nil registers none.
	Registerer prometheus.Registerer

	// Raft timings and log compaction; DefaultConfig fills them.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	TrailingLogs       uint64
	MaxAppendEntries   int
	// MaxLogBytes bounds the Raft log on disk: past it the node snapshots early, and it keeps
	// fewer trailing entries when they are large (a feed batch is up to 512 KiB). Raft's own
	// bounds count entries only.
	MaxLogBytes int64
	// TransportTimeout bounds each Raft RPC's dial and I/O on the network transport.
	TransportTimeout time.Duration
	// ValueLogGCInterval is how often the state's badger database reclaims value-log space.
	ValueLogGCInterval time.Duration

	// EncryptionKey, if set (EncryptionKeySize bytes), encrypts the data directory at rest: the
	// state, the Raft log's entries and the snapshots (encryption.go). A directory encrypted
	// once opens only with the same key; one written in the clear only without a key.
	EncryptionKey []byte
}

// AnswerCodec encodes a state machine's answers for the forwarding hop.
type AnswerCodec interface {
	EncodeAnswer(answer any) ([]byte, error)
	DecodeAnswer(b []byte) (any, error)
}

// DefaultConfig returns a configuration with Raft timings fit for nodes of one site on a LAN.
func DefaultConfig() Config {
	return Config{
		Logger:             slog.Default(),
		HeartbeatTimeout:   1000 * time.Millisecond,
		ElectionTimeout:    1000 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      10 * time.Millisecond,
		// The state is durable on its own (NoSnapshotRestoreOnStart), so snapshots serve only
		// log compaction and followers that fell far behind: take them rarely.
		SnapshotThreshold:  32768,
		SnapshotInterval:   2 * time.Minute,
		TrailingLogs:       16384,
		MaxLogBytes:        256 << 20,
		MaxAppendEntries:   256,
		TransportTimeout:   10 * time.Second,
		ValueLogGCInterval: time.Minute,
	}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("replication: node id is required")
	case c.DataDir == "":
		return errors.New("replication: data dir is required")
	case c.RaftAddr == "":
		return errors.New("replication: raft address is required")
	case c.Commands == nil || c.Answers == nil || c.Refuse == nil:
		return errors.New("replication: the state machine's commands, answer codec and refusal are required")
	case c.Logger == nil:
		return errors.New("replication: logger is required")
	case c.MaxAppendEntries < 1 || c.MaxAppendEntries > 1024:
		return errors.New("replication: max append entries must be 1..1024")
	case c.TransportTimeout <= 0:
		return errors.New("replication: transport timeout must be positive")
	case c.ValueLogGCInterval <= 0:
		return errors.New("replication: value-log GC interval must be positive")
	case c.MaxLogBytes < 16<<20:
		return errors.New("replication: max log bytes must be at least 16 MiB")
	case c.EncryptionKey != nil && len(c.EncryptionKey) != EncryptionKeySize:
		return fmt.Errorf("replication: the encryption key must be %d bytes", EncryptionKeySize)
	}
	return nil
}

// Forwarder sends an encoded command to the site leader and returns its encoded result.
// The node implements it over gRPC; the leader answers through Store.ApplyForwarded.
type Forwarder interface {
	Forward(ctx context.Context, leader raft.ServerID, cmd []byte) ([]byte, error)
}

// Store is one node's replica of a replicated state machine: a Raft group member whose log
// lives in a write-ahead log (raft-wal) and whose state lives in a badger database, changed only
// by the registered commands of Config.Commands.
//
// Open starts Raft's goroutines; Close stops them and closes both databases.
type Store struct {
	cfg       Config
	logger    *slog.Logger
	raft      *raft.Raft
	fsm       *fsm
	logStore  logStore
	transport *raft.NetworkTransport
	snapshots raft.SnapshotStore
	metrics   *metrics

	// trailing is the TrailingLogs in force (boundLog lowers it for large entries); lastBound
	// is when boundLog last asked for a snapshot. Both are used by the observe goroutine only.
	trailing  uint64
	lastBound time.Time
	// boundSnapshot is set while an early snapshot runs.
	boundSnapshot atomic.Bool

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// Open opens (or creates) the node's stores and starts Raft. It does not bootstrap a site: call
// Bootstrap for a new one, or let the site leader add this node.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger.With("component", "replication")
	s := &Store{cfg: cfg, logger: logger, stop: make(chan struct{}), done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			s.closeStores()
		}
	}()
	// Before anything is written: a new directory given a key is marked encrypted first.
	keys, err := openEncryption(cfg.DataDir, cfg.EncryptionKey)
	if err != nil {
		return nil, err
	}
	var stateKey []byte
	if keys != nil {
		stateKey = keys.state
	}
	for _, d := range []string{"snapshots", "state"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, d), 0o750); err != nil {
			return nil, fmt.Errorf("replication: %w", err)
		}
	}
	s.metrics = newMetrics(cfg.Registerer, func() float64 {
		if s.fsm == nil {
			return 0
		}
		return float64(s.fsm.applied.Load())
	})
	if _, err := checkStateAfterStop(cfg.DataDir, logger); err != nil {
		return nil, err
	}
	mc := machine{commands: cfg.Commands, refuse: cfg.Refuse, onCommit: cfg.OnCommit, onRestore: cfg.OnRestore}
	if s.fsm, err = newFSM(filepath.Join(cfg.DataDir, "state"), stateKey, logger, s.metrics, mc); err != nil {
		return nil, fmt.Errorf("replication: %w", err)
	}
	ls, err := openLogStore(cfg.DataDir, cfg.MaxLogBytes, logger, keys)
	if err != nil {
		return nil, err
	}
	s.logStore = ls
	hcl := newHCLogger(logger, "raft")
	files, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.DataDir, "snapshots"), 2, hcl)
	if err != nil {
		return nil, fmt.Errorf("replication: open snapshots: %w", err)
	}
	s.snapshots = files
	if keys != nil {
		s.snapshots = &encryptedSnapshots{inner: files, key: keys.snap}
	}
	if err := s.catchUpFromSnapshot(); err != nil {
		return nil, err
	}
	if s.transport, err = newTransport(cfg, hcl); err != nil {
		return nil, err
	}
	// The cache serves followers' catch-up from memory. Entries can be large (a feed batch is
	// up to 512 KiB), so it is kept short: 256 entries.
	logCache, err := raft.NewLogCache(256, s.logStore)
	if err != nil {
		return nil, err
	}
	if s.raft, err = raft.NewRaft(s.raftConfig(hcl), s.fsm, logCache, s.logStore, s.snapshots, s.transport); err != nil {
		return nil, fmt.Errorf("replication: start raft: %w", err)
	}
	ok = true
	go s.observe()
	return s, nil
}

func (s *Store) raftConfig(hcl *hclogAdapter) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(s.cfg.NodeID)
	rc.Logger = hcl
	rc.HeartbeatTimeout = s.cfg.HeartbeatTimeout
	rc.ElectionTimeout = s.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = s.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = s.cfg.CommitTimeout
	rc.SnapshotThreshold = s.cfg.SnapshotThreshold
	rc.SnapshotInterval = s.cfg.SnapshotInterval
	rc.TrailingLogs = s.cfg.TrailingLogs
	rc.MaxAppendEntries = s.cfg.MaxAppendEntries
	// Group commit: the leader drains up to MaxAppendEntries proposals into one log write
	// (one fsync) and one replication round.
	rc.BatchApplyCh = true
	// The FSM's state survives restarts on its own; restoring the newest snapshot at start
	// would only throw it away and rebuild it.
	rc.NoSnapshotRestoreOnStart = true
	return rc
}

// catchUpFromSnapshot handles a state directory that is behind the newest snapshot (lost or
// replaced by an operator): with NoSnapshotRestoreOnStart Raft would resume after the snapshot
// index and never replay what the state lacks, so restore the snapshot ourselves first.
func (s *Store) catchUpFromSnapshot() error {
	metas, err := s.snapshots.List()
	if err != nil || len(metas) == 0 {
		return err
	}
	newest := metas[0]
	if s.fsm.applied.Load() >= newest.Index {
		return nil
	}
	s.logger.Warn("state is behind the newest snapshot: restoring it", "applied", s.fsm.applied.Load(), "snapshot_index", newest.Index)
	_, rc, err := s.snapshots.Open(newest.ID)
	if err != nil {
		return fmt.Errorf("replication: open snapshot %s: %w", newest.ID, err)
	}
	return s.fsm.Restore(rc)
}

func newTransport(cfg Config, hcl *hclogAdapter) (*raft.NetworkTransport, error) {
	if cfg.Dial != nil || cfg.Listen != nil {
		listen, dial := cfg.Listen, cfg.Dial
		if listen == nil {
			listen = func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
		}
		if dial == nil {
			dial = func(addr string, timeout time.Duration) (net.Conn, error) {
				return net.DialTimeout("tcp", addr, timeout)
			}
		}
		ln, err := listen(cfg.RaftAddr)
		if err != nil {
			return nil, fmt.Errorf("replication: listen for raft on %s: %w", cfg.RaftAddr, err)
		}
		stream := &dialStream{Listener: ln, dial: dial, advertise: ln.Addr()}
		if cfg.RaftAdvertise != "" {
			a, err := net.ResolveTCPAddr("tcp", cfg.RaftAdvertise)
			if err != nil {
				ln.Close()
				return nil, fmt.Errorf("replication: raft advertise address %q: %w", cfg.RaftAdvertise, err)
			}
			stream.advertise = a
		} else if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsUnspecified() {
			ln.Close()
			return nil, fmt.Errorf("replication: raft listens on %s, which peers cannot dial: set an advertise address", a)
		}
		return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream:  stream,
			MaxPool: 4,
			Timeout: cfg.TransportTimeout,
			Logger:  hcl,
		}), nil
	}
	// Without an advertise address the transport advertises what it bound (port 0 resolved),
	// and refuses an unspecified IP such as 0.0.0.0.
	var adv net.Addr
	if cfg.RaftAdvertise != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.RaftAdvertise)
		if err != nil {
			return nil, fmt.Errorf("replication: raft advertise address %q: %w", cfg.RaftAdvertise, err)
		}
		adv = a
	}
	t, err := raft.NewTCPTransportWithConfig(cfg.RaftAddr, adv, &raft.NetworkTransportConfig{
		MaxPool: 4,
		Timeout: cfg.TransportTimeout,
		Logger:  hcl,
	})
	if err != nil {
		return nil, fmt.Errorf("replication: listen for raft on %s: %w", cfg.RaftAddr, err)
	}
	return t, nil
}

// dialStream is Raft's stream layer with Config.Listen's listener and Config.Dial's dials.
type dialStream struct {
	net.Listener
	dial      func(addr string, timeout time.Duration) (net.Conn, error)
	advertise net.Addr
}

// Addr is the address peers dial (raft advertises it).
func (s *dialStream) Addr() net.Addr { return s.advertise }

func (s *dialStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.dial(string(addr), timeout)
}

// observe keeps the raft-state gauge current and reclaims value-log space until Close.
func (s *Store) observe() {
	defer close(s.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	gc := time.NewTicker(s.cfg.ValueLogGCInterval)
	defer gc.Stop()
	bound := time.NewTicker(boundLogEvery)
	defer bound.Stop()
	s.trailing = s.cfg.TrailingLogs
	for {
		s.metrics.raftState.Set(float64(s.raft.State()))
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-gc.C:
			s.collectGarbage()
		case <-bound.C:
			s.boundLog()
		}
	}
}

// boundLogEvery is how often boundLog looks at the log's size (tests shorten it).
var boundLogEvery = 10 * time.Second

// boundLog keeps the Raft log near MaxLogBytes on disk. Raft compacts by entry counts
// (SnapshotThreshold, TrailingLogs), and entries range from a 1 KiB case to a 512 KiB feed batch:
// 16,384 trailing feed batches would be 8 GiB. So the trailing entries are lowered to what fits
// a quarter of the budget at the log's average entry size, and a log over the budget is
// snapshotted (and so truncated) early, one at a time and at most once a minute.
func (s *Store) boundLog() {
	size := logBytes(s.cfg.DataDir)
	first, err1 := s.logStore.FirstIndex()
	last, err2 := s.logStore.LastIndex()
	if err1 != nil || err2 != nil || last < first || size == 0 {
		return
	}
	avg := max(uint64(size)/(last-first+1), 1)
	trailing := min(max(uint64(s.cfg.MaxLogBytes/4)/avg, 64), s.cfg.TrailingLogs)
	if trailing != s.trailing {
		rc := raft.ReloadableConfig{TrailingLogs: trailing, SnapshotInterval: s.cfg.SnapshotInterval,
			SnapshotThreshold: s.cfg.SnapshotThreshold, HeartbeatTimeout: s.cfg.HeartbeatTimeout, ElectionTimeout: s.cfg.ElectionTimeout}
		if err := s.raft.ReloadConfig(rc); err != nil {
			s.logger.Warn("could not change the trailing log entries", "trailing", trailing, "error", err)
			return
		}
		s.trailing = trailing
	}
	if size <= s.cfg.MaxLogBytes || time.Since(s.lastBound) < 6*boundLogEvery || !s.boundSnapshot.CompareAndSwap(false, true) {
		return
	}
	s.lastBound = time.Now()
	s.logger.Info("the raft log is over its budget: snapshotting early", "bytes", size, "budget", s.cfg.MaxLogBytes,
		"entries", last-first+1, "trailing", trailing)
	future := s.raft.Snapshot()
	go func() {
		defer s.boundSnapshot.Store(false)
		if err := future.Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
			s.logger.Warn("early snapshot failed", "error", err)
		}
	}()
}

// collectGarbage rewrites the state's value-log files that are mostly garbage: case records
// replaced by newer versions. (The Raft log drops whole segments as it is compacted.)
func (s *Store) collectGarbage() {
	if err := s.fsm.runValueLogGC(); err != nil {
		s.logger.Warn("state value-log GC failed", "error", err)
	}
}

// Bootstrap makes a new site's first Raft configuration from servers. It is a no-op (nil) when
// this node already has Raft state, so calling it after a restart is harmless.
func (s *Store) Bootstrap(servers []raft.Server) error {
	has, err := raft.HasExistingState(s.logStore, s.logStore, s.snapshots)
	if err != nil || has {
		return err
	}
	err = s.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if errors.Is(err, raft.ErrCantBootstrap) {
		return nil
	}
	return err
}

// HasState reports whether this node already belongs to a Raft configuration (or has a log).
func (s *Store) HasState() (bool, error) {
	return raft.HasExistingState(s.logStore, s.logStore, s.snapshots)
}

// Propose applies cmd (made with NewCommand) at the leader, here if this node leads, else
// through the Forwarder, and returns the state machine's answer, which may be a refusal. It
// tries once: a command that is not safe to repeat uses it, and its caller learns the fate of an
// attempt that timed out by reading the state.
func (s *Store) Propose(ctx context.Context, cmd []byte) (any, error) {
	if s.raft.State() == raft.Leader {
		return s.applyAsLeader(ctx, cmd)
	}
	_, leader := s.raft.LeaderWithID()
	switch {
	case leader == "":
		return nil, ErrNoLeader
	case s.cfg.Forwarder == nil:
		return nil, ErrNotLeader
	}
	s.metrics.forwarded.Inc()
	raw, err := s.cfg.Forwarder.Forward(ctx, leader, cmd)
	if err != nil {
		return nil, err
	}
	answer, err := s.cfg.Answers.DecodeAnswer(raw)
	if err != nil {
		return nil, fmt.Errorf("replication: undecodable answer from the leader: %w", err)
	}
	return answer, nil
}

// ProposeIdempotent is Propose for a command that is safe to apply twice: it retries while the
// site has no leader (an election, or a leader change in the middle of a forward) until ctx ends.
func (s *Store) ProposeIdempotent(ctx context.Context, cmd []byte) (any, error) {
	wait := backoff.Backoff{Min: 20 * time.Millisecond, Max: 500 * time.Millisecond}
	for {
		answer, err := s.Propose(ctx, cmd)
		if err == nil || !errors.Is(err, ErrNoLeader) {
			return answer, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-s.stop:
			return nil, ErrClosed
		case <-time.After(wait.Next()):
		}
	}
}

// ApplyForwarded proposes an encoded command that a follower forwarded to this node, which must
// lead its site, and returns the encoded answer.
func (s *Store) ApplyForwarded(ctx context.Context, cmd []byte) ([]byte, error) {
	if t, _, _, err := parseCommand(cmd); err == nil {
		if c, ok := s.cfg.Commands.lookup(t); ok && c.leaderOnly {
			return nil, fmt.Errorf("%w: %s is proposed by the site's leader only, never forwarded", ErrForwardRefused, c.name)
		}
	}
	answer, err := s.applyAsLeader(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return s.cfg.Answers.EncodeAnswer(answer)
}

// applyAsLeader stamps the command with the leader's clock (the FSM must not read one) and
// applies it. A command type this node does not know is not proposed: only a newer version
// writes one, and the older nodes of the site would stop on it.
func (s *Store) applyAsLeader(ctx context.Context, cmd []byte) (any, error) {
	if s.raft.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	t, _, _, err := parseCommand(cmd)
	if err != nil {
		return nil, err
	}
	if _, known := s.cfg.Commands.lookup(t); !known {
		return nil, fmt.Errorf("%w: cannot propose command type %d", ErrCorruptCommand, uint8(t))
	}
	stamped := slices.Clone(cmd) // the caller may retry with its own copy
	stampCommand(stamped, time.Now())
	return s.applyLocal(ctx, stamped)
}

// applyLocal runs cmd through Raft and waits for the FSM's answer, bounded by ctx.
func (s *Store) applyLocal(ctx context.Context, cmd []byte) (any, error) {
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	start := time.Now()
	// Apply's timeout bounds only the enqueue; the wait below honours ctx for the rest.
	f := s.raft.Apply(cmd, timeout)
	errCh := make(chan error, 1)
	// raft answers every future it took, but one still queued when the node shuts down: then
	// this waiter outlives the call (its caller returns at ctx's end), until the process exits.
	go func() { errCh <- f.Error() }()
	select {
	case <-ctx.Done():
		// The entry may still commit; the caller learns its fate by reading or retrying with
		// the same request id.
		return nil, fmt.Errorf("replication: waiting for commit: %w", ctx.Err())
	case err := <-errCh:
		if err != nil {
			return nil, mapRaftError(err)
		}
	}
	s.metrics.commitLatency.Observe(time.Since(start).Seconds())
	return f.Response(), nil
}

func mapRaftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w (%v)", ErrNoLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w (%v)", ErrNoLeader, err)
	}
	return err
}

// AppliedIndex is the last Raft index applied to this node's state.
func (s *Store) AppliedIndex() uint64 { return s.fsm.applied.Load() }

// ExportState returns every key and value of this node's state (tests and diagnostics).
func (s *Store) ExportState() (map[string][]byte, error) { return s.fsm.exportState() }

// View runs fn in a read transaction on this node's copy of the state: one consistent view.
func (s *Store) View(fn func(txn *badger.Txn) error) error { return s.fsm.view(fn) }

// IsLeader reports whether this node leads its site.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the current leader's server ID and Raft address, or empty strings.
func (s *Store) Leader() (raft.ServerID, raft.ServerAddress) {
	addr, id := s.raft.LeaderWithID()
	return id, addr
}

// LeaderCh delivers true when this node gains leadership and false when it loses it.
func (s *Store) LeaderCh() <-chan bool { return s.raft.LeaderCh() }

// State is this node's Raft state.
func (s *Store) State() raft.RaftState { return s.raft.State() }

// Servers returns the site's current Raft configuration.
func (s *Store) Servers() ([]raft.Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// AddVoter makes a node a voter of the site (leader only): a non-voter of the same ID and
// address is promoted. An existing server with the same ID or address but not both is removed
// first, so a node that came back at a new address rejoins.
func (s *Store) AddVoter(id raft.ServerID, addr raft.ServerAddress) error {
	if done, err := s.removeClashing(id, addr, raft.Voter); done || err != nil {
		return err
	}
	return s.raft.AddVoter(id, addr, 0, 0).Error()
}

// AddNonvoter adds a node to the site as a non-voter (leader only): it receives the log but does
// not count towards a quorum until AddVoter promotes it. A server with the same ID or address but
// not both is removed first.
func (s *Store) AddNonvoter(id raft.ServerID, addr raft.ServerAddress) error {
	if done, err := s.removeClashing(id, addr, raft.Nonvoter); done || err != nil {
		return err
	}
	return s.raft.AddNonvoter(id, addr, 0, 0).Error()
}

// removeClashing removes a server that has id or addr but not both. It reports done when a
// server with both already has the wanted suffrage: there is nothing to change.
func (s *Store) removeClashing(id raft.ServerID, addr raft.ServerAddress, want raft.ServerSuffrage) (done bool, err error) {
	servers, err := s.Servers()
	if err != nil {
		return false, err
	}
	for _, srv := range servers {
		if srv.ID == id && srv.Address == addr {
			if srv.Suffrage == want {
				return true, nil
			}
			continue
		}
		if srv.ID == id || srv.Address == addr {
			if err := s.raft.RemoveServer(srv.ID, 0, 0).Error(); err != nil {
				return false, fmt.Errorf("replication: remove stale server %s: %w", srv.ID, err)
			}
		}
	}
	return false, nil
}

// RemoveServer removes a node from the site (leader only).
func (s *Store) RemoveServer(id raft.ServerID) error {
	return s.raft.RemoveServer(id, 0, 0).Error()
}

// Snapshot asks Raft for a snapshot now (operators and tests).
func (s *Store) Snapshot() error { return s.raft.Snapshot().Error() }

// VerifyLeader confirms with a majority of the site that this node still leads it: a leader cut
// off from its followers learns it has lost them only later.
func (s *Store) VerifyLeader() error { return mapRaftError(s.raft.VerifyLeader().Error()) }

// Barrier waits until every entry committed before it is applied on this node (leader only).
func (s *Store) Barrier(timeout time.Duration) error { return s.raft.Barrier(timeout).Error() }

// Close stops Raft and closes the stores. It does not leave the site: a restarted node resumes.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		if e := s.raft.Shutdown().Error(); e != nil {
			err = e
		}
		if e := s.closeStores(); e != nil && err == nil {
			err = e
		}
		if err == nil {
			// The state database is closed and synced: the next Open may trust it, whatever
			// happens to the machine meanwhile.
			err = markStateClosed(s.cfg.DataDir)
		}
	})
	return err
}

func (s *Store) closeStores() error {
	var errs []error
	if s.transport != nil {
		errs = append(errs, s.transport.Close())
	}
	if s.logStore != nil {
		errs = append(errs, s.logStore.Close())
	}
	if s.fsm != nil {
		errs = append(errs, s.fsm.close())
	}
	return errors.Join(errs...)
}

// RaftAddr is the address peers use to reach this node's Raft transport.
func (s *Store) RaftAddr() string { return string(s.transport.LocalAddr()) }
