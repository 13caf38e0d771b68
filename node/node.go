package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/api/httpapi"
	"github.com/govgrid/govgrid/catalog"
	"github.com/govgrid/govgrid/pki"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/web"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// Node is one running govgrid agent.
type Node struct {
	cfg    Config
	logger *slog.Logger
	// state is the site's state on this node; raft the Raft group under it (membership,
	// leadership), the same store.
	state    *sitestate.State
	raft     *replication.Store
	gossip   *gossip
	meta     Meta
	peers    *peers
	registry *prometheus.Registry
	// catalog is the catalogue in force here, rebuilt when the configuration changes.
	catalog fromConfig[*catalog.Catalog]
	// accounts are the accounts, site keys and revocations in force here (auth.go).
	accounts fromConfig[*accountBook]
	// revoked are the node identities the district revoked (revoke.go).
	revoked fromConfig[revokedSet]
	// verified remembers the tokens whose signature checked out (auth.go).
	verified verifiedTokens
	// citizens counts failed citizen lookups (citizen.go), signIns failed sign-ins (auth.go).
	citizens failureGate
	signIns  failureGate
	// argonSlots bounds the password hashes computed at once (19 MiB each).
	argonSlots chan struct{}
	// operatorKey is the secret of OperatorKeyFile.
	operatorKey string
	// httpTLS, when set, makes the HTTP API serve HTTPS (Config.HTTPTLSCert).
	httpTLS *tls.Config
	// peerTLS is the node's grid certificate and CA (tls.go); nil with Config.InsecurePeers.
	peerTLS *peerTLS
	// audit gathers this node's audit events until they are committed (audit.go).
	audit auditBuffer

	httpLn, grpcLn net.Listener
	httpSrv        *http.Server
	// grpcSrv serves the gRPC port; with certificates it takes the TLS connections (nodes and
	// clients that want TLS) and publicSrv the plain-text ones (split_listener.go).
	grpcSrv, publicSrv *grpc.Server
	healthSrv          *health.Server

	// registryChanged wakes the leader loop when the site registry changed, so that a child's
	// registration goes up at once instead of adding a tick per tier.
	registryChanged chan struct{}
	// outbox is the leader's in-memory view of the committed outbox.
	outbox   *outbox
	handoffs *handoffMetrics
	feeds    *feedMetrics
	// mirrorWake wakes the mirror workers when the registry changed (a new child).
	mirrorWake chan struct{}
	// links is what this node heard of its site's links while it leads (live, never stored);
	// timings how soon it gives up on a silent one.
	links   *links
	timings linkTimings
	// caughtUp is set while this node leads and has applied everything committed before.
	caughtUp atomic.Bool

	// quiet is set when start failed: the caller reports the error, shutdown says nothing.
	quiet bool

	stop      chan struct{}
	done      chan struct{} // closed when shutdown has finished
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New validates cfg, opens the node's stores, binds every listener, joins the grid and starts
// serving. Any failure (bad config, unwritable data dir, address in use) stops everything that
// had started and returns an error that names the cause. The node runs until Close or Leave.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	logger := cfg.Logger.With("node", cfg.Name, "site", cfg.Site)
	pt, err := loadTrust(&cfg, logger)
	if err != nil {
		return nil, err
	}
	timings := timingsFor(cfg.GossipProfile)
	n := &Node{cfg: cfg, logger: logger, peerTLS: pt, peers: newPeers(cfg.Network, cfg.PeerCalls, timings, pt), links: newLinks(), timings: timings, registry: prometheus.NewRegistry(), stop: make(chan struct{}), done: make(chan struct{}),
		registryChanged: make(chan struct{}, 1), outbox: newOutbox(), mirrorWake: make(chan struct{}, 1)}
	n.audit.wake = make(chan struct{}, 1)
	n.argonSlots = make(chan struct{}, maxConcurrentHashes)
	if err := n.loadOperatorKey(); err != nil {
		return nil, err
	}
	if err := n.start(); err != nil {
		n.quiet = true
		n.Close()
		return nil, err
	}
	return n, nil
}

