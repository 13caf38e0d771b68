package node

import (
	"context"
	"errors"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/sitestate"
)

// Moves of a case between sites, as a client asks for them: the node resolves and checks the
// target along the tree, then commits the departure (sitestate.State.MoveCase); delivery is the
// handoff sender's business.

// moveTarget resolves and checks where a move sends a case: along a tree edge, to a known site.
func (n *Node) moveTarget(number string, d casework.Departure) (string, error) {
	invalid := func(format string, args ...any) error {
		return sitestate.Errorf(sitestate.CodeInvalid, format, args...)
	}
	switch d.Move {
	case casework.MoveEscalate, casework.MoveRelay:
		if n.cfg.Parent == "" {
			return "", invalid("%s is the district: there is no higher site to %s to", n.cfg.Site, d.Move)
		}
		if d.To != "" && d.To != n.cfg.Parent {
			return "", invalid("%s goes to the parent site %s, not %s: moves go along tree edges", d.Move, n.cfg.Parent, d.To)
		}
		if d.Move == casework.MoveRelay {
			c, err := n.state.GetCase(number)
			if err == nil && n.childStatus(c.CameFrom()) != siteChild {
				return "", sitestate.Errorf(sitestate.CodeConflict,
					"case %s was not received from a lower site: relay forwards cases from below, use escalate", number)
			}
		}
		return n.cfg.Parent, nil
	case casework.MoveHandDown:
		if d.To == "" {
			return "", casework.FieldErrors{{Field: "to_site", Reason: "is required: the child site to hand the case down to"}}
		}
		switch n.childStatus(d.To) {
		case siteChild:
			return d.To, nil
		case siteElsewhere:
			return "", invalid("site %s is not a child of %s: moves go along tree edges", d.To, n.cfg.Site)
		}
		if d.To == n.cfg.Parent {
			return "", invalid("site %s is the parent of %s: hand down goes to a child, use escalate", d.To, n.cfg.Site)
		}
		return "", sitestate.Errorf(sitestate.CodeNotFound, "unknown site %s", d.To)
	case casework.MoveReturn:
		c, err := n.state.GetCase(number)
		if err != nil {
			return "", n.whyNotHeld(number, err)
		}
		from := c.CameFrom()
		if from == "" {
			return "", sitestate.Errorf(sitestate.CodeConflict, "case %s was accepted at %s: there is no site to return it to", number, n.cfg.Site)
		}
		if d.To != "" && d.To != from {
			return "", invalid("return goes back to %s, where the case came from, not %s", from, d.To)
		}
		return from, nil
	}
	return "", casework.FieldErrors{{Field: "move", Reason: "must be escalate, relay, handdown or return"}}
}

// moveCase moves a case this site holds to a neighbouring site.
func (n *Node) moveCase(ctx context.Context, number string, d casework.Departure) (*casework.Case, error) {
	d.Site = n.cfg.Site
	to, err := n.moveTarget(number, d)
	if err != nil {
		return nil, err
	}
	d.To = to
	return n.state.MoveCase(ctx, number, d)
}

// whyNotHeld explains a failed local read of a case this site was asked to change: it was
// handed on (a conflict naming the holder), or it is not here.
func (n *Node) whyNotHeld(number string, err error) error {
	if !errors.Is(err, sitestate.ErrNotFound) {
		return err
	}
	if st, serr := n.state.GetStub(number); serr == nil {
		return sitestate.Errorf(sitestate.CodeConflict, "case %s was handed on to %s: only the holder changes it", number, st.Holder)
	}
	return sitestate.Errorf(sitestate.CodeNotFound, "case %s is not held at %s", number, n.cfg.Site)
}
