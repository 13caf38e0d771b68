package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

// gridSites is the grid under test: a township with three nodes has leader changes too, and
// the one-node communities are cut off and killed whole.
var gridSites = []testgrid.Site{
	{Code: "cd", Tier: tier.District, Nodes: 3},
	{Code: "cd-dgdj", Tier: tier.Township, Parent: "cd", Nodes: 3},
	{Code: "cd-dgdj-ngj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 1},
	{Code: "cd-dgdj-bgj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 1},
}

// clientsPerSite is how many clients work at each site.
const clientsPerSite = 2

// healTimeout bounds how long after the faults end a client may still be retrying a request:
// past it, the grid has not recovered (a liveness failure).
const healTimeout = 60 * time.Second

// run is one chaos run: the grid, what the clients saw, and what went wrong.
type run struct {
	t    *testing.T
	s    settings
	g    *testgrid.Grid
	hist *history

	sites  map[string]testgrid.Site
	byTier map[tier.Tier][]string
	nodes  []string          // every node name, in start order
	siteOf map[string]string // node name -> site
	addr   map[string]string // node name -> HTTP address (pinned across restarts)
	// token maps a node name to a bearer token of the harness's staff of the node's own site,
	// signed in at that node (testgrid.StaffToken): a clerk of that site. It stays good
	// across the node's restarts (the site's signing key is in its replicated state) and for
	// auth.TokenLife, longer than any run.
	token map[string]string
	// readToken is the district staff's token (the district's first node's token), which
	// every node of the grid verifies once the district's key and account reached it through
	// the configuration feed. Reads "through any node of the grid" use it: the district's
	// subtree is the whole grid, so a node answers every case in full, as it did before every
	// call needed a token. A clerk of a community, whose subtree is that community, would be
	// refused (403) the cases of the rest of the grid, and the reads would check less.
	readToken string

	// retryUntil is set when the faults end: clients give up retrying after it.
	retryUntil atomic.Int64

	mu sync.Mutex
	// numberOf maps each request id to the first number answered for it, ridOf the reverse.
	numberOf map[string]string // guarded by mu
	ridOf    map[string]string // guarded by mu
	codeOf   map[string]string // guarded by mu: request id -> the query code first answered
	known    []string          // guarded by mu: acknowledged numbers, in order
	// seen maps case number -> version -> the last hash an answer showed at that version.
	seen map[string]map[uint64]string // guarded by mu
	// violations found while the clients worked.
	violations []string // guarded by mu
	// unanswered request ids: still without an answer when the clients gave up.
	unanswered []string // guarded by mu

	stats stats
}

// stats count what happened, so a run shows that its faults and clients did something.
type stats struct {
	submits, acked, lostAnswers, retries, reads, reads404 atomic.Int64
	moves, movesDone, movesRefused                        atomic.Int64
	noAnswer, serverErrors, authRefused                   atomic.Int64
	kills, isolations, cuts, msgFaults, leaderChanges     atomic.Int64
}

func runChaos(t *testing.T, s settings) {
	t.Logf("chaos: seed %d, faults for %v; rerun: %s", s.seed, s.duration, s.rerun())
	// Printed outside the test log too: a panic in a node ends the process before the test
	// log is written out.
	fmt.Fprintf(os.Stderr, "chaos: seed %d, faults for %v\n", s.seed, s.duration)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chaos: FAILED with seed %d; rerun: %s", s.seed, s.rerun())
		}
	})
	r := &run{t: t, s: s, hist: newHistory(), sites: map[string]testgrid.Site{}, byTier: map[tier.Tier][]string{},
		siteOf: map[string]string{}, addr: map[string]string{}, token: map[string]string{}, numberOf: map[string]string{}, ridOf: map[string]string{}, codeOf: map[string]string{},
		seen: map[string]map[uint64]string{}}
	r.startGrid()

	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stopLoad(); r.retryUntil.Store(1); wg.Wait() })
	id := 0
	for _, site := range gridSites {
		for range clientsPerSite {
			c := r.newClient(id, site.Code)
			wg.Add(1)
			go func() { defer wg.Done(); c.run(ctx) }()
			id++
		}
	}

	r.nemesis()
	// The faults end: everything is healed, the clients finish what they are retrying.
	stopLoad()
	r.healAll()
	r.retryUntil.Store(time.Now().Add(healTimeout).UnixNano())
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(healTimeout + 30*time.Second):
		t.Fatalf("clients still busy %v after the faults ended", healTimeout+30*time.Second)
	}
	r.check()
	t.Logf("chaos: summary: seed %d, %v of faults: %s", s.seed, s.duration, r.summary())
}

