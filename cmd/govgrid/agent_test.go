package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func agentConfigOf(t *testing.T, args ...string) (string, []string, error) {
	t.Helper()
	fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	agentFlags(fs)
	if err := fs.Parse(append([]string{"--node", "n1", "--site", "cd", "--tier", "district", "--data-dir", t.TempDir()}, args...)); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := agentConfig(fs)
	return cfg.HTTPAddr, cfg.HTTPHosts, err
}

// TestAgentClientAndHostSettings: --client-addr moves the HTTP API to its host, keeping
// --http-addr's port; --http-hosts lists the names the API answers to.
func TestAgentClientAndHostSettings(t *testing.T) {
	addr, hosts, err := agentConfigOf(t, "--http-addr", "10.0.0.11:8080", "--client-addr", "127.0.0.1", "--http-hosts", "gov.cd.example,10.0.0.11")
	if err != nil || addr != "127.0.0.1:8080" || strings.Join(hosts, " ") != "gov.cd.example 10.0.0.11" {
		t.Fatalf("addr %q hosts %v err %v", addr, hosts, err)
	}
	if _, _, err := agentConfigOf(t, "--client-addr", "office.lan"); err == nil || !strings.Contains(err.Error(), "--client-addr") {
		t.Fatalf("a client address that is not an IP: %v", err)
	}
}
