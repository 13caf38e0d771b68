package pki_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/pki"
)

func TestGridSecretTravelsWithTheCAAndTheNodeFiles(t *testing.T) {
	ca, err := pki.NewCA("g", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(ca.Secret) != pki.GridSecretSize {
		t.Fatalf("NewCA made a secret of %d bytes, want %d", len(ca.Secret), pki.GridSecretSize)
	}
	caDir := t.TempDir()
	if err := pki.WriteCA(caDir, ca); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(caDir, pki.GridSecretFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", pki.GridSecretFile, st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"); len(lines) != 1 {
		t.Errorf("%s is %d lines, want one", pki.GridSecretFile, len(lines))
	}
	loaded, err := pki.LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(loaded.Secret, ca.Secret) || loaded.Key == nil {
		t.Fatalf("LoadCA: secret %x key %v, want %x and a key", loaded.Secret, loaded.Key != nil, ca.Secret)
	}

	files, err := pki.IssueFiles(loaded, pki.Identity{Grid: "g", Site: "s", Node: "n1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(files.Secret, ca.Secret) {
		t.Fatal("IssueFiles did not hand the node the grid secret")
	}
	nodeDir := t.TempDir()
	if err := pki.WriteNode(nodeDir, files); err != nil {
		t.Fatal(err)
	}
	got, err := pki.LoadGridSecret(nodeDir)
	if err != nil || !bytes.Equal(got, ca.Secret) {
		t.Fatalf("node's grid secret: %x, %v; want %x", got, err, ca.Secret)
	}
	if st, err := os.Stat(filepath.Join(nodeDir, pki.GridSecretFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("node's %s: %v, %v; want mode 0600", pki.GridSecretFile, st, err)
	}
	if _, err := os.Stat(filepath.Join(nodeDir, pki.CAKeyFile)); err == nil {
		t.Error("WriteNode wrote the CA's key")
	}
}

func TestGridSecretFile(t *testing.T) {
	dir := t.TempDir()
	if s, err := pki.LoadGridSecret(dir); s != nil || err != nil {
		t.Fatalf("no file: %x, %v; want nil, nil", s, err)
	}
	for _, tc := range []struct {
		name, content string
		ok            bool
	}{
		{"one line", string(pki.EncodeGridSecret(bytes.Repeat([]byte{7}, 32))), true},
		{"no newline, spaces", "  " + strings.TrimSpace(string(pki.EncodeGridSecret(bytes.Repeat([]byte{7}, 32)))) + " ", true},
		{"not base64", "not*base64\n", false},
		{"too short", string(pki.EncodeGridSecret(bytes.Repeat([]byte{7}, 16))), false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, pki.GridSecretFile), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := pki.LoadGridSecret(dir)
			if (err == nil) != tc.ok {
				t.Fatalf("LoadGridSecret: %x, %v; want ok=%v", s, err, tc.ok)
			}
			if tc.ok && !bytes.Equal(s, bytes.Repeat([]byte{7}, 32)) {
				t.Fatalf("LoadGridSecret: %x", s)
			}
		})
	}
	if err := pki.WriteGridSecret(dir, []byte("short")); err == nil {
		t.Error("WriteGridSecret took a 5-byte secret")
	}
}

func TestCAWithoutSecretWritesNone(t *testing.T) {
	ca, err := pki.NewCA("g", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ca.Secret = nil // a CA made before the grid secret existed
	dir := t.TempDir()
	if err := pki.WriteCA(dir, ca); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, pki.GridSecretFile)); err == nil {
		t.Error("WriteCA wrote a grid secret the CA does not have")
	}
	loaded, err := pki.LoadCA(dir)
	if err != nil || loaded.Secret != nil {
		t.Fatalf("LoadCA: secret %x, %v; want none", loaded.Secret, err)
	}
}
