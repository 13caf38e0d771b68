package deploy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/pki"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/testgrid"
)

// composeNodes are the services of docker-compose.yml: one node each, with its site.
var composeNodes = []struct {
	service, site, tier, parent string
	env                         string // the variable that sets its published HTTP port
}{
	{"cd-1", "cd", "district", "", "GOVGRID_PORT_CD_1"},
	{"cd-2", "cd", "district", "", "GOVGRID_PORT_CD_2"},
	{"cd-3", "cd", "district", "", "GOVGRID_PORT_CD_3"},
	{"cd-dgdj-1", "cd-dgdj", "township", "cd", "GOVGRID_PORT_CD_DGDJ_1"},
	{"cd-dgdj-ngj-1", "cd-dgdj-ngj", "community", "cd-dgdj", "GOVGRID_PORT_CD_DGDJ_NGJ_1"},
	{"cd-dgdj-bgj-1", "cd-dgdj-bgj", "community", "cd-dgdj", "GOVGRID_PORT_CD_DGDJ_BGJ_1"},
}

// composeReadyDeadline bounds the wait for every node's health and the full tree.
const composeReadyDeadline = 90 * time.Second

// composeGrid is a running compose project of deploy/docker-compose.yml.
type composeGrid struct {
	compose   []string // "docker compose" or "docker-compose"
	project   string
	file      string
	env       []string
	netPrefix string // the first three octets of its /24

	mu sync.Mutex
	// base is each service's published HTTP API, "http://127.0.0.1:port". Docker picks the
	// port, again when a container restarts.
	base map[string]string // guarded by mu
	// token is the test's bearer token (signIn), good at every node it was waited for at;
	// "" before.
	token string // guarded by mu
}

// url is the published HTTP API of service now.
func (g *composeGrid) url(service string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.base[service]
}

// api is a Getter of service's HTTP API that follows it to a new port after a restart, signed
// in with the test's token once there is one (signIn).
func (g *composeGrid) api(service string) testgrid.Getter {
	return func(path string) (int, []byte, error) {
		return testgrid.TokenGetter(g.url(service), g.bearer())(path)
	}
}

// bearer is the test's token, or "" before signIn.
func (g *composeGrid) bearer() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.token
}

// lookupPort asks Compose which host port Docker published service's HTTP API on.
func (g *composeGrid) lookupPort(t *testing.T, service string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := g.run(ctx, "port", service, "8080")
	addr := lastLine(out)
	if _, _, splitErr := net.SplitHostPort(addr); err != nil || splitErr != nil {
		t.Fatalf("port %s 8080: %v %q", service, err, out)
	}
	g.mu.Lock()
	g.base[service] = "http://" + addr
	g.mu.Unlock()
}

// waitHealthy polls service's GET /v1/health until it answers 200, failing t at deadline.
func (g *composeGrid) waitHealthy(t *testing.T, service string, deadline time.Time) {
	t.Helper()
	if _, err := testgrid.Poll(time.Until(deadline), func() error {
		if status, body := httpGet(g.url(service) + "/v1/health"); status != http.StatusOK {
			return fmt.Errorf("GET /v1/health = %d %s", status, body)
		}
		return nil
	}); err != nil {
		t.Fatalf("%s: %v", service, err)
	}
}

// restart restarts service's container and waits until it serves again.
func (g *composeGrid) restart(t *testing.T, service string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := g.run(ctx, "restart", "-t", "10", service); err != nil {
		t.Fatalf("restart %s: %v\n%s", service, err, out)
	}
	g.lookupPort(t, service)
	g.waitHealthy(t, service, time.Now().Add(composeReadyDeadline))
}

// run runs a compose command against the project.
func (g *composeGrid) run(ctx context.Context, args ...string) ([]byte, error) {
	full := append(append(append([]string{}, g.compose[1:]...), "-p", g.project, "-f", g.file), args...)
	cmd := exec.CommandContext(ctx, g.compose[0], full...)
	cmd.Env = cleanEnv(append(g.env, "GOVGRID_NET="+g.netPrefix)...)
	return cmd.CombinedOutput()
}

