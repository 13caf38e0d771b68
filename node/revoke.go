package node

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/pki"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/tier"
)

// Revoked certificates. The district revokes a node's identity (a stolen PC, a node taken out
// for good); the revocation is a district configuration document (trust/revoked/<site>/<node>),
// so it reaches every site through its own Raft and holds while the uplink is cut. A revoked
// identity is refused at every TLS handshake (Raft and gRPC, both ends), at every Cluster call on
// a connection made before, at renewal and at redemption; a site's leader removes a revoked node
// from its Raft group. The name cannot be used again: a replacement node takes a new one.

// trustPrefix holds the district's documents of trust; only the district's own endpoints write
// them (the raw configuration endpoint refuses the prefix), so a township cannot revoke a node.
const (
	trustPrefix       = "trust/"
	certRevokedPrefix = trustPrefix + "revoked/"
)

// revokedSet is the identities revoked, by "site/node".
type revokedSet map[string]api.RevokedCertificate

func (n *Node) buildRevoked(view *api.ConfigView) (revokedSet, error) {
	out := revokedSet{}
	for _, d := range view.Docs {
		if !strings.HasPrefix(d.Path, certRevokedPrefix) || !n.ownedByDistrict(d.Owner) {
			continue
		}
		var r api.RevokedCertificate
		if err := json.Unmarshal(d.Value, &r); err != nil {
			n.logger.Warn("a certificate revocation does not decode", "path", d.Path, "error", err)
			continue
		}
		out[r.Site+"/"+r.Node] = r
	}
	return out, nil
}

// ownedByDistrict tells whether a configuration document in force here is the district's: the
// owners in force are the sites of this site's line (three tiers), so the district is this site
// (at the district), the parent (at a township), or the owner that is neither this site nor its
// parent (at a community).
func (n *Node) ownedByDistrict(owner string) bool {
	switch n.cfg.Tier {
	case tier.District:
		return owner == n.cfg.Site
	case tier.Township:
		return owner == n.cfg.Parent
	default:
		return owner != n.cfg.Site && owner != n.cfg.Parent
	}
}

// isRevoked tells whether id's certificates are revoked here. An error reading the configuration
// counts as not revoked (the certificate was checked against the CA already).
func (n *Node) isRevoked(id pki.Identity) bool {
	set, err := n.revoked.get(n, n.buildRevoked)
	if err != nil {
		return false
	}
	_, ok := set[id.Site+"/"+id.Node]
	return ok
}

// RevokeCertificate revokes node's identity at site, at the district.
func (n *Node) RevokeCertificate(ctx context.Context, by *auth.Claims, site, node, reason string) (*api.RevokedCertificate, error) {
	if n.cfg.Tier != tier.District {
		return nil, sitestate.Errorf(sitestate.CodeConflict, "%s is not the district: certificates are revoked there", n.cfg.Site)
	}
	var fe casework.FieldErrors
	if err := tier.ValidateSiteCode(site); err != nil {
		fe = append(fe, casework.FieldError{Field: "site", Reason: err.Error()})
	}
	if node == "" || len(node) > 64 || strings.ContainsAny(node, "/?# ") {
		fe = append(fe, casework.FieldError{Field: "node", Reason: "a node name of 1 to 64 characters without / ? # or spaces is required"})
	}
	if strings.TrimSpace(reason) == "" {
		fe = append(fe, casework.FieldError{Field: "reason", Reason: "is required"})
	}
	if len(fe) > 0 {
		return nil, fe
	}
	if site == n.cfg.Site && node == n.cfg.Name {
		return nil, sitestate.Errorf(sitestate.CodeConflict, "a node does not revoke its own certificate: ask another district node")
	}
	who := "operator"
	if by != nil {
		who = by.User
	}
	r := api.RevokedCertificate{Site: site, Node: node, Reason: reason, RevokedAt: time.Now().UTC(), By: who}
	v, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if _, err := n.state.PutConfig(ctx, certRevokedPrefix+site+"/"+node, v, false); err != nil {
		return nil, err
	}
	n.logger.Warn("revoked a node's certificate", "member", node, "member_site", site, "reason", reason)
	return &r, nil
}

// RevokedCertificates lists the identities revoked, as this site knows them.
func (n *Node) RevokedCertificates() ([]api.RevokedCertificate, error) {
	set, err := n.revoked.get(n, n.buildRevoked)
	if err != nil {
		return nil, err
	}
	out := make([]api.RevokedCertificate, 0, len(set))
	for _, r := range set {
		out = append(out, r)
	}
	return out, nil
}
