package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/testgrid"
)

// waitUntil polls cond until it holds (testgrid.Eventually) and fails the test, naming what it
// waited for, if it still does not after timeout. It returns how long it waited.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return testgrid.Eventually(t, timeout, func() error {
		if !cond() {
			return errors.New("still waiting for " + what)
		}
		return nil
	})
}

// writeLoad submits cases from several goroutines, round-robin over its targets, as the bearer
// of token, and records every acknowledged (201) case number with the title of the write it
// acknowledged.
type writeLoad struct {
	targets  []*agentProc
	token    string
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once

	mu       sync.Mutex
	acked    map[string]string // guarded by mu: number -> title of the acknowledged write
	dups     []string          // guarded by mu: numbers acknowledged more than once
	ackedBy  []int             // guarded by mu: acknowledgements per target
	failures map[int]int       // guarded by mu: unacknowledged answers by status (0: none came)
	bad      []string          // guarded by mu: answers no failover explains (4xx)
}

// startWriteLoad starts writers goroutines writing to targets as the bearer of token until stop.
func startWriteLoad(targets []*agentProc, token string, writers int) *writeLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &writeLoad{targets: targets, token: token, ctx: ctx, cancel: cancel, acked: map[string]string{},
		ackedBy: make([]int, len(targets)), failures: map[int]int{}}
	for w := range writers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.write(w)
		}()
	}
	return l
}

// write is one writer: target (w+i) mod len(targets) for its i-th write.
func (l *writeLoad) write(w int) {
	for i := 0; l.ctx.Err() == nil; i++ {
		target := (w + i) % len(l.targets)
		title := fmt.Sprintf("e2e load writer %d write %d", w, i)
		status, c, err := submitCase(l.ctx, l.targets[target].baseURL(), l.token, title)
		if l.ctx.Err() != nil {
			return // the answer of a cancelled request says nothing about the grid
		}
		l.record(target, title, status, c, err)
		if status != http.StatusCreated {
			time.Sleep(20 * time.Millisecond) // a refused connection must not spin the CPU
		}
	}
}

func (l *writeLoad) record(target int, title string, status int, c api.Case, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if status == http.StatusCreated && err == nil {
		if prev, ok := l.acked[c.Number]; ok {
			l.dups = append(l.dups, fmt.Sprintf("%s acknowledged for %q and for %q", c.Number, prev, title))
			return
		}
		l.acked[c.Number] = title
		l.ackedBy[target]++
		return
	}
	l.failures[status]++
	if status >= 400 && status < 500 && len(l.bad) < 20 {
		l.bad = append(l.bad, fmt.Sprintf("%s: %v", l.targets[target].name, err))
	}
}

// acks is the number of acknowledged writes so far.
func (l *writeLoad) acks() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// acksFrom is the number of writes acknowledged by the given targets.
func (l *writeLoad) acksFrom(targets ...int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, i := range targets {
		n += l.ackedBy[i]
	}
	return n
}

// stop stops the writers and waits for them; it may be called more than once.
func (l *writeLoad) stop() {
	l.stopOnce.Do(func() {
		l.cancel()
		l.wg.Wait()
		httpTransport.CloseIdleConnections()
	})
}

// checkCasesReadable checks that GET /v1/cases/{number} as the bearer of token on every agent
// answers 200 with the number and title of every acknowledged write, retrying what fails until
// timeout (a restarted node may still be catching up).
func checkCasesReadable(t *testing.T, agents []*agentProc, token string, acked map[string]string, timeout time.Duration) {
	t.Helper()
	numbers := make([]string, 0, len(acked))
	for n := range acked {
		numbers = append(numbers, n)
	}
	sort.Strings(numbers)
	var wg sync.WaitGroup
	errs := make([]string, len(agents))
	for i, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = readAll(a, token, numbers, acked, time.Now().Add(timeout))
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Error(e)
		}
	}
}

