package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/testgrid"
)

// The real-host faults of issue 10 (points 4 and 5) on the compose grid TestComposeGrid
// started: each breaks the uplink of the community cd-dgdj-ngj inside its container's network
// namespace (hostfault_test.go), accepts cases there meanwhile and escalates one, restores
// the link, and checks, polling, that every case reached the township's and the district's
// subtree listings once, the escalated one held by the township once, and that the township's
// GET /v1/sites told the truth about the community's feed throughout. It logs how long after
// healing the grid converged; issue 10 asks for 10 s, the test fails past 30 s.

const (
	faultChild        = "cd-dgdj-ngj"
	faultChildService = "cd-dgdj-ngj-1"
	faultParent       = "cd-dgdj"
	faultConverge     = 30 * time.Second // the test's deadline after healing
	faultTarget       = 10 * time.Second // issue 10, point 3
)

// faultCase is one fault of the uplink.
type faultCase struct {
	name string
	// cut is how long the fault stays on.
	cut time.Duration
	// silent: the township hears nothing from the community while the fault is on, and must
	// say so (the lag unknown, the stream down); otherwise it need only stay honest.
	silent bool
	// apply installs the fault and returns what restores the link; skip reasons skip it.
	apply func(t *testing.T, ns *netns) (heal func())
}

// composeFaults runs every fault of the uplink, one after another, on grid g, and logs the
// time each took to converge after healing.
func composeFaults(t *testing.T, g *composeGrid) {
	t.Run("uplink", func(t *testing.T) {
		skipWithoutHostTools(t)
		// The clerk's calls go to the community, the listings to the township and the
		// district: the test's token must be good at all three (it needs root too, to
		// bootstrap from cd-1's own host).
		g.signIn(t, "cd-1", "cd-dgdj-1", faultChildService)
		ns := g.enterNetns(t, faultChildService)
		t.Logf("%s: pid %d, %s %s in %s, gateway %s (spared: the host's way to the published ports)",
			ns.service, ns.pid, ns.iface, ns.addr, ns.subnet, ns.gateway)
		iptablesFault := func(newFault func(*netns) *uplinkFault) func(*testing.T, *netns) func() {
			return func(t *testing.T, ns *netns) func() {
				f := newFault(ns)
				f.install(t)
				return func() {
					if err := f.Off(); err != nil {
						t.Errorf("heal: %v", err)
					}
				}
			}
		}
		var summary []string
		for _, fc := range []faultCase{
			{name: "silent-drop", cut: 30 * time.Second, silent: true, apply: iptablesFault(silentDrop)},
			{name: "loud-reject", cut: 20 * time.Second, silent: true, apply: iptablesFault(loudReject)},
			{name: "one-way", cut: 20 * time.Second, silent: true, apply: iptablesFault(oneWayOut)},
			{name: "village-4g", cut: 20 * time.Second, apply: village4G},
		} {
			t.Run(fc.name, func(t *testing.T) {
				summary = append(summary, fc.name+": "+g.runUplinkFault(t, ns, fc))
			})
		}
		t.Run("flapping", func(t *testing.T) {
			summary = append(summary, "flapping: "+g.runFlappingUplink(t, ns, 3*time.Second, 40*time.Second))
		})
		t.Logf("time to converge after healing (issue 10's target %s, the test's deadline %s):\n  %s",
			faultTarget, faultConverge, strings.Join(summary, "\n  "))
	})
}

// village4G is `tc qdisc add dev eth0 root netem delay 300ms 30ms loss 10%` in the community's
// namespace; where the kernel has no netem, the same delay and loss on what the community sends
// to the grid, made with NFQUEUE (slowlink_test.go), said in the log.
func village4G(t *testing.T, ns *netns) func() {
	q := &netem{ns: ns, args: []string{"delay", "300ms", "30ms", "loss", "10%"}}
	err := q.install(t)
	if err == nil {
		return func() {
			if err := q.Off(); err != nil {
				t.Errorf("heal: %v", err)
			}
		}
	}
	if !errors.Is(err, errNoNetem) {
		t.Fatalf("netem in %s: %v", ns.service, err)
	}
	t.Logf("%v: the 4G link's 300 ms ± 30 ms and 10%% loss are made with NFQUEUE instead", err)
	link := startSlowLink(t, ns, 300*time.Millisecond, 30*time.Millisecond, 0.10)
	return func() {
		if err := link.Stop(); err != nil {
			t.Errorf("heal: %v", err)
		}
	}
}

