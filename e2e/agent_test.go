package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/testgrid"
)

// maxLogDump bounds how much of an agent's log a failing test prints (the tail is kept).
const maxLogDump = 64 << 10

var (
	portMu    sync.Mutex
	usedPorts = map[int]bool{} // guarded by portMu: every port freeAddr handed out
)

// freeAddr returns "127.0.0.1:<port>" for a port that was free for both TCP and UDP (gossip
// uses both) a moment ago: it listens on port 0 and closes. A port is never handed out twice by
// one test binary, so agents started by parallel tests do not collide with each other.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		addr := l.Addr().String()
		port := l.Addr().(*net.TCPAddr).Port
		u, uerr := net.ListenPacket("udp", addr)
		l.Close()
		if uerr != nil {
			continue
		}
		u.Close()
		portMu.Lock()
		taken := usedPorts[port]
		usedPorts[port] = true
		portMu.Unlock()
		if !taken {
			return addr
		}
	}
	t.Fatal("no free port found in 100 tries")
	return ""
}

// agentAddrs are the four listen addresses of one agent.
type agentAddrs struct {
	HTTP, GRPC, Raft, Gossip string
}

// newAgentAddrs picks four free addresses on 127.0.0.1.
func newAgentAddrs(t *testing.T) agentAddrs {
	return agentAddrs{HTTP: freeAddr(t), GRPC: freeAddr(t), Raft: freeAddr(t), Gossip: freeAddr(t)}
}

// flags returns the addresses as `govgrid agent` flags.
func (a agentAddrs) flags() []string {
	return []string{"--http-addr", a.HTTP, "--grpc-addr", a.GRPC, "--raft-addr", a.Raft, "--gossip-addr", a.Gossip}
}

// agentEnv is the environment of an agent process: the test's own, minus any GOVGRID_* variable
// (so that the developer's shell cannot change what a test sees), plus extra.
func agentEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOVGRID_") {
			env = append(env, kv)
		}
	}
	// Every agent of the tests encrypts gossip with the e2e grid's key, unless a test says otherwise.
	if e2eGossipKey != "" && !slices.ContainsFunc(extra, func(kv string) bool { return strings.HasPrefix(kv, "GOVGRID_GOSSIP_KEY=") }) {
		env = append(env, "GOVGRID_GOSSIP_KEY="+e2eGossipKey)
	}
	return append(env, extra...)
}

// agentSpec describes a standard agent: a node of one site with its own data dir and ports.
type agentSpec struct {
	Name, Site, Tier, Parent string
	Join                     []string // gossip addresses
	BootstrapExpect          int      // 0 leaves the flag out
	Extra                    []string // more flags
}

// agentProc is one `govgrid agent` process started by a test. Its stdout and stderr go to a log
// file that t.Log prints if the test fails; a t.Cleanup kills the process when the test ends.
// It can be stopped (SIGTERM), killed (SIGKILL) and restarted with the same flags and data dir.
type agentProc struct {
	t       *testing.T
	name    string
	addrs   agentAddrs
	dataDir string
	args    []string // the arguments after the subcommand
	command []string // the subcommand: "agent" unless set
	// bare, if set, starts the agent without a certificate of the tests' CA (it starts a grid,
	// or redeems a join token).
	bare    bool
	env     []string // extra environment, see agentEnv
	logPath string

	cmd     *exec.Cmd
	done    chan struct{} // closed once cmd has exited; then state is set
	state   *os.ProcessState
	waitErr error
}

// startAgent starts a standard agent for spec: its data dir is under t.TempDir() and its four
// addresses are fresh free ports. It does not wait for the agent to be ready.
func startAgent(t *testing.T, spec agentSpec) *agentProc {
	t.Helper()
	addrs := newAgentAddrs(t)
	dataDir := filepath.Join(t.TempDir(), spec.Name)
	args := []string{"--node", spec.Name, "--site", spec.Site, "--tier", spec.Tier, "--data-dir", dataDir}
	args = append(args, addrs.flags()...)
	if spec.Parent != "" {
		args = append(args, "--parent", spec.Parent)
	}
	if len(spec.Join) > 0 {
		args = append(args, "--join", strings.Join(spec.Join, ","))
	}
	if spec.BootstrapExpect != 0 {
		args = append(args, "--bootstrap-expect", strconv.Itoa(spec.BootstrapExpect))
	}
	args = append(args, spec.Extra...)
	a := newAgentProc(t, spec.Name, addrs, args, nil)
	a.dataDir = dataDir
	a.start()
	return a
}

// newAgentProc prepares (but does not start) an agent run with exactly args and the extra
// environment env; addrs are where the test expects it to listen.
func newAgentProc(t *testing.T, name string, addrs agentAddrs, args, env []string) *agentProc {
	t.Helper()
	binary(t)             // skips in -short mode
	logDir := t.TempDir() // created before the cleanup below, so removed after it
	a := &agentProc{t: t, name: name, addrs: addrs, args: args, env: env, logPath: filepath.Join(logDir, name+".log")}
	t.Cleanup(func() {
		a.killIfRunning()
		if t.Failed() {
			a.dumpLog()
		}
	})
	return a
}

