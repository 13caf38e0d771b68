package node_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

// secretIDNumber is the applicant's identity-card number in the encryption tests' case.
const secretIDNumber = "110101199003074512"

func writeEncryptionKey(t *testing.T) string {
	t.Helper()
	_, file, err := replication.NewEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "encryption.key")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// filesHolding lists the files under dir that hold needle.
func filesHolding(t *testing.T, dir, needle string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(needle)) {
			rel, _ := filepath.Rel(dir, path)
			found = append(found, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestEncryptedNodeKeepsNoIDNumberInTheClear runs a whole node with --encryption-key-file, takes
// a case whose applicant has an ID number, snapshots, stops, and reads every file under the
// data directory (WAL segments, badger's tables and value log, snapshots, the node's own files):
// none holds the number. The same run without a key finds it (so the search works). The
// encrypted node restarts with its key and reads the case back; with another key, or none, it
// refuses to start and names --encryption-key-file.
func TestEncryptedNodeKeepsNoIDNumberInTheClear(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		name := "clear"
		if encrypted {
			name = "encrypted"
		}
		t.Run(name, func(t *testing.T) {
			keyFile := ""
			if encrypted {
				keyFile = writeEncryptionKey(t)
			}
			spec := testgrid.Spec{
				Sites:     []testgrid.Site{{Code: "cd", Tier: tier.District, Nodes: 1}},
				Configure: func(c *node.Config) { c.EncryptionKeyFile = keyFile },
			}
			g := testgrid.New(t, spec)
			n := g.WaitLeader("cd")
			sub := testgrid.Submission(1)
			sub.Applicant.IDNumber = secretIDNumber
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := n.State().SubmitCase(ctx, sub)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.State().Raft().Snapshot(); err != nil {
				t.Fatal(err)
			}
			dir, nodeName := n.DataPath(), n.Name()
			g.Kill(nodeName)
			snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "snapshots", "*", "state.bin"))
			if len(snaps) == 0 {
				t.Fatal("no snapshot was written")
			}
			found := filesHolding(t, dir, secretIDNumber)
			if !encrypted {
				if len(found) == 0 {
					t.Fatal("without a key the ID number is in no file: the search does not work")
				}
				return
			}
			if len(found) > 0 {
				t.Fatalf("the ID number is in the clear in %v", found)
			}

			// Another key, and no key: refused, naming the flag, and nothing written.
			site := testgrid.Site{Code: "cd", Tier: tier.District, Nodes: 1}
			for _, other := range []string{writeEncryptionKey(t), ""} {
				cfg := g.Config(site, nodeName)
				cfg.DataDir, cfg.EncryptionKeyFile = dir, other
				bad, err := node.New(cfg)
				if err == nil {
					bad.Close()
					t.Fatalf("the node started with key file %q", other)
				}
				if !errors.Is(err, replication.ErrEncryptionKey) || !strings.Contains(err.Error(), "--encryption-key-file") {
					t.Fatalf("key file %q: %v; want a refusal that names --encryption-key-file", other, err)
				}
			}

			n = g.Restart(nodeName)
			g.Eventually(20*time.Second, func() error {
				got, err := n.State().GetCase(c.Number)
				if err != nil {
					return err
				}
				if got.Applicant.IDNumber != secretIDNumber {
					return errors.New("the case came back without its applicant")
				}
				return nil
			})
		})
	}
}

// TestBadEncryptionKeyFileIsRefused: a key file that is not 32 bytes in base64 stops the node
// at start, with the flag's name.
func TestBadEncryptionKeyFileIsRefused(t *testing.T) {
	g := testgrid.New(t, testgrid.Spec{})
	bad := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(bad, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{bad, filepath.Join(t.TempDir(), "missing.key")} {
		cfg := g.Config(testgrid.Site{Code: "cd", Tier: tier.District, Nodes: 1}, "cd-1")
		cfg.EncryptionKeyFile = path
		n, err := node.New(cfg)
		if err == nil {
			n.Close()
			t.Fatalf("started with key file %s", path)
		}
		if !strings.Contains(err.Error(), "--encryption-key-file") {
			t.Fatalf("%s: %v; want the flag's name", path, err)
		}
	}
}
