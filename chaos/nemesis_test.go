package chaos

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/govgrid/govgrid/netfault"
)

// The gRPC methods between nodes that message faults pick from.
const (
	methodHandoff = "/govgrid.v1.Cluster/Handoff"
	methodApply   = "/govgrid.v1.Cluster/Apply"
)

// messagePolicies are the message faults the nemesis turns on, one at a time.
var messagePolicies = []struct {
	name string
	p    netfault.Policy
}{
	{"handoffs lost, copied and delayed", netfault.Policy{Methods: []string{methodHandoff},
		DropRequest: 0.2, DropReply: 0.2, Duplicate: 0.2, LateDuplicate: 0.2, MaxDelay: 30 * time.Millisecond}},
	{"forwarded writes answered but the answer lost, copied", netfault.Policy{Methods: []string{methodApply},
		DropReply: 0.2, Duplicate: 0.2, LateDuplicate: 0.1, MaxDelay: 20 * time.Millisecond}},
	{"every call: answers lost, copies, delays", netfault.Policy{
		DropReply: 0.1, Duplicate: 0.1, LateDuplicate: 0.1, MaxDelay: 20 * time.Millisecond}},
	{"every call: requests lost, delays", netfault.Policy{DropRequest: 0.15, MaxDelay: 50 * time.Millisecond}},
	{"every call delayed up to 150 ms", netfault.Policy{MaxDelay: 150 * time.Millisecond}},
}

// nemesis injects faults until the run's duration has passed, from the test goroutine (it
// uses the grid's methods, which fail the test on their own errors). One node or link fault
// is in force at a time and is healed before the next, so a majority of every site is always
// reachable again; message faults come and go independently.
func (r *run) nemesis() {
	rng := rand.New(rand.NewPCG(r.s.seed, 0))
	deadline := time.Now().Add(r.s.duration)
	leaders := map[string]string{}
	multi := r.multiNodeSites()
	var single []string
	for _, s := range gridSites {
		if s.Nodes == 1 {
			single = append(single, s.Code)
		}
	}
	stopMessages := r.messageFaults(deadline)
	defer stopMessages()
	for time.Now().Before(deadline) {
		r.watch(leaders)
		sleep(rng, 200*time.Millisecond, 1200*time.Millisecond)
		hold := func() { sleep(rng, 500*time.Millisecond, 4*time.Second) }
		switch k := rng.IntN(100); {
		case k < 22:
			site := multi[rng.IntN(len(multi))]
			if l := r.g.Leader(site); l != nil {
				r.kill(l.Name(), "leader of "+site, hold)
			}
		case k < 40:
			site := multi[rng.IntN(len(multi))]
			var followers []string
			for _, n := range r.g.SiteNodes(site) {
				if l := r.g.Leader(site); l == nil || n.Name() != l.Name() {
					followers = append(followers, n.Name())
				}
			}
			if len(followers) > 0 {
				r.kill(followers[rng.IntN(len(followers))], "a node of "+site, hold)
			}
		case k < 52:
			site := single[rng.IntN(len(single))]
			r.kill(r.siteNodes(site)[0], "the only node of "+site, hold)
		case k < 68:
			name := r.nodes[rng.IntN(len(r.nodes))]
			r.stats.isolations.Add(1)
			r.logf("isolate %s (%s)", name, r.siteOf[name])
			r.g.Isolate(name)
			hold()
			r.heal(r.siteOf[name])
		case k < 84:
			site := multi[rng.IntN(len(multi))]
			l := r.g.Leader(site)
			if l == nil {
				continue
			}
			r.stats.cuts.Add(1)
			r.logf("cut %s, leader of %s, from its followers", l.Name(), site)
			for _, n := range r.siteNodes(site) {
				if n != l.Name() {
					r.g.Partition(l.Name(), n)
				}
			}
			hold()
			r.heal(site)
		default:
			var below []string
			for _, s := range gridSites {
				if s.Parent != "" {
					below = append(below, s.Code)
				}
			}
			site := below[rng.IntN(len(below))]
			parent := r.sites[site].Parent
			r.stats.cuts.Add(1)
			r.logf("cut %s from its parent %s", site, parent)
			for _, a := range r.siteNodes(site) {
				for _, b := range r.siteNodes(parent) {
					r.g.Partition(a, b)
				}
			}
			hold()
			r.heal(site, parent)
		}
	}
	r.watch(leaders)
}

