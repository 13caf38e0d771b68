package node

import (
	"context"

	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/sitestate"
)

// Authorization: the front ends authenticate a request's bearer token and put its claims in the
// request's context (auth.NewContext); the node decides here what the bearer may do, the same for
// HTTP and gRPC. Two rules, both needed:
//
//   - the role matrix (auth.Policy): what someone with these roles may do at all;
//   - the scope: a person acts in their own site's subtree. A community clerk at the community, a
//     township officer at the township and every site beneath it, the district everywhere.
//
// Calls between nodes (the Cluster service) carry no person: the node that took the request
// authorized it.

// errSignInFirst answers a call that needs a signed-in person and came without one.
var errSignInFirst = sitestate.Errorf(sitestate.CodeUnauthorized, "sign in first: POST /v1/auth/login, then Authorization: Bearer <token>")

// authorize checks that the caller of ctx may take action a at site (this site when ""), and
// returns the caller's claims.
func (n *Node) authorize(ctx context.Context, a auth.Action, site string) (*auth.Claims, error) {
	c := auth.FromContext(ctx)
	if c == nil {
		return nil, errSignInFirst
	}
	if err := c.May(a); err != nil {
		return nil, sitestate.Errorf(sitestate.CodeForbidden, "%v", err)
	}
	if site == "" {
		site = n.cfg.Site
	}
	if !n.covers(c.Site, site) {
		return nil, sitestate.Errorf(sitestate.CodeForbidden, "%s works in the subtree of %s, and %s is outside it", c.User, c.Site, site)
	}
	return c, nil
}

// Authorize checks that c may take action a at this site: the front ends ask it for the calls
// that are the site's own (configuration, catalogue, backups, leave, retire, the audit trail).
func (n *Node) Authorize(c *auth.Claims, a auth.Action) error {
	_, err := n.authorize(auth.NewContext(context.Background(), c), a, "")
	return err
}

// covers says whether target is scope's site or beneath it, as this node knows the tree: this
// site's ancestors are the owners of the configuration that reaches it, and the sites beneath it
// are in its registry (both committed in its Raft log). For a site outside this line (a case
// held at the township, or at a sibling village, read by the district's staff at a village) the
// tree gossip shows fills in: parents the registry does not know.
func (n *Node) covers(scope, target string) bool {
	if scope == target {
		return true
	}
	parent := n.registryParents()
	if target == n.cfg.Site || n.beneath(parent, target, n.cfg.Site) {
		// target is here or below: any owner (this site or an ancestor) covers it.
		if book, err := n.accountBook(); err == nil && book.owners[scope] {
			return true
		}
	}
	if n.beneath(parent, target, scope) {
		return true
	}
	for _, m := range n.gossip.members() {
		if _, known := parent[m.Meta.Site]; !known && m.Meta.Site != "" && m.Meta.Site != n.cfg.Site {
			parent[m.Meta.Site] = m.Meta.Parent
		}
	}
	parent[n.cfg.Site] = n.cfg.Parent
	return n.beneath(parent, target, scope)
}

// registryParents maps each site registered beneath this one to its parent.
func (n *Node) registryParents() map[string]string {
	parent := map[string]string{}
	recs, err := n.state.Sites()
	if err != nil {
		return parent
	}
	for _, r := range recs {
		parent[r.Code] = r.Parent
	}
	return parent
}

// beneath says whether site is strictly beneath ancestor by the parents given (the tree has three
// tiers; the walk stops after a few steps whatever the registry says).
func (n *Node) beneath(parent map[string]string, site, ancestor string) bool {
	for s, hops := parent[site], 0; s != "" && hops < 4; s, hops = parent[s], hops+1 {
		if s == ancestor {
			return true
		}
	}
	return false
}

// mayRead checks that the caller may read case c: held in their subtree, or begun there (a
// community sees how the cases it took in went on, wherever they are now).
func (n *Node) mayRead(claims *auth.Claims, c *casework.Case) error {
	if n.covers(claims.Site, c.HolderSite) {
		return nil
	}
	if origin, _, _, err := casework.ParseNumber(c.Number); err == nil && n.covers(claims.Site, origin) {
		return nil
	}
	return sitestate.Errorf(sitestate.CodeForbidden, "%s works in the subtree of %s: case %s is held at %s and began elsewhere",
		claims.User, claims.Site, c.Number, c.HolderSite)
}

// forReader is c as the caller may see it: a role that does not need personal data (supervision)
// reads the applicant's ID number and phone masked.
func forReader(claims *auth.Claims, c *casework.Case) *casework.Case {
	if claims.SeesPersonalData() {
		return c
	}
	masked := *c
	masked.Applicant.IDNumber = casework.MaskIDNumber(c.Applicant.IDNumber)
	masked.Applicant.Phone = casework.MaskPhone(c.Applicant.Phone)
	return &masked
}

// moveActions maps a move to the action it needs.
var moveActions = map[casework.Move]auth.Action{
	casework.MoveEscalate: auth.ActEscalate,
	casework.MoveHandDown: auth.ActHandDown,
	casework.MoveReturn:   auth.ActReturn,
	casework.MoveRelay:    auth.ActRelay,
}