// TestComposeGrid builds the FROM-scratch image from deploy/Dockerfile around a freshly built
// static binary, starts deploy/docker-compose.yml under a project of its own (its own image
// tag, subnet and host ports, so it can run beside a developer's grid), waits until every
// node answers GET /v1/health with 200, and checks that the district's GET /v1/sites lists the
// four sites with their tiers and parents, every node alive, and that a case is not taken
// without a token. Then, on the same grid, the real-host faults of issue 10
// (compose_faults_test.go), signed in (staff_test.go). It always takes the grid down
// (with its volumes) and removes the image, and prints the containers' logs on failure.
func TestComposeGrid(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Docker image and runs a six-container grid: skipped in -short mode")
	}
	started := time.Now()
	g := startComposeGrid(t)
	// Gossip may still be spreading the last members: poll the district's view of the tree.
	var body []byte
	if _, err := testgrid.Poll(composeReadyDeadline, func() error {
		var status int
		status, body = httpGet(g.url("cd-1") + "/v1/sites")
		return checkComposeTree(status, body)
	}); err != nil {
		t.Fatalf("district's GET /v1/sites: %v\n%s", err, body)
	}
	t.Logf("the district lists all four sites, every node alive; %s in all", time.Since(started).Round(time.Millisecond))
	// Case calls need a signed-in member of staff, on the image as anywhere.
	g.checkNeedsToken(t, "cd-1")
	g.checkNeedsToken(t, faultChildService)

	composeFaults(t, g)
}

