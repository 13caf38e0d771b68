package node

import (
	"errors"
	"strings"
	"testing"
)

// TestFailedJoinSaysLabelOrKey: memberlist's own errors for a peer of another grid are a bare
// EOF, and for another key a decryption error; the node says which setting to check.
func TestFailedJoinSaysLabelOrKey(t *testing.T) {
	for _, tc := range []struct {
		err  string
		want string
	}{
		{"1 error occurred:\n\t* Failed to join 127.0.0.1:7946: EOF", `--grid "chengdong"`},
		{"Failed to join 127.0.0.1:7946: read tcp: connection reset by peer", "grid label"},
		{"Failed to join 127.0.0.1:7946: no installed keys could decrypt the message", "--gossip-key"},
		{"Failed to join 127.0.0.1:7946: remote state is encrypted and encryption is not configured", "--gossip-key"},
	} {
		got := explainJoin(errors.New(tc.err), "chengdong", false)
		if !strings.Contains(got.Error(), tc.want) {
			t.Errorf("%q explained as %q, want it to name %s", tc.err, got, tc.want)
		}
	}
	if explainJoin(nil, "x", false) != nil {
		t.Error("no error explained as one")
	}
	if err := explainJoin(errors.New("dial tcp: connection refused"), "x", false); err.Error() != "dial tcp: connection refused" {
		t.Errorf("an unrelated error was dressed up: %v", err)
	}
}
