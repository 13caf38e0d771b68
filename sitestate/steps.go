package sitestate

import (
	"context"
	"crypto/ed25519"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/tier"
)

// The steps of a case's life (accept, review, approve, ...; casework/workflow.go decides them):
// one command per step, applied where the case is held. The node resolves the item's rules from
// the catalogue in force when it proposes the step, and they travel in the command, so a replay
// decides the same whatever the catalogue says later.

func init() { register(cmdCaseStep, "case-step", (*machine).applyStep) }

type stepCommand struct {
	Number  string               `json:"number"`
	Request casework.StepRequest `json:"request"`
	Rules   casework.ItemRules   `json:"rules"`
	// Tier and Parent place the site: an accepted case that a higher tier decides climbs to the
	// parent in the same commit.
	Tier   tier.Tier `json:"tier"`
	Parent string    `json:"parent,omitempty"`
	// Grid and ItemName go into the seal of a decision.
	Grid     string `json:"grid,omitempty"`
	ItemName string `json:"item_name,omitempty"`
}

// TakeStep takes step r of case number at this site under the item's rules and returns the
// case. r's site, tier and time are this site's and the command's.
func (s *State) TakeStep(ctx context.Context, number string, r casework.StepRequest, rules casework.ItemRules, itemName string) (*casework.Case, error) {
	r.Site, r.SiteTier = s.cfg.Site, string(s.cfg.Tier)
	// Bad input is refused before it reaches the log (the state machine checks again).
	probe := r
	probe.At = time.Now()
	if err := probe.Validate(); err != nil {
		return nil, err
	}
	r.At = time.Time{}
	// Not retried on a lost leader: a step is not idempotent, and the caller sees it taken if
	// the first attempt committed.
	a, err := s.propose(ctx, cmdCaseStep, &stepCommand{Number: number, Request: r, Rules: rules, Tier: s.cfg.Tier, Parent: s.cfg.Parent,
		Grid: s.cfg.Grid, ItemName: itemName})
	if err != nil {
		return nil, err
	}
	return a.Case, nil
}

func (m *machine) applyStep(tx *replication.Tx, c *stepCommand) (*Answer, error) {
	if a, err := refuseWhileRestoring(tx); a != nil || err != nil {
		return a, err
	}
	cs, ok, err := getCase(tx, c.Number)
	if err != nil {
		return nil, err
	}
	if !ok {
		return m.notHeld(tx, c.Number)
	}
	r := c.Request
	r.At = tx.At()
	before := *cs
	if err := cs.Take(r, c.Rules); err != nil {
		return refuse(refusal(err)), nil
	}
	// The deciding site seals its decision with its key (the same on every replica: ed25519
	// signatures are deterministic).
	if r.Step == casework.StepApprove || r.Step == casework.StepDeny {
		seed, ok, err := tx.Get(keySiteKey)
		if err != nil {
			return nil, err
		}
		if !ok || len(seed) != ed25519.SeedSize {
			return refuse(errorf(CodeUnavailable, "site %s has no seal key yet: try again in a moment", r.Site)), nil
		}
		cs.Seal = casework.SealWith(cs.CertificateOf(c.Grid, c.ItemName, r.Site, r.At, m.loc), ed25519.NewKeyFromSeed(seed))
	}
	unindexCase(tx, &before)
	indexCase(tx, cs)
	// An accepted case decided above this site climbs there by itself; a decided one goes to
	// the collection site the applicant chose.
	to, move := "", casework.MoveEscalate
	switch {
	case r.Step == casework.StepAccept:
		to = relayTarget(cs.DecideTier, c.Tier, c.Parent)
	case collecting(cs):
		if to, move, err = collectionHop(tx, cs, r.Site, c.Parent); err != nil {
			return nil, err
		}
	}
	if relayed, err := m.relay(tx, cs, move, r.Site, to, ""); relayed || err != nil {
		return &Answer{Case: cs}, err
	}
	return &Answer{Case: cs}, m.storeCase(tx, cs, r.Site, "")
}

// collecting says whether cs is decided and due at its collection site: completed and approved.
func collecting(cs *casework.Case) bool {
	return cs.Status == casework.StatusCompleted && cs.Decision == casework.DecisionApproved
}

// collectionHop is the next site on a completed case's way from site to its collection site: the
// child of site that the collection site lies beneath by this site's registry (a hand-down), else
// the parent (up, to a site that knows more of the tree); "" once it is here, or at the top.
func collectionHop(tx *replication.Tx, cs *casework.Case, site, parent string) (string, casework.Move, error) {
	want := cs.CollectionSite()
	if want == site {
		return "", "", nil
	}
	for s, hops := want, 0; s != "" && hops < 4; hops++ {
		var rec SiteRecord
		ok, err := getJSON(tx, siteKey(s), &rec)
		if err != nil || !ok {
			if err != nil {
				return "", "", err
			}
			break
		}
		if rec.Parent == site {
			return s, casework.MoveHandDown, nil
		}
		s = rec.Parent
	}
	return parent, casework.MoveEscalate, nil
}