// start brings the node up in dependency order; New undoes whatever it did on an error.
func (n *Node) start() error {
	cfg, logger := n.cfg, n.logger
	var err error
	n.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if n.peerTLS != nil {
		n.peerTLS.register(n.registry)
	}

	if cfg.HTTPTLSCert != "" {
		if n.httpTLS, err = loadHTTPTLS(cfg.HTTPTLSCert, cfg.HTTPTLSKey); err != nil {
			return err
		}
	}
	if n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return fmt.Errorf("--http-addr: %w", err)
	}
	if n.grpcLn, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return fmt.Errorf("--grpc-addr: %w", err)
	}
	// Gossip starts before Raft so that the forwarder can find the leader, but the node's
	// Raft address must be known for its metadata: bind Raft's port first through the store.
	fwd := &forwarder{peers: n.peers}
	rc := replication.DefaultConfig()
	rc.NodeID, rc.DataDir, rc.RaftAddr = cfg.Name, cfg.DataDir, cfg.RaftAddr
	if cfg.AdvertiseAddr != "" {
		rc.RaftAdvertise = cfg.advertised(cfg.RaftAddr)
	}
	if cfg.EncryptionKeyFile != "" {
		if rc.EncryptionKey, err = replication.LoadEncryptionKey(cfg.EncryptionKeyFile); err != nil {
			return fmt.Errorf("--encryption-key-file %s: %w", cfg.EncryptionKeyFile, err)
		}
	}
	rc.Logger, rc.Registerer, rc.Forwarder = logger, n.registry, fwd
	rc.TransportTimeout = n.timings.raftTransport
	if cfg.Network != nil {
		rc.Dial = func(addr string, timeout time.Duration) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			return cfg.Network.Dial(ctx, addr)
		}
	}
	if pt := n.peerTLS; pt != nil {
		dial := rc.Dial
		if dial == nil {
			dial = func(addr string, timeout time.Duration) (net.Conn, error) {
				return net.DialTimeout("tcp", addr, timeout)
			}
		}
		rc.Dial = pt.raftDialer(dial)
		rc.Listen = func(addr string) (net.Listener, error) {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return nil, err
			}
			return tls.NewListener(ln, pt.raftServer()), nil
		}
	}
	if s := cfg.RaftTimeScale; s > 0 && s != 1 {
		rc.HeartbeatTimeout = time.Duration(float64(rc.HeartbeatTimeout) * s)
		rc.ElectionTimeout = time.Duration(float64(rc.ElectionTimeout) * s)
		rc.LeaderLeaseTimeout = time.Duration(float64(rc.LeaderLeaseTimeout) * s)
	}
	n.handoffs = newHandoffMetrics(n.registry)
	n.feeds = newFeedMetrics(n.registry)
	sc := sitestate.Config{
		Site: cfg.Site, Tier: cfg.Tier, Parent: cfg.Parent, Grid: cfg.GridName, Location: cfg.Location, Logger: logger, Registerer: n.registry,
		OnOutboxChanged: n.outbox.changed,
		QueryCodeSecret: n.queryCodeSecret(),
		OnSitesChanged: func() {
			nudge(n.registryChanged)
			nudge(n.mirrorWake)
		},
	}
	if n.state, err = sitestate.Open(sc, rc); err != nil {
		if errors.Is(err, replication.ErrEncryptionKey) {
			if cfg.EncryptionKeyFile == "" {
				return fmt.Errorf("%w: give its key with --encryption-key-file", err)
			}
			return fmt.Errorf("%w: check --encryption-key-file (%s) and --data-dir", err, cfg.EncryptionKeyFile)
		}
		return err
	}
	n.raft = n.state.Raft()
	if n.peerTLS != nil {
		revoked := n.isRevoked
		n.peerTLS.isRevoked.Store(&revoked)
	}
	if cfg.RestoreFromParent {
		if cfg.Parent == "" {
			return errors.New("--from-parent: the district has no parent to restore from")
		}
		st, err := n.state.Restored()
		if err != nil {
			return err
		}
		if !st.Restored {
			// Marks the data dir as a restore in progress, so that running the restore again
			// after an interruption is allowed (the CLI refuses a data dir with a site's data).
			if err := os.WriteFile(n.DataPath(RestoreMarker), nil, 0o640); err != nil {
				return err
			}
		}
	}
	meta := Meta{
		Site: cfg.Site, Tier: cfg.Tier, Parent: cfg.Parent, Version: cfg.Version,
		GRPC: cfg.advertised(n.grpcLn.Addr().String()), HTTP: cfg.advertised(n.httpLn.Addr().String()), Raft: n.raft.RaftAddr(),
	}
	n.meta = meta
	if n.gossip, err = newGossip(cfg, meta, logger); err != nil {
		return err
	}
	fwd.gossip = n.gossip

	n.startServers()
	if join := n.joinAddrs(); len(join) > 0 {
		if _, err := n.gossip.join(join); err != nil {
			// Not fatal: the grid may still be starting. Keep trying in the background.
			logger.Warn("could not join the grid yet; retrying", "join", join, "error", err)
			n.goRun(n.retryJoin)
		}
	}
	n.goRun(n.persistPeers)
	n.goRun(n.reconnect)
	if err := n.checkPlacement(); err != nil {
		return err
	}
	n.goRun(n.bootstrapSite)
	n.goRun(func() { n.runAudit(n.stop) })
	n.goRun(n.monitorLeadership)
	if n.peerTLS != nil {
		n.goRun(n.renewCertificates)
	}
	logger.Info("node started", "tier", cfg.Tier, "parent", cfg.Parent, "http", meta.HTTP, "grpc", meta.GRPC,
		"raft", meta.Raft, "gossip", n.gossip.addr())
	return nil
}