// runUplinkFault runs one fault of the community's uplink and returns the time to converge
// for the summary.
func (g *composeGrid) runUplinkFault(t *testing.T, ns *netns, fc faultCase) string {
	settle := g.settlement()
	township := g.api("cd-dgdj-1")
	community := g.url(faultChildService)
	g.primeUplink(t, &settle, fc.name)

	heal := fc.apply(t, ns)
	cutAt := time.Now()
	for i := 1; i <= 5; i++ {
		settle.Accepted = append(settle.Accepted, acceptCase(t, community, g.bearer(), fmt.Sprintf("%s-%d", fc.name, i)))
	}
	escalateCase(t, community, g.bearer(), settle.Accepted[3])
	settle.Escalated = []string{settle.Accepted[3]}
	t.Logf("%s: accepted %d cases at %s and escalated %s during the fault", fc.name, 5, faultChild, settle.Accepted[3])

	w := testgrid.WatchFeed(township, faultChild, cutAt, fc.cut)
	if fc.silent {
		if err := w.SilenceProblem(); err != nil {
			t.Errorf("the township's GET /v1/sites during %s (issue 10, point 2): %v", fc.name, err)
		} else {
			t.Logf("the township reported %s's feed silent %s into the fault", faultChild, w.SilentAfter.Round(time.Millisecond))
		}
	} else if err := w.HonestyProblem(); err != nil {
		t.Errorf("the township's GET /v1/sites during %s (issue 10, point 2): %v", fc.name, err)
	}

	heal()
	t.Logf("%s: healed after %s", fc.name, time.Since(cutAt).Round(time.Millisecond))
	return g.convergeAfterHealing(t, settle, ns)
}

// runFlappingUplink cuts the community's uplink silently and restores it every period for
// length, accepting a case every second and escalating every tenth (issue 10, point 5).
func (g *composeGrid) runFlappingUplink(t *testing.T, ns *netns, period, length time.Duration) string {
	settle := g.settlement()
	township := g.api("cd-dgdj-1")
	community := g.url(faultChildService)
	g.primeUplink(t, &settle, "flapping")

	f := silentDrop(ns)
	stop, flapped := make(chan struct{}), make(chan int, 1)
	go func() { flapped <- flap(t, f, period, stop) }()
	stopped := false
	halt := func() int {
		stopped = true
		close(stop)
		return <-flapped // flap leaves the link restored
	}
	defer func() {
		if !stopped { // a failure below: the flapping must end before the test does
			halt()
		}
	}()
	start := time.Now()
	watched := make(chan testgrid.FeedWatch, 1)
	go func() { watched <- testgrid.WatchFeed(township, faultChild, start, length) }()

	tick := time.NewTicker(time.Second)
	for i := 1; time.Since(start) < length; i++ {
		n := acceptCase(t, community, g.bearer(), fmt.Sprintf("flapping-%d", i))
		settle.Accepted = append(settle.Accepted, n)
		if i%10 == 0 {
			escalateCase(t, community, g.bearer(), n)
			settle.Escalated = append(settle.Escalated, n)
		}
		<-tick.C
	}
	tick.Stop()
	cycles := halt()
	t.Logf("flapping: %d cut/restore cycles of %s in %s; %d cases accepted, %d escalated",
		cycles, period, time.Since(start).Round(time.Millisecond), len(settle.Accepted)-1, len(settle.Escalated))
	if err := (<-watched).HonestyProblem(); err != nil {
		t.Errorf("the township's GET /v1/sites while the uplink flapped (issue 10, point 2): %v", err)
	}
	return g.convergeAfterHealing(t, settle, ns)
}

// settlement is where the community's cases must end up: the township's and the district's
// subtree listings.
func (g *composeGrid) settlement() testgrid.Settlement {
	return testgrid.Settlement{Child: faultChild, Parent: faultParent, Ancestors: map[string]testgrid.Getter{
		faultParent: g.api("cd-dgdj-1"),
		"cd":        g.api("cd-1"),
	}}
}

// primeUplink accepts a case before the fault and waits until the township and the district
// list it: the feed stream and the community's connections are then open, which is what a
// silent fault catches. If an earlier fault left them stuck (today's node never notices a
// silently dead stream), it restarts the township's node, saying so, so that each fault is
// measured on its own.
func (g *composeGrid) primeUplink(t *testing.T, settle *testgrid.Settlement, name string) {
	t.Helper()
	settle.Accepted = append(settle.Accepted, acceptCase(t, g.url(faultChildService), g.bearer(), name+"-0"))
	took, err := testgrid.Poll(10*time.Second, settle.Check)
	if err == nil {
		return
	}
	t.Logf("before the fault, a case accepted at %s is not mirrored above it after %s, a fault earlier left the link stuck: "+
		"restarting cd-dgdj-1 so that %s is measured on its own. Not mirrored: %v", faultChild, took.Round(time.Millisecond), name, err)
	g.restart(t, "cd-dgdj-1")
	if took, err := testgrid.Poll(60*time.Second, settle.Check); err != nil {
		t.Fatalf("after restarting the township's node, the case accepted before the fault is still not mirrored after %s: %v", took.Round(time.Millisecond), err)
	}
}

