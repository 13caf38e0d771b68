package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/catalog/sample"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/pki"
	"github.com/govgrid/govgrid/replication"
	"github.com/spf13/cobra"
)

// demoSite is one site of the demo grid.
type demoSite struct {
	Code, Name, Tier, Parent string
	Nodes                    int
}

// demoLayout is the demo grid: 城东区 with two streets (one of three nodes) and four communities.
var demoLayout = []demoSite{
	{"cd", "城东区政务服务中心", "district", "", 3},
	{"cd-dgdj", "东关大街街道", "township", "cd", 3},
	{"cd-byl", "八一路街道", "township", "cd", 1},
	{"cd-dgdj-ngj", "南关街社区", "community", "cd-dgdj", 1},
	{"cd-dgdj-bgj", "北关街社区", "community", "cd-dgdj", 1},
	{"cd-byl-qyl", "七一路社区", "community", "cd-byl", 1},
	{"cd-byl-zzc", "中庄村", "community", "cd-byl", 1},
}

// gridNode is one entry of DIR/grid.json (the pinned demo contract).
type gridNode struct {
	Node   string `json:"node"`
	Site   string `json:"site"`
	Tier   string `json:"tier"`
	Parent string `json:"parent"`
	HTTP   string `json:"http"`
	GRPC   string `json:"grpc"`
	Gossip string `json:"gossip"`
	Raft   string `json:"raft"`
	PID    int    `json:"pid"`

	name    string
	keyFile string // the key that encrypts its data dir at rest ("": none)
	cmd     *exec.Cmd
}

// demoGrid is the demo grid's gossip label (--grid): a node joins it only with the same label.
const demoGrid = "chengdong-demo"

func newDemoCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a local three-tier grid of separate agent processes until Ctrl-C",
		Args:  cobra.NoArgs,
	}
	dir := cmd.Flags().String("dir", "demo-grid", "directory for the grid's data, logs and grid.json")
	basePort := cmd.Flags().Int("base-port", 17000, "first of the consecutive ports the grid uses (4 per node)")
	cmd.RunE = func(*cobra.Command, []string) error {
		return runDemo(*dir, *basePort)
	}
	return cmd
}

func runDemo(dir string, basePort int) error {
	if basePort < 1024 || basePort > 65535-100 {
		return fmt.Errorf("--base-port must be between 1024 and 65435")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o750); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	nodes := planDemo(basePort)
	trust, err := demoTrust(dir, nodes)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	join := nodes[0].Gossip
	for _, n := range nodes {
		if err := startDemoNode(exe, dir, n, join, trust.GossipKey); err != nil {
			stopDemo(nodes)
			return err
		}
	}
	exited := make(chan *gridNode, len(nodes))
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.cmd.Wait()
			exited <- n
		}()
	}
	fmt.Printf("starting %d nodes of the 城东区 demo grid in %s ...\n", len(nodes), dir)
	if err := waitHealthy(ctx, nodes, exited); err != nil {
		stopDemo(nodes)
		wg.Wait()
		return err
	}
	operatorKey := filepath.Join(dir, "data", nodes[0].Node, node.OperatorKeyFile)
	if trust.JoinToken, err = demoJoinToken(ctx, nodes[0].HTTP, operatorKey); err != nil {
		stopDemo(nodes)
		wg.Wait()
		return err
	}
	if err := writeGridJSON(dir, nodes, trust); err != nil {
		stopDemo(nodes)
		wg.Wait()
		return err
	}
	if err := loadDemoCatalog(ctx, nodes[0].HTTP, operatorKey); err != nil {
		stopDemo(nodes)
		wg.Wait()
		return err
	}
	accounts, err := loadDemoAccounts(ctx, dir, nodes[0].HTTP, nodes)
	if err != nil {
		stopDemo(nodes)
		wg.Wait()
		return err
	}
	printDemoHelp(dir, nodes, joinCommand(exe, dir, basePort, nodes, trust.JoinToken), accounts)
	printDemoAccounts(dir, accounts)
	for {
		select {
		case <-ctx.Done():
			fmt.Println("\nstopping the grid ...")
			stopDemo(nodes)
			wg.Wait()
			fmt.Println("stopped; run the same command again to resume from", dir)
			return nil
		case n := <-exited:
			fmt.Fprintf(os.Stderr, "node %s exited (%v); see %s\n", n.Node, n.cmd.ProcessState, filepath.Join(dir, "logs", n.Node+".log"))
		}
	}
}