func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	probe, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("--data-dir %s is not writable: %w", dir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}

func (n *Node) startServers() {
	n.healthSrv = health.NewServer()
	n.healthSrv.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	n.grpcSrv = n.newGRPCServer(n.peerTLS != nil)
	if n.peerTLS == nil {
		n.serveGRPC(n.grpcSrv, n.grpcLn)
	} else {
		split := newSplitListener(n.grpcLn)
		n.publicSrv = n.newGRPCServer(false)
		n.serveGRPC(n.grpcSrv, split.tls)
		n.serveGRPC(n.publicSrv, split.plain)
	}
	n.httpSrv = &http.Server{
		Handler: httpapi.New(httpapi.Config{
			Cases:       &caseService{n: n},
			Node:        n,
			ConfigDocs:  configService{n},
			Catalog:     n,
			Auth:        n,
			Audit:       n,
			Seal:        n,
			JoinTokens:  n,
			Revocations: n,
			Hosts:       n.cfg.HTTPHosts,
			Backups:     n,
			Keyring:     n,
			Metrics:     promhttp.HandlerFor(n.registry, promhttp.HandlerOpts{}),
			Logger:      n.logger,
			Pprof:       n.cfg.Pprof,
			Console:     web.Handler(),
		}),
		// No ReadTimeout or WriteTimeout: a backup streams for as long as the site is large;
		// a slow client holds one goroutine, and the headers must come within 10 s.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         n.httpTLS,
	}
	n.goRun(func() {
		serve := n.httpSrv.Serve
		if n.httpSrv.TLSConfig != nil {
			serve = func(ln net.Listener) error { return n.httpSrv.ServeTLS(ln, "", "") }
		}
		if err := serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.logger.Error("http server stopped", "error", err)
		}
	})
}

