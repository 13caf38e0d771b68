package e2e

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

// TestSIGTERMExitsCleanly: a serving agent that gets SIGTERM exits 0 within 10 s.
func TestSIGTERMExitsCleanly(t *testing.T) {
	binary(t)
	t.Parallel()
	a := startAgent(t, agentSpec{Name: "term-1", Site: "cd", Tier: "district"})
	a.waitHealthy(20 * time.Second)
	token := signInStaff(t, a)
	if status, _, err := submitCase(context.Background(), a.baseURL(), token, "e2e before SIGTERM"); err != nil {
		t.Fatalf("write: status %d: %v", status, err)
	}
	st, took := a.stop(10 * time.Second)
	t.Logf("exited %s after SIGTERM: %v", took.Round(time.Millisecond), st)
	if st.ExitCode() != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", st.ExitCode())
	}
	if log, err := os.ReadFile(a.logPath); err == nil && !strings.Contains(string(log), `"node stopped"`) {
		t.Errorf("the log does not say the node stopped")
	}
}

// TestGRPCHealthAndReflection: the standard gRPC health service reports SERVING once the node
// is ready, and server reflection lists govgrid's services and the health service.
func TestGRPCHealthAndReflection(t *testing.T) {
	binary(t)
	t.Parallel()
	a := startAgent(t, agentSpec{Name: "grpc-1", Site: "cd", Tier: "district"})
	conn, err := grpc.NewClient(a.addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	health := healthpb.NewHealthClient(conn)
	var last string
	took := waitUntil(t, 20*time.Second, "the gRPC health service to report SERVING", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			last = err.Error()
			return false
		}
		last = resp.GetStatus().String()
		return resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
	t.Logf("gRPC health SERVING after %s (before: %s)", took.Round(time.Millisecond), last)
	if status, _, err := httpGet(a.baseURL() + "/v1/health"); err != nil || status != 200 {
		t.Errorf("gRPC health says SERVING but GET /v1/health answers %d %v", status, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatalf("ServerReflectionInfo: %v", err)
	}
	req := &reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"},
	}
	if err := stream.Send(req); err != nil {
		t.Fatalf("reflection send: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection receive: %v", err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	t.Logf("reflection lists %v", names)
	for _, want := range []string{"govgrid.v1.Cases", "govgrid.v1.Cluster", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection does not list %s: %v", want, names)
		}
	}
}
