package systems

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/pki"
)

// govgridGrid is the grid the benchmark's agents form (--grid, and their CA's grid).
const govgridGrid = "govgrid"

// GovgridConfig configures StartGovgrid.
type GovgridConfig struct {
	Common
	// Binary is the govgrid binary; "" means ./bin/govgrid.
	Binary string
	// Nodes is the size of the site (1 or 3 in the benchmarks); values below 1 mean 1.
	Nodes int
	// Site and Tier are passed to every agent; "" means "cd" and "district". The site must be
	// a district: case calls need a signed-in account, and a site's first account is made
	// (bootstrapped) only at a district, so the benchmark's one-site grid is a district.
	Site, Tier string
	// Pprof serves Go's profiler on every node's HTTP address (Target.HTTPAddrs).
	Pprof bool
	// Started, if set, is called once every node answers /v1/health, before the benchmark's
	// account is made and signed in: signing in hashes passwords (argon2id, 19 MiB each, four
	// of them), memory a node's runtime keeps a while after, so an idle node's memory is read
	// here. An error ends the start.
	Started func(t *Target) error
}

// StartGovgrid starts one govgrid site of cfg.Nodes agents on 127.0.0.1: all with
// --bootstrap-expect N, the second and later ones joining the first one's gossip address. The
// agents run secure, as deployed: a grid CA is made in the cluster's directory (ca/), every node's
// DATA_DIR/tls gets a certificate of it naming the node (and, at a district, the CA's key, as an
// issuing district node holds), and all share one --gossip-key. It waits
// until every node's /v1/health answers 200, makes the benchmark's account and signs it in
// (staffSignIn: every node takes its token), and waits until a SubmitCase succeeds through every
// node (so the site has a leader and followers forward to it); it returns a target whose Op
// submits a case of about ValueSize encoded bytes, as that account. Workers are spread
// round-robin over the nodes, one shared gRPC connection per node, every call carrying the
// token.
func StartGovgrid(ctx context.Context, cfg GovgridConfig) (_ *Target, err error) {
	n := max(cfg.Nodes, 1)
	if cfg.Binary == "" {
		cfg.Binary = "./bin/govgrid"
	}
	if cfg.Site == "" {
		cfg.Site = "cd"
	}
	if cfg.Tier == "" {
		cfg.Tier = "district"
	}
	t, bin, ports, err := newCluster("govgrid", cfg.Binary, n, 4, cfg.Common)
	if err != nil {
		return nil, err
	}
	defer t.closeOnError(&err)

	type node struct{ name, http, grpc, raft, gossip string }
	nodes := make([]node, n)
	for i := range nodes {
		addr := func(k int) string { return fmt.Sprintf("127.0.0.1:%d", ports[4*i+k]) }
		nodes[i] = node{fmt.Sprintf("n%d", i+1), addr(0), addr(1), addr(2), addr(3)}
	}

	trust, err := newGridTrust(t.Dir, govgridGrid)
	if err != nil {
		return nil, err
	}

	var procs []*process
	t.onClose(func() error { return stopAll(procs) })
	for i, nd := range nodes {
		dataDir := filepath.Join(t.Dir, nd.name)
		if err := trust.provision(dataDir, cfg.Site, nd.name, cfg.Tier == "district"); err != nil {
			return nil, err
		}
		args := []string{
			"agent",
			"--grid", govgridGrid,
			"--gossip-key", trust.gossipKey,
			"--node", nd.name,
			"--site", cfg.Site,
			"--tier", cfg.Tier,
			"--data-dir", dataDir,
			"--http-addr", nd.http,
			"--grpc-addr", nd.grpc,
			"--raft-addr", nd.raft,
			"--gossip-addr", nd.gossip,
			"--bootstrap-expect", fmt.Sprint(n),
		}
		if i > 0 {
			args = append(args, "--join", nodes[0].gossip)
		}
		if cfg.Pprof {
			args = append(args, "--pprof")
		}
		p, err := startProcess(procSpec{
			name: "govgrid " + nd.name, path: bin, args: args, dir: t.Dir,
			logPath: filepath.Join(t.Dir, nd.name+".log"),
		})
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		t.PIDs = append(t.PIDs, p.pid())
		t.DataDirs = append(t.DataDirs, dataDir)
		t.HTTPAddrs = append(t.HTTPAddrs, nd.http)
	}

	timeout := cfg.startTimeout()
	hc := &http.Client{}
	for _, nd := range nodes {
		url := "http://" + nd.http + "/v1/health"
		err := waitUntil(ctx, timeout, "govgrid "+nd.name+" /v1/health", procs, func(ctx context.Context) error {
			return httpOK(ctx, hc, url)
		})
		if err != nil {
			return nil, err
		}
	}

	if cfg.Started != nil {
		if err := cfg.Started(t); err != nil {
			return nil, err
		}
	}
	token, err := staffSignIn(ctx, timeout, procs, cfg.Site, t.HTTPAddrs)
	if err != nil {
		return nil, err
	}

	clients := make([]govgridpb.CasesClient, n)
	for i, nd := range nodes {
		conn, err := grpc.NewClient(nd.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(bearer(token)))
		if err != nil {
			return nil, fmt.Errorf("govgrid %s: %w", nd.name, err)
		}
		t.onClose(conn.Close)
		clients[i] = govgridpb.NewCasesClient(conn)
	}
	gen := newCaseGen(ValueSize)
	for i, nd := range nodes {
		err := waitUntil(ctx, timeout, "a SubmitCase through govgrid "+nd.name, procs, func(ctx context.Context) error {
			_, err := clients[i].SubmitCase(ctx, gen.request(-1, i))
			return err
		})
		if err != nil {
			return nil, err
		}
	}

	t.Op = func(ctx context.Context, worker, seq int) error {
		_, err := clients[worker%n].SubmitCase(ctx, gen.request(worker, seq))
		return err
	}
	return t, nil
}

