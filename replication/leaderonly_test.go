package replication

import (
	"context"
	"errors"
	"testing"
)

// TestForwardedLeaderOnlyCommandIsRefused: a command marked LeaderOnly is refused when it arrives
// forwarded (ApplyForwarded), and still applies when the leader proposes it itself.
func TestForwardedLeaderOnlyCommandIsRefused(t *testing.T) {
	s := openKVStoreWith(t, t.TempDir(), func(c *Config) { c.Commands.LeaderOnly(kvSet) })
	defer s.Close()
	cmd := NewCommand(kvSet, []byte("k=v"))
	if _, err := s.ApplyForwarded(context.Background(), cmd); !errors.Is(err, ErrForwardRefused) {
		t.Fatalf("forwarded leader-only command: %v, want ErrForwardRefused", err)
	}
	if _, ok := kvState(t, s)["k/k"]; ok {
		t.Fatal("the refused command was applied")
	}
	if a, err := s.Propose(context.Background(), cmd); err != nil || a.(*kvAnswer).Refused() {
		t.Fatalf("the leader's own proposal: %v %v", a, err)
	}
	if string(kvState(t, s)["k/k"]) != "v" {
		t.Fatalf("state %v after the leader's proposal", kvState(t, s))
	}
}
