package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/tier"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// agentFlags are the settings of `govgrid agent`. Each is a flag, a key of the YAML config file
// (same name) and an environment variable GOVGRID_<NAME> with '-' as '_'.
func agentFlags(fs *pflag.FlagSet) {
	d := node.DefaultConfig()
	fs.String("config", "", "YAML config file (keys are the flag names)")
	fs.String("node", "", "this node's name, unique in the grid (default: the host name)")
	fs.String("site", "", "code of the site this node serves, e.g. cd or cd-dgdj")
	fs.String("tier", "", "the site's tier: district, township or community")
	fs.String("parent", "", "the parent site's code (every site but the district)")
	fs.String("data-dir", d.DataDir, "directory for the Raft log, snapshots and state")
	fs.String("encryption-key-file", "", "file of the key (32 bytes, base64; `govgrid keygen encryption` makes one) that encrypts the data directory at rest; a directory encrypted once opens only with it")
	fs.String("http-addr", d.HTTPAddr, "HTTP/JSON API and console address")
	fs.String("grpc-addr", d.GRPCAddr, "gRPC address (clients and other nodes)")
	fs.String("raft-addr", d.RaftAddr, "Raft address (nodes of the same site)")
	fs.String("gossip-addr", d.GossipAddr, "gossip address (every node of the grid)")
	fs.String("advertise-addr", "", "the host (IP or name) other nodes dial, with each address's port: bind 0.0.0.0 in a container, or announce a routed address behind NAT")
	fs.StringSlice("join", nil, "gossip addresses of nodes already in the grid, comma-separated")
	fs.Int("bootstrap-expect", d.BootstrapExpect, "nodes of this site to wait for before forming a new site")
	fs.String("grid", d.GridName, "the grid's name: the gossip label that keeps grids apart")
	fs.String("gossip-key", "", "base64 key (16, 24 or 32 bytes) that encrypts gossip")
	fs.String("gossip-profile", d.GossipProfile, "gossip timings: lan, or wan for slow links between sites")
	fs.Duration("reap-after", d.ReapAfter, "how long a failed node of the site stays a member before the leader removes it")
	fs.Duration("reconnect-interval", d.ReconnectInterval, "how often members seen dead are tried again (heals partitions)")
	fs.Duration("dead-node-reclaim", d.DeadNodeReclaim, "how long a dead node's name stays bound to its old address")
	fs.Bool("leave-on-terminate", false, "on SIGTERM, leave the site and the grid for good instead of just stopping")
	fs.String("log-level", "info", "debug, info, warn or error")
	fs.Bool("pprof", false, "serve Go's profiler under /debug/pprof/ on the HTTP address")
	fs.String("http-tls-cert", "", "PEM certificate (with its chain) for HTTPS on the HTTP address; with --http-tls-key")
	fs.String("http-tls-key", "", "PEM private key of --http-tls-cert")
	fs.String("client-addr", "", "the host (IP) the HTTP API and console bind, with --http-addr's port: e.g. 127.0.0.1 or an office LAN's address, apart from the peer ports' --advertise-addr")
	fs.StringSlice("http-hosts", nil, "names (and addresses) the HTTP API answers to in the Host header, comma-separated; others get 421 (loopback always); empty: any")
	fs.String("tls-dir", "", "directory of the node's grid certificate: ca.pem, node.pem, node.key (and ca.key at a district node that issues); default DATA_DIR/tls")
	fs.String("join-token", "", "a join token from the district (govgrid token create): a new node redeems it for its certificate and the gossip keys")
	fs.Bool("insecure-peers", false, "run without certificates or gossip encryption: every port trusts whoever connects (a laboratory only)")
	fs.Duration("cert-lifetime", node.DefaultCertLifetime, "how long the certificates a district node holding ca.key issues are valid")
}

func newAgentCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node that serves one site",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, leave, err := agentConfig(cmd.Flags())
			if err != nil {
				return err
			}
			return runAgent(cfg, leave, nil)
		},
	}
	agentFlags(cmd.Flags())
	return cmd
}

// runAgent runs a node until SIGTERM/SIGINT or `govgrid leave`; started, if set, runs once the
// node is up (and may stop it early by returning an error).
func runAgent(cfg node.Config, leave bool, started func(context.Context, *node.Node) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	if started != nil {
		if err := started(ctx, n); err != nil {
			n.Close()
			return err
		}
	}
	select {
	case <-n.Done(): // `govgrid leave`
		return nil
	case <-ctx.Done():
	}
	if leave {
		return n.Leave()
	}
	return n.Close()
}

// loadSettings layers flags over GOVGRID_* variables over the config file over defaults.
func loadSettings(fs *pflag.FlagSet) (*viper.Viper, error) {
	v := viper.New()
	v.SetEnvPrefix("GOVGRID")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if err := v.BindPFlags(fs); err != nil {
		return nil, err
	}
	if path := v.GetString("config"); path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("--config %s: %w", path, err)
		}
		known := map[string]bool{}
		fs.VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		for _, k := range v.AllKeys() {
			if !known[k] {
				return nil, fmt.Errorf("--config %s: unknown setting %q", path, k)
			}
		}
	}
	return v, nil
}