// gridTrust is what a secure grid's agents are started with: the grid's CA (kept, with its key,
// in the cluster's directory, as an operator keeps it) and the gossip key.
type gridTrust struct {
	grid      string
	ca        *pki.CA
	gossipKey string // base64, for --gossip-key
}

// certLifetime is the life of the CA and of the node certificates a benchmark issues: far beyond
// any run, so that no renewal happens during a measurement.
const certLifetime = 30 * 24 * time.Hour

// newGridTrust makes a CA for grid in dir/ca (ca.pem, ca.key) and a random 32-byte gossip key.
func newGridTrust(dir, grid string) (*gridTrust, error) {
	ca, err := pki.NewCA(grid, certLifetime)
	if err != nil {
		return nil, fmt.Errorf("grid CA: %w", err)
	}
	if err := pki.WriteCA(filepath.Join(dir, "ca"), ca); err != nil {
		return nil, fmt.Errorf("grid CA: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("gossip key: %w", err)
	}
	return &gridTrust{grid: grid, ca: ca, gossipKey: base64.StdEncoding.EncodeToString(key)}, nil
}

// provision writes node name of site's certificate into dataDir's TLS directory, as
// `govgrid tls cert create` does; a district node also gets the CA's key.
func (g *gridTrust) provision(dataDir, site, name string, district bool) error {
	if err := pki.Provision(filepath.Join(dataDir, node.TLSDirName), g.ca, pki.Identity{Grid: g.grid, Site: site, Node: name}, certLifetime, district); err != nil {
		return fmt.Errorf("certificate for %s: %w", name, err)
	}
	return nil
}

// caseGen builds SubmitCase requests whose protobuf encoding is about size bytes.
type caseGen struct {
	description string
}

// titleFormat gives every title the same length, so one padded description fits all requests.
const titleFormat = "基准测试办件 %05d-%010d"

func newCaseGen(size int) *caseGen {
	g := &caseGen{}
	base := proto.Size(g.request(0, 0))
	// The description field costs a tag byte, a 2-byte length (for 128..16383 bytes) and its text.
	g.description = padText(max(size-base-3, 0))
	return g
}

// request builds the request for (worker, seq); worker -1 marks readiness probes.
func (g *caseGen) request(worker, seq int) *govgridpb.SubmitCaseRequest {
	if worker < 0 {
		worker = 99999
	}
	return &govgridpb.SubmitCaseRequest{
		Kind:        "application",
		ItemCode:    "GA-001",
		Title:       fmt.Sprintf(titleFormat, worker%100000, seq),
		Description: g.description,
		Applicant: &govgridpb.Applicant{
			Name:     "张三",
			IdNumber: "110101199003071234",
			Phone:    "13800000000",
		},
		Materials: []*govgridpb.Material{{Name: "身份证复印件"}},
	}
}

// padText returns valid UTF-8 text of exactly n bytes that reads like a case description.
func padText(n int) string {
	const phrase = "申请人因户籍迁移需办理相关证明，材料齐全，请予受理。"
	var b strings.Builder
	for b.Len()+len(phrase) <= n {
		b.WriteString(phrase)
	}
	b.WriteString(strings.Repeat(".", n-b.Len()))
	return b.String()
}
