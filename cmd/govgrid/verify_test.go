package main

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/casework"
)

// TestVerifyChecksACertificateOffline: govgrid verify with --keys needs no node: a sound
// certificate verifies, an altered one does not, one sealed with a revoked key says so.
func TestVerifyChecksACertificateOffline(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	seal := casework.SealWith(casework.Certificate{Version: 1, Grid: "chengdong", Number: testNumber, ItemCode: "MZ-002",
		Applicant: "李*", Decision: casework.DecisionApproved, DecidedAt: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC),
		DecidedOn: "2026-12-03", Site: "cd"}, key)
	dir := t.TempDir()
	write := func(name string, v any) string {
		b, _ := json.Marshal(v)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keys := api.SealKeys{Grid: "chengdong", Keys: []api.SealKey{{Site: "cd", PublicKey: seal.PublicKey}}}
	keysFile := write("keys.json", keys)
	certFile := write("cert.json", api.CertificateAnswer{Seal: seal, Verified: "valid"})
	// No --addr reachable: the check is offline.
	out, err := runGovgrid("verify", certFile, "--keys", keysFile, "--addr", "127.0.0.1:1")
	if err != nil || !strings.Contains(out, "seal valid") || !strings.Contains(out, testNumber) {
		t.Fatalf("a sound certificate: %v %q", err, out)
	}
	altered := *seal
	altered.Certificate.Decision = casework.DecisionDenied
	if _, err := runGovgrid("verify", write("altered.json", altered), "--keys", keysFile); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("an altered certificate: %v", err)
	}
	keys.Keys[0].Revoked, keys.Keys[0].RevokedReason = true, "密钥泄露"
	if _, err := runGovgrid("verify", certFile, "--keys", write("revoked.json", keys)); err == nil || !strings.Contains(err.Error(), "吊销") {
		t.Fatalf("a revoked key: %v", err)
	}
	if _, err := runGovgrid("verify", keysFile, "--keys", keysFile); err == nil || !strings.Contains(err.Error(), "not a certificate") {
		t.Fatalf("not a certificate: %v", err)
	}
}