// newGRPCServer makes a gRPC server with every service; withTLS, it speaks TLS with the node's
// certificate. The Cluster service's rules (peer_rules.go) refuse a caller without a grid
// certificate, so on the plain-text server it answers only PermissionDenied.
func (n *Node) newGRPCServer(withTLS bool) *grpc.Server {
	opts := append(n.timings.serverKeepalive(), grpc.MaxRecvMsgSize(4<<20), grpc.MaxConcurrentStreams(1024),
		grpc.ChainUnaryInterceptor(recoverUnary(n.logger), n.peerRulesUnary), grpc.ChainStreamInterceptor(recoverStream(n.logger), n.peerRulesStream))
	if withTLS {
		opts = append(opts, grpc.Creds(credentials.NewTLS(n.peerTLS.grpcServer())))
	}
	srv := grpc.NewServer(opts...)
	grpcapi.Register(srv, &caseService{n: n}, n)
	pb.RegisterClusterServer(srv, n.clusterServer())
	if withTLS {
		pb.RegisterEnrolmentServer(srv, &enrolmentServer{n: n})
	}
	healthpb.RegisterHealthServer(srv, n.healthSrv)
	reflection.Register(srv)
	return srv
}

func (n *Node) serveGRPC(srv *grpc.Server, ln net.Listener) {
	n.goRun(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, net.ErrClosed) {
			n.logger.Error("grpc server stopped", "error", err)
		}
	})
}

// loadTrust finds the node's grid certificate (tls.go): in its TLS directory, or by redeeming
// its join token; none, it refuses to start unless cfg.InsecurePeers.
func loadTrust(cfg *Config, logger *slog.Logger) (*peerTLS, error) {
	cfg.TLSDir = cfg.tlsDir()
	var pt *peerTLS
	if !cfg.InsecurePeers {
		if StartsAGrid(*cfg) {
			if err := startGrid(cfg, logger); err != nil {
				return nil, err
			}
		}
		if !hasNodeCert(cfg.TLSDir) {
			if cfg.JoinToken == "" {
				return nil, errNoTrust
			}
			if err := redeemJoinToken(cfg, cfg.TLSDir); err != nil {
				return nil, err
			}
		}
		var err error
		if pt, err = loadPeerTLS(*cfg, cfg.TLSDir); err != nil {
			return nil, err
		}
		pt.logger = logger
		if pt.secret == nil {
			logger.Warn("no grid secret in the TLS dir: new cases keep their query codes as a bare salted hash, which anyone holding a copy can try every code against; install grid.secret from the CA's directory on every node",
				"file", filepath.Join(cfg.TLSDir, pki.GridSecretFile))
		}
	}
	return pt, nil
}

// queryCodeSecret is the grid secret, the key of citizens' query codes: nil without one (a grid
// whose CA has none, or Config.InsecurePeers), when codes keep the legacy salted hash.
func (n *Node) queryCodeSecret() []byte {
	if n.peerTLS == nil {
		return nil
	}
	return n.peerTLS.secret
}

// goRun runs fn in a goroutine that Close waits for.
func (n *Node) goRun(fn func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
}