func planDemo(basePort int) []*gridNode {
	var nodes []*gridNode
	for _, s := range demoLayout {
		for i := 1; i <= s.Nodes; i++ {
			p := basePort + 4*len(nodes)
			nodes = append(nodes, &gridNode{
				Node: fmt.Sprintf("%s-%d", s.Code, i), Site: s.Code, Tier: s.Tier, Parent: s.Parent, name: s.Name,
				HTTP: "127.0.0.1:" + strconv.Itoa(p), GRPC: "127.0.0.1:" + strconv.Itoa(p+1),
				Raft: "127.0.0.1:" + strconv.Itoa(p+2), Gossip: "127.0.0.1:" + strconv.Itoa(p+3),
			})
		}
	}
	return nodes
}

func startDemoNode(exe, dir string, n *gridNode, join, gossipKey string) error {
	expect := 0
	for _, s := range demoLayout {
		if s.Code == n.Site {
			expect = s.Nodes
		}
	}
	args := []string{"agent", "--node", n.Node, "--site", n.Site, "--tier", n.Tier,
		"--data-dir", filepath.Join(dir, "data", n.Node), "--http-addr", n.HTTP, "--grpc-addr", n.GRPC,
		"--raft-addr", n.Raft, "--gossip-addr", n.Gossip, "--bootstrap-expect", strconv.Itoa(expect),
		"--grid", demoGrid, "--gossip-key", gossipKey}
	if n.Parent != "" {
		args = append(args, "--parent", n.Parent)
	}
	if n.keyFile != "" {
		args = append(args, "--encryption-key-file", n.keyFile)
	}
	if n.Gossip != join {
		args = append(args, "--join", join)
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "logs", n.Node+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	n.cmd = exec.Command(exe, args...)
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	// The agents die with the demo even if it is killed with SIGKILL.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := n.cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", n.Node, err)
	}
	logFile.Close()
	n.PID = n.cmd.Process.Pid
	return nil
}

// waitHealthy polls every node's /v1/health until all answer 200, a node exits, or 90 s pass.
func waitHealthy(ctx context.Context, nodes []*gridNode, exited <-chan *gridNode) error {
	deadline := time.Now().Add(90 * time.Second)
	client := &http.Client{Timeout: time.Second}
	pending := map[*gridNode]bool{}
	for _, n := range nodes {
		pending[n] = true
	}
	for len(pending) > 0 {
		for n := range pending {
			resp, err := client.Get("http://" + n.HTTP + "/v1/health")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					delete(pending, n)
				}
			}
		}
		select {
		case <-ctx.Done():
			return errors.New("interrupted while the grid was starting")
		case n := <-exited:
			return fmt.Errorf("node %s exited while starting (%v): see its log", n.Node, n.cmd.ProcessState)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			var names []string
			for n := range pending {
				names = append(names, n.Node)
			}
			return fmt.Errorf("nodes not healthy after 90 s: %v (ports in use? see the logs)", names)
		}
	}
	return nil
}

