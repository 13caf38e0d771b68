package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/tier"
	"google.golang.org/grpc"
)

// Config is everything a node needs to start. cmd/govgrid fills it from flags, the config file
// and GOVGRID_* variables; tests fill it directly.
type Config struct {
	// Name is the node's name, unique in the grid; it is also its Raft server ID.
	Name string
	// Site is the code of the site this node serves (e.g. "cd" or "cd-dgdj"); Tier its tier;
	// Parent the parent site's code (empty only for the district).
	Site   string
	Tier   tier.Tier
	Parent string
	// DataDir holds the node's Raft log, snapshots and state.
	DataDir string
	// EncryptionKeyFile, if set, is the file of the key that encrypts the data directory at rest
	// (the state, the Raft log's entries, the snapshots): 32 random bytes in base64, as
	// `govgrid keygen encryption` writes it. A data directory encrypted once opens only with
	// its key; one written in the clear only without a key (replication/DESIGN.md).
	EncryptionKeyFile string
	// Listen addresses, host:port. Port 0 picks a free port (tests).
	HTTPAddr   string
	GRPCAddr   string
	RaftAddr   string
	GossipAddr string
	// AdvertiseAddr, if set, is the host (an IP or a name) the other nodes dial, with each
	// listen address's port: a node may then bind 0.0.0.0 in a container, and a site behind NAT
	// announce its routed address. Empty: the nodes dial the listen addresses themselves.
	AdvertiseAddr string
	// Join lists gossip addresses of nodes already in the grid.
	Join []string
	// BootstrapExpect is how many nodes of this site must be seen before a new site bootstraps.
	BootstrapExpect int
	// GridName is the gossip label: grids with different names never merge.
	GridName string
	// GossipKey, if set, encrypts gossip (16, 24 or 32 bytes).
	GossipKey []byte
	// GossipProfile is "lan" or "wan" (slow, lossy links between sites).
	GossipProfile string
	// GossipPushPull, if set, overrides the profile's full state exchange interval (30 s on a
	// LAN): an alive message lost on a busy host is otherwise repaired only that late. Tests
	// shorten it; 0 keeps the profile's.
	GossipPushPull time.Duration
	// ReapAfter is how long a node of this site must stay failed before the leader removes it.
	ReapAfter time.Duration
	// DeadNodeReclaim is how long a dead member's name stays bound to its old address: after
	// it, a node of the same name at a new address (a renumbered machine) may rejoin.
	DeadNodeReclaim time.Duration
	// ReconnectInterval is how often members seen dead are tried again (see reconnect.go).
	ReconnectInterval time.Duration
	// Location is the grid's time zone (case numbers take their day from it).
	Location *time.Location
	Logger   *slog.Logger
	Version  string
	// Pprof serves Go's profiler on the HTTP address under /debug/pprof/.
	Pprof bool
	// HTTPTLSCert and HTTPTLSKey, both set, are the PEM files of the certificate (with its
	// chain) and key the HTTP API and console serve HTTPS with; neither set: plain HTTP.
	HTTPTLSCert, HTTPTLSKey string
	// HTTPHosts, if set, are the names the HTTP API answers to (the Host header); others get
	// 421. Loopback is always answered.
	HTTPHosts []string
	// TLSDir holds the node's grid certificate (ca.pem, node.pem, node.key; and ca.key at a
	// district node that issues certificates); empty: DATA_DIR/tls.
	TLSDir string
	// JoinToken, when the node has no certificate yet, is redeemed at the district for one.
	JoinToken string
	// InsecurePeers runs the node without certificates: its ports trust whoever connects. For a
	// laboratory; never on a network with anyone else on it.
	InsecurePeers bool
	// CertLifetime is how long the certificates this node issues (at a district node holding the
	// CA's key) are valid; 0 means DefaultCertLifetime. Nodes renew at two thirds of it.
	CertLifetime time.Duration
	// Network, if set, is how the node reaches its peers: Raft's and gRPC's connections and the
	// gossip transport. Tests route every link of an in-process grid through their own network
	// to cut or slow it; nil is the host's network.
	Network Network
	// PeerCalls, if set, wraps every unary gRPC call this node makes to another node (tests
	// inject message loss, copies and delays there); nil wraps none.
	PeerCalls grpc.UnaryClientInterceptor
	// RestoreFromParent makes a fresh node of a lost site rebuild it from its parent's mirror
	// before it takes cases (`govgrid site restore --from-parent`); RestoreProgress, if set,
	// hears how far it is.
	RestoreFromParent bool
	RestoreProgress   func(done, total int)
	// HandoffBatch is the most handoffs one delivery carries; 0 means 128. Tests lower it to
	// make many small deliveries for their faults to hit.
	HandoffBatch int
	// RaftTimeScale shortens Raft's timeouts (tests use 0.2); 0 means 1.
	RaftTimeScale float64
}

