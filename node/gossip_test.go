package node

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
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

// TestGossipKeyringFile: the keyring file is a JSON array of base64 keys, the primary first,
// written 0600 and read back the same; a missing file is os.ErrNotExist, a bad one an error
// naming the file and what is wrong.
func TestGossipKeyringFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadGossipKeyring(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no file: %v, want os.ErrNotExist", err)
	}
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16)
	if err := WriteGossipKeyring(dir, [][]byte{k1, k2}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, GossipKeyringFile)
	b, _ := os.ReadFile(path)
	want := `["` + base64.StdEncoding.EncodeToString(k1) + `","` + base64.StdEncoding.EncodeToString(k2) + `"]`
	if strings.TrimSpace(string(b)) != want {
		t.Errorf("file is %s, want %s", b, want)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	keys, err := ReadGossipKeyring(dir)
	if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], k1) || !bytes.Equal(keys[1], k2) {
		t.Fatalf("read back %x, %v", keys, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	for _, bad := range [][][]byte{nil, {[]byte("short")}, {k1, k1}} {
		if err := WriteGossipKeyring(dir, bad); err == nil {
			t.Errorf("wrote a keyring of %d keys %x", len(bad), bad)
		}
	}
	for content, why := range map[string]string{
		`{"primary":"x"}`: "JSON array",
		`["not base64!"]`: "not base64",
		`["AAAA"]`:        "16, 24 or 32 bytes",
		`[]`:              "at least one key",
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := ReadGossipKeyring(dir)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), why) {
			t.Errorf("%s read as %v, want an error naming the file and %q", content, err, why)
		}
	}
}

// TestGossipLogExplainsRefusedGossip: memberlist's lines for gossip dropped by the receiving
// node (its exact v0.7 wording) become one warning naming the cause and the sender, once a
// minute per sender; other lines keep their level.
func TestGossipLogExplainsRefusedGossip(t *testing.T) {
	var out bytes.Buffer
	ml := &memberlistLog{l: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, tc := range []struct{ line, want string }{
		{`[ERR] memberlist: discarding stream with unacceptable label "othergrid": from=10.0.0.7:41234`, `level=WARN msg="refused gossip from a node of another grid (its --grid is \"othergrid\")`},
		{`[ERR] memberlist: discarding packet with unacceptable label "": from=10.0.0.8:7946`, `from=10.0.0.8:7946 cause=label`},
		{`[ERR] memberlist: failed to receive: no installed keys could decrypt the message from=10.0.0.9:5000`, `level=WARN msg="refused gossip that none of this node's gossip keys decrypts`},
		{`[ERR] memberlist: Decrypt packet failed: no installed keys could decrypt the message from=10.0.0.10:7946`, `from=10.0.0.10:7946 cause=key`},
		{`[ERR] memberlist: failed to receive: encryption is configured but remote state is not encrypted from=10.0.0.11:1`, `node without a gossip key`},
		{`[ERR] memberlist: failed to receive: remote state is encrypted and encryption is not configured from=10.0.0.12:1`, `this node has no gossip key`},
		{`[ERR] memberlist: failed to receive: EOF from=10.0.0.13:1`, `level=DEBUG`},
		{`[WARN] memberlist: Refuting a suspect message (from: n2)`, `level=WARN msg="Refuting a suspect message`},
	} {
		out.Reset()
		ml.Write([]byte(tc.line + "\n"))
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("%s\nlogged as %s\nwant %s", tc.line, out.String(), tc.want)
		}
	}
	out.Reset()
	ml.Write([]byte(`[ERR] memberlist: failed to receive: no installed keys could decrypt the message from=10.0.0.9:5000`))
	if !strings.Contains(out.String(), "level=DEBUG") {
		t.Errorf("the same sender and cause again within a minute: %s, want debug", out.String())
	}
}