func writeGridJSON(dir string, nodes []*gridNode, trust demoTrustFiles) error {
	b, err := json.MarshalIndent(struct {
		Grid string `json:"grid"`
		demoTrustFiles
		Nodes []*gridNode `json:"nodes"`
	}{demoGrid, trust, nodes}, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "grid.json.tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "grid.json"))
}

func stopDemo(nodes []*gridNode) {
	for _, n := range nodes {
		if n.cmd != nil && n.cmd.Process != nil && n.cmd.ProcessState == nil {
			n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, n := range nodes {
		for n.cmd != nil && n.cmd.Process != nil && processAlive(n.PID) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n.cmd != nil && n.cmd.Process != nil && processAlive(n.PID) {
			n.cmd.Process.Kill()
		}
	}
}

func processAlive(pid int) bool {
	// Signal 0 checks existence; a reaped child reports ESRCH.
	return pid > 0 && syscall.Kill(pid, 0) == nil && !isZombie(pid)
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	for i := len(b) - 1; i > 0; i-- {
		if b[i] == ')' && i+2 < len(b) {
			return b[i+2] == 'Z'
		}
	}
	return false
}

// joinCommand is the command that adds a community to the running demo grid (八一路街道's new
// 西川社区), on the ports after the demo's own.
func joinCommand(exe, dir string, basePort int, nodes []*gridNode, token string) string {
	p := basePort + 4*len(nodes)
	return fmt.Sprintf("%s agent --node cd-byl-xc-1 --site cd-byl-xc --tier community --parent cd-byl --join-token %s --join %s "+
		"--data-dir %s --http-addr 127.0.0.1:%d --grpc-addr 127.0.0.1:%d --raft-addr 127.0.0.1:%d --gossip-addr 127.0.0.1:%d",
		exe, token, nodes[0].Gossip, filepath.Join(dir, "data", "cd-byl-xc-1"), p, p+1, p+2, p+3)
}

// demoTrustFiles is what grid.json says of the demo grid's trust: the CA's certificate file, the
// gossip key, and a join token that admits new nodes of any site.
type demoTrustFiles struct {
	CA        string `json:"ca"`
	GossipKey string `json:"gossip_key"`
	JoinToken string `json:"join_token"`
}

// demoTrust makes, on the first run, the demo grid's CA (DIR/ca), its gossip key (DIR/gossip.key)
// and every node's certificate (with the CA's key at the district's nodes, which issue); a
// resumed demo reuses them.
func demoTrust(dir string, nodes []*gridNode) (demoTrustFiles, error) {
	caDir := filepath.Join(dir, "ca")
	ca, err := pki.LoadCA(caDir)
	if errors.Is(err, os.ErrNotExist) {
		if ca, err = pki.NewCA(demoGrid, 10*365*24*time.Hour); err == nil {
			err = pki.WriteCA(caDir, ca)
		}
	}
	if err != nil {
		return demoTrustFiles{}, fmt.Errorf("the demo's CA in %s: %w", caDir, err)
	}
	keyFile := filepath.Join(dir, "gossip.key")
	key, err := os.ReadFile(keyFile)
	if errors.Is(err, os.ErrNotExist) {
		raw := make([]byte, 32)
		if _, err = rand.Read(raw); err == nil {
			key = []byte(base64.StdEncoding.EncodeToString(raw))
			err = pki.WriteFile(keyFile, key, 0o600)
		}
	}
	if err != nil {
		return demoTrustFiles{}, fmt.Errorf("the demo's gossip key: %w", err)
	}
	for _, n := range nodes {
		// A new node's data dir is encrypted at rest with a key of its own, kept beside it (a
		// data dir of an earlier demo, written in the clear, stays so).
		keyFile := filepath.Join(dir, "keys", n.Node+".key")
		if _, err := os.Stat(filepath.Join(dir, "data", n.Node)); errors.Is(err, os.ErrNotExist) {
			if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
				_, file, err := replication.NewEncryptionKey()
				if err == nil {
					err = pki.WriteFile(keyFile, file, 0o600)
				}
				if err != nil {
					return demoTrustFiles{}, fmt.Errorf("encryption key for %s: %w", n.Node, err)
				}
			}
		}
		if _, err := os.Stat(keyFile); err == nil {
			n.keyFile = keyFile
		}
		tlsDir := filepath.Join(dir, "data", n.Node, node.TLSDirName)
		if _, err := os.Stat(filepath.Join(tlsDir, pki.NodeCertFile)); err == nil {
			continue
		}
		if err := pki.Provision(tlsDir, ca, pki.Identity{Grid: demoGrid, Site: n.Site, Node: n.Node}, node.DefaultCertLifetime, n.Tier == "district"); err != nil {
			return demoTrustFiles{}, fmt.Errorf("certificate for %s: %w", n.Node, err)
		}
	}
	abs, err := filepath.Abs(filepath.Join(caDir, pki.CACertFile))
	if err != nil {
		return demoTrustFiles{}, err
	}
	return demoTrustFiles{CA: abs, GossipKey: strings.TrimSpace(string(key))}, nil
}

// demoJoinToken asks the district (addr) for a join token that admits ten new nodes of any site
// for a week, with the district node's operator key.
func demoJoinToken(ctx context.Context, addr, keyFile string) (string, error) {
	body, _ := json.Marshal(api.JoinTokenRequest{Site: "*", TTL: "168h", Uses: 10})
	var t api.JoinToken
	if err := postAsOperator(ctx, addr, keyFile, "/v1/join-tokens", body, &t); err != nil {
		return "", fmt.Errorf("the demo's join token: %w", err)
	}
	return t.Token, nil
}

// loadDemoCatalog imports the sample catalogue at the district (addr), from where it reaches
// every site, with the district node's operator key (keyFile): on the first run no account
// exists yet, on a resumed one no administrator is signed in. Importing is idempotent: a resumed
// demo writes nothing.
func loadDemoCatalog(ctx context.Context, addr, keyFile string) error {
	var res api.CatalogImport
	if err := postAsOperator(ctx, addr, keyFile, "/v1/catalog/import", sample.JSON(), &res); err != nil {
		return fmt.Errorf("loading the sample catalogue: %w", err)
	}
	fmt.Printf("catalogue: %d departments and %d items at the district (%d documents changed)\n", res.Departments, res.Items, res.Changed)
	return nil
}

// postAsOperator POSTs the JSON body to path at addr with the district node's operator key
// (keyFile), trying again for 10 s while the district still forms (no leader, sites registering).
func postAsOperator(ctx context.Context, addr, keyFile, path string, body []byte, out any) error {
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("the district node's operator key: %w", err)
	}
	for range 50 {
		if err = callWith(addr, http.MethodPost, path, "application/json", body, out, "Operator "+strings.TrimSpace(string(key))); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return err
}

// demoAccount is one entry of DIR/accounts.json (the pinned demo contract).
type demoAccount struct {
	User     string      `json:"user"`
	Password string      `json:"password"`
	Site     string      `json:"site"`
	Roles    []auth.Role `json:"roles"`
}

// loadDemoAccounts creates, once, the grid's administrator and one account per role per site
// (user <site>.<role>), and writes them with their passwords to DIR/accounts.json; a resumed
// demo reads that file.
func loadDemoAccounts(ctx context.Context, dir, district string, nodes []*gridNode) ([]demoAccount, error) {
	file := filepath.Join(dir, "accounts.json")
	if b, err := os.ReadFile(file); err == nil {
		var out []demoAccount
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return out, nil
	}
	var first api.BootstrapAnswer
	if err := callAs(district, http.MethodPost, "/v1/auth/bootstrap", "application/json", nil, &first, ""); err != nil {
		return nil, fmt.Errorf("creating the demo's administrator: %w (remove %s to start the demo afresh)", err, dir)
	}
	out := []demoAccount{{User: first.User, Password: first.Password, Site: demoLayout[0].Code, Roles: []auth.Role{auth.RoleAdmin}}}
	var login api.LoginAnswer
	body, _ := json.Marshal(map[string]string{"user": first.User, "password": first.Password})
	if err := callAs(district, http.MethodPost, "/v1/auth/login", "application/json", body, &login, ""); err != nil {
		return nil, err
	}
	for _, s := range demoLayout {
		for _, r := range auth.Roles {
			pw, err := node.RandomPassword()
			if err != nil {
				return nil, err
			}
			a := demoAccount{User: s.Code + "." + string(r), Password: pw, Site: s.Code, Roles: []auth.Role{r}}
			req, _ := json.Marshal(api.AccountRequest{User: a.User, Password: pw, Name: s.Name + " " + r.Label(), Site: s.Code, Roles: a.Roles})
			var err2 error
			for range 50 { // the district learns its subtree as the sites register
				if err2 = callAs(district, http.MethodPost, "/v1/accounts", "application/json", req, nil, login.Token); err2 == nil {
					break
				}
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
			}
			if err2 != nil {
				return nil, fmt.Errorf("creating the demo account %s: %w", a.User, err2)
			}
			out = append(out, a)
		}
	}
	if err := waitDemoAccounts(ctx, nodes, out, login.Token); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return out, os.WriteFile(file, append(b, '\n'), 0o600)
}

// waitDemoAccounts waits until every node has the accounts of its site (they travel down the
// tree as configuration), so that whoever reads accounts.json can sign in at once: a sign-in
// before the account arrives counts as a failed one.
func waitDemoAccounts(ctx context.Context, nodes []*gridNode, accounts []demoAccount, token string) error {
	deadline := time.Now().Add(time.Minute)
	for _, n := range nodes {
		for {
			var listed struct {
				Accounts []struct {
					User string `json:"user"`
				} `json:"accounts"`
			}
			err := callAs(n.HTTP, http.MethodGet, "/v1/accounts", "", nil, &listed, token)
			have := map[string]bool{}
			for _, a := range listed.Accounts {
				have[a.User] = true
			}
			missing := ""
			for _, a := range accounts {
				if a.Site == n.Site && !have[a.User] {
					missing = a.User
					break
				}
			}
			if err == nil && missing == "" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the demo's accounts did not reach %s within a minute (missing %q: %v)", n.Node, missing, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

func printDemoAccounts(dir string, accounts []demoAccount) {
	fmt.Printf("Accounts (%d, every role at every site; passwords in %s), for example:\n", len(accounts), filepath.Join(dir, "accounts.json"))
	for _, a := range accounts {
		if a.User == "admin" || a.User == "cd-dgdj-ngj.clerk" || a.User == "cd.approver" {
			fmt.Printf("  %-22s %-16s %s\n", a.User, a.Password, a.Site)
		}
	}
	fmt.Println()
}

func printDemoHelp(dir string, nodes []*gridNode, join string, accounts []demoAccount) {
	fmt.Printf("\n城东区 demo grid is up: %d nodes, %d sites. grid.json: %s\n\n", len(nodes), len(demoLayout), filepath.Join(dir, "grid.json"))
	for _, s := range demoLayout {
		for _, n := range nodes {
			if n.Site == s.Code {
				fmt.Printf("  %-14s %-10s %-12s http://%s\n", n.Node, s.Tier, s.Name, n.HTTP)
			}
		}
	}
	password := map[string]string{}
	for _, a := range accounts {
		password[a.User] = a.Password
	}
	d, c := nodes[0].HTTP, ""
	for _, n := range nodes {
		if n.Site == "cd-dgdj-ngj" { // 南关街社区: the Try lines sign in its clerk there
			c = n.HTTP
		}
	}
	fmt.Printf(`
Try (every call needs a signed-in account, but the catalogue, a citizen's view and the grid's shape):
  govgrid sites --addr %[1]s
  # a clerk of 南关街社区 signs in; the token goes with each request:
  T=$(curl -s http://%[2]s/v1/auth/login -d '{"user":"cd-dgdj-ngj.clerk","password":"%[5]s"}' | sed 's/.*"token":"\([^"]*\)".*/\1/')
  curl -s http://%[2]s/v1/cases -H "Authorization: Bearer $T" -d '{"kind":"grievance","title":"路灯不亮","description":"中庄村东口路灯已坏一周","applicant":{"name":"李梅","id_number":"630102198506151227","phone":"13909710001"},"materials":[]}'
  curl -s 'http://%[2]s/v1/cases?status=submitted' -H "Authorization: Bearer $T"
  # a grievance the district must decide climbs there by itself:
  curl -s http://%[2]s/v1/cases -H "Authorization: Bearer $T" -d '{"kind":"grievance","title":"河道垃圾堆积","decide_tier":"district","applicant":{"name":"王强","id_number":"630102197703021214","phone":"13909710002"},"materials":[]}'
  # the CLI keeps its token (the password is read from standard input):
  echo %[5]s | govgrid login --user cd-dgdj-ngj.clerk --addr %[2]s
  govgrid case escalate NUMBER --reason 需街道协调 --addr %[2]s
  # electronic supervision at the district reads every site's cases (personal data masked):
  echo %[6]s | govgrid login --user cd.supervisor --addr %[1]s
  govgrid case list --scope subtree --addr %[1]s
  # a citizen reads their case with the query code of the submission's answer, without signing in:
  curl -s 'http://%[2]s/v1/cases/NUMBER?query_code=CODE'
  curl -s 'http://%[2]s/v1/catalog/items?q=低保'; curl -s http://%[2]s/v1/catalog/items/MZ-001/notice
  # the console: http://%[2]s/ (办件, sign in first) and http://%[2]s/catalog.html (办事指南, for citizens)
  curl -s http://%[1]s/metrics | grep govgrid_
  # add a community (西川社区 under 八一路街道) to the running grid, in another terminal:
  %[4]s

Ctrl-C stops every node; running the same command again resumes from %[3]s.
`, d, c, dir, join, password["cd-dgdj-ngj.clerk"], password["cd.supervisor"])
}
