package systems

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/pki"
)

// runFakeAgent mimics the pinned command line and client surface of `govgrid agent` closely
// enough to exercise StartGovgrid before the real binary exists: it checks its flags and, as the
// real agent does without --insecure-peers, its trust (a gossip key and a certificate of the
// grid's CA naming this node in DATA_DIR/tls, with the CA's key at a district), serves
// GET /v1/health, the sign-in endpoints (fakeAuth) and Cases.SubmitCase (for a bearer with the
// clerk role only), and exits on SIGTERM.
func runFakeAgent(args []string) int {
	if len(args) == 0 || args[0] != "agent" {
		fmt.Fprintln(os.Stderr, "fake agent: want subcommand agent, got", args)
		return 2
	}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	node := fs.String("node", "", "")
	site := fs.String("site", "", "")
	tier := fs.String("tier", "", "")
	dataDir := fs.String("data-dir", "", "")
	httpAddr := fs.String("http-addr", "", "")
	grpcAddr := fs.String("grpc-addr", "", "")
	raftAddr := fs.String("raft-addr", "", "")
	gossipAddr := fs.String("gossip-addr", "", "")
	expect := fs.Int("bootstrap-expect", 0, "")
	join := fs.String("join", "", "")
	grid := fs.String("grid", "govgrid", "")
	gossipKey := fs.String("gossip-key", "", "")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	for name, v := range map[string]string{"node": *node, "site": *site, "tier": *tier, "data-dir": *dataDir,
		"http-addr": *httpAddr, "grpc-addr": *grpcAddr, "raft-addr": *raftAddr, "gossip-addr": *gossipAddr} {
		if v == "" {
			fmt.Fprintln(os.Stderr, "fake agent: missing --"+name)
			return 2
		}
	}
	if *expect < 1 || (*expect > 1 && *node != "n1" && *join == "") {
		fmt.Fprintln(os.Stderr, "fake agent: bad --bootstrap-expect/--join", *expect, *join)
		return 2
	}
	if err := fakeCheckTrust(*grid, *site, *node, *tier, *dataDir, *gossipKey); err != nil {
		fmt.Fprintln(os.Stderr, "fake agent:", err)
		return 1
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	hl, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, `{"status":"ok"}`) })
	(&fakeAuth{district: *tier == "district", accounts: map[string]fakeAccount{}}).route(mux)
	go http.Serve(hl, mux)

	gl, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := grpc.NewServer()
	govgridpb.RegisterCasesServer(srv, &fakeCases{site: *site})
	go srv.Serve(gl)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	srv.GracefulStop()
	return 0
}

// fakeCheckTrust refuses to start, as the real agent does, without a gossip key or a certificate
// of the grid's CA for this very node in dataDir/tls; a district node must hold the CA's key.
func fakeCheckTrust(grid, site, name, tier, dataDir, gossipKey string) error {
	key, err := base64.StdEncoding.DecodeString(gossipKey)
	if err != nil || !slices.Contains([]int{16, 24, 32}, len(key)) {
		return fmt.Errorf("--gossip-key %q: want base64 of 16, 24 or 32 bytes", gossipKey)
	}
	dir := filepath.Join(dataDir, node.TLSDirName)
	ca, err := pki.LoadCA(dir)
	if err != nil {
		return err
	}
	if ca.Grid() != grid {
		return fmt.Errorf("the CA is grid %q's, --grid is %q", ca.Grid(), grid)
	}
	if tier == "district" && ca.Key == nil {
		return fmt.Errorf("a district node without %s", pki.CAKeyFile)
	}
	_, id, err := pki.LoadNode(dir, ca)
	if err != nil {
		return err
	}
	if want := (pki.Identity{Grid: grid, Site: site, Node: name}); id != want {
		return fmt.Errorf("the certificate names %v, want %v", id, want)
	}
	return nil
}

type fakeCases struct {
	govgridpb.UnimplementedCasesServer
	site string
	n    atomic.Int64
}

