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

// waitDemoUp polls the demo's output until it says the grid is up (after grid.json, the catalogue
// and the accounts), failing the test if the demo exits or timeout passes first.
func waitDemoUp(t *testing.T, d *demoProc, timeout time.Duration) time.Duration {
	t.Helper()
	took, err := testgrid.Poll(timeout, func() error {
		b, _ := os.ReadFile(d.logPath)
		if bytes.Contains(b, []byte("demo grid is up")) {
			return nil
		}
		if d.exited() {
			t.Fatalf("govgrid demo exited (%v) before saying the grid is up; its output:\n%s", d.state, tail(b, 4<<10))
		}
		return errors.New("not up yet")
	})
	if err != nil {
		t.Fatalf("govgrid demo does not say the grid is up after %s", timeout)
	}
	return took
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
// (11 processes in 7 sites over three tiers, all healthy), writes a case to a community node as
// the community's clerk of accounts.json, stops the demo with SIGTERM (every agent must be gone),
// and runs it again on the same directory: the case must still be there.
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

	// Every case call needs a signed-in account: the community's clerk, from accounts.json
	// (written once every node has its site's accounts, so the sign-in works at once).
	cnode := g.Nodes[community]
	accounts := readDemoAccounts(t, dir)
	clerk := findDemoAccount(t, accounts, cnode.Site+".clerk")
	token := demoLogin(t, cnode.HTTP, clerk.User, clerk.Password)
	status, c, err := submitCase(context.Background(), "http://"+cnode.HTTP, token, "e2e demo case")
	if err != nil {
		t.Fatalf("POST /v1/cases to %s as %s: status %d: %v", cnode.Node, clerk.User, status, err)
	}
	t.Logf("case %s written on %s by %s", c.Number, cnode.Node, clerk.User)
	checkGridJSONNamesTheGrid(t, g)
	checkDemoAccounts(t, accounts, &g)
	checkSiblingCannotRead(t, g, accounts, cnode.Site, c.Number)
	checkRetryAfterTheCaseLeft(t, "http://"+cnode.HTTP, token, cnode.Parent)
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
	url, addr := "", ""
	for _, n := range g2.Nodes {
		if n.Node == cnode.Node {
			url, addr = "http://"+n.HTTP, n.HTTP
		}
	}
	if url == "" {
		t.Fatalf("the second run's grid.json has no node %s", cnode.Node)
	}
	// The resumed demo keeps its accounts (accounts.json is read, not written again).
	if again := findDemoAccount(t, readDemoAccounts(t, dir), clerk.User); again.Password != clerk.Password {
		t.Errorf("the second run changed %s's password in accounts.json", clerk.User)
	}
	token = demoLogin(t, addr, clerk.User, clerk.Password)
	var last string
	took = waitUntil(t, 10*time.Second, "case "+c.Number+" to be readable on "+cnode.Node+" after the restart", func() bool {
		status, got, err := getCase(url, token, c.Number)
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
	// grid.json comes before the demo has loaded its catalogue and accounts: the resumed demo
	// must finish that (and say the grid is up) before it is stopped, or a SIGTERM in the middle
	// of it makes an exit status of 1 that says nothing about the grid.
	took = waitDemoUp(t, d2, 60*time.Second)
	t.Logf("second run: the demo says the grid is up %s after the case was read", took.Round(time.Millisecond))
	stopDemoProc(t, d2, g2)
	httpTransport.CloseIdleConnections()
	t.Logf("whole test %s", time.Since(testStart).Round(time.Millisecond))
}

// demoAccount is an entry of DIR/accounts.json, the pinned contract: [{"user","password","site",
// "roles"}] (the demo's own type is in package main).
type demoAccount struct {
	User     string   `json:"user"`
	Password string   `json:"password"`
	Site     string   `json:"site"`
	Roles    []string `json:"roles"`
}

// readDemoAccounts waits for DIR/accounts.json, written after grid.json once every node has its
// site's accounts, and returns its accounts.
func readDemoAccounts(t *testing.T, dir string) []demoAccount {
	t.Helper()
	var accounts []demoAccount
	waitUntil(t, 60*time.Second, "DIR/accounts.json", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "accounts.json"))
		return err == nil && json.Unmarshal(b, &accounts) == nil && len(accounts) > 0
	})
	return accounts
}

// findDemoAccount returns the account of user in accounts, failing the test if there is none.
func findDemoAccount(t *testing.T, accounts []demoAccount, user string) demoAccount {
	t.Helper()
	for _, a := range accounts {
		if a.User == user {
			return a
		}
	}
	t.Fatalf("accounts.json has no account %s", user)
	return demoAccount{}
}

// checkDemoAccounts checks the accounts of DIR/accounts.json and signs in with an account of a
// community at its node.
func checkDemoAccounts(t *testing.T, accounts []demoAccount, g *gridFile) {
	t.Helper()
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
				resp, err := httpClient.Do(req)
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

// checkSiblingCannotRead signs in the clerk of a sibling of site (a community of the same
// township) at its own node and reads case number, begun and held at site: 403. (Before every
// call needed an account, any node answered any case; now staff read the cases held in their
// subtree or begun there, and a sibling community's subtree holds neither.)
func checkSiblingCannotRead(t *testing.T, g gridFile, accounts []demoAccount, site, number string) {
	t.Helper()
	parent := ""
	for _, n := range g.Nodes {
		if n.Site == site {
			parent = n.Parent
		}
	}
	for _, n := range g.Nodes {
		if n.Tier != "community" || n.Site == site || n.Parent != parent {
			continue
		}
		clerk := findDemoAccount(t, accounts, n.Site+".clerk")
		token := demoLogin(t, n.HTTP, clerk.User, clerk.Password)
		status, body, err := httpGetAs("http://"+n.HTTP+"/v1/cases/"+number, token)
		if err != nil || status != http.StatusForbidden {
			t.Errorf("%s reads case %s of its sibling %s at %s: %d %s %v, want 403", clerk.User, number, site, n.Node,
				status, bytes.TrimSpace(body), err)
		} else {
			t.Logf("%s may not read case %s of its sibling %s: %s", clerk.User, number, site, bytes.TrimSpace(body))
		}
		return
	}
	t.Fatalf("grid.json has no sibling community of %s", site)
}

// demoLogin signs user in at addr and returns the token.
func demoLogin(t *testing.T, addr, user, password string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"user": user, "password": password})
	resp, err := httpClient.Post("http://"+addr+"/v1/auth/login", "application/json", bytes.NewReader(body))
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