// messageFaults turns message faults on and off in the background until deadline, with its
// own random stream of the seed; the returned function stops it and turns them off.
func (r *run) messageFaults(deadline time.Time) (stop func()) {
	rng := rand.New(rand.NewPCG(r.s.seed, 1))
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		on := false
		for time.Now().Before(deadline) {
			select {
			case <-quit:
				return
			case <-time.After(time.Second + time.Duration(rng.Int64N(int64(4*time.Second)))):
			}
			if on {
				r.g.SetFaults(netfault.Policy{})
				r.logf("message faults off")
			} else {
				mp := messagePolicies[rng.IntN(len(messagePolicies))]
				r.g.SetFaults(mp.p)
				r.stats.msgFaults.Add(1)
				r.logf("message faults on: %s", mp.name)
			}
			on = !on
		}
	}()
	return func() {
		close(quit)
		<-done
		r.g.SetFaults(netfault.Policy{})
	}
}

// kill stops a node abruptly, keeps it down for hold, and starts it again with its data.
func (r *run) kill(name, what string, hold func()) {
	r.stats.kills.Add(1)
	r.logf("kill %s (%s)", name, what)
	r.g.Kill(name)
	hold()
	r.logf("restart %s", name)
	r.g.Restart(name)
	r.g.WaitLeader(r.siteOf[name])
}

// heal restores every cut link and waits until the given sites have a leader every node
// follows: a site that cannot elect one once healed has lost its liveness.
func (r *run) heal(sites ...string) {
	r.g.Heal()
	r.logf("heal")
	for _, s := range sites {
		r.g.WaitLeader(s)
	}
}

// healAll ends every fault and waits for every site.
func (r *run) healAll() {
	r.g.SetFaults(netfault.Policy{})
	r.g.Heal()
	r.logf("faults over: every link healed, message faults off")
	for _, s := range gridSites {
		r.g.WaitLeader(s.Code)
	}
	r.checkRunning()
}

// watch counts leader changes and fails the test if a node stopped on its own.
func (r *run) watch(leaders map[string]string) {
	r.checkRunning()
	for _, site := range r.multiNodeSites() {
		l := r.g.Leader(site)
		if l == nil {
			continue
		}
		if prev := leaders[site]; prev != "" && prev != l.Name() {
			r.stats.leaderChanges.Add(1)
		}
		leaders[site] = l.Name()
	}
}

// checkRunning fails the test if a node the nemesis did not kill has stopped.
func (r *run) checkRunning() {
	r.t.Helper()
	for _, s := range gridSites {
		for _, n := range r.g.SiteNodes(s.Code) {
			if stoppedOnItsOwn(n) {
				r.t.Fatalf("node %s of %s stopped on its own (invariant 8: only a failing disk may stop a node)", n.Name(), s.Code)
			}
		}
	}
}

func (r *run) multiNodeSites() []string {
	var out []string
	for _, s := range gridSites {
		if s.Nodes > 1 {
			out = append(out, s.Code)
		}
	}
	return out
}

func (r *run) logf(format string, args ...any) {
	r.t.Logf("chaos: %6.1fs %s", time.Since(r.hist.start).Seconds(), fmt.Sprintf(format, args...))
}

// sleep is the nemesis's own pacing: a random time between lo and hi.
func sleep(rng *rand.Rand, lo, hi time.Duration) {
	time.Sleep(lo + time.Duration(rng.Int64N(int64(hi-lo)+1)))
}