// start runs the agent process; the log file is appended to, so a restart keeps the old lines.
func (a *agentProc) start() {
	a.t.Helper()
	if a.cmd != nil && !a.exited() {
		a.t.Fatalf("%s: start while the process is still running", a.name)
	}
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		a.t.Fatal(err)
	}
	defer logf.Close() // the child holds its own descriptor
	if !a.bare {
		provisionFromArgs(a.t, a.args) // the node's certificate, unless its data dir has one
	}
	command := a.command
	if command == nil {
		command = []string{"agent"}
	}
	fmt.Fprintf(logf, "=== %s e2e: govgrid %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(command, " "), strings.Join(a.args, " "))
	cmd := exec.Command(binary(a.t), append(append([]string{}, command...), a.args...)...)
	cmd.Env = agentEnv(a.env)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("%s: starting govgrid: %v", a.name, err)
	}
	done := make(chan struct{})
	a.cmd, a.done, a.state, a.waitErr = cmd, done, nil, nil
	go func() {
		err := cmd.Wait()
		a.waitErr, a.state = err, cmd.ProcessState
		close(done)
	}()
}

// exited reports whether the process has exited.
func (a *agentProc) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// waitExit waits up to timeout for the process to exit and returns its state (nil on timeout).
func (a *agentProc) waitExit(timeout time.Duration) *os.ProcessState {
	select {
	case <-a.done:
		return a.state
	case <-time.After(timeout):
		return nil
	}
}

// stop sends SIGTERM and waits up to timeout for the process to exit. It returns the exit
// state and how long the exit took, and fails the test if the process did not exit in time.
func (a *agentProc) stop(timeout time.Duration) (*os.ProcessState, time.Duration) {
	a.t.Helper()
	start := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil && !a.exited() {
		a.t.Fatalf("%s: SIGTERM: %v", a.name, err)
	}
	st := a.waitExit(timeout)
	if st == nil {
		a.t.Fatalf("%s: still running %s after SIGTERM", a.name, timeout)
	}
	return st, time.Since(start)
}

// kill sends SIGKILL and waits for the process to be gone.
func (a *agentProc) kill() {
	a.t.Helper()
	_ = a.cmd.Process.Kill()
	if a.waitExit(10*time.Second) == nil {
		a.t.Fatalf("%s: still running 10s after SIGKILL", a.name)
	}
	a.logf("killed with SIGKILL")
}

// restart starts the process again with the same flags, environment and data dir.
func (a *agentProc) restart() {
	a.t.Helper()
	a.start()
}

// killIfRunning is the cleanup: SIGKILL if the process still runs, then wait for it.
func (a *agentProc) killIfRunning() {
	if a.cmd == nil || a.exited() {
		return
	}
	_ = a.cmd.Process.Kill()
	a.waitExit(10 * time.Second)
}

// logf appends a line from the test to the agent's log, to put test events among the agent's.
func (a *agentProc) logf(format string, args ...any) {
	f, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "=== %s e2e: %s\n", time.Now().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}

// dumpLog prints (the tail of) the agent's log through t.Log.
func (a *agentProc) dumpLog() {
	b, err := os.ReadFile(a.logPath)
	if err != nil {
		a.t.Logf("%s: no log: %v", a.name, err)
		return
	}
	if len(b) > maxLogDump {
		b = append([]byte("...\n"), b[len(b)-maxLogDump:]...)
	}
	a.t.Logf("----- log of %s (%s) -----\n%s----- end of log of %s -----", a.name, a.logPath, b, a.name)
}

// readLog is what the agent has logged so far ("" if nothing).
func (a *agentProc) readLog() string {
	b, _ := os.ReadFile(a.logPath)
	return string(b)
}

// baseURL is the agent's HTTP API root.
func (a *agentProc) baseURL() string { return "http://" + a.addrs.HTTP }

// waitHealthy polls GET /v1/health until it answers 200, failing the test if the process exits
// or timeout passes first. It returns how long it waited.
func (a *agentProc) waitHealthy(timeout time.Duration) time.Duration {
	a.t.Helper()
	took, err := testgrid.Poll(timeout, func() error {
		if a.exited() {
			a.t.Fatalf("%s exited (%v) while waiting for it to become healthy", a.name, a.waitErr)
		}
		status, body, err := httpGet(a.baseURL() + "/v1/health")
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("%d %s", status, bytes.TrimSpace(body))
		}
		return err
	})
	if err != nil {
		a.t.Fatalf("%s not healthy after %s: last answer: %v", a.name, timeout, err)
	}
	return took
}

