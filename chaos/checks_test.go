package chaos

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/casework"
)

// Deadlines of the final checks, once every fault is healed.
const (
	drainTimeout    = 60 * time.Second
	convergeTimeout = 60 * time.Second
	porcupineBudget = 60 * time.Second
	// trimTimeout leaves room for a few rounds of trimming (every 10 s) and acknowledgements.
	trimTimeout = 45 * time.Second
)

// check runs the final checks (see the package doc).
func (r *run) check() {
	t := r.t
	r.checkRunning()
	r.mu.Lock()
	violations, unanswered := r.violations, r.unanswered
	r.mu.Unlock()
	for _, v := range violations {
		t.Errorf("while the clients worked: %s", v)
	}
	if len(unanswered) > 0 {
		t.Errorf("%d request ids were still unanswered %v after every fault was healed (the site did not recover): %s",
			len(unanswered), healTimeout, join(unanswered))
	}
	r.logf("checks: waiting for every outbox to drain")
	r.waitOutboxesEmpty()
	r.logf("checks: waiting for every site's replicas to agree on the cases they hold")
	held := r.waitReplicasAgree()
	final := r.checkHolders(held)
	r.checkSeenArePrefixes(final)
	r.logf("checks: waiting for every mirror to converge")
	r.waitMirrors(final)
	r.logf("checks: waiting for every child to trim what its parent has mirrored")
	r.waitFeedsTrimmed()
	r.checkLinearizable()
	if n := r.stats.acked.Load(); n < 10 {
		t.Errorf("only %d cases were acknowledged: the run proved little", n)
	}
}

// waitOutboxesEmpty waits until no node of any site shows a handoff waiting (GET /v1/sites
// shows the node's replica of its own site's outbox).
func (r *run) waitOutboxesEmpty() {
	r.g.Eventually(drainTimeout, func() error {
		for _, name := range r.nodes {
			var v api.SitesView
			if err := getJSON(checkClient, r.addr[name], "", "/v1/sites", &v); err != nil {
				return err
			}
			own, _ := v.Find(r.siteOf[name])
			for _, o := range own.Outbox {
				if o.Depth > 0 {
					return fmt.Errorf("%s still has %d handoffs waiting for %s", name, o.Depth, o.ToSite)
				}
			}
		}
		return nil
	})
}

// heldCase is a case as a site's listing shows it.
type heldCase struct {
	Version   uint64
	Holder    string
	InTransit bool
	Title     string
}

// listLocal lists every case a node's replica holds (GET /v1/cases?scope=local, all pages).
func (r *run) listLocal(name string) (map[string]heldCase, error) {
	out := map[string]heldCase{}
	token := ""
	for {
		var page api.CasePage
		path := "/v1/cases?scope=local&page_size=500&page_token=" + url.QueryEscape(token)
		if err := getJSON(checkClient, r.addr[name], r.token[name], path, &page); err != nil {
			return nil, err
		}
		for _, c := range page.Cases {
			out[c.Number] = heldCase{Version: c.Version, Holder: c.HolderSite, InTransit: c.Transit != nil, Title: c.Title}
		}
		if token = page.NextPageToken; token == "" {
			return out, nil
		}
	}
}

// waitReplicasAgree waits until every node of each site lists the same cases at the same
// versions, none in transit, and returns each site's cases.
func (r *run) waitReplicasAgree() map[string]map[string]heldCase {
	held := map[string]map[string]heldCase{}
	r.g.Eventually(convergeTimeout, func() error {
		for _, s := range gridSites {
			var first map[string]heldCase
			for i, name := range r.siteNodes(s.Code) {
				cases, err := r.listLocal(name)
				if err != nil {
					return err
				}
				for number, c := range cases {
					if c.InTransit {
						return fmt.Errorf("%s shows %s still in transit", name, number)
					}
				}
				if i == 0 {
					first = cases
				} else if !reflect.DeepEqual(first, cases) {
					return fmt.Errorf("the nodes of %s do not agree on the cases they hold (%d and %d cases)", s.Code, len(first), len(cases))
				}
			}
			held[s.Code] = first
		}
		return nil
	})
	return held
}

