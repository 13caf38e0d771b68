package netfault

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// countingServer serves the health service and counts the calls that reach it.
func countingServer(t *testing.T) (addr string, received *atomic.Int64) {
	t.Helper()
	received = new(atomic.Int64)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		received.Add(1)
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), received
}

func TestPolicyFaults(t *testing.T) {
	const check = "/grpc.health.v1.Health/Check"
	for _, tc := range []struct {
		name         string
		policy       Policy
		wantErr      bool
		wantReceived int64
	}{
		{"no policy", Policy{}, false, 1},
		{"request dropped", Policy{DropRequest: 1}, true, 0},
		{"reply dropped", Policy{DropReply: 1}, true, 1},
		{"duplicated", Policy{Duplicate: 1}, false, 2},
		{"late duplicate", Policy{LateDuplicate: 1, MaxDelay: 10 * time.Millisecond}, false, 2},
		{"other method only", Policy{Methods: []string{"/other/Method"}, DropRequest: 1}, false, 1},
		{"this method", Policy{Methods: []string{check}, DropRequest: 1}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, received := countingServer(t)
			f := new(Faults)
			f.Set(tc.policy)
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithUnaryInterceptor(f.UnaryClientInterceptor()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
			if (err != nil) != tc.wantErr {
				t.Fatalf("call error %v, want error: %v", err, tc.wantErr)
			}
			if err != nil && status.Code(err) != codes.Unavailable {
				t.Fatalf("injected fault is %v, want Unavailable (what a lost message looks like)", status.Code(err))
			}
			deadline := time.Now().Add(5 * time.Second)
			for received.Load() < tc.wantReceived && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if got := received.Load(); got != tc.wantReceived {
				t.Fatalf("server received %d calls, want %d", got, tc.wantReceived)
			}
			if tc.wantReceived != 1 || tc.wantErr {
				if f.Injected.Load() == 0 {
					t.Fatal("fault not counted")
				}
			}
		})
	}
}

func TestNilFaultsPassThrough(t *testing.T) {
	addr, received := countingServer(t)
	var f *Faults
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(f.UnaryClientInterceptor()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if received.Load() != 1 {
		t.Fatalf("received %d calls", received.Load())
	}
}