// startGrid starts the grid and waits until the district's registry holds the whole tree (a
// case can climb only to a registered parent).
func (r *run) startGrid() {
	r.g = testgrid.New(r.t, testgrid.Spec{Sites: gridSites, Configure: func(c *node.Config) {
		// Small deliveries, so that message faults hit many of them.
		c.HandoffBatch = 8
	}})
	for _, s := range gridSites {
		r.sites[s.Code] = s
		r.byTier[s.Tier] = append(r.byTier[s.Tier], s.Code)
		for _, n := range r.g.SiteNodes(s.Code) {
			r.nodes = append(r.nodes, n.Name())
			r.siteOf[n.Name()] = s.Code
			r.addr[n.Name()] = httpAddr(n)
			r.token[n.Name()] = testgrid.StaffToken(r.t, n)
		}
	}
	r.readToken = r.token[r.siteNodes("cd")[0]]
	r.g.Eventually(30*time.Second, func() error {
		var v api.SitesView
		if err := getJSON(checkClient, r.addr[r.siteNodes("cd")[0]], "", "/v1/sites", &v); err != nil {
			return err
		}
		reg := map[string]string{}
		for _, s := range v.Sites {
			if s.Registered {
				reg[s.Site] = s.Parent
			}
		}
		for _, s := range gridSites {
			if p, ok := reg[s.Code]; !ok || p != s.Parent {
				return fmt.Errorf("the district has not registered %s under %q yet (%v)", s.Code, s.Parent, reg)
			}
		}
		return nil
	})
	// The district's token is good at a node once the district's key and the account reached
	// its site (the configuration feed): wait for it at every node before the clients read.
	r.g.Eventually(30*time.Second, func() error {
		for _, name := range r.nodes {
			var who struct{ User string }
			if err := getJSON(checkClient, r.addr[name], r.readToken, "/v1/auth/whoami", &who); err != nil {
				return fmt.Errorf("the district's token at %s: %w", name, err)
			}
		}
		return nil
	})
}

// siteNodes returns the names of every node of site, running or not.
func (r *run) siteNodes(site string) []string {
	var out []string
	for _, n := range r.nodes {
		if r.siteOf[n] == site {
			out = append(out, n)
		}
	}
	return out
}

// ancestors returns the sites above site, nearest first.
func (r *run) ancestors(site string) []string {
	var out []string
	for p := r.sites[site].Parent; p != ""; p = r.sites[p].Parent {
		out = append(out, p)
	}
	return out
}

// children returns the sites whose parent is site.
func (r *run) children(site string) []string {
	var out []string
	for _, s := range gridSites {
		if s.Parent == site {
			out = append(out, s.Code)
		}
	}
	return out
}

// violation records a broken invariant seen while the clients work; the test fails with it at
// the end (a client goroutine may not stop the test). It is logged at once too: a node's panic
// may end the process before the end.
func (r *run) violation(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.violationLocked(format, args...)
}

func (r *run) violationLocked(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.t.Logf("chaos: VIOLATION: %s", msg)
	r.violations = append(r.violations, msg)
}

// signInRefused records a 401 or 403 to a client's read or move. Every token the clients
// hold was verified at every node it is sent to before they started (a site's own staff at its
// own nodes, the district's everywhere), for longer than any run, and a move goes to a node of
// the site the case is at, with that site's staff: a refusal means a node no longer knows a
// key or an account it knew. (The one refusal that is the rule, a read at a community of a
// case from elsewhere, is counted apart: see client.read.)
func (r *run) signInRefused(format string, args ...any) {
	r.stats.authRefused.Add(1)
	r.violation("a valid token refused: "+format, args...)
}

