package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSnapshotSaveInspectRestore backs up a one-node district with the CLI, checks the file
// offline, loses the node with its disk (kill -9, data dir removed), and restores the backup into
// a fresh node of the same site: every case is back, and a damaged file is refused by inspect.
func TestSnapshotSaveInspectRestore(t *testing.T) {
	a := startAgent(t, agentSpec{Name: "cd-1", Site: "cd", Tier: "district"})
	a.waitHealthy(30 * time.Second)
	token := signInStaff(t, a)
	env := staffEnv(token) // an administrator's token: the staff account has every role
	var numbers []string
	for i := range 3 {
		_, c, err := submitCase(context.Background(), a.baseURL(), token, "备份 "+string(rune('A'+i)))
		if err != nil {
			t.Fatal(err)
		}
		numbers = append(numbers, c.Number)
	}
	file := filepath.Join(t.TempDir(), "cd.backup")
	// A backup holds every applicant's identity: once the site has an account, the node's own
	// host no longer takes it without an administrator's token.
	if r := runCLI(t, nil, "snapshot", "save", "--addr", a.addrs.HTTP, filepath.Join(t.TempDir(), "refused.backup")); r.code == 0 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("snapshot save without a token, the site having accounts: want a non-zero exit with a 401: %s", r)
	}
	saved := mustCLI(t, env, "snapshot", "save", "--addr", a.addrs.HTTP, file)
	if !strings.Contains(saved.stdout, "site cd (district)") {
		t.Fatalf("save said: %s", saved)
	}
	inspected := mustCLI(t, nil, "snapshot", "inspect", file)
	if !strings.Contains(inspected.stdout, "checksum verified") || !strings.Contains(inspected.stdout, "cases held") {
		t.Fatalf("inspect said: %s", inspected)
	}
	if !strings.Contains(inspected.stdout, "cases held") || !strings.Contains(inspected.stdout, "  3\n") {
		t.Fatalf("inspect does not count 3 cases held: %s", inspected)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x10
	damaged := filepath.Join(t.TempDir(), "damaged.backup")
	if err := os.WriteFile(damaged, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, nil, "snapshot", "inspect", damaged); r.code == 0 || !strings.Contains(r.stderr, "damaged") {
		t.Fatalf("inspect of a damaged backup: %s", r)
	}

	// The machine and its disk are lost; a fresh node of the site takes the backup.
	a.kill()
	if err := os.RemoveAll(a.dataDir); err != nil {
		t.Fatal(err)
	}
	a.start()
	a.waitHealthy(30 * time.Second)
	// The fresh node has no account yet (and a key of its own, which did not sign the token):
	// until its first account, its own host administers it without a token. The backup brings
	// back the site's key and accounts, and with them the staff's token.
	mustCLI(t, nil, "snapshot", "restore", "--addr", a.addrs.HTTP, file)
	waitUntil(t, 30*time.Second, "the restored cases to be readable", func() bool {
		for _, n := range numbers {
			if status, _, err := getCase(a.baseURL(), token, n); err != nil || status != 200 {
				return false
			}
		}
		return true
	})
	// A second restore over the cases now held is refused without --force.
	if r := runCLI(t, env, "snapshot", "restore", "--addr", a.addrs.HTTP, file); r.code == 0 || !strings.Contains(r.stderr, "fresh site") {
		t.Fatalf("a restore over a site with cases: %s", r)
	}
}
