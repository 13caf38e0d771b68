package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/casework"
)

// siteLine returns the line of `govgrid sites` output that shows site, or "".
func siteLine(out, site string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), site+" [") {
			return line
		}
	}
	return ""
}

// TestHandoffCLI drives a move between sites with the binary's client commands only: a case
// submitted at a community is escalated with `govgrid case escalate` and shows up held by the
// township in `govgrid case get`; escalating it again is a conflict and handing it down to an
// unknown site is not found, both as a non-zero exit with the node's message; `govgrid site
// retire` marks the township in `govgrid sites` and `govgrid site reinstate` clears the mark.
// Every command carries the token of the staff account (GOVGRID_TOKEN).
//
// The grid here is one node of each tier. (A township may name a parent that is not running,
// and this test used to run without the district; but every case call now needs a signed-in
// account, and the first account is made at the district, whose key and accounts reach the
// sites beneath it through the configuration feed.)
func TestHandoffCLI(t *testing.T) {
	binary(t)
	t.Parallel()
	testStart := time.Now()
	const townSite, commSite = "cd-dgdj", "cd-dgdj-ngj"
	district := startAgent(t, agentSpec{Name: "hcli-cd-1", Site: "cd", Tier: "district"})
	township := startAgent(t, agentSpec{Name: "hcli-dgdj-1", Site: townSite, Tier: "township", Parent: "cd",
		Join: []string{district.addrs.Gossip}})
	community := startAgent(t, agentSpec{Name: "hcli-ngj-1", Site: commSite, Tier: "community", Parent: townSite,
		Join: []string{township.addrs.Gossip}})
	waitAllHealthy(t, 15*time.Second, district, township, community)
	t.Logf("district, township and community healthy %s after start", time.Since(testStart).Round(time.Millisecond))
	token := signInStaff(t, district)
	took := waitToken(t, token, 30*time.Second, township, community)
	t.Logf("the township and the community take the district's token %s after it was signed", took.Round(time.Millisecond))
	env := staffEnv(token)
	town, comm := township.addrs.HTTP, community.addrs.HTTP

	// Submit at the community.
	file := filepath.Join(t.TempDir(), "case.json")
	if err := os.WriteFile(file, submitBody("e2e handoff CLI case"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustCLI(t, env, "case", "submit", file, "--addr", comm)
	var submitted api.Case
	if err := json.Unmarshal([]byte(r.stdout), &submitted); err != nil || submitted.Number == "" {
		t.Fatalf("case submit does not print a case with a number (%v): %s", err, r)
	}
	number := submitted.Number
	if submitted.HolderSite != commSite {
		t.Fatalf("case %s submitted at %s is held by %q", number, commSite, submitted.HolderSite)
	}

	// Escalate: one human line naming the case, the target and the handoff. (--actor is still
	// given, to see that the node no longer takes the actor from the request.)
	r = mustCLI(t, env, "case", "escalate", number, "--reason", "需街道审核", "--actor", "e2e-clerk", "--addr", comm)
	line := strings.TrimSpace(r.stdout)
	t.Logf("escalate: %s", line)
	if strings.Contains(line, "\n") || !strings.Contains(line, "已上报") || !strings.Contains(line, number) ||
		!strings.Contains(line, "→ "+townSite) || !strings.Contains(line, "handoff ") {
		t.Errorf("escalate should print one line with 已上报, the case, → %s and the handoff: %s", townSite, r)
	}

	// The township takes it: poll `case get` there until it is the holder.
	var held api.Case
	r, took = pollCLI(t, 10*time.Second, "`govgrid case get` at the township to show it holding "+number, func(r cliResult) bool {
		held = api.Case{}
		return json.Unmarshal([]byte(r.stdout), &held) == nil && held.HolderSite == townSite && held.Transit == nil
	}, env, "case", "get", number, "--addr", town)
	t.Logf("the township holds %s %s after the escalation", number, took.Round(time.Millisecond))
	// The escalation's actor is the signed-in account ("Name (user)"), not the request's
	// --actor: that is the new rule (the actor used to be taken from the request).
	var escalated, received bool
	for _, e := range held.History {
		switch e.Type {
		case casework.EventEscalated:
			escalated = e.Site == commSite && e.ToSite == townSite && e.Actor == staffActor && e.Note == "需街道审核"
		case casework.EventReceived:
			received = e.Site == townSite
		}
	}
	if !escalated || !received {
		t.Errorf("history at the township lacks the escalation by %s (%v) or the receipt (%v): %s", staffActor, escalated, received, r)
	}

	// Escalating again at the community: it holds only a pointer now, so the node refuses.
	r = runCLI(t, env, "case", "escalate", number, "--addr", comm)
	if r.code <= 0 || !strings.Contains(r.stderr, "409 conflict") || !strings.Contains(r.stderr, "上报失败") ||
		strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("escalating again at the community: want a non-zero exit with one line naming a 409 conflict: %s", r)
	} else {
		t.Logf("escalating again: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	}

	// Hand-down to a site the township does not know.
	r = runCLI(t, env, "case", "handdown", number, "--to", "cd-dgdj-nosuch", "--instructions", "核实", "--addr", town)
	if r.code <= 0 || !strings.Contains(r.stderr, "404 not_found") || !strings.Contains(r.stderr, "unknown site cd-dgdj-nosuch") {
		t.Errorf("hand-down to an unknown site: want a non-zero exit with a 404 naming the site: %s", r)
	} else {
		t.Logf("hand-down to an unknown site: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	}
	if r := runCLI(t, env, "case", "handdown", number, "--addr", town); r.code <= 0 || !strings.Contains(r.stderr, `"to"`) {
		t.Errorf("hand-down without --to: want a non-zero exit naming the flag: %s", r)
	}

	// Retire the township, see the mark, reinstate it. The township has accounts now, so its own
	// host alone no longer may (it could before the accounts): retire and reinstate take an
	// administrator's token.
	if r := runCLI(t, nil, "site", "retire", "--reason", "e2e 合并", "--addr", town); r.code <= 0 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("site retire without a token at a township that has accounts: want a non-zero exit with a 401: %s", r)
	}
	r = mustCLI(t, env, "site", "retire", "--reason", "e2e 合并", "--addr", town)
	t.Logf("site retire: %s", strings.TrimSpace(r.stdout))
	r, _ = pollCLI(t, 5*time.Second, "`govgrid sites` to mark the township retired", func(r cliResult) bool {
		return strings.Contains(siteLine(r.stdout, townSite), "已停用 retired: e2e 合并")
	}, nil, "sites", "--addr", town)
	t.Logf("sites with the township retired:\n%s", r.stdout)
	mustCLI(t, env, "site", "reinstate", "--addr", town)
	pollCLI(t, 5*time.Second, "`govgrid sites` to drop the retired mark", func(r cliResult) bool {
		l := siteLine(r.stdout, townSite)
		return l != "" && !strings.Contains(l, "retired")
	}, nil, "sites", "--addr", town)
	t.Logf("whole test %s", time.Since(testStart).Round(time.Millisecond))
}
