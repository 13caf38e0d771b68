package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/pki"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/spf13/viper"
)

// exampleConfigs are the example config files, one per tier.
var exampleConfigs = []struct{ file, tier string }{
	{"config/district.yaml", "district"},
	{"config/township.yaml", "township"},
	{"config/community.yaml", "community"},
}

// agentFlagNames returns the flag names `govgrid agent --help` lists, without help.
func agentFlagNames(t *testing.T, bin string) []string {
	t.Helper()
	cmd := exec.Command(bin, "agent", "--help")
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("govgrid agent --help: %v\n%s", err, out)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		if m[1] != "help" {
			names = append(names, m[1])
		}
	}
	if len(names) < 10 {
		t.Fatalf("govgrid agent --help lists only %v:\n%s", names, out)
	}
	return names
}

// TestExampleConfigs: each example config uses only settings the agent has, shows every
// setting (set or commented out), and is accepted by the real binary, which serves the site
// it describes. The addresses, data dir and join list are overridden by flags, which outrank
// the file, so that the node runs alone on 127.0.0.1.
func TestExampleConfigs(t *testing.T) {
	bin := govgridBinary(t)
	flags := agentFlagNames(t, bin)
	for _, ex := range exampleConfigs {
		t.Run(ex.tier, func(t *testing.T) {
			t.Parallel()
			path, err := filepath.Abs(ex.file)
			if err != nil {
				t.Fatal(err)
			}
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			v := viper.New()
			v.SetConfigFile(path)
			v.SetConfigType("yaml")
			if err := v.ReadInConfig(); err != nil {
				t.Fatalf("%s is not valid YAML: %v", ex.file, err)
			}
			for _, k := range v.AllKeys() {
				if !slices.Contains(flags, k) {
					t.Errorf("%s: %q is not a flag of govgrid agent (flags: %v)", ex.file, k, flags)
				}
			}
			for _, f := range flags {
				if f == "config" {
					continue
				}
				if !regexp.MustCompile(`(?m)^(# ?)?` + regexp.QuoteMeta(f) + `:`).Match(text) {
					t.Errorf("%s does not show the setting %q (set it, or show it commented out)", ex.file, f)
				}
			}
			if got := v.GetString("tier"); got != ex.tier {
				t.Fatalf("%s: tier %q, want %q", ex.file, got, ex.tier)
			}
			if t.Failed() {
				return
			}
			runExample(t, bin, path, v.GetString("node"), v.GetString("site"), ex.tier, v.GetString("parent"))
		})
	}
}

// runExample starts `govgrid agent --config path` with local overrides, waits for it to serve
// its site, checks GET /v1/sites, and stops it with SIGTERM.
func runExample(t *testing.T, bin, path, node, site, tier, parent string) {
	t.Helper()
	var stderr lockedBuffer
	// The operator's part: the node's certificate of the grid's CA, and the grid's gossip key.
	dataDir := t.TempDir()
	ca, err := pki.NewCA("chengdong", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.Provision(filepath.Join(dataDir, "tls"), ca, pki.Identity{Grid: "chengdong", Site: site, Node: node}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "agent", "--config", path, "--data-dir", dataDir,
		"--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
		"--raft-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0",
		"--join", "", "--bootstrap-expect", "1", "--gossip-key", "MDEyMzQ1Njc4OWFiY2RlZg==")
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("agent output:\n%s", stderr.String())
		}
	}()

	// The agent logs its resolved addresses (ports chosen by the OS) once it listens.
	var httpAddr string
	deadline := time.Now().Add(20 * time.Second)
	if _, err := testgrid.Poll(time.Until(deadline), func() error {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("govgrid agent --config %s exited: %v", path, err)
		default:
		}
		if httpAddr = startedHTTPAddr(stderr.String()); httpAddr == "" {
			return errors.New("no \"node started\" line")
		}
		return nil
	}); err != nil {
		t.Fatalf("%v within 20s", err)
	}
	base := "http://" + httpAddr
	if _, err := testgrid.Poll(time.Until(deadline), func() error {
		if status, _ := httpGet(base + "/v1/health"); status != http.StatusOK {
			return fmt.Errorf("GET /v1/health: %d", status)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v after 20s", err)
	}
	_, body := httpGet(base + "/v1/sites")
	var tree api.SitesView
	if err := json.Unmarshal(body, &tree); err != nil {
		t.Fatalf("GET /v1/sites: %v: %s", err, body)
	}
	s, ok := tree.Find(site)
	if !ok || string(s.Tier) != tier || s.Parent != parent || !slices.ContainsFunc(s.Nodes, func(n api.SiteNode) bool { return n.Name == node }) {
		t.Fatalf("GET /v1/sites = %s; want site %q (tier %q, parent %q) with node %q", body, site, tier, parent, node)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Fatalf("after SIGTERM: %v", err)
		}
		t.Logf("%s: served site %s (%s) on %s; stopped %s after SIGTERM", filepath.Base(path), site, tier, httpAddr, time.Since(start).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30s after SIGTERM")
	}
}

// startedHTTPAddr finds the HTTP address in the agent's JSON "node started" log line.
func startedHTTPAddr(log string) string {
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct{ Msg, HTTP string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "node started" {
			return line.HTTP
		}
	}
	return ""
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// httpGet returns the status and body of GET url; status 0 if the request failed.
func httpGet(url string) (int, []byte) { return httpGetAs(url, "") }

// httpGetAs is httpGet with token as the bearer ("" sends none).
func httpGetAs(url, token string) (int, []byte) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, []byte(err.Error())
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

// lockedBuffer is a bytes.Buffer safe for the process's writes and the test's reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