// agentConfig is the node's configuration from the agent's settings (agentFlags, see
// loadSettings), and whether it leaves the grid for good on SIGTERM (--leave-on-terminate).
func agentConfig(fs *pflag.FlagSet) (node.Config, bool, error) {
	v, err := loadSettings(fs)
	if err != nil {
		return node.Config{}, false, err
	}
	return nodeConfig(v)
}

func nodeConfig(v *viper.Viper) (node.Config, bool, error) {
	cfg := node.DefaultConfig()
	level, err := parseLevel(v.GetString("log-level"))
	if err != nil {
		return cfg, false, err
	}
	cfg.Name = v.GetString("node")
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	t, err := tier.Parse(v.GetString("tier"))
	if err != nil {
		return cfg, false, fmt.Errorf("--tier: %w", err)
	}
	cfg.Site, cfg.Tier, cfg.Parent = v.GetString("site"), t, v.GetString("parent")
	cfg.DataDir = v.GetString("data-dir")
	cfg.EncryptionKeyFile = v.GetString("encryption-key-file")
	cfg.HTTPAddr, cfg.GRPCAddr = v.GetString("http-addr"), v.GetString("grpc-addr")
	cfg.RaftAddr, cfg.GossipAddr = v.GetString("raft-addr"), v.GetString("gossip-addr")
	cfg.AdvertiseAddr = v.GetString("advertise-addr")
	if client := v.GetString("client-addr"); client != "" {
		if net.ParseIP(client) == nil {
			return cfg, false, fmt.Errorf("--client-addr: %q is not an IP address (the HTTP API binds it, with --http-addr's port)", client)
		}
		_, port, err := net.SplitHostPort(cfg.HTTPAddr)
		if err != nil {
			return cfg, false, fmt.Errorf("--http-addr: %w", err)
		}
		cfg.HTTPAddr = net.JoinHostPort(client, port)
	}
	cfg.Join = splitList(v.GetStringSlice("join"))
	cfg.BootstrapExpect = v.GetInt("bootstrap-expect")
	cfg.GridName = v.GetString("grid")
	cfg.GossipProfile = v.GetString("gossip-profile")
	cfg.Version = version
	cfg.Pprof = v.GetBool("pprof")
	cfg.HTTPTLSCert, cfg.HTTPTLSKey = v.GetString("http-tls-cert"), v.GetString("http-tls-key")
	if cfg.ReapAfter, err = durationSetting(v, "reap-after"); err != nil {
		return cfg, false, err
	}
	if cfg.ReconnectInterval, err = durationSetting(v, "reconnect-interval"); err != nil {
		return cfg, false, err
	}
	if cfg.DeadNodeReclaim, err = durationSetting(v, "dead-node-reclaim"); err != nil {
		return cfg, false, err
	}
	if key := v.GetString("gossip-key"); key != "" {
		if cfg.GossipKey, err = base64.StdEncoding.DecodeString(key); err != nil {
			return cfg, false, errors.New("--gossip-key: not base64")
		}
	}
	cfg.HTTPHosts = splitList(v.GetStringSlice("http-hosts"))
	cfg.TLSDir, cfg.JoinToken, cfg.InsecurePeers = v.GetString("tls-dir"), v.GetString("join-token"), v.GetBool("insecure-peers")
	if cfg.CertLifetime, err = durationSetting(v, "cert-lifetime"); err != nil {
		return cfg, false, err
	}
	if cfg.JoinToken != "" && !v.IsSet("grid") {
		// The token names its grid: a new node need not be told twice.
		if grid, err := node.ParseJoinToken(cfg.JoinToken); err == nil {
			cfg.GridName = grid
		}
	}
	if err := requireGossipKey(cfg); err != nil {
		return cfg, false, err
	}
	return cfg, v.GetBool("leave-on-terminate"), cfg.Validate()
}

// requireGossipKey refuses a node whose gossip would go in the clear: it needs --gossip-key, a
// keyring file in its data dir (kept from an earlier run), or a join token (which brings the
// keys), unless it starts a new grid (it then makes the key) or runs --insecure-peers.
func requireGossipKey(cfg node.Config) error {
	if cfg.InsecurePeers || len(cfg.GossipKey) > 0 || cfg.JoinToken != "" || node.StartsAGrid(cfg) {
		return nil
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, node.GossipKeyringFile)); err == nil {
		return nil
	}
	return errors.New("gossip must be encrypted: give --gossip-key (base64 of 32 random bytes: openssl rand -base64 32, the same on every node), " +
		"or --join-token; --insecure-peers runs without, for a laboratory only")
}

// splitList accepts "a,b" in one value (environment variables, config strings) as well as lists.
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func durationSetting(v *viper.Viper, key string) (time.Duration, error) {
	d, err := time.ParseDuration(v.GetString(key))
	if err != nil {
		return 0, fmt.Errorf("--%s: %w", key, err)
	}
	return d, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level: %q is not debug, info, warn or error", s)
	}
	return l, nil
}