// checkHolders checks that every case is held by exactly one site, that every acknowledged
// case is among them, that no request id made two cases, and each case's history and stubs.
// It returns each case's final record, read from its holder.
func (r *run) checkHolders(held map[string]map[string]heldCase) map[string]*casework.Case {
	t := r.t
	holders := map[string][]string{}
	byRID := map[string][]string{}
	for _, site := range sortedKeys(held) {
		for number, c := range held[site] {
			holders[number] = append(holders[number], site)
			if c.Holder != site {
				t.Errorf("case %s is listed by %s as held by %s", number, site, c.Holder)
			}
			if rid, ok := strings.CutPrefix(c.Title, "chaos "); ok {
				byRID[rid] = append(byRID[rid], number)
			}
		}
	}
	for rid, numbers := range byRID {
		if len(numbers) > 1 {
			t.Errorf("request id %s made %d cases: %s", rid, len(numbers), join(numbers))
		}
	}
	r.mu.Lock()
	acked := make(map[string]string, len(r.ridOf))
	for number, rid := range r.ridOf {
		acked[number] = rid
	}
	r.mu.Unlock()
	for _, number := range sortedKeys(acked) {
		switch hs := holders[number]; len(hs) {
		case 0:
			t.Errorf("acknowledged case %s (request id %s) is held by no site: it was lost", number, acked[number])
		case 1:
		default:
			t.Errorf("acknowledged case %s is held by %d sites: %s", number, len(hs), join(hs))
		}
	}
	final := map[string]*casework.Case{}
	for _, number := range sortedKeys(holders) {
		if hs := holders[number]; len(hs) == 1 {
			if c := r.checkCase(number, hs[0]); c != nil {
				final[number] = c
			}
		}
	}
	return final
}

// checkCase reads case number at every node of its holder and checks that they agree, that
// its history verifies with each hop once, and that every site it left keeps a stub pointing
// to the site it handed the case to.
func (r *run) checkCase(number, holder string) *casework.Case {
	t := r.t
	var c *casework.Case
	for _, name := range r.siteNodes(holder) {
		var got casework.Case
		if err := getJSON(checkClient, r.addr[name], r.token[name], "/v1/cases/"+number, &got); err != nil {
			t.Errorf("case %s at %s, a node of its holder: %v", number, name, err)
			return nil
		}
		if c != nil && (got.Version != c.Version || got.LastHash() != c.LastHash()) {
			t.Errorf("the nodes of %s disagree on case %s: version %d (%.12s) and %d (%.12s)",
				holder, number, c.Version, c.LastHash(), got.Version, got.LastHash())
		}
		c = &got
	}
	if err := c.VerifyHistory(); err != nil {
		t.Errorf("case %s held by %s: its history does not verify: %v", number, holder, err)
		return c
	}
	left, err := hops(c)
	if err != nil {
		t.Errorf("case %s held by %s: %v; history: %s", number, holder, err, describeHistory(c))
		return c
	}
	for site, to := range left {
		if site == holder {
			continue
		}
		for _, n := range r.g.SiteNodes(site) {
			got, ok, err := stubAt(n, number)
			switch {
			case err != nil:
				t.Errorf("stub of %s at %s: %v", number, n.Name(), err)
			case !ok:
				t.Errorf("%s handed case %s on to %s but keeps no stub for it (node %s)", site, number, to, n.Name())
			case got != to:
				t.Errorf("%s's stub for case %s points to %s, but the case went from %s to %s (node %s)", site, number, got, site, to, n.Name())
			}
		}
	}
	return c
}

// hops walks a case's history: every move out of a site must be followed at once by exactly one
// arrival at its target (or one refusal, which leaves the case where it was), and the walk
// must end at the holder. It returns, for each site the case left, the site it last went to.
func hops(c *casework.Case) (map[string]string, error) {
	if len(c.History) == 0 || c.History[0].Type != casework.EventSubmitted {
		return nil, fmt.Errorf("history does not start with its submission")
	}
	at := c.History[0].Site
	left := map[string]string{}
	for i := 1; i < len(c.History); i++ {
		e := &c.History[i]
		switch e.Type {
		case casework.EventEscalated, casework.EventRelayed, casework.EventHandedDown, casework.EventReturned:
			if e.FromSite != at {
				return nil, fmt.Errorf("event %d: %s from %s while the case was at %s", e.Seq, e.Type, e.FromSite, at)
			}
			if i+1 == len(c.History) {
				return nil, fmt.Errorf("event %d: %s to %s is the last event, but the case is not in transit", e.Seq, e.Type, e.ToSite)
			}
			next := &c.History[i+1]
			switch {
			case next.Type == casework.EventReceived && next.FromSite == at && next.ToSite == e.ToSite:
				left[at] = e.ToSite
				at = e.ToSite
			case next.Type == casework.EventHandoffRefused && next.ToSite == e.ToSite:
			default:
				return nil, fmt.Errorf("event %d: %s to %s is followed by %s (%s -> %s), not by its arrival or refusal",
					e.Seq, e.Type, e.ToSite, next.Type, next.FromSite, next.ToSite)
			}
			i++
		case casework.EventReceived, casework.EventHandoffRefused:
			return nil, fmt.Errorf("event %d: %s (%s -> %s) without a move before it: a handoff applied twice", e.Seq, e.Type, e.FromSite, e.ToSite)
		}
	}
	if at != c.HolderSite {
		return nil, fmt.Errorf("its history ends at %s, but it is held by %s", at, c.HolderSite)
	}
	return left, nil
}