func (f *fakeCases) SubmitCase(ctx context.Context, req *govgridpb.SubmitCaseRequest) (*govgridpb.Case, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	auth := md.Get("authorization")
	tok, ok := "", len(auth) == 1
	if ok {
		tok, ok = strings.CutPrefix(auth[0], "Bearer ")
	}
	if !ok || !fakeTokenHas(tok, "clerk") {
		return nil, status.Errorf(codes.Unauthenticated, "want metadata authorization: Bearer <a clerk's token>, got %q", auth)
	}
	if size := proto.Size(req); size < 1000 || size > 1050 {
		return nil, status.Errorf(codes.InvalidArgument, "request is %d bytes, want about 1 KiB", size)
	}
	if req.GetApplicant().GetName() == "" || len(req.GetApplicant().GetIdNumber()) != 18 || len(req.GetMaterials()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "incomplete request")
	}
	if !strings.HasPrefix(req.GetItemCode(), "GA-") {
		return nil, status.Error(codes.InvalidArgument, "bad item code")
	}
	if ctx.Err() != nil {
		return nil, errors.New("cancelled")
	}
	return &govgridpb.Case{Number: fmt.Sprintf("%s-%d", f.site, f.n.Add(1)), Kind: req.GetKind()}, nil
}

// fakeAuth is the agent's sign-in surface, as StartGovgrid uses it: bootstrap (from loopback,
// at a district, once), sign-in, accounts (by the administrator) and whoami. Its tokens are
// "fake-token:<user>:<roles, comma-separated>", which every fake node takes (the nodes of a
// site share no state here, as the real ones share their accounts and key).
type fakeAuth struct {
	district bool
	mu       sync.Mutex
	accounts map[string]fakeAccount // guarded by mu
}

type fakeAccount struct {
	password string
	roles    []string
}

func (f *fakeAuth) route(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/auth/bootstrap", func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		f.mu.Lock()
		defer f.mu.Unlock()
		switch {
		case !net.ParseIP(host).IsLoopback():
			http.Error(w, "from the node's own host only", http.StatusForbidden)
		case !f.district:
			http.Error(w, "not a district", http.StatusForbidden)
		case len(f.accounts) > 0:
			http.Error(w, "bootstrap is done once", http.StatusConflict)
		default:
			f.accounts["admin"] = fakeAccount{password: "fake-admin-password", roles: []string{"admin"}}
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintln(w, `{"user":"admin","password":"fake-admin-password"}`)
		}
	})
	mux.HandleFunc("POST /v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ User, Password string }
		if json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		a, ok := f.accounts[req.User]
		f.mu.Unlock()
		if !ok || a.password != req.Password {
			http.Error(w, "wrong user or password", http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"token": "fake-token:" + req.User + ":" + strings.Join(a.roles, ",")})
	})
	mux.HandleFunc("POST /v1/accounts", func(w http.ResponseWriter, r *http.Request) {
		if !fakeTokenHas(bearerOf(r), "admin") {
			http.Error(w, "an administrator's token, please", http.StatusForbidden)
			return
		}
		var req struct {
			User, Password, Name, Site string
			Roles                      []string
		}
		if json.NewDecoder(r.Body).Decode(&req) != nil || req.User == "" || len(req.Password) < 10 || req.Site == "" || len(req.Roles) == 0 {
			http.Error(w, "bad account", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.accounts[req.User] = fakeAccount{password: req.Password, roles: req.Roles}
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintln(w, `{}`)
	})
	mux.HandleFunc("GET /v1/auth/whoami", func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(bearerOf(r), "fake-token:") {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, `{}`)
	})
}

func bearerOf(r *http.Request) string {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return tok
}

// fakeTokenHas says whether tok is a fake agent's token with role.
func fakeTokenHas(tok, role string) bool {
	parts := strings.Split(tok, ":")
	return len(parts) == 3 && parts[0] == "fake-token" && slices.Contains(strings.Split(parts[2], ","), role)
}
