package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govgrid/govgrid/testgrid"
)

// demoPorts is how many consecutive ports `govgrid demo` uses (4 per node, 11 nodes) and the 4
// after them, which its "add a community" command uses.
const demoPorts = 48

// freePortRange returns a base port such that the n ports from it were free for TCP and UDP
// on 127.0.0.1 a moment ago and were never handed out by freeAddr; it reserves them so that
// freeAddr does not hand them out later.
func freePortRange(t *testing.T, n int) int {
	t.Helper()
	// Below the kernel's ephemeral range (32768 and up on Linux): between the check and the
	// demo's start, another test's outgoing connection or port-0 listener can take any port of
	// that range, and a demo node then fails to bind (seen: "node cd-2 exited while starting").
	for range 10 {
		base := 20000 + rand.IntN(32768-20000-n)
		if tryPortRange(base, n) {
			return base
		}
	}
	t.Fatalf("no range of %d free ports found in 10 tries", n)
	return 0
}

// tryPortRange binds all n TCP and UDP ports from base at once, then releases them; on success
// it marks them used.
func tryPortRange(base, n int) bool {
	portMu.Lock()
	defer portMu.Unlock()
	var closers []func() error
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for p := base; p < base+n; p++ {
		if usedPorts[p] {
			return false
		}
		addr := "127.0.0.1:" + strconv.Itoa(p)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		closers = append(closers, l.Close)
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		closers = append(closers, u.Close)
	}
	for p := base; p < base+n; p++ {
		usedPorts[p] = true
	}
	return true
}

// demoProc is one `govgrid demo` process, in a process group of its own (its agents inherit
// the group), with its output in a log file that is printed if the test fails.
type demoProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once cmd has exited; then state is set
	state   *os.ProcessState
}

// startDemo runs `govgrid demo --dir dir --base-port base`. A t.Cleanup kills the whole process
// group if it still runs when the test ends.
func startDemo(t *testing.T, dir string, base int, run int) *demoProc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), fmt.Sprintf("demo-%d.log", run))
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(binary(t), "demo", "--dir", dir, "--base-port", strconv.Itoa(base))
	cmd.Env = agentEnv(nil)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting govgrid demo: %v", err)
	}
	d := &demoProc{t: t, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		d.state = cmd.ProcessState
		close(d.done)
	}()
	t.Cleanup(func() {
		if !d.exited() {
			// The group id is the demo's pid (Setpgid); the agents are in the group too.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-d.done:
			case <-time.After(10 * time.Second):
				t.Errorf("govgrid demo still running 10s after SIGKILL to its process group")
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("----- output of govgrid demo run %d -----\n%s----- end -----", run, b)
			// A node that exited while starting says why in its own log.
			logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
			for _, l := range logs {
				if b, err := os.ReadFile(l); err == nil && bytes.Contains(b, []byte(`"level":"ERROR"`)) {
					t.Logf("----- %s (tail) -----\n%s----- end -----", filepath.Base(l), tail(b, 4<<10))
				}
			}
		}
	})
	return d
}

func (d *demoProc) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// gridFile is DIR/grid.json, the demo's contract with its users, read as they read it (the
// demo's own type is in package main, and a test of the file must not follow a change of it).
type gridFile struct {
	Grid  string `json:"grid"`
	Nodes []struct {
		Node   string `json:"node"`
		Site   string `json:"site"`
		Tier   string `json:"tier"`
		Parent string `json:"parent"`
		HTTP   string `json:"http"`
		GRPC   string `json:"grpc"`
		Raft   string `json:"raft"`
		Gossip string `json:"gossip"`
		PID    int    `json:"pid"`
	} `json:"nodes"`
}