// waitAllHealthy waits for every agent to be healthy, all within one timeout.
func waitAllHealthy(t *testing.T, timeout time.Duration, agents ...*agentProc) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, a := range agents {
		a.waitHealthy(max(time.Until(deadline), time.Millisecond))
	}
}

// httpTransport is shared by every request of the package; it keeps enough idle connections
// for the write load (8 writers on 3 nodes) to reuse them.
var httpTransport = &http.Transport{
	Proxy:               nil,
	MaxIdleConnsPerHost: 32,
	IdleConnTimeout:     30 * time.Second,
}

// httpClient bounds each request: a node that hangs must not hang the test.
var httpClient = &http.Client{Transport: httpTransport, Timeout: 5 * time.Second}

// httpGet returns the status and body of GET url, for the endpoints anyone may read.
func httpGet(url string) (int, []byte, error) { return httpGetAs(url, "") }

// httpGetAs returns the status and body of GET url with token as its bearer ("" sends none).
func httpGetAs(url, token string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	setBearer(req, token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// setBearer sets token as req's bearer token, unless it is "".
func setBearer(req *http.Request, token string) {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
}

// getJSON GETs url, which anyone may read, and decodes a 200 answer into v.
func getJSON(url string, v any) error { return getJSONAs(url, "", v) }

// getJSONAs GETs url with token as its bearer and decodes a 200 answer into v.
func getJSONAs(url, token string, v any) error {
	status, body, err := httpGetAs(url, token)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %v in %s", url, err, body)
	}
	return nil
}

// submitBody is a valid application; title makes it recognisable.
func submitBody(title string) []byte {
	b, _ := json.Marshal(map[string]any{
		"kind":        "application",
		"item_code":   "GA-001",
		"title":       title,
		"description": "e2e: 端到端测试办件",
		"applicant":   map[string]string{"name": "张三", "id_number": "630102199001011234", "phone": "13800000000"},
		"materials":   []map[string]string{{"name": "身份证复印件"}},
	})
	return b
}

// submitCase POSTs an application to baseURL as the bearer of token. It returns the HTTP status
// (0 when no answer came), the case when the status is 201, and the error or the body of any
// other answer.
func submitCase(ctx context.Context, baseURL, token, title string) (int, api.Case, error) {
	var c api.Case
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/cases", bytes.NewReader(submitBody(title)))
	if err != nil {
		return 0, c, err
	}
	req.Header.Set("Content-Type", "application/json")
	setBearer(req, token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, c, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, c, err
	}
	if resp.StatusCode != http.StatusCreated {
		return resp.StatusCode, c, fmt.Errorf("POST /v1/cases: %d %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return resp.StatusCode, c, fmt.Errorf("POST /v1/cases: 201 with %v in %s", err, body)
	}
	if c.Number == "" {
		return resp.StatusCode, c, fmt.Errorf("POST /v1/cases: 201 without a number: %s", body)
	}
	return resp.StatusCode, c, nil
}

// getCase GETs one case as the bearer of token; the status is 0 when no answer came.
func getCase(baseURL, token, number string) (int, api.Case, error) {
	var c api.Case
	status, body, err := httpGetAs(baseURL+"/v1/cases/"+number, token)
	if err != nil || status != http.StatusOK {
		if err == nil {
			err = fmt.Errorf("GET /v1/cases/%s: %d %s", number, status, bytes.TrimSpace(body))
		}
		return status, c, err
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return status, c, fmt.Errorf("GET /v1/cases/%s: %v in %s", number, err, body)
	}
	return status, c, nil
}

// listAllCases pages through GET /v1/cases?page_size=500 with the bearer token and returns
// every number in listing order; an error says a page failed or a number came twice.
func listAllCases(baseURL, bearer string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	token := ""
	for page := 0; ; page++ {
		if page > 1000 {
			return out, errors.New("more than 1000 pages: the page token does not advance")
		}
		url := baseURL + "/v1/cases?page_size=500"
		if token != "" {
			url += "&page_token=" + token
		}
		var p api.CasePage
		if err := getJSONAs(url, bearer, &p); err != nil {
			return out, err
		}
		for _, c := range p.Cases {
			if seen[c.Number] {
				return out, fmt.Errorf("case %s listed twice (page %d)", c.Number, page+1)
			}
			seen[c.Number] = true
			out = append(out, c.Number)
		}
		if p.NextPageToken == "" {
			return out, nil
		}
		token = p.NextPageToken
	}
}

// siteLeader asks the agent at baseURL for the leader of site; "" when it names none.
func siteLeader(baseURL, site string) (string, error) {
	var v api.SitesView
	if err := getJSON(baseURL+"/v1/sites", &v); err != nil {
		return "", err
	}
	s, ok := v.Find(site)
	if !ok {
		return "", fmt.Errorf("site %s is not in GET /v1/sites", site)
	}
	return s.Leader, nil
}

// listening reports whether something accepts TCP connections on addr.
func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