// readAll GETs every number from a as the bearer of token with 4 workers, retrying failures
// until deadline, and describes what is still wrong ("" when nothing is).
func readAll(a *agentProc, token string, numbers []string, acked map[string]string, deadline time.Time) string {
	pending := numbers
	var mismatched []string
	var last map[string]string
	_, _ = testgrid.Poll(time.Until(deadline), func() error {
		var mu sync.Mutex
		failed := map[string]string{}
		work := make(chan string)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range work {
					status, c, err := getCase(a.baseURL(), token, n)
					mu.Lock()
					switch {
					case err != nil:
						failed[n] = fmt.Sprintf("status %d: %v", status, err)
					case c.Number != n:
						mismatched = append(mismatched, fmt.Sprintf("GET %s answered case %s", n, c.Number))
					case c.Title != acked[n]:
						mismatched = append(mismatched, fmt.Sprintf("%s holds %q, but was acknowledged for %q", n, c.Title, acked[n]))
					}
					mu.Unlock()
				}
			}()
		}
		for _, n := range pending {
			work <- n
		}
		close(work)
		wg.Wait()
		pending, last = pending[:0:0], failed
		for n := range failed {
			pending = append(pending, n)
		}
		if len(pending) > 0 {
			return fmt.Errorf("%d not readable", len(pending)) // pending and last say which, below
		}
		return nil
	})
	var b strings.Builder
	if len(mismatched) > 0 {
		fmt.Fprintf(&b, "%s: %d acknowledged numbers hold another write (number reused?): %s; ", a.name, len(mismatched), firstN(mismatched, 10))
	}
	if len(pending) > 0 {
		var sample []string
		for n, why := range last {
			sample = append(sample, n+" ("+why+")")
		}
		sort.Strings(sample)
		fmt.Fprintf(&b, "%s: %d of %d acknowledged cases not readable: %s", a.name, len(pending), len(numbers), firstN(sample, 10))
	}
	return b.String()
}

// firstN joins the first n strings of s, saying how many were left out.
func firstN(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(" and %d more", len(s)-n)
}

// checkListingsAgree pages through GET /v1/cases as the bearer of token on every agent until all
// list the same set, without duplicates, holding every acknowledged number; it fails the test if
// they do not by timeout. Listings may hold more than the acknowledged numbers: a write whose
// answer was lost in the kill may have committed.
func checkListingsAgree(t *testing.T, agents []*agentProc, token string, acked map[string]string, timeout time.Duration) {
	t.Helper()
	agreed := 0
	_, err := testgrid.Poll(timeout, func() error {
		var problems []string
		sets := make([]map[string]bool, len(agents))
		for i, a := range agents {
			list, err := listAllCases(a.baseURL(), token)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", a.name, err))
				continue
			}
			sets[i] = map[string]bool{}
			for _, n := range list {
				sets[i][n] = true
			}
			var missing []string
			for n := range acked {
				if !sets[i][n] {
					missing = append(missing, n)
				}
			}
			if len(missing) > 0 {
				sort.Strings(missing)
				problems = append(problems, fmt.Sprintf("%s lists %d cases but misses %d acknowledged: %s", a.name, len(list), len(missing), firstN(missing, 5)))
			}
		}
		for i := 1; i < len(agents) && len(problems) == 0; i++ {
			if onlyA, onlyB := setDiff(sets[0], sets[i]), setDiff(sets[i], sets[0]); len(onlyA)+len(onlyB) > 0 {
				problems = append(problems, fmt.Sprintf("%s and %s list different cases: only on %s: %s; only on %s: %s",
					agents[0].name, agents[i].name, agents[0].name, firstN(onlyA, 5), agents[i].name, firstN(onlyB, 5)))
			}
		}
		if len(problems) > 0 {
			return errors.New(strings.Join(problems, "\n"))
		}
		agreed = len(sets[0])
		return nil
	})
	if err != nil {
		t.Errorf("listings do not agree after %s:\n%v", timeout, err)
		return
	}
	t.Logf("every node lists the same %d cases (%d acknowledged)", agreed, len(acked))
}