// DefaultConfig returns a Config with the defaults of `govgrid agent`.
func DefaultConfig() Config {
	return Config{
		DataDir:           "data",
		HTTPAddr:          "127.0.0.1:8080",
		GRPCAddr:          "127.0.0.1:9090",
		RaftAddr:          "127.0.0.1:7000",
		GossipAddr:        "127.0.0.1:7946",
		BootstrapExpect:   1,
		GridName:          "govgrid",
		GossipProfile:     "lan",
		ReapAfter:         72 * time.Hour,
		ReconnectInterval: 30 * time.Second,
		DeadNodeReclaim:   30 * time.Second,
		Location:          casework.GridLocation(),
		Logger:            slog.Default(),
		Version:           "dev",
	}
}

// Validate checks c and returns the first problem, in words an operator can act on.
func (c Config) Validate() error {
	if c.Name == "" {
		return errors.New("node name is required (--node)")
	}
	if len(c.Name) > 64 {
		return fmt.Errorf("node name %q is longer than 64 characters", c.Name)
	}
	if err := tier.ValidateSiteCode(c.Site); err != nil {
		return fmt.Errorf("--site: %w", err)
	}
	if _, err := tier.Parse(string(c.Tier)); err != nil {
		return fmt.Errorf("--tier: %w", err)
	}
	if err := tier.ValidatePlacement(c.Tier, c.Parent, ""); err != nil {
		return err
	}
	if c.Parent == c.Site && c.Parent != "" {
		return fmt.Errorf("site %q cannot be its own parent", c.Site)
	}
	if c.DataDir == "" {
		return errors.New("data dir is required (--data-dir)")
	}
	for _, a := range []struct{ flag, addr string }{
		{"--http-addr", c.HTTPAddr}, {"--grpc-addr", c.GRPCAddr},
		{"--raft-addr", c.RaftAddr}, {"--gossip-addr", c.GossipAddr},
	} {
		if err := checkHostPort(a.addr); err != nil {
			return fmt.Errorf("%s: %w", a.flag, err)
		}
	}
	if c.InsecurePeers && c.JoinToken != "" {
		return errors.New("--join-token and --insecure-peers contradict each other: a join token is for a grid with certificates")
	}
	if c.JoinToken != "" {
		if _, err := parseJoinToken(c.JoinToken); err != nil {
			return err
		}
	}
	if (c.HTTPTLSCert == "") != (c.HTTPTLSKey == "") {
		return errors.New("--http-tls-cert and --http-tls-key go together: give both, or neither for plain HTTP")
	}
	if c.AdvertiseAddr != "" {
		if strings.Contains(c.AdvertiseAddr, ":") && net.ParseIP(c.AdvertiseAddr) == nil {
			return fmt.Errorf("--advertise-addr: %q is a host (an IP or a name), without a port: each listen address's port is kept", c.AdvertiseAddr)
		}
		if ip := net.ParseIP(c.AdvertiseAddr); ip != nil && ip.IsUnspecified() {
			return fmt.Errorf("--advertise-addr: %q is not an address other nodes can dial", c.AdvertiseAddr)
		}
		if _, port, _ := net.SplitHostPort(c.RaftAddr); port == "0" {
			return errors.New("--advertise-addr needs --raft-addr with its port (Raft announces it before it binds)")
		}
	}
	for _, j := range c.Join {
		if err := checkHostPort(j); err != nil {
			return fmt.Errorf("--join: %w", err)
		}
	}
	if len(c.Version) > MaxVersion {
		return fmt.Errorf("version %q is longer than %d characters", c.Version, MaxVersion)
	}
	if c.BootstrapExpect < 1 || c.BootstrapExpect > 7 {
		return fmt.Errorf("--bootstrap-expect must be 1 to 7 (a site has 1 to 5 nodes), got %d", c.BootstrapExpect)
	}
	if c.GridName == "" || len(c.GridName) > 64 {
		return errors.New("grid name must be 1 to 64 characters")
	}
	switch len(c.GossipKey) {
	case 0, 16, 24, 32:
	default:
		return fmt.Errorf("gossip key must be 16, 24 or 32 bytes, got %d", len(c.GossipKey))
	}
	if c.GossipProfile != "lan" && c.GossipProfile != "wan" {
		return fmt.Errorf("gossip profile must be lan or wan, got %q", c.GossipProfile)
	}
	if c.ReapAfter <= 0 {
		return errors.New("reap time must be positive")
	}
	if c.DeadNodeReclaim <= 0 {
		return errors.New("dead-node reclaim time must be positive")
	}
	if c.ReconnectInterval <= 0 {
		return errors.New("reconnect interval must be positive")
	}
	if c.Location == nil || c.Logger == nil {
		return errors.New("location and logger are required")
	}
	return nil
}

// checkHostPort accepts host:port with a numeric port and a host that is an IP or a name.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q has no valid port", addr)
	}
	if host == "" {
		return fmt.Errorf("%q has no host (use 0.0.0.0 to listen everywhere)", addr)
	}
	return nil
}

// advertised is listen address addr as the other nodes dial it: the advertise host with addr's
// port, or addr itself.
func (c *Config) advertised(addr string) string {
	if c.AdvertiseAddr == "" {
		return addr
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(c.AdvertiseAddr, port)
}

// tlsDir is the directory of the node's grid certificate: TLSDir, or DATA_DIR/tls.
func (c Config) tlsDir() string {
	if c.TLSDir != "" {
		return c.TLSDir
	}
	return filepath.Join(c.DataDir, TLSDirName)
}
