package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/testgrid"
)

// cliResult is what one run of a govgrid client command did.
type cliResult struct {
	args           []string
	stdout, stderr string
	code           int // the exit code; -1 when the command did not run or timed out
	err            error
	took           time.Duration
}

func (r cliResult) String() string {
	return fmt.Sprintf("govgrid %s: exit %d (%v) after %s\nstdout:\n%sstderr:\n%s",
		strings.Join(r.args, " "), r.code, r.err, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// runCLI runs the govgrid binary with args and the extra environment env (the test's own
// GOVGRID_* variables are dropped, see agentEnv); a run is bounded to 30 s. It carries a token
// only when env gives one (GOVGRID_TOKEN): XDG_CONFIG_HOME is an empty directory unless env says
// otherwise, so that a token the developer's own `govgrid login` kept is not sent.
func runCLI(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = agentEnv(append([]string{"XDG_CONFIG_HOME=" + t.TempDir()}, env...)) // the last of a name wins
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := cliResult{args: args, stdout: stdout.String(), stderr: stderr.String(), code: -1, err: err, took: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		r.code = 0
	case errors.As(err, &exitErr) && ctx.Err() == nil:
		r.code = exitErr.ExitCode()
	}
	return r
}

// mustCLI runs the binary and fails the test unless it exits 0.
func mustCLI(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	r := runCLI(t, env, args...)
	if r.code != 0 {
		t.Fatalf("want exit 0: %s", r)
	}
	return r
}

// pollCLI re-runs the binary until ok accepts a run that exited 0, failing the test with the
// last run after timeout. It returns the accepted run and how long it waited.
func pollCLI(t *testing.T, timeout time.Duration, what string, ok func(cliResult) bool, env []string, args ...string) (cliResult, time.Duration) {
	t.Helper()
	var r cliResult
	took, err := testgrid.Poll(timeout, func() error {
		if r = runCLI(t, env, args...); r.code != 0 || !ok(r) {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s; last run: %s", timeout, what, r)
	}
	return r, took
}

// memberStatus finds node in the table `govgrid members` prints (NODE SITE TIER STATUS GOSSIP
// HTTP) and returns its status, or "" when the node is not listed.
func memberStatus(out, node string) string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == node {
			return f[3]
		}
	}
	return ""
}

// siteTreeOK reports whether `govgrid sites` output shows cd as a root district and cd-dgdj as
// a township below it (on an indented line).
func siteTreeOK(out string) bool {
	var root, child bool
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "cd [district]") {
			root = true
		}
		if strings.HasPrefix(line, " ") && strings.Contains(line, "cd-dgdj [township]") {
			child = true
		}
	}
	return root && child
}

