package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/govgrid/govgrid/api"
)

// keyringGrid is three fake nodes (a, b, c) that a's /v1/members lists alive, with a dead d.
func keyringGrid(t *testing.T) (nodes []*fakeNode, addrs []string) {
	for range 3 {
		f, addr := newFakeNode(t, map[string]fakeReply{})
		nodes, addrs = append(nodes, f), append(addrs, addr)
	}
	members := api.MembersView{Node: "a", Members: []api.Member{
		{Name: "a", Status: "alive", HTTP: addrs[0]}, {Name: "b", Status: "alive", HTTP: addrs[1]},
		{Name: "c", Status: "alive", HTTP: addrs[2]}, {Name: "d", Status: "dead", HTTP: "10.9.9.9:8080"},
	}}
	b, _ := json.Marshal(members)
	nodes[0].replies["GET /v1/members"] = fakeReply{http.StatusOK, string(b)}
	return nodes, addrs
}

func keyringJSON(node string, keys ...[]byte) string {
	v := api.KeyringView{Node: node, Encrypted: len(keys) > 0}
	for i, k := range keys {
		v.Keys = append(v.Keys, api.KeyView{Fingerprint: api.KeyFingerprint(k), Primary: i == 0})
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestKeyringInstallOnEveryAliveNode: install goes to every alive member the node at --addr
// lists, prints a line per node (ok, error, skipped) and fails when one failed.
func TestKeyringInstallOnEveryAliveNode(t *testing.T) {
	old, next := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	nodes, addrs := keyringGrid(t)
	for i, name := range []string{"a", "b"} {
		nodes[i].replies["POST /v1/keyring/install"] = fakeReply{http.StatusOK, keyringJSON(name, old, next)}
	}
	nodes[2].replies["POST /v1/keyring/install"] = fakeReply{http.StatusForbidden, `{"error":{"code":"forbidden","message":"sign in as an administrator"}}`}
	out, err := runGovgrid("keyring", "install", "--key", base64.StdEncoding.EncodeToString(next), "--addr", addrs[0])
	if err == nil || !strings.Contains(err.Error(), "failed on 1 of 3") {
		t.Fatalf("one node refused: err %v, want a failure naming 1 of 3 (output %q)", err, out)
	}
	for _, want := range []string{"a                ok: 2 keys: ", "b                ok: 2 keys: ", "c                error: ", "sign in as an administrator", "d                skipped: dead"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, base64.StdEncoding.EncodeToString(next)) {
		t.Errorf("the key itself was printed:\n%s", out)
	}
	for i, f := range nodes {
		var posted []map[string]any
		for j, p := range f.paths {
			if p == "POST /v1/keyring/install" {
				posted = append(posted, f.bodies[j])
			}
		}
		if len(posted) != 1 || posted[0]["key"] != base64.StdEncoding.EncodeToString(next) {
			t.Errorf("node %d got installs %v", i, posted)
		}
	}
}

// TestKeyringUseRefusedUntilInstalledEverywhere: use checks first that every alive node has the
// key, and changes nothing when one lacks it; a bad --key is refused before any request.
func TestKeyringUseRefusedUntilInstalledEverywhere(t *testing.T) {
	old, next := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	nodes, addrs := keyringGrid(t)
	for i, name := range []string{"a", "b", "c"} {
		keys := [][]byte{old, next}
		if name == "c" {
			keys = keys[:1]
		}
		nodes[i].replies["GET /v1/keyring"] = fakeReply{http.StatusOK, keyringJSON(name, keys...)}
		nodes[i].replies["POST /v1/keyring/use"] = fakeReply{http.StatusOK, keyringJSON(name, next, old)}
	}
	out, err := runGovgrid("keyring", "use", "--key", base64.StdEncoding.EncodeToString(next), "--addr", addrs[0])
	if err == nil || !strings.Contains(err.Error(), "c: the key is not installed") || !strings.Contains(err.Error(), "nothing changed") {
		t.Fatalf("use with c lacking the key: %v (output %q)", err, out)
	}
	for _, f := range nodes {
		for _, p := range f.paths {
			if strings.HasPrefix(p, "POST") {
				t.Fatalf("a change was sent: %s", p)
			}
		}
	}
	if _, err := runGovgrid("keyring", "use", "--key", "c2hvcnQ=", "--addr", addrs[0]); err == nil || !strings.Contains(err.Error(), "16, 24 or 32 bytes") {
		t.Fatalf("a 5-byte key: %v", err)
	}
	// Once c has it too, use goes everywhere.
	nodes[2].replies["GET /v1/keyring"] = fakeReply{http.StatusOK, keyringJSON("c", old, next)}
	out, err = runGovgrid("keyring", "use", "--key", base64.StdEncoding.EncodeToString(next), "--addr", addrs[0])
	if err != nil || strings.Count(out, " ok: ") != 3 {
		t.Fatalf("use everywhere: %v\n%s", err, out)
	}
	// list shows each node's keys, the primary marked.
	out, err = runGovgrid("keyring", "list", "--addr", addrs[0])
	fp := strings.TrimPrefix(api.KeyFingerprint(old), "sha256:")[:16]
	if err != nil || strings.Count(out, fp+"*") != 3 {
		t.Fatalf("list: %v\n%s", err, out)
	}
}
