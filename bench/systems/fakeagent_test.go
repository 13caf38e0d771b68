package systems

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/govgrid/govgrid/api/govgridpb"
)

// runFakeAgent mimics the pinned command line and client surface of `govgrid agent` closely
// enough to exercise StartGovgrid before the real binary exists: it checks its flags, serves
// GET /v1/health and Cases.SubmitCase, and exits on SIGTERM.
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

type fakeCases struct {
	govgridpb.UnimplementedCasesServer
	site string
	n    atomic.Int64
}

func (f *fakeCases) SubmitCase(ctx context.Context, req *govgridpb.SubmitCaseRequest) (*govgridpb.Case, error) {
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