func (n *Node) retryJoin() {
	backoff := time.Second
	for {
		select {
		case <-n.stop:
			return
		case <-time.After(backoff):
		}
		if _, err := n.gossip.join(n.joinAddrs()); err == nil {
			n.logger.Info("joined the grid")
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// Addrs are the addresses a node actually listens on (ports chosen by the OS are filled in).
type Addrs struct {
	HTTP, GRPC, Raft, Gossip string
}

// Addrs returns the node's listen addresses.
func (n *Node) Addrs() Addrs {
	return Addrs{HTTP: n.httpLn.Addr().String(), GRPC: n.grpcLn.Addr().String(), Raft: n.raft.RaftAddr(), Gossip: n.gossip.addr()}
}

// Name is the node's name; Site its site's code.
func (n *Node) Name() string { return n.cfg.Name }

// Site is the code of the site the node serves.
func (n *Node) Site() string { return n.cfg.Site }

// State is the node's copy of its site's state (tests and diagnostics).
func (n *Node) State() *sitestate.State { return n.state }

// Raft is the Raft group member under the node's state (tests and diagnostics).
func (n *Node) Raft() *replication.Store { return n.raft }

// Ready reports whether the node serves: its site has a leader that this node can reach.
func (n *Node) Ready() (bool, string) {
	if n.state == nil {
		return false, "starting"
	}
	if n.restoring() {
		return false, "restoring the site from its neighbours' mirrors"
	}
	id, _ := n.raft.Leader()
	switch {
	case id == "":
		return false, "the site has no leader yet"
	case string(id) == n.cfg.Name && !n.caughtUp.Load():
		return false, "this new leader is still applying what its site committed before"
	case string(id) != n.cfg.Name:
		if _, ok := n.gossip.member(string(id)); !ok {
			return false, "the site leader is not visible in gossip yet"
		}
	}
	return true, ""
}

// Close stops the node without leaving the grid: a restart resumes where it stopped. It waits
// for in-flight requests (up to a few seconds) and every goroutine the node started.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.shutdown(false) })
	return n.closeErr
}

// Leave removes the node from its site and the grid for good, then stops it.
func (n *Node) Leave() error {
	n.closeOnce.Do(func() { n.closeErr = n.shutdown(true) })
	return n.closeErr
}

// LeaveAsync starts Leave in the background (for the HTTP endpoint, whose server Leave stops).
func (n *Node) LeaveAsync() { go n.Leave() }

// Done is closed once the node has stopped (after Close or Leave).
func (n *Node) Done() <-chan struct{} { return n.done }

func (n *Node) shutdown(leave bool) error {
	defer close(n.done)
	close(n.stop)
	var errs []error
	if leave && n.state != nil {
		errs = append(errs, n.leaveSite())
	}
	if n.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, n.httpSrv.Shutdown(ctx))
		cancel()
	} else if n.httpLn != nil {
		n.httpLn.Close()
	}
	if n.grpcSrv != nil {
		stopped := make(chan struct{})
		go func() {
			if n.publicSrv != nil {
				n.publicSrv.GracefulStop()
			}
			n.grpcSrv.GracefulStop()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			if n.publicSrv != nil {
				n.publicSrv.Stop()
			}
			n.grpcSrv.Stop()
		}
	} else if n.grpcLn != nil {
		n.grpcLn.Close()
	}
	if n.gossip != nil {
		if leave {
			errs = append(errs, n.gossip.leave(5*time.Second))
		} else {
			errs = append(errs, n.gossip.shutdown())
		}
	}
	if n.state != nil {
		errs = append(errs, n.state.Close())
	}
	n.wg.Wait()
	n.peers.close()
	if !n.quiet {
		n.logger.Info("node stopped", "left", leave)
	}
	return errors.Join(errs...)
}

// leaveSite announces through gossip that this node is leaving for good (so the grid records it
// as left, not dead), then drops it from its site's Raft configuration: directly when it leads,
// else by waiting (up to 10 s) for the leader to remove it. A site's last node has no
// configuration to leave.
func (n *Node) leaveSite() error {
	if err := n.gossip.announceLeaving(n.meta, 5*time.Second); err != nil {
		return err
	}
	servers, err := n.raft.Servers()
	if err != nil || len(servers) <= 1 {
		return err
	}
	if n.raft.IsLeader() {
		return n.raft.RemoveServer(raftID(n.cfg.Name))
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		servers, err := n.raft.Servers()
		if err == nil && !slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == n.cfg.Name }) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the site leader did not remove this node within 10 s; it will when it sees the node gone")
}

// DataPath returns a path inside the node's data dir.
func (n *Node) DataPath(elem ...string) string {
	return filepath.Join(append([]string{n.cfg.DataDir}, elem...)...)
}

func (n *Node) servingStatus() healthpb.HealthCheckResponse_ServingStatus {
	if ok, _ := n.Ready(); ok {
		return healthpb.HealthCheckResponse_SERVING
	}
	return healthpb.HealthCheckResponse_NOT_SERVING
}

// loadHTTPTLS reads the HTTP API's certificate and key (TLS 1.2 at least).
func loadHTTPTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--http-tls-cert, --http-tls-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
