package node

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestAPanickingHandlerAnswersInternalWithARequestID(t *testing.T) {
	var logged strings.Builder
	logger := slog.New(slog.NewTextHandler(&logged, nil))
	_, err := recoverUnary(logger)(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/govgrid.v1.Cases/GetCase"},
		func(context.Context, any) (any, error) { panic("nil map") })
	st := status.Convert(err)
	if st.Code() != codes.Internal || strings.Contains(st.Message(), "nil map") || !strings.Contains(st.Message(), "request id") {
		t.Fatalf("a panic answered %v", err)
	}
	id := strings.Fields(strings.TrimPrefix(st.Message(), "internal error: request id "))[0]
	if !strings.Contains(logged.String(), id) || !strings.Contains(logged.String(), "nil map") {
		t.Fatalf("the log lacks the id %s or the panic: %s", id, logged.String())
	}
	err = recoverStream(logger)(nil, nil, &grpc.StreamServerInfo{FullMethod: "/govgrid.v1.Cluster/Feed"},
		func(any, grpc.ServerStream) error { panic("boom") })
	if status.Code(err) != codes.Internal {
		t.Fatalf("a panicking stream answered %v", err)
	}
}
