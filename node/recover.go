package node

import (
	"context"
	"log/slog"
	"runtime/debug"

	"github.com/govgrid/govgrid/api"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A panic in a gRPC handler must not stop the node (grpc-go lets it take the process down): the
// interceptors below turn it into an Internal answer naming a request id, and log the panic with
// its stack under that id.

func recoverUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = panicked(logger, info.FullMethod, p)
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = panicked(logger, info.FullMethod, p)
			}
		}()
		return handler(srv, ss)
	}
}

func panicked(logger *slog.Logger, method string, p any) error {
	id := api.NewRequestID()
	logger.Error("a gRPC handler panicked", "request_id", id, "method", method, "panic", p, "stack", string(debug.Stack()))
	return status.Errorf(codes.Internal, "internal error: request id %s (the node's log has the details)", id)
}