// waitGridJSON polls for DIR/grid.json until it exists and parses, failing the test if the
// demo exits or timeout passes first.
func waitGridJSON(t *testing.T, d *demoProc, dir string, timeout time.Duration) (gridFile, time.Duration) {
	t.Helper()
	path := filepath.Join(dir, "grid.json")
	var g gridFile
	took, err := testgrid.Poll(timeout, func() error {
		if d.exited() {
			t.Fatalf("govgrid demo exited (%v) before writing grid.json", d.state)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			return err
		}
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("grid.json: %v in %s", err, b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("no grid.json in %s after %s", dir, timeout)
	}
	return g, took
}

// pidAlive reports whether pid is a running process (not gone, not a zombie).
func pidAlive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// stopDemoProc sends SIGTERM to the demo process (not its group) and checks that it exits 0
// within 30 s and that every agent process of grid.json is gone.
func stopDemoProc(t *testing.T, d *demoProc, g gridFile) {
	t.Helper()
	start := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to govgrid demo: %v", err)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("govgrid demo still running 30s after SIGTERM")
	}
	t.Logf("govgrid demo exited %s after SIGTERM: %v", time.Since(start).Round(time.Millisecond), d.state)
	if code := d.state.ExitCode(); code != 0 {
		t.Errorf("govgrid demo exited with status %d after SIGTERM, want 0", code)
	}
	var alive []string
	for _, n := range g.Nodes {
		if pidAlive(n.PID) {
			alive = append(alive, fmt.Sprintf("%s (pid %d)", n.Node, n.PID))
		}
	}
	if len(alive) > 0 {
		t.Errorf("agent processes still running after govgrid demo exited: %v", alive)
	}
}

// TestDemoStartsStopsAndResumes runs `govgrid demo`, checks the grid it describes in grid.json
// (11 processes in 7 sites over three tiers, all healthy), writes a case to a community node,
// stops the demo with SIGTERM (every agent must be gone), and runs it again on the same
// directory: the case must still be there.
func TestDemoStartsStopsAndResumes(t *testing.T) {
	binary(t)
	testStart := time.Now()
	dir := t.TempDir()
	base := freePortRange(t, demoPorts)
	t.Logf("demo in %s on ports %d-%d", dir, base, base+demoPorts-1)

	d := startDemo(t, dir, base, 1)
	g, took := waitGridJSON(t, d, dir, 120*time.Second)
	t.Logf("grid.json written %s after start", took.Round(time.Millisecond))

	// The layout grid.json describes.
	if len(g.Nodes) != 11 {
		t.Errorf("grid.json lists %d nodes, want 11", len(g.Nodes))
	}
	perSite := map[string]int{}
	tierOf := map[string]string{}
	for _, n := range g.Nodes {
		perSite[n.Site]++
		if prev, ok := tierOf[n.Site]; ok && prev != n.Tier {
			t.Errorf("site %s has nodes of tier %s and %s", n.Site, prev, n.Tier)
		}
		tierOf[n.Site] = n.Tier
		if n.Site == "cd" && (n.Tier != "district" || n.Parent != "") {
			t.Errorf("node %s of site cd: tier %q parent %q, want district and no parent", n.Node, n.Tier, n.Parent)
		}
		if n.HTTP == "" || n.GRPC == "" || n.Gossip == "" || n.PID <= 0 {
			t.Errorf("node %s: incomplete entry %+v", n.Node, n)
		}
	}
	if perSite["cd"] != 3 {
		t.Errorf("site cd has %d nodes, want 3", perSite["cd"])
	}
	var townships, communities int
	threeNodeTownship := false
	for site, tier := range tierOf {
		switch tier {
		case "township":
			townships++
			threeNodeTownship = threeNodeTownship || perSite[site] == 3
		case "community":
			communities++
		}
	}
	if townships < 2 || !threeNodeTownship || communities < 4 {
		t.Errorf("grid.json has %d townships (one of 3 nodes: %v) and %d communities, want at least 2 (one of 3 nodes) and 4: %v",
			townships, threeNodeTownship, communities, perSite)
	}
	community := -1
	for i, n := range g.Nodes {
		if !pidAlive(n.PID) {
			t.Errorf("node %s: pid %d is not running", n.Node, n.PID)
		}
		if status, body, err := httpGet("http://" + n.HTTP + "/v1/health"); err != nil || status != http.StatusOK {
			t.Errorf("node %s: GET /v1/health: %d %s %v", n.Node, status, strings.TrimSpace(string(body)), err)
		}
		if n.Tier == "community" && community < 0 {
			community = i
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if community < 0 {
		t.Fatal("grid.json lists no community node")
	}

	cnode := g.Nodes[community]
	status, c, err := submitCase(context.Background(), "http://"+cnode.HTTP, "e2e demo case")
	if err != nil {
		t.Fatalf("POST /v1/cases to %s: status %d: %v", cnode.Node, status, err)
	}
	t.Logf("case %s written on %s", c.Number, cnode.Node)
	checkGridJSONNamesTheGrid(t, g)
	checkDemoAccounts(t, dir, &g)
	checkRetryAfterTheCaseLeft(t, "http://"+cnode.HTTP, cnode.Parent)
	checkDemoCanBeJoined(t, d.logPath, "http://"+g.Nodes[0].HTTP)
	stopDemoProc(t, d, g)
	httpTransport.CloseIdleConnections()

	// The second run resumes from the same directory.
	if err := os.Remove(filepath.Join(dir, "grid.json")); err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	d2 := startDemo(t, dir, base, 2)
	g2, took := waitGridJSON(t, d2, dir, 120*time.Second)
	t.Logf("second run: grid.json written %s after start", took.Round(time.Millisecond))
	url := ""
	for _, n := range g2.Nodes {
		if n.Node == cnode.Node {
			url = "http://" + n.HTTP
		}
	}
	if url == "" {
		t.Fatalf("the second run's grid.json has no node %s", cnode.Node)
	}
	var last string
	took = waitUntil(t, 10*time.Second, "case "+c.Number+" to be readable on "+cnode.Node+" after the restart", func() bool {
		status, got, err := getCase(url, c.Number)
		if err != nil {
			last = err.Error()
			return false
		}
		if got.Number != c.Number || got.Title != "e2e demo case" {
			t.Fatalf("GET /v1/cases/%s after the restart: %d, number %q title %q", c.Number, status, got.Number, got.Title)
		}
		return true
	})
	t.Logf("case %s readable on %s %s after grid.json (%s after the second start; before: %q)", c.Number, cnode.Node,
		took.Round(time.Millisecond), time.Since(restart).Round(time.Millisecond), last)
	stopDemoProc(t, d2, g2)
	httpTransport.CloseIdleConnections()
	t.Logf("whole test %s", time.Since(testStart).Round(time.Millisecond))
}

// checkDemoAccounts waits for DIR/accounts.json (the pinned contract: [{"user","password","site",
// "roles"}]), written after grid.json, and signs in with an account of a community at its node.
func checkDemoAccounts(t *testing.T, dir string, g *gridFile) {
	t.Helper()
	var accounts []struct {
		User     string   `json:"user"`
		Password string   `json:"password"`
		Site     string   `json:"site"`
		Roles    []string `json:"roles"`
	}
	waitUntil(t, 60*time.Second, "DIR/accounts.json", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "accounts.json"))
		return err == nil && json.Unmarshal(b, &accounts) == nil
	})
	sites := map[string]bool{}
	for _, n := range g.Nodes {
		sites[n.Site] = true
	}
	if len(accounts) != 1+7*len(sites) || accounts[0].User != "admin" {
		t.Fatalf("accounts.json has %d accounts (first %+v), want the admin and 7 per site for %d sites", len(accounts), accounts[0], len(sites))
	}
	for _, a := range accounts {
		if a.Site == "" || len(a.Roles) == 0 || len(a.Password) < 10 {
			t.Fatalf("account %+v", a)
		}
		if !strings.HasSuffix(a.User, ".clerk") || a.Site == g.Nodes[0].Site {
			continue
		}
		for _, n := range g.Nodes {
			if n.Site != a.Site {
				continue
			}
			// Wait until the account has reached the community (a sign-in before would count as
			// a failure): the district's administrator lists the accounts in force there.
			admin := demoLogin(t, g.Nodes[0].HTTP, accounts[0].User, accounts[0].Password)
			waitUntil(t, 30*time.Second, a.User+"'s account to reach "+n.Node, func() bool {
				req, _ := http.NewRequest("GET", "http://"+n.HTTP+"/v1/accounts", nil)
				req.Header.Set("Authorization", "Bearer "+admin)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"user":"`+a.User+`"`)
			})
			if demoLogin(t, n.HTTP, a.User, a.Password) == "" {
				t.Fatalf("%s could not sign in at %s", a.User, n.Node)
			}
			return
		}
	}
	t.Fatal("accounts.json has no clerk of a site other than the district")
}

// demoLogin signs user in at addr and returns the token.
func demoLogin(t *testing.T, addr, user, password string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"user": user, "password": password})
	resp, err := http.Post("http://"+addr+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct{ Token string }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ans) != nil {
		t.Fatalf("%s's sign-in at %s: %s", user, addr, resp.Status)
	}
	return ans.Token
}

// tail is the last n bytes of b at most.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