// startComposeGrid builds the image, starts the project and waits until every node answers
// GET /v1/health with 200. The project is taken down, and the image removed, when t ends.
func startComposeGrid(t *testing.T) *composeGrid {
	t.Helper()
	compose := findCompose(t) // skips without Docker or compose
	bin := govgridBinary(t)
	started := time.Now()

	suffix := randomHex(t, 4)
	image := "govgrid:composetest-" + suffix
	buildImage(t, bin, image)
	t.Logf("built image %s in %s", image, time.Since(started).Round(time.Millisecond))

	file, err := filepath.Abs("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	g := &composeGrid{compose: compose, project: "govgrid-test-" + suffix, file: file, base: map[string]string{}}
	grid := "composetest-" + suffix
	trust, gossipKey := composeTrust(t, grid)
	g.env = []string{"GOVGRID_IMAGE=" + image, "GOVGRID_GRID=" + grid, "GOVGRID_TRUST=" + trust, "GOVGRID_GOSSIP_KEY=" + gossipKey}
	for _, n := range composeNodes {
		g.env = append(g.env, n.env+"=") // empty: Docker picks a free host port
	}

	// A /24 of its own in 172.28.0.0/16; another one if that overlaps an existing network.
	upStart := time.Now()
	for attempt := 1; ; attempt++ {
		g.netPrefix = fmt.Sprintf("172.28.%d", 1+randomInt(t, 254))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := g.run(ctx, "up", "-d")
		cancel()
		if err == nil {
			break
		}
		// Clean up whatever half-started before trying another subnet, or failing.
		downCtx, downCancel := context.WithTimeout(context.Background(), time.Minute)
		_, _ = g.run(downCtx, "down", "-v", "--remove-orphans", "-t", "5")
		downCancel()
		if attempt < 4 && strings.Contains(strings.ToLower(string(out)), "overlap") {
			t.Logf("subnet %s.0/24 is taken, trying another: %s", g.netPrefix, lastLine(out))
			continue
		}
		t.Fatalf("%s up -d: %v\n%s", strings.Join(compose, " "), err, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if t.Failed() {
			out, _ := g.run(ctx, "logs", "--no-color", "--timestamps")
			t.Logf("logs of project %s:\n%s", g.project, out)
		}
		if out, err := g.run(ctx, "down", "-v", "--remove-orphans", "-t", "10"); err != nil {
			t.Errorf("%s down -v: %v\n%s", strings.Join(compose, " "), err, out)
		}
	})
	upDone := time.Now()
	t.Logf("project %s up on %s.0/24 in %s", g.project, g.netPrefix, upDone.Sub(upStart).Round(time.Millisecond))

	// The host ports Docker picked.
	for _, n := range composeNodes {
		g.lookupPort(t, n.service)
	}
	deadline := upDone.Add(composeReadyDeadline)
	for _, n := range composeNodes {
		g.waitHealthy(t, n.service, deadline)
	}
	t.Logf("all %d nodes healthy %s after `up -d` returned", len(composeNodes), time.Since(upDone).Round(time.Millisecond))
	return g
}

// composeTrust does what `make compose-trust` does, for grid, in a temporary directory: the CA,
// each node's certificate (the district's with ca.key) and key for encryption at rest, owned by
// the image's user; it returns the directory and a new gossip key.
func composeTrust(t *testing.T, grid string) (dir, gossipKey string) {
	t.Helper()
	dir = t.TempDir()
	ca, err := pki.NewCA(grid, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range composeNodes {
		nodeDir := filepath.Join(dir, n.service)
		if err := pki.Provision(nodeDir, ca, pki.Identity{Grid: grid, Site: n.site, Node: n.service}, 24*time.Hour, n.tier == "district"); err != nil {
			t.Fatal(err)
		}
		_, keyFile, err := replication.NewEncryptionKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(nodeDir, "encryption.key"), keyFile, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, 65532, 65532)
	}); err != nil {
		t.Skipf("the compose grid's trust files must belong to the image's user 65532 (run as root): %v", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return dir, base64.StdEncoding.EncodeToString(key)
}

// checkComposeTree says what is wrong with the district's GET /v1/sites, or nil if every site
// of the compose grid is there with its tier, its parent and its nodes alive.
func checkComposeTree(status int, body []byte) error {
	if status != http.StatusOK {
		return fmt.Errorf("status %d", status)
	}
	var tree api.SitesView
	if err := json.Unmarshal(body, &tree); err != nil {
		return err
	}
	for _, n := range composeNodes {
		s, ok := tree.Find(n.site)
		switch {
		case !ok:
			return fmt.Errorf("site %s missing", n.site)
		case string(s.Tier) != n.tier || s.Parent != n.parent:
			return fmt.Errorf("site %s: tier %q parent %q, want %q %q", n.site, s.Tier, s.Parent, n.tier, n.parent)
		}
		alive := false
		for _, sn := range s.Nodes {
			alive = alive || sn.Name == n.service && sn.Status == "alive"
		}
		if !alive {
			return fmt.Errorf("site %s: node %s missing or not alive", n.site, n.service)
		}
	}
	return nil
}

// findCompose returns the command that runs Compose ("docker compose" or "docker-compose"),
// or skips t when Docker or Compose is not usable here.
func findCompose(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker is not installed: skipping the compose grid test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("docker info failed (no Docker engine reachable): skipping the compose grid test: %v %s", err, lastLine(out))
	}
	for _, c := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		if _, err := exec.LookPath(c[0]); err != nil {
			continue
		}
		if err := exec.CommandContext(ctx, c[0], append(c[1:], "version")...).Run(); err == nil {
			return c
		}
	}
	t.Skip("neither `docker compose` nor `docker-compose` works: skipping the compose grid test")
	return nil
}

// buildImage builds deploy/Dockerfile into image from a small context of its own (the binary
// at bin/govgrid and deploy/rootfs, as `make image` sees them from the repository root), and
// removes the image when t ends.
func buildImage(t *testing.T, bin, image string) {
	t.Helper()
	ctxDir := t.TempDir()
	copyFile(t, bin, filepath.Join(ctxDir, "bin", "govgrid"), 0o755)
	for _, f := range []string{"Dockerfile", "Dockerfile.dockerignore"} {
		copyFile(t, f, filepath.Join(ctxDir, "deploy", f), 0o644)
	}
	err := filepath.WalkDir("rootfs", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		copyFile(t, path, filepath.Join(ctxDir, "deploy", path), 0o644)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "build", "-f", filepath.Join(ctxDir, "deploy", "Dockerfile"), "-t", image, ctxDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "docker", "image", "rm", "-f", image).CombinedOutput(); err != nil {
			t.Logf("docker image rm %s: %v %s", image, err, out)
		}
	})
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func randomInt(t *testing.T, n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		t.Fatal(err)
	}
	return v.Int64()
}

// lastLine is the last non-empty line of out, trimmed.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
