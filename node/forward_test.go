package node

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestTimedOutConnectionsAreDialledAfresh: a connection on which a call ran out of time is
// dropped from the cache, so the next call dials again instead of waiting on a connection that a
// silent cut may have left dead at the other end (before, a 3 s cut took 12–14 s to converge:
// gRPC's keepalive had to notice first). Other failures keep the connection.
func TestTimedOutConnectionsAreDialledAfresh(t *testing.T) {
	p := newPeers(nil, nil, timingsFor(""), nil)
	defer p.close()
	const addr = "127.0.0.1:1"
	first, err := p.conn(addr)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := p.conn(addr); again != first {
		t.Fatal("a second call did not share the connection")
	}
	for _, err := range []error{
		status.Error(codes.Unavailable, "no leader"),
		status.Error(codes.NotFound, "no such case"),
		fmt.Errorf("refused: %w", context.Canceled),
	} {
		p.forgetIfTimedOut(first, err)
		if again, _ := p.conn(addr); again != first {
			t.Fatalf("after %v the connection was dropped", err)
		}
	}
	p.forgetIfTimedOut(first, status.Error(codes.DeadlineExceeded, "context deadline exceeded"))
	second, _ := p.conn(addr)
	if second == first {
		t.Fatal("after a deadline the same connection was used again")
	}
	p.forgetIfTimedOut(second, fmt.Errorf("deliver: %w", context.DeadlineExceeded))
	if third, _ := p.conn(addr); third == second {
		t.Fatal("after a wrapped deadline the same connection was used again")
	}
	// Forgetting a connection that is no longer cached leaves the cached one alone.
	current, _ := p.conn(addr)
	p.forget(first)
	if again, _ := p.conn(addr); again != current {
		t.Fatal("forgetting an old connection dropped the current one")
	}
}
