package convergebench

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/sitestate"
)

// want is a case accepted during a cut, and the site that must hold it once the grid has
// converged.
type want struct {
	number string
	holder string
	// escalated from the community to the township; handedDown from the township to the
	// community.
	escalated, handedDown bool
}

func (w want) moved() bool { return w.escalated || w.handedDown }

// watch follows one healing until the grid has converged on a set of cases. It reads the
// nodes' committed state directly: the holder's record of each case, the outboxes, and the
// township's and the district leader's mirrors.
//
// A look costs little while nothing has arrived: the holders' records are read until they
// are final (a case that arrived is not moved again), and each mirror is checked in the order
// the cases were committed, stopping at the first one not there yet, so that a feed that has
// not resumed costs one read per mirror, not one per case.
type watch struct {
	g     *grid
	cases []want
	// version is the holder's version of each case once the holder has it, not in transit
	// (0 until then).
	version []uint64
	// township and district are how many cases, from the first, each mirror was seen to hold
	// at their holder's version.
	township, district int
	cursor0            uint64 // the township's cursor of the community's feed at the start

	Convergence
}

func newWatch(g *grid, cases []want) *watch {
	w := &watch{g: g, cases: cases, version: make([]uint64, len(cases))}
	if cur, err := g.township.State().FeedCursors(); err == nil {
		w.cursor0 = cur[communitySite].Cursor
	}
	return w
}

// poll looks at the grid once and records, as times since start, what has converged. It
// returns nil once everything has, or what is still missing.
func (w *watch) poll(start time.Time) error {
	since := func() time.Duration { return max(time.Since(start), time.Nanosecond) }
	var missing []string

	// The holders' records.
	heldMoved, moved, firstUp, firstDown := 0, 0, false, false
	for i, c := range w.cases {
		if w.version[i] == 0 {
			w.version[i] = w.heldVersion(c)
		}
		if c.moved() {
			moved++
			if w.version[i] != 0 {
				heldMoved++
				firstUp = firstUp || c.escalated
				firstDown = firstDown || c.handedDown
			}
		}
	}
	if firstUp && w.FirstUp == 0 {
		w.FirstUp = since()
	}
	if firstDown && w.FirstDown == 0 {
		w.FirstDown = since()
	}
	if w.Handoffs == 0 {
		up, err1 := w.g.community.State().Outbox()
		down, err2 := w.g.township.State().Outbox()
		switch {
		case err1 != nil || err2 != nil:
			missing = append(missing, fmt.Sprintf("outboxes unreadable: %v", errors.Join(err1, err2)))
		case heldMoved == moved && len(up) == 0 && len(down) == 0:
			w.Handoffs = since()
		default:
			missing = append(missing, fmt.Sprintf("handoffs: %d of %d moved cases held by their target; outboxes: %d at the community, %d at the township",
				heldMoved, moved, len(up), len(down)))
		}
	}
	if w.FeedResumed == 0 {
		if cur, err := w.g.township.State().FeedCursors(); err == nil && cur[communitySite].Cursor > w.cursor0 {
			w.FeedResumed = since()
		}
	}

	// The ancestors' mirrors, in commit order.
	district := w.g.district()
	for _, m := range []struct {
		site  string
		state *sitestate.State
		seen  *int
		done  *time.Duration
	}{
		{townshipSite, w.g.township.State(), &w.township, &w.Township},
		{districtSite, stateOf(district), &w.district, &w.District},
	} {
		if *m.done != 0 {
			continue
		}
		why := "no leader"
		for m.state != nil && *m.seen < len(w.cases) {
			if why = w.mirrored(m.state, *m.seen); why != "" {
				break
			}
			*m.seen++
		}
		if *m.seen == len(w.cases) {
			*m.done = since()
			continue
		}
		missing = append(missing, fmt.Sprintf("%s's mirror: %d of %d cases at their holder's version (next: %s)", m.site, *m.seen, len(w.cases), why))
	}

	if len(missing) > 0 {
		return errors.New(strings.Join(missing, "; "))
	}
	w.Converged = max(w.Handoffs, w.Township, w.District)
	return nil
}

// heldVersion is the holder's version of c, or 0 while the holder does not hold it (it has not
// arrived, or is in transit).
func (w *watch) heldVersion(c want) uint64 {
	holder := w.g.community
	if c.holder == townshipSite {
		holder = w.g.township
	}
	got, err := holder.State().GetCase(c.number)
	if err != nil || !benchkit.HeldBy(got, c.holder) {
		return 0
	}
	return got.Version
}

// mirrored says why the i-th case is not yet in the mirror of state at its holder's version,
// or "" when it is.
func (w *watch) mirrored(state *sitestate.State, i int) string {
	c := w.cases[i]
	if w.version[i] == 0 {
		return c.number + " not yet held by " + c.holder
	}
	rec, err := state.MirrorCase(c.number)
	switch {
	case err != nil:
		return c.number + ": " + err.Error()
	case !benchkit.HeldBy(rec.Case, c.holder) || rec.Case.Version != w.version[i]:
		return fmt.Sprintf("%s at version %d held by %s, want version %d held by %s", c.number, rec.Case.Version, rec.Case.HolderSite, w.version[i], c.holder)
	}
	return ""
}

func stateOf(n *node.Node) *sitestate.State {
	if n == nil {
		return nil
	}
	return n.State()
}
