package node

import (
	"context"
	"fmt"
	"strings"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/pki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The Cluster service's rules: which node may ask what. The caller is the identity its grid
// certificate names (tls.go); a request that names the site it comes from must name that one.
// The endpoints then apply the tree's rules to that site (a feed only to the parent, configuration
// only to a child, a handoff only from a neighbour), so a claim in a request is always the
// certificate's. A refusal is PermissionDenied naming the rule, counted and logged.

// peerRule decides whether caller may make a call to this node.
type peerRule struct {
	name  string
	allow func(n *Node, caller pki.Identity) bool
}

var (
	ruleSameSite = peerRule{"a node of the same site", func(n *Node, c pki.Identity) bool { return c.Site == n.cfg.Site }}
	// ruleNeighbour: the parent or a child (registered, or in gossip naming this site its parent:
	// a new child registers through this very rule).
	ruleNeighbour = peerRule{"the parent site or a child site", func(n *Node, c pki.Identity) bool {
		return c.Site == n.cfg.Parent && c.Site != "" || n.childStatus(c.Site) == siteChild
	}}
	// ruleAbove: a site this one hangs beneath (a read followed down the tree, an audit asked
	// above), or this site.
	ruleAbove = peerRule{"a site above this one", func(n *Node, c pki.Identity) bool {
		return c.Site == n.cfg.Site || n.covers(c.Site, n.cfg.Site)
	}}
	ruleGrid = peerRule{"a node of the grid", func(*Node, pki.Identity) bool { return true }}
)

// clusterRules maps each Cluster method to its rule. A method missing here is refused: a new RPC
// must say who may call it.
var clusterRules = map[string]peerRule{
	pb.Cluster_Apply_FullMethodName:         ruleSameSite,
	pb.Cluster_RaftStatus_FullMethodName:    ruleSameSite,
	pb.Cluster_LinkStatus_FullMethodName:    ruleSameSite,
	pb.Cluster_RegisterSites_FullMethodName: ruleNeighbour,
	pb.Cluster_Handoff_FullMethodName:       ruleNeighbour,
	pb.Cluster_Feed_FullMethodName:          ruleNeighbour,
	pb.Cluster_ConfigSince_FullMethodName:   ruleNeighbour,
	pb.Cluster_ExportSite_FullMethodName:    ruleNeighbour,
	// A password change goes to the account's site from wherever its user signed in; the old
	// password comes along and is checked there.
	pb.Cluster_ChangePassword_FullMethodName: ruleGrid,
	pb.Cluster_PeerGetCase_FullMethodName:    ruleGrid, // the asker authorized its reader
	// A citizen asks anywhere; the query code is checked where the case is.
	pb.Cluster_PeerGetCitizenView_FullMethodName: ruleGrid,
	pb.Cluster_PeerAudit_FullMethodName:          ruleAbove,
	pb.Cluster_RenewCertificate_FullMethodName:   ruleGrid,
	// A township's administrator asks, through the township, for a token of its subtree.
	pb.Cluster_IssueJoinToken_FullMethodName: ruleNeighbour,
}

const clusterPrefix = "/govgrid.v1.Cluster/"

// fromSiter is a request that names the site it comes from.
type fromSiter interface{ GetFromSite() string }

// checkPeer applies method's rule to the caller of ctx; nil lets the call through.
func (n *Node) checkPeer(ctx context.Context, method string) (pki.Identity, error) {
	if !strings.HasPrefix(method, clusterPrefix) || n.peerTLS == nil {
		return pki.Identity{}, nil
	}
	caller, ok := peerIdentity(ctx, n.peerTLS)
	if !ok {
		return caller, n.refusePeer("grpc", "grid certificate", fmt.Sprintf("%s is for the nodes of grid %q: mutual TLS with a certificate of its CA", method, n.cfg.GridName))
	}
	if n.peerTLS.revoked(caller) {
		return caller, n.refusePeer("grpc", "revoked", fmt.Sprintf("%s: the certificate of %s is revoked by the district", method, caller))
	}
	rule, ok := clusterRules[method]
	if !ok {
		return caller, n.refusePeer("grpc", "no rule", fmt.Sprintf("%s has no rule of who may call it", method))
	}
	if !rule.allow(n, caller) {
		return caller, n.refusePeer("grpc", rule.name, fmt.Sprintf("%s: %s may not call it here (site %s): only %s", method, caller, n.cfg.Site, rule.name))
	}
	return caller, nil
}

// checkFromSite refuses a request that names another site than its caller's certificate.
func (n *Node) checkFromSite(caller pki.Identity, req any) error {
	if n.peerTLS == nil {
		return nil
	}
	// An empty from_site is the endpoint's to refuse (a feed's acknowledgements after the first
	// leave it out).
	if r, ok := req.(fromSiter); ok && r.GetFromSite() != "" && r.GetFromSite() != caller.Site {
		return n.refusePeer("grpc", "from_site", fmt.Sprintf("from_site %q is not the site of the caller's certificate (%s)", r.GetFromSite(), caller))
	}
	if r, ok := req.(*pb.ExportSiteRequest); ok && r.GetSite() != caller.Site {
		return n.refusePeer("grpc", "from_site", fmt.Sprintf("site %q: a node restores only its own site, and the caller is %s", r.GetSite(), caller))
	}
	return nil
}

func (n *Node) refusePeer(path, rule, msg string) error {
	n.peerTLS.refuse(path, rule, fmt.Errorf("%s", msg))
	return status.Error(codes.PermissionDenied, msg)
}

// peerRulesUnary applies the rules to a unary call.
func (n *Node) peerRulesUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	caller, err := n.checkPeer(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(info.FullMethod, clusterPrefix) {
		if err := n.checkFromSite(caller, req); err != nil {
			return nil, err
		}
	}
	return handler(ctx, req)
}

// peerRulesStream applies the rules to a stream, and to every message it receives.
func (n *Node) peerRulesStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	caller, err := n.checkPeer(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	if strings.HasPrefix(info.FullMethod, clusterPrefix) && n.peerTLS != nil {
		ss = &checkedStream{ServerStream: ss, n: n, caller: caller}
	}
	return handler(srv, ss)
}

type checkedStream struct {
	grpc.ServerStream
	n      *Node
	caller pki.Identity
}

func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.n.checkFromSite(s.caller, m)
}
