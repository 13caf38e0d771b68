package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
)

// A citizen reaches a case with its number and the 6-digit query code printed on the receipt.
// A million codes is few: each node counts failures (unknown numbers and wrong codes alike, so
// the count says nothing of which numbers exist) per number and per client address, and refuses
// a number or an address that failed too often in the last window. The hash of the code stays
// at the sites that keep the case: a node that has no copy asks the holder, passing the code.
const (
	// citizenWindow is how long a failure counts.
	citizenWindow = 15 * time.Minute
	// maxFailuresPerNumber and maxFailuresPerClient are the failures allowed within the window.
	maxFailuresPerNumber = 5
	maxFailuresPerClient = 20
	// maxCitizenKeys bounds the failure table: past it the oldest entries go.
	maxCitizenKeys = 100_000
)

// failureGate counts a node's failed attempts per key (a case number, a user, a client address)
// over the last citizenWindow. An attempt is counted before it is tried (attempt) and forgiven if
// it succeeds (forgive), so that parallel guesses cannot all slip in under the limit.
type failureGate struct {
	mu       sync.Mutex
	failures map[string][]time.Time // key → failure times, oldest first
}

// gateKey is one key of an attempt and the failures it may have had.
type gateKey struct {
	key   string
	limit int
}

// maxGateKey bounds a key's length: a long junk case number costs no more memory than a real one.
const maxGateKey = 80

func gk(prefix, v string, limit int) gateKey {
	k := prefix + v
	if len(k) > maxGateKey {
		k = k[:maxGateKey]
	}
	return gateKey{k, limit}
}

// attempt counts an attempt against keys at now, unless one of them is at its limit already: then
// it counts nothing and says false.
func (g *failureGate) attempt(now time.Time, keys ...gateKey) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failures == nil {
		g.failures = map[string][]time.Time{}
	}
	for _, k := range keys {
		if len(g.recent(k.key, now)) >= k.limit {
			return false
		}
	}
	if len(g.failures) >= maxCitizenKeys {
		g.evict(now)
	}
	for _, k := range keys {
		if _, ok := g.failures[k.key]; ok || len(g.failures) < maxCitizenKeys {
			g.failures[k.key] = append(g.failures[k.key], now)
		}
	}
	return true
}

// forgive takes back the attempt counted at now for keys: it succeeded.
func (g *failureGate) forgive(now time.Time, keys ...gateKey) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range keys {
		ts := g.failures[k.key]
		for i := len(ts) - 1; i >= 0; i-- {
			if ts[i].Equal(now) {
				ts = append(ts[:i], ts[i+1:]...)
				break
			}
		}
		if len(ts) == 0 {
			delete(g.failures, k.key)
		} else {
			g.failures[k.key] = ts
		}
	}
}

// evict makes room in a full table by forgetting keys with a single recent failure: a key that
// failed more (one that may be locked) is kept, so filling the table never unlocks a target.
// When nothing can go, new keys are not counted until some expire. g.mu is held.
func (g *failureGate) evict(now time.Time) {
	for k := range g.failures {
		if len(g.recent(k, now)) <= 1 {
			delete(g.failures, k)
		}
		if len(g.failures) < maxCitizenKeys*9/10 {
			return
		}
	}
}

// recent drops key's failures older than the window and returns the rest; g.mu is held.
func (g *failureGate) recent(key string, now time.Time) []time.Time {
	ts := g.failures[key]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= citizenWindow {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(g.failures, key)
	} else {
		g.failures[key] = ts
	}
	return ts
}

// errNoSuchCase is what a citizen hears for an unknown number and for a wrong code alike.
var errNoSuchCase = fmt.Errorf("%w: no case with this number and query code", sitestate.ErrNotFound)

// CitizenView answers the bearer of a case's query code. Failures count per number at every
// node they pass (so the holder's nodes count every site's failures for a number) and per
// client at the node the client asked (client is "" when a node passes the request on).
func (s *caseService) CitizenView(ctx context.Context, number, code, client string) (*casework.CitizenView, error) {
	now := time.Now()
	keys := []gateKey{gk("n:", number, maxFailuresPerNumber)}
	if client != "" {
		keys = append(keys, gk("c:", client, maxFailuresPerClient))
	}
	if !s.n.citizens.attempt(now, keys...) {
		return nil, sitestate.Errorf(sitestate.CodeRateLimited, "too many failed attempts: try again in %v", citizenWindow)
	}
	v, err := s.citizenView(ctx, number, code)
	if errors.Is(err, sitestate.ErrNotFound) {
		return nil, errNoSuchCase
	}
	s.n.citizens.forgive(now, keys...) // found, or not known yet (unavailable): not a failure
	return v, err
}

func (s *caseService) citizenView(ctx context.Context, number, code string) (*casework.CitizenView, error) {
	if _, _, _, err := casework.ParseNumber(number); err != nil || len(code) != 6 {
		return nil, sitestate.ErrNotFound
	}
	c, err := s.getCase(ctx, number)
	if err != nil {
		return nil, err
	}
	if c.QueryCodeHash != "" { // a copy kept here: the code is checked here
		if !c.CheckQueryCode(s.n.queryCodeSecret(), code) {
			return nil, sitestate.ErrNotFound
		}
		v := c.CitizenView()
		return &v, nil
	}
	// The newest copy came from another site, which keeps the code's hash: it checks the code.
	hops := hopsOf(ctx)
	if hops >= maxCaseHops {
		return nil, fmt.Errorf("%w: case %s: gave up after %d hops following it between sites", replication.ErrNoLeader, number, hops)
	}
	return s.n.askCitizenView(ctx, c.HolderSite, number, code, hops+1)
}

// askCitizenView asks a node of site for a citizen's view of case number.
func (n *Node) askCitizenView(ctx context.Context, site, number, code string, hops int) (*casework.CitizenView, error) {
	return askCaseSite(ctx, n, site, number, hops, func(ctx context.Context, c pb.ClusterClient) (*casework.CitizenView, error) {
		v, err := c.PeerGetCitizenView(ctx, &pb.GetCitizenViewRequest{Number: number, QueryCode: code})
		if err != nil {
			return nil, err
		}
		return grpcapi.CitizenViewFromProto(v), nil
	})
}