// setDiff returns the sorted members of a that b lacks.
func setDiff(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// startSite starts a three-node district site "cd": node 1 alone, nodes 2 and 3 joining node
// 1's gossip address, all with --bootstrap-expect 3, and waits until all are healthy.
func startSite(t *testing.T, prefix string) []*agentProc {
	t.Helper()
	start := time.Now()
	n1 := startAgent(t, agentSpec{Name: prefix + "-1", Site: "cd", Tier: "district", BootstrapExpect: 3})
	n2 := startAgent(t, agentSpec{Name: prefix + "-2", Site: "cd", Tier: "district", BootstrapExpect: 3, Join: []string{n1.addrs.Gossip}})
	n3 := startAgent(t, agentSpec{Name: prefix + "-3", Site: "cd", Tier: "district", BootstrapExpect: 3, Join: []string{n1.addrs.Gossip}})
	nodes := []*agentProc{n1, n2, n3}
	waitAllHealthy(t, 30*time.Second, nodes...)
	t.Logf("three nodes of site cd healthy %s after start", time.Since(start).Round(time.Millisecond))
	return nodes
}

// findLeader asks the agents (skipping skip) for site cd's leader until one names it.
func findLeader(t *testing.T, agents []*agentProc, skip string, timeout time.Duration) string {
	t.Helper()
	var leader string
	waitUntil(t, timeout, "site cd to name a leader", func() bool {
		for _, a := range agents {
			if a.name == skip {
				continue
			}
			if l, err := siteLeader(a.baseURL(), "cd"); err == nil && l != "" && l != skip {
				leader = l
				return true
			}
		}
		return false
	})
	return leader
}

// TestThreeProcessSiteSurvivesKill9 writes to a three-node site from 8 goroutines, kills the
// leader with SIGKILL mid-load, keeps writing through the survivors, restarts the killed node,
// and then checks that no acknowledged case was lost, duplicated or given to another write, on
// every node.
func TestThreeProcessSiteSurvivesKill9(t *testing.T) {
	binary(t)
	testStart := time.Now()
	nodes := startSite(t, "kill9")
	token := signInStaff(t, nodes[0])
	waitToken(t, token, 10*time.Second, nodes...)

	load := startWriteLoad(nodes, token, 8)
	t.Cleanup(load.stop)
	took := waitUntil(t, 20*time.Second, "100 acknowledged writes", func() bool { return load.acks() >= 100 })
	t.Logf("100 writes acknowledged in %s", took.Round(time.Millisecond))

	leader := findLeader(t, nodes, "", 10*time.Second)
	victim := slices.IndexFunc(nodes, func(a *agentProc) bool { return a.name == leader })
	if victim < 0 {
		t.Fatalf("the leader %q is none of the site's nodes", leader)
	}
	var survivors []int
	for i := range nodes {
		if i != victim {
			survivors = append(survivors, i)
		}
	}
	nodes[victim].kill()
	killedAt, survivorAcks := load.acks(), load.acksFrom(survivors...)
	t.Logf("killed the leader %s (SIGKILL) after %d acknowledged writes", leader, killedAt)

	took = waitUntil(t, 30*time.Second, "100 more writes acknowledged by the survivors", func() bool {
		return load.acksFrom(survivors...) >= survivorAcks+100
	})
	t.Logf("the survivors acknowledged 100 more writes in %s; new leader: %s", took.Round(time.Millisecond),
		findLeader(t, nodes, leader, 10*time.Second))

	if victim == 0 {
		t.Logf("note: %s is the gossip seed, started without --join: its restart depends on what "+
			"TestRestartedSeedNodeRejoins checks", leader)
	}
	nodes[victim].restart()
	took = nodes[victim].waitHealthy(20 * time.Second)
	t.Logf("restarted %s: healthy after %s", leader, took.Round(time.Millisecond))
	victimAcks := load.acksFrom(victim)
	waitUntil(t, 15*time.Second, "the restarted node to acknowledge 10 writes", func() bool {
		return load.acksFrom(victim) >= victimAcks+10
	})
	load.stop()

	load.mu.Lock()
	acked := load.acked
	t.Logf("load: %d acknowledged (per node %v), unacknowledged by status (0 = no answer): %v",
		len(acked), load.ackedBy, load.failures)
	for _, d := range load.dups {
		t.Errorf("number acknowledged twice: %s", d)
	}
	for _, b := range load.bad {
		t.Errorf("write refused with a client error: %s", b)
	}
	load.mu.Unlock()

	checkStart := time.Now()
	checkCasesReadable(t, nodes, token, acked, 20*time.Second)
	checkListingsAgree(t, nodes, token, acked, 20*time.Second)
	t.Logf("checked %d cases on 3 nodes in %s; whole test %s", len(acked), time.Since(checkStart).Round(time.Millisecond),
		time.Since(testStart).Round(time.Millisecond))
}

// TestRestartedSeedNodeRejoins kills node 1 of a three-node site, the node the others joined
// and which itself was started without --join, waits until the survivors see it dead, and
// restarts it with the same flags: it must find its site again and become healthy.
func TestRestartedSeedNodeRejoins(t *testing.T) {
	binary(t)
	t.Parallel()
	nodes := startSite(t, "seed")
	seed := nodes[0]
	seed.kill()
	waitUntil(t, 20*time.Second, "the survivors to see "+seed.name+" dead", func() bool {
		var m api.MembersView
		if err := getJSON(nodes[1].baseURL()+"/v1/members", &m); err != nil {
			return false
		}
		for _, mem := range m.Members {
			if mem.Name == seed.name {
				return mem.Status == "dead"
			}
		}
		return false
	})
	findLeader(t, nodes, seed.name, 15*time.Second)
	seed.restart()
	took := seed.waitHealthy(20 * time.Second)
	t.Logf("restarted %s healthy after %s", seed.name, took.Round(time.Millisecond))
}

// caseSeq splits a case number <site>-<yyyymmdd>-<6 digits> into its day and sequence.
func caseSeq(t *testing.T, number string) (day string, seq int) {
	t.Helper()
	parts := strings.Split(number, "-")
	if len(parts) < 3 {
		t.Fatalf("%q is not a case number", number)
	}
	day, seqText := parts[len(parts)-2], parts[len(parts)-1]
	seq, err := strconv.Atoi(seqText)
	if err != nil || len(day) != 8 || len(seqText) != 6 {
		t.Fatalf("%q is not a case number", number)
	}
	return day, seq
}

// TestSingleNodeKill9: a one-node site acknowledges 50 writes, is killed with SIGKILL and
// restarted; all 50 are readable and the next number continues the sequence (never reused).
func TestSingleNodeKill9(t *testing.T) {
	binary(t)
	a := startAgent(t, agentSpec{Name: "solo-1", Site: "cd", Tier: "district"})
	a.waitHealthy(20 * time.Second)
	token := signInStaff(t, a)
	acked := map[string]string{}
	var lastDay string
	for i := 1; i <= 50; i++ {
		title := fmt.Sprintf("e2e single write %d", i)
		status, c, err := submitCase(context.Background(), a.baseURL(), token, title)
		if err != nil {
			t.Fatalf("write %d: status %d: %v", i, status, err)
		}
		if _, dup := acked[c.Number]; dup {
			t.Fatalf("write %d: number %s acknowledged twice", i, c.Number)
		}
		acked[c.Number] = title
		day, seq := caseSeq(t, c.Number)
		if (lastDay == "" || day == lastDay) && seq != i {
			t.Errorf("write %d got number %s, want sequence %d", i, c.Number, i)
		}
		lastDay = day
	}
	a.kill()
	a.restart()
	took := a.waitHealthy(20 * time.Second)
	t.Logf("healthy %s after restart", took.Round(time.Millisecond))
	checkCasesReadable(t, []*agentProc{a}, token, acked, 5*time.Second)
	checkListingsAgree(t, []*agentProc{a}, token, acked, 5*time.Second)

	status, c, err := submitCase(context.Background(), a.baseURL(), token, "e2e single write after restart")
	if err != nil {
		t.Fatalf("write after restart: status %d: %v", status, err)
	}
	if _, reused := acked[c.Number]; reused {
		t.Fatalf("write after restart got %s, a number already acknowledged", c.Number)
	}
	day, seq := caseSeq(t, c.Number)
	switch {
	case day != lastDay:
		t.Logf("the day changed (Asia/Shanghai midnight) during the test: %s is the new day's number", c.Number)
	case seq != 51:
		t.Errorf("write after restart got %s, want sequence 51", c.Number)
	}
}