func describeHistory(c *casework.Case) string {
	var parts []string
	for _, e := range c.History {
		parts = append(parts, fmt.Sprintf("%d:%s@%s(%s->%s)", e.Seq, e.Type, e.Site, e.FromSite, e.ToSite))
	}
	return strings.Join(parts, " ")
}

// checkSeenArePrefixes checks that every version of a case any answer showed is a prefix of the
// case's final history.
func (r *run) checkSeenArePrefixes(final map[string]*casework.Case) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, number := range sortedKeys(r.seen) {
		c, ok := final[number]
		if !ok {
			continue // reported as not held, or held twice
		}
		for v, h := range r.seen[number] {
			switch {
			case v == 0 || v > uint64(len(c.History)):
				r.t.Errorf("case %s: an answer showed version %d, but its final history has %d events (a change was lost)", number, v, len(c.History))
			case c.History[v-1].Hash != h:
				r.t.Errorf("case %s: an answer showed version %d ending in %.12s, but the final history's event %d is %.12s (history rewritten)",
					number, v, h, v, c.History[v-1].Hash)
			}
		}
	}
}

// waitMirrors waits until the holder and every ancestor of it mirror each case at the holder's
// version and last hash, on every node, and every parent's cursor has reached its child's head.
func (r *run) waitMirrors(final map[string]*casework.Case) {
	r.g.Eventually(convergeTimeout, func() error {
		for _, number := range sortedKeys(final) {
			c := final[number]
			for _, site := range append([]string{c.HolderSite}, r.ancestors(c.HolderSite)...) {
				for _, n := range r.g.SiteNodes(site) {
					m, err := mirrorAt(n, number)
					if err != nil {
						return fmt.Errorf("%s's mirror lacks %s held by %s: %v", n.Name(), number, c.HolderSite, err)
					}
					if m.Version != c.Version || m.LastHash != c.LastHash() || m.Holder != c.HolderSite {
						return fmt.Errorf("%s's mirror has %s at version %d held by %s; the holder %s has version %d",
							n.Name(), number, m.Version, m.Holder, c.HolderSite, c.Version)
					}
				}
			}
		}
		for _, s := range gridSites {
			if s.Parent == "" {
				continue
			}
			child := r.g.Leader(s.Code)
			if child == nil {
				return fmt.Errorf("%s has no leader", s.Code)
			}
			head, err := feedHead(child)
			if err != nil {
				return err
			}
			for _, p := range r.g.SiteNodes(s.Parent) {
				cur, err := feedCursor(p, s.Code)
				if err != nil {
					return err
				}
				if cur != head {
					return fmt.Errorf("%s has mirrored %s's feed up to %d of %d", p.Name(), s.Code, cur, head)
				}
			}
		}
		return nil
	})
}

// waitFeedsTrimmed waits until no node of a child site keeps the feed entry its parent has
// mirrored last: a site's feed is a table that must not grow without bound, and it is trimmed
// behind what the parent acknowledged, whichever node leads either site.
func (r *run) waitFeedsTrimmed() {
	r.g.Eventually(trimTimeout, func() error {
		for _, s := range gridSites {
			if s.Parent == "" {
				continue
			}
			p := r.g.Leader(s.Parent)
			if p == nil {
				return fmt.Errorf("%s has no leader", s.Parent)
			}
			cur, err := feedCursor(p, s.Code)
			if err != nil || cur == 0 {
				return err
			}
			for _, n := range r.g.SiteNodes(s.Code) {
				kept, err := feedKeeps(n, cur)
				if err != nil {
					return err
				}
				if kept {
					return fmt.Errorf("%s still keeps feed entry %d, which its parent %s mirrored", n.Name(), cur, s.Parent)
				}
			}
		}
		return nil
	})
}

// checkLinearizable checks each site's client history with porcupine.
func (r *run) checkLinearizable() {
	r.mu.Lock()
	rids := make(map[string]string, len(r.ridOf))
	for number, rid := range r.ridOf {
		rids[number] = rid
	}
	r.mu.Unlock()
	var dir string
	dirFn := func() string {
		if dir == "" {
			dir = artifactDir(r.t, r.s)
		}
		return dir
	}
	bySite := r.hist.bySite(rids)
	for _, site := range sortedKeys(bySite) {
		ops := bySite[site]
		res, err := checkLinearizable(site, ops, porcupineBudget, dirFn)
		switch {
		case err != nil:
			r.t.Error(err)
		case res == porcupine.Unknown:
			r.logf("linearizability of %s's %d operations: porcupine ran out of time (%v), not judged", site, len(ops), porcupineBudget)
		default:
			r.logf("linearizability of %s's %d operations: ok", site, len(ops))
		}
	}
}