// answered records that request id rid was answered with number and query code: the same request
// id must always get the same number and the same query code (a clerk whose receipt was lost
// prints it again from the retry's answer), and two request ids never share a number.
func (r *run) answered(rid, number, code string, attempt int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if first, ok := r.numberOf[rid]; ok {
		if first != number {
			r.violationLocked("request id %s was answered %s, then %s", rid, first, number)
		}
		if want := r.codeOf[rid]; code != want {
			r.violationLocked("request id %s: a retry was answered with query code %q, the first answer with %q (issue 9.2: a retry returns the same case and its query code)",
				rid, code, want)
		}
		return
	}
	switch {
	case code == "" && attempt == 0:
		r.violationLocked("request id %s: the 201 for %s carries no query code", rid, number)
	case code == "":
		r.violationLocked("request id %s: the first answer the clerk got, %s after %d attempts without an answer, carries no query code (issue 9.2: a retry returns the same case and its query code)",
			rid, number, attempt)
	}
	if other, ok := r.ridOf[number]; ok && other != rid {
		r.violationLocked("number %s was given to request ids %s and %s", number, other, rid)
		return
	}
	r.numberOf[rid], r.ridOf[number], r.codeOf[rid] = number, rid, code
	r.known = append(r.known, number)
}

// observe records the version and last hash of a case an answer showed: every one must be a
// prefix of the case's final history, and two answers at one version must agree.
func (r *run) observe(c *casework.Case, where string) {
	if c == nil || c.Number == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.seen[c.Number]
	if m == nil {
		m = map[uint64]string{}
		r.seen[c.Number] = m
	}
	h := c.LastHash()
	if prev, ok := m[c.Version]; ok && prev != h {
		r.violationLocked("case %s at version %d has two histories: an answer from %s ends in %.12s, an earlier one in %.12s (a fork: two holders changed it)",
			c.Number, c.Version, where, h, prev)
		return
	}
	m[c.Version] = h
}

// randomKnown returns an acknowledged case number, or "".
func (r *run) randomKnown(rng *rand.Rand) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.known) == 0 {
		return ""
	}
	// Favour recent cases: they are the ones still moving.
	n := len(r.known)
	if rng.IntN(2) == 0 && n > 20 {
		return r.known[n-1-rng.IntN(20)]
	}
	return r.known[rng.IntN(n)]
}

func (r *run) summary() string {
	s := &r.stats
	faults, calls := r.g.FaultsInjected()
	return fmt.Sprintf("%d submissions (%d acknowledged cases, %d answers treated as lost, %d retries), %d reads (%d not found), %d moves tried (%d committed, %d refused), %d requests without an answer, %d 5xx, %d refused a valid token; nemesis: %d kills, %d isolations, %d cut links, %d message-fault periods (%d faults in %d calls), %d leader changes seen",
		s.submits.Load(), s.acked.Load(), s.lostAnswers.Load(), s.retries.Load(), s.reads.Load(), s.reads404.Load(),
		s.moves.Load(), s.movesDone.Load(), s.movesRefused.Load(), s.noAnswer.Load(), s.serverErrors.Load(), s.authRefused.Load(),
		s.kills.Load(), s.isolations.Load(), s.cuts.Load(), s.msgFaults.Load(), faults, calls, s.leaderChanges.Load())
}

// checkClient is the test's own HTTP client for setup and the final checks: a node that hangs
// fails a check instead of the test.
var checkClient = &http.Client{Timeout: 10 * time.Second}

// getJSON GETs path from the node at addr into out, with token as the bearer unless it is "";
// anything but 200 is an error.
func getJSON(c *http.Client, addr, token, path string, out any) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s at %s: %s", path, addr, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func join(xs []string) string { return strings.Join(xs, ", ") }