// convergeAfterHealing polls the settlement for faultConverge, then the township's view of the
// feed; it returns the time to converge (or why not) for the summary. When the grid does not
// converge it shows the evidence: what the township says of the feed, and the TCP connections
// between the community (ns) and the township as the kernels see them.
func (g *composeGrid) convergeAfterHealing(t *testing.T, settle testgrid.Settlement, ns *netns) string {
	t.Helper()
	township := g.api("cd-dgdj-1")
	took, err := testgrid.Poll(faultConverge, settle.Check)
	result := fmt.Sprintf("converged %s after healing", took.Round(time.Millisecond))
	if err != nil {
		result = fmt.Sprintf("NOT converged %s after healing", took.Round(time.Millisecond))
		t.Errorf("%s (issue 10: every ancestor holds every case within %s of healing):\n%v", result, faultTarget, err)
		if f, err := testgrid.ChildFeed(township, faultChild); err == nil {
			t.Logf("the township's GET /v1/sites shows %s's feed as %s", faultChild, f)
		}
		if tns := g.enterNetns(t, "cd-dgdj-1"); tns != nil {
			t.Logf("TCP between the township (%s) and the community (%s), township's side (ss -tnoi):\n%s", tns.addr, ns.addr, tns.sockets(ns.addr))
			t.Logf("community's side:\n%s", ns.sockets(tns.addr))
		}
		return result
	}
	if took > faultTarget {
		result += fmt.Sprintf(" (over issue 10's %s)", faultTarget)
	}
	t.Log(result)
	if _, err := testgrid.Poll(testgrid.FeedHeardWindow, func() error {
		f, err := testgrid.ChildFeed(township, faultChild)
		if err != nil {
			return err
		}
		return f.CaughtUp(time.Now())
	}); err != nil {
		t.Errorf("the township's GET /v1/sites after converging (issue 10, point 2): %v", err)
	}
	return result
}

// faultHTTP is the client of the fault tests: a request may cross a lossy interface.
var faultHTTP = &http.Client{Timeout: 10 * time.Second}

// postJSON posts body to url with token as the bearer, retrying (with the same body: requests
// carry an idempotency key) while the node cannot be reached or answers 503, for up to 30 s.
func postJSON(url, token string, body any) (int, []byte, error) {
	var status int
	var data []byte
	_, err := testgrid.Poll(30*time.Second, func() error {
		var err error
		status, data, err = postJSONAs(url, token, body)
		if err == nil && status == http.StatusServiceUnavailable {
			err = fmt.Errorf("503 %s", data)
		}
		return err
	})
	return status, data, err
}

// acceptCase accepts a case at the node at base, signed in with token, and returns its
// number; key makes the request idempotent.
func acceptCase(t *testing.T, base, token, key string) string {
	t.Helper()
	sub := testgrid.Submission(0)
	sub.Title = "户籍证明 " + key
	sub.RequestID = "faulttest-" + key
	status, body, err := postJSON(base+"/v1/cases", token, sub)
	var c api.Case
	if err != nil || status != http.StatusCreated || json.Unmarshal(body, &c) != nil || c.Number == "" {
		t.Fatalf("POST /v1/cases at %s: %d %v %s", base, status, err, body)
	}
	return c.Number
}

// escalateCase escalates a case held at the node at base to its parent, signed in with token
// (the signed-in account is the move's actor). A 409 after a retry is accepted when the case
// is on its way to the parent: the first attempt's answer was lost.
func escalateCase(t *testing.T, base, token, number string) {
	t.Helper()
	status, body, err := postJSON(base+"/v1/cases/"+number+"/escalate", token, map[string]string{"reason": "需街道协调"})
	if err == nil && status == http.StatusConflict {
		var c api.Case
		if code, got := httpGetAs(base+"/v1/cases/"+number, token); code == http.StatusOK && json.Unmarshal(got, &c) == nil &&
			(c.HolderSite == faultParent || c.Transit != nil && c.Transit.To == faultParent) {
			return
		}
	}
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("escalate %s at %s: %d %v %s", number, base, status, err, body)
	}
}
