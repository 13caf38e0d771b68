package node

import (
	"context"
	"errors"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/sitestate"
)

// TakeStep takes a step of the life of a case this site holds (accept, review, approve, ...), for
// a caller whose roles allow the step and whose subtree this site is in. The caller is the step's
// actor, in the first of their roles that allows it; the item's rules come from the catalogue in
// force here (an item the catalogue does not know has none: no materials checked, decided where
// the case says).
func (s *caseService) TakeStep(ctx context.Context, number string, r casework.StepRequest) (*casework.Case, error) {
	a, ok := auth.StepAction(string(r.Step))
	if !ok {
		return nil, casework.FieldErrors{{Field: "step", Reason: "is not a step of a case's life"}}
	}
	claims, err := s.n.authorize(ctx, a, "")
	if err != nil {
		return nil, err
	}
	r.Actor, r.Role = claims.Actor(casework.MaxActor), string(claims.RoleFor(a))
	if s.n.restoring() {
		return nil, errRestoring
	}
	c, err := s.n.state.GetCase(number)
	if err != nil {
		return nil, s.n.whyNotHeld(number, err)
	}
	rules, name, err := s.n.itemRules(c.ItemCode)
	if err != nil {
		return nil, err
	}
	return s.n.state.TakeStep(ctx, number, r, rules, name)
}

// StepsFor says which steps of a case the caller may take now, here: those the case allows at
// this site (casework.Case.StepsAt) that the caller's roles allow.
func (s *caseService) StepsFor(ctx context.Context, number string) (*api.StepsAnswer, error) {
	c, err := s.GetCase(ctx, number) // authorized as a read of the case
	if err != nil {
		return nil, err
	}
	claims := auth.FromContext(ctx)
	ans := &api.StepsAnswer{Number: c.Number, Status: c.Status, HolderSite: c.HolderSite, Steps: []casework.Step{}}
	if c.HolderSite != s.n.cfg.Site {
		return ans, nil
	}
	rules, _, err := s.n.itemRules(c.ItemCode)
	if err != nil {
		return nil, err
	}
	for _, st := range c.StepsAt(rules, s.n.cfg.Site, string(s.n.cfg.Tier), claims.Actor(casework.MaxActor)) {
		if a, ok := auth.StepAction(string(st)); ok && auth.Permits(claims.Roles, a) {
			ans.Steps = append(ans.Steps, st)
		}
	}
	return ans, nil
}

// itemRules are the rules and the name of the catalogue's item code in force here.
func (n *Node) itemRules(code string) (casework.ItemRules, string, error) {
	cat, err := n.Catalog()
	if err != nil {
		if errors.Is(err, sitestate.ErrNotFound) {
			return casework.ItemRules{}, "", nil
		}
		return casework.ItemRules{}, "", err
	}
	if it, ok := cat.Item(code); ok {
		return it.Rules(), it.Name, nil
	}
	return casework.ItemRules{}, "", nil
}