// TestCLIMembersSitesLeave runs the client commands of the binary against a district agent and
// a township agent that joined it: members, sites (with --addr and with GOVGRID_ADDR), case
// submit and get (signed in, with GOVGRID_TOKEN; refused without), and leave (an administrator's
// token), after which the township agent exits by itself and the district sees it as left.
func TestCLIMembersSitesLeave(t *testing.T) {
	binary(t)
	t.Parallel()
	testStart := time.Now()
	district := startAgent(t, agentSpec{Name: "cli-cd-1", Site: "cd", Tier: "district"})
	township := startAgent(t, agentSpec{Name: "cli-dgdj-1", Site: "cd-dgdj", Tier: "township", Parent: "cd",
		Join: []string{district.addrs.Gossip}})
	waitAllHealthy(t, 30*time.Second, district, township)
	t.Logf("district and township healthy %s after start", time.Since(testStart).Round(time.Millisecond))
	addr := district.addrs.HTTP

	// members: both nodes alive.
	r, took := pollCLI(t, 20*time.Second, "`govgrid members` to list both nodes alive", func(r cliResult) bool {
		return memberStatus(r.stdout, district.name) == "alive" && memberStatus(r.stdout, township.name) == "alive"
	}, nil, "members", "--addr", addr)
	t.Logf("members lists both nodes alive after %s:\n%s", took.Round(time.Millisecond), r.stdout)

	// sites: the tree, with --addr and with GOVGRID_ADDR.
	r, took = pollCLI(t, 30*time.Second, "`govgrid sites` to show cd-dgdj below cd", func(r cliResult) bool {
		return siteTreeOK(r.stdout)
	}, nil, "sites", "--addr", addr)
	t.Logf("sites shows the tree after %s:\n%s", took.Round(time.Millisecond), r.stdout)
	r = mustCLI(t, []string{"GOVGRID_ADDR=" + addr}, "sites")
	if !siteTreeOK(r.stdout) {
		t.Errorf("GOVGRID_ADDR=%s govgrid sites does not show the tree: %s", addr, r)
	}

	// case submit, get, and get of a number that does not exist: as the staff account; without
	// a token the node refuses the case calls.
	token := signInStaff(t, district)
	env := staffEnv(token)
	file := filepath.Join(t.TempDir(), "case.json")
	if err := os.WriteFile(file, submitBody("e2e CLI case"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, nil, "case", "submit", file, "--addr", addr); r.code <= 0 || !strings.Contains(r.stderr, "401") {
		t.Errorf("case submit without a token: want a non-zero exit with a 401: %s", r)
	}
	r = mustCLI(t, env, "case", "submit", file, "--addr", addr)
	var submitted api.Case
	if err := json.Unmarshal([]byte(r.stdout), &submitted); err != nil || submitted.Number == "" {
		t.Fatalf("case submit does not print a case with a number (%v): %s", err, r)
	}
	t.Logf("case submit printed number %s", submitted.Number)
	r = mustCLI(t, env, "case", "get", submitted.Number, "--addr", addr)
	var got api.Case
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("case get does not print JSON (%v): %s", err, r)
	}
	if got.Number != submitted.Number || got.Title != "e2e CLI case" {
		t.Errorf("case get %s printed number %q title %q: %s", submitted.Number, got.Number, got.Title, r)
	}
	r = runCLI(t, env, "case", "get", "cd-20000101-999999", "--addr", addr)
	if r.code <= 0 || !strings.Contains(r.stdout+r.stderr, "no such case") {
		t.Errorf("case get of a missing case: want a non-zero exit with \"no such case\": %s", r)
	} else {
		t.Logf("case get of a missing case: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	}

	// leave: the township agent exits 0 by itself and the district sees it left. Once accounts
	// exist, leave takes an administrator's token (no longer just the node's own host): the
	// staff's, once the district's key and the account have reached the township.
	took = waitToken(t, token, 30*time.Second, township)
	t.Logf("the township takes the district's token %s after it was signed", took.Round(time.Millisecond))
	if r := runCLI(t, nil, "leave", "--addr", township.addrs.HTTP); r.code <= 0 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("leave without a token at a township that has accounts: want a non-zero exit with a 401: %s", r)
	}
	leaveStart := time.Now()
	r = mustCLI(t, env, "leave", "--addr", township.addrs.HTTP)
	t.Logf("leave: %s", strings.TrimSpace(r.stdout))
	st := township.waitExit(20 * time.Second)
	if st == nil {
		t.Fatalf("%s still running 20s after `govgrid leave`", township.name)
	}
	t.Logf("%s exited %s after `govgrid leave`: %v", township.name, time.Since(leaveStart).Round(time.Millisecond), st)
	if st.ExitCode() != 0 {
		t.Errorf("%s exited with status %d after leave, want 0", township.name, st.ExitCode())
	}
	r, took = pollCLI(t, 20*time.Second, "`govgrid members` to show "+township.name+" left", func(r cliResult) bool {
		return memberStatus(r.stdout, township.name) == "left"
	}, nil, "members", "--addr", addr)
	t.Logf("members shows %s left %s after its exit:\n%s", township.name, took.Round(time.Millisecond), r.stdout)
	if s := memberStatus(r.stdout, district.name); s != "alive" {
		t.Errorf("after the township left, members shows %s as %q, want alive", district.name, s)
	}
	t.Logf("whole test %s", time.Since(testStart).Round(time.Millisecond))
}
