package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
)

// badConfigDeadline is how long an agent with a bad configuration may take to give up.
const badConfigDeadline = 10 * time.Second

// failedRun is what a run of the agent that should have failed did.
type failedRun struct {
	exitCode int
	stdout   string
	stderr   string
	served   string // an address that accepted a connection while the agent ran, if any
	took     time.Duration
}

// runFailingAgent runs `govgrid agent args...` to completion (killing it after
// badConfigDeadline), probing the probe addresses for listeners while it runs.
func runFailingAgent(t *testing.T, args, env, probe []string) failedRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary(t), append([]string{"agent"}, args...)...)
	cmd.Env = agentEnv(env)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var r failedRun
	timeout := time.After(badConfigDeadline)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			r.took = time.Since(start)
			r.exitCode = cmd.ProcessState.ExitCode()
			r.stdout, r.stderr = stdout.String(), stderr.String()
			return r
		case <-timeout:
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("govgrid agent %s still running after %s; stderr:\n%s", strings.Join(args, " "), badConfigDeadline, stderr.String())
		case <-tick.C:
			for _, a := range probe {
				if r.served == "" && listening(a) {
					r.served = a
				}
			}
		}
	}
}

// TestAgentRejectsBadConfig: each bad configuration makes the agent exit non-zero, quickly,
// with one line on stderr that names the problem, without ever listening.
func TestAgentRejectsBadConfig(t *testing.T) {
	binary(t)
	t.Parallel()
	tests := []struct {
		name string
		// args returns the flags after the node's name, site and addresses; dir is a fresh
		// temporary directory.
		args func(t *testing.T, dir string) []string
		// occupyHTTP makes the test listen on the agent's HTTP address first.
		occupyHTTP bool
		want       []string // every one must appear in the error line
	}{
		{
			name: "unknown tier",
			args: func(t *testing.T, dir string) []string {
				return []string{"--site", "cd", "--tier", "province", "--data-dir", filepath.Join(dir, "data")}
			},
			want: []string{"--tier", "province"},
		},
		{
			name: "a TLS certificate without its key",
			args: func(t *testing.T, dir string) []string {
				return []string{"--site", "cd", "--tier", "district", "--data-dir", filepath.Join(dir, "data"), "--http-tls-cert", filepath.Join(dir, "cert.pem")}
			},
			want: []string{"--http-tls-cert", "--http-tls-key"},
		},
		{
			name: "advertise address with a port",
			args: func(t *testing.T, dir string) []string {
				return []string{"--site", "cd", "--tier", "district", "--data-dir", filepath.Join(dir, "data"), "--advertise-addr", "10.0.0.5:9090"}
			},
			want: []string{"--advertise-addr", "without a port"},
		},
		{
			name: "advertise address nobody can dial",
			args: func(t *testing.T, dir string) []string {
				return []string{"--site", "cd", "--tier", "district", "--data-dir", filepath.Join(dir, "data"), "--advertise-addr", "0.0.0.0"}
			},
			want: []string{"--advertise-addr", "0.0.0.0"},
		},
		{
			name: "community without parent",
			args: func(t *testing.T, dir string) []string {
				return []string{"--site", "cd-dgdj-xyl", "--tier", "community", "--data-dir", filepath.Join(dir, "data")}
			},
			want: []string{"--parent"},
		},
		{
			// Tests run as root in CI, where chmod cannot make a directory unwritable: use a
			// path whose parent is a regular file.
			name: "unwritable data dir",
			args: func(t *testing.T, dir string) []string {
				file := filepath.Join(dir, "a-file")
				if err := os.WriteFile(file, []byte("not a directory\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return []string{"--site", "cd", "--tier", "district", "--data-dir", filepath.Join(file, "data")}
			},
			want: []string{"--data-dir"},
		},
		{
			name: "no certificate",
			args: func(t *testing.T, dir string) []string {
				return []string{"--site", "cd-dgdj", "--tier", "township", "--parent", "cd", "--data-dir", filepath.Join(dir, "data")}
			},
			want: []string{"no grid certificate", "--join-token", "govgrid tls cert create"},
		},
		{
			name: "damaged join token",
			args: func(t *testing.T, dir string) []string {
				return []string{"--site", "cd", "--tier", "district", "--data-dir", filepath.Join(dir, "data"), "--join-token", "ggjt1.bm9wZQ"}
			},
			want: []string{"--join-token", "damaged"},
		},
		{
			name: "gossip in the clear",
			args: func(t *testing.T, dir string) []string {
				return []string{"--site", "cd-dgdj", "--tier", "township", "--parent", "cd", "--data-dir", filepath.Join(dir, "data"), "--gossip-key", ""}
			},
			want: []string{"gossip must be encrypted", "--gossip-key"},
		},
		{
			name: "http port in use",
			args: func(t *testing.T, dir string) []string {
				return []string{"--site", "cd", "--tier", "district", "--data-dir", filepath.Join(dir, "data"), "--insecure-peers"}
			},
			occupyHTTP: true,
			want:       []string{"--http-addr", "address already in use"},
		},
		{
			name: "malformed grpc address",
			args: func(t *testing.T, dir string) []string {
				return []string{"--site", "cd", "--tier", "district", "--data-dir", filepath.Join(dir, "data"), "--grpc-addr", "nonsense"}
			},
			want: []string{"--grpc-addr", "nonsense"},
		},
		{
			name: "bootstrap-expect 0",
			args: func(t *testing.T, dir string) []string {
				return []string{"--site", "cd", "--tier", "district", "--data-dir", filepath.Join(dir, "data"), "--bootstrap-expect", "0"}
			},
			want: []string{"--bootstrap-expect"},
		},
		{
			name: "unknown key in config file",
			args: func(t *testing.T, dir string) []string {
				cfg := filepath.Join(dir, "govgrid.yaml")
				yaml := fmt.Sprintf("site: cd\ntier: district\ndata-dir: %q\nhttp-adress: \"127.0.0.1:1\"\n", filepath.Join(dir, "data"))
				if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
					t.Fatal(err)
				}
				return []string{"--config", cfg}
			},
			want: []string{"--config", "http-adress"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addrs := newAgentAddrs(t)
			probe := []string{addrs.HTTP, addrs.GRPC, addrs.Raft, addrs.Gossip}
			if tc.occupyHTTP {
				l, err := net.Listen("tcp", addrs.HTTP)
				if err != nil {
					t.Fatalf("occupying %s: %v", addrs.HTTP, err)
				}
				defer l.Close()
				probe = probe[1:]
			}
			args := append([]string{"--node", "bad-1"}, addrs.flags()...)
			args = append(args, tc.args(t, t.TempDir())...)
			r := runFailingAgent(t, args, nil, probe)
			t.Logf("exit %d after %s; stderr: %q", r.exitCode, r.took.Round(time.Millisecond), r.stderr)
			if r.exitCode == 0 {
				t.Errorf("exit status 0, want non-zero")
			}
			if r.served != "" {
				t.Errorf("the agent listened on %s although its configuration is bad", r.served)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "govgrid: ") {
				t.Fatalf("stderr has %d lines, want exactly one line starting with \"govgrid: \":\n%s", len(lines), r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("error line %q does not mention %q", lines[0], w)
				}
			}
		})
	}
}

// TestAgentConfigSources gives the site and the HTTP address through flags, the YAML config file
// and GOVGRID_* variables, alone and together: flags beat the environment, which beats the
// file. The node must serve where the winning source says, with the winning site.
func TestAgentConfigSources(t *testing.T) {
	binary(t)
	t.Parallel()
	// Each source gives site and http-addr; a case lists the sources it uses. The expected
	// values are those of the strongest source in the case.
	type source int
	const (
		file source = iota
		env
		flag
	)
	tests := []struct {
		name    string
		sources []source
	}{
		{"flag only", []source{flag}},
		{"file only", []source{file}},
		{"env only", []source{env}},
		{"env beats file", []source{file, env}},
		{"flag beats env and file", []source{file, env, flag}},
	}
	siteOf := map[source]string{file: "cd-file", env: "cd-env", flag: "cd-flag"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			addrs := newAgentAddrs(t)
			name := "cfg-" + strings.ReplaceAll(tc.name, " ", "-")
			// The grpc, raft and gossip addresses always come from flags; the data dir always
			// comes from the file (checking the data-dir key too).
			dataDir := filepath.Join(dir, "data-from-file")
			args := []string{"--node", name, "--tier", "township", "--parent", "cd",
				"--grpc-addr", addrs.GRPC, "--raft-addr", addrs.Raft, "--gossip-addr", addrs.Gossip}
			var envs []string
			yaml := fmt.Sprintf("data-dir: %q\n", dataDir)
			httpOf := map[source]string{}
			for _, s := range tc.sources {
				httpOf[s] = freeAddr(t)
			}
			strongest := slices.Max(tc.sources)
			httpOf[strongest] = addrs.HTTP
			for _, s := range tc.sources {
				switch s {
				case file:
					yaml += fmt.Sprintf("site: %q\nhttp-addr: %q\n", siteOf[s], httpOf[s])
				case env:
					envs = append(envs, "GOVGRID_SITE="+siteOf[s], "GOVGRID_HTTP_ADDR="+httpOf[s])
				case flag:
					args = append(args, "--site", siteOf[s], "--http-addr", httpOf[s])
				}
			}
			cfgPath := filepath.Join(dir, "govgrid.yaml")
			if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--config", cfgPath)
			provision(t, dataDir, siteOf[strongest], name, false)

			a := newAgentProc(t, name, addrs, args, envs)
			a.start()
			a.waitHealthy(20 * time.Second)

			wantSite := siteOf[strongest]
			var m api.MembersView
			if err := getJSON(a.baseURL()+"/v1/members", &m); err != nil {
				t.Fatal(err)
			}
			if m.Node != name {
				t.Errorf("GET /v1/members names node %q, want %q", m.Node, name)
			}
			found := false
			for _, mem := range m.Members {
				if mem.Name != name {
					continue
				}
				found = true
				if mem.Meta.Site != wantSite || mem.Meta.HTTP != addrs.HTTP || mem.Meta.GRPC != addrs.GRPC || mem.Meta.Raft != addrs.Raft || mem.Addr != addrs.Gossip {
					t.Errorf("member %s: site %q http %q grpc %q raft %q gossip %q; want %q %q %q %q %q", name,
						mem.Meta.Site, mem.Meta.HTTP, mem.Meta.GRPC, mem.Meta.Raft, mem.Addr,
						wantSite, addrs.HTTP, addrs.GRPC, addrs.Raft, addrs.Gossip)
				}
			}
			if !found {
				t.Errorf("GET /v1/members does not list the node itself: %+v", m)
			}
			var sv api.SitesView
			if err := getJSON(a.baseURL()+"/v1/sites", &sv); err != nil {
				t.Fatal(err)
			}
			if len(sv.Sites) != 1 || sv.Sites[0].Site != wantSite || sv.Sites[0].Leader != name {
				t.Errorf("GET /v1/sites = %+v, want one site %s led by %s", sv, wantSite, name)
			}
			for s, addr := range httpOf {
				if s != strongest && listening(addr) {
					t.Errorf("something listens on %s, the http-addr of a weaker source", addr)
				}
			}
			entries, err := os.ReadDir(dataDir)
			if err != nil || len(entries) == 0 {
				t.Errorf("the data dir from the config file %s is empty or missing (%v)", dataDir, err)
			}
			if st, _ := a.stop(10 * time.Second); st.ExitCode() != 0 {
				t.Errorf("exit status %d after SIGTERM, want 0", st.ExitCode())
			}
		})
	}
}
