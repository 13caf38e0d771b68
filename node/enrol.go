package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/govgrid/govgrid/api"
	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/pki"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/tier"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Enrolment: how a node gets its certificate. The district issues join tokens; a new node
// started with one (`govgrid agent --join-token T`) dials a district node named in the token over
// TLS, checks that the server's CA is the one the token pins, and redeems the token: the district
// spends one use in its Raft log, signs a certificate for the node's identity and answers it with
// the grid's gossip keys. Certificates are renewed at two thirds of their life through
// Cluster.RenewCertificate, over the mutual TLS the old certificate still opens.
//
// The CA's key is a file (DATA_DIR/tls/ca.key) on the district nodes that issue, never in a Raft
// log: a log, its snapshots, backups and the mirrors would carry it wherever they go. Losing every
// district disk loses the key with the district's state: restore the district from its backup and
// put back ca.key from where the operator keeps it offline (govgrid tls ca create tells); without
// it, make a new CA and reissue every node (the old certificates keep working until they expire).
// The grid secret (DATA_DIR/tls/grid.secret, the key of citizens' query codes) is kept the same
// way, but on every node; it goes to a new node with its certificate. A new CA must keep the old
// grid.secret: a new one leaves the codes of every case accepted before unverifiable.

// JoinTokenPrefix starts every join token: "ggjt1." and base64url of the token's JSON.
const JoinTokenPrefix = "ggjt1."

// DefaultCertLifetime is how long a certificate a district node issues is valid.
const DefaultCertLifetime = 30 * 24 * time.Hour

// joinTokenBody is what a join token carries: where to redeem it and whom to trust there.
type joinTokenBody struct {
	Grid   string   `json:"g"`
	ID     string   `json:"i"`
	Secret string   `json:"s"`
	Pin    string   `json:"p"` // SHA-256 of the CA certificate, hex
	Addrs  []string `json:"a"` // gRPC addresses of the district's nodes
	Site   string   `json:"t,omitempty"`
}

func (b joinTokenBody) encode() string {
	raw, _ := json.Marshal(b)
	return JoinTokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
}

// ParseJoinToken reads a join token and returns its grid (for `govgrid agent`, which takes the
// grid's name from it when --grid is not given).
func ParseJoinToken(s string) (grid string, err error) {
	b, err := parseJoinToken(s)
	return b.Grid, err
}

func parseJoinToken(s string) (joinTokenBody, error) {
	var b joinTokenBody
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), JoinTokenPrefix)
	if !ok {
		return b, fmt.Errorf("--join-token: not a govgrid join token (it starts with %q)", JoinTokenPrefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || json.Unmarshal(raw, &b) != nil || b.ID == "" || b.Secret == "" || len(b.Pin) != 64 || len(b.Addrs) == 0 {
		return b, errors.New("--join-token: the token is damaged (copy it whole)")
	}
	return b, nil
}

func tokenInfo(t *sitestate.JoinToken) api.JoinToken {
	return api.JoinToken{ID: t.ID, Site: t.Site, Parent: t.Parent, Expires: t.Expires, UsesLeft: t.UsesLeft, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, Revoked: t.Revoked, Admitted: t.Admitted}
}

// CreateJoinToken issues a join token at the district: for a node of site (sitestate.AnySite:
// any site), valid for ttl and uses redemptions. The answer carries the token, once.
func (n *Node) CreateJoinToken(ctx context.Context, by *auth.Claims, site string, ttl time.Duration, uses int) (*api.JoinToken, error) {
	if n.cfg.Tier == tier.Township {
		return n.joinTokenFromDistrict(ctx, by, site, ttl, uses)
	}
	if n.cfg.Tier != tier.District {
		return nil, sitestate.Errorf(sitestate.CodeConflict, "%s is a community: join tokens are issued at the district, or at a township for its subtree", n.cfg.Site)
	}
	who := "operator"
	if by != nil {
		who = by.User
	}
	return n.issueJoinToken(ctx, who, site, "", ttl, uses)
}

// issueJoinToken issues a token at the district; parent, if set, is the site a new site it admits
// must hang under.
func (n *Node) issueJoinToken(ctx context.Context, who, site, parent string, ttl time.Duration, uses int) (*api.JoinToken, error) {
	if n.peerTLS == nil {
		return nil, sitestate.Errorf(sitestate.CodeConflict, "this grid runs without certificates (--insecure-peers): there is nothing to join with")
	}
	var fe casework.FieldErrors
	if site != sitestate.AnySite {
		if err := tier.ValidateSiteCode(site); err != nil {
			fe = append(fe, casework.FieldError{Field: "site", Reason: err.Error()})
		}
	}
	if ttl <= 0 || ttl > 30*24*time.Hour {
		fe = append(fe, casework.FieldError{Field: "ttl", Reason: "must be more than 0 and at most 30 days"})
	}
	if uses < 1 || uses > 1000 {
		fe = append(fe, casework.FieldError{Field: "uses", Reason: "must be 1 to 1000"})
	}
	if len(fe) > 0 {
		return nil, fe
	}
	id, secret := randomHex(8), randomHex(24)
	addrs := n.districtAddrs()
	if len(addrs) == 0 {
		addrs = []string{n.meta.GRPC}
	}
	hash := sha256.Sum256([]byte(secret))
	t, err := n.state.IssueJoinToken(ctx, &sitestate.JoinToken{ID: id, Site: site, Parent: parent, SecretHash: hash[:], Expires: time.Now().Add(ttl).UTC(), UsesLeft: uses, CreatedBy: who})
	if err != nil {
		return nil, err
	}
	info := tokenInfo(t)
	info.Token = joinTokenBody{Grid: n.cfg.GridName, ID: id, Secret: secret, Pin: pki.Pin(n.peerTLS.ca.Cert), Addrs: addrs, Site: site}.encode()
	return &info, nil
}

// joinTokenFromDistrict asks the district for a token for a new node of this township or of a new
// site beneath it (Cluster.IssueJoinToken): the district keeps the tokens and the CA.
func (n *Node) joinTokenFromDistrict(ctx context.Context, by *auth.Claims, site string, ttl time.Duration, uses int) (*api.JoinToken, error) {
	if site == sitestate.AnySite || site == "" {
		return nil, casework.FieldErrors{{Field: "site", Reason: "a township issues tokens for itself or one new site beneath it, named"}}
	}
	who := "operator@" + n.cfg.Site
	if by != nil {
		who = by.User + "@" + n.cfg.Site
	}
	req := &pb.IssueJoinTokenRequest{FromSite: n.cfg.Site, Site: site, TtlSeconds: int64(ttl / time.Second), Uses: int32(uses), By: who}
	var errs []error
	for _, addr := range n.districtAddrs() {
		conn, err := n.peers.conn(addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := pb.NewClusterClient(conn).IssueJoinToken(cctx, req)
		cancel()
		if err != nil {
			if c := status.Code(err); c == codes.InvalidArgument || c == codes.PermissionDenied || c == codes.FailedPrecondition {
				return nil, fromRemote(err) // the district's answer
			}
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		var t api.JoinToken
		if err := json.Unmarshal(res.GetTokenJson(), &t); err != nil {
			return nil, err
		}
		return &t, nil
	}
	return nil, sitestate.Errorf(sitestate.CodeUnavailable, "no district node answered (the token is issued there): %v", errors.Join(errs...))
}

// IssueJoinToken issues, at the district, a token a township asked for (Cluster, mutual TLS: the
// caller's certificate is the township's, checked by the peer rules).
func (e *certEndpoint) IssueJoinToken(ctx context.Context, req *pb.IssueJoinTokenRequest) (*pb.IssueJoinTokenResponse, error) {
	n := e.n
	if n.cfg.Tier != tier.District {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is not the district: join tokens are issued there", n.cfg.Site)
	}
	from, site := req.GetFromSite(), req.GetSite()
	if err := tier.ValidateSiteCode(site); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "site: %v", err)
	}
	parent := from
	if site != from {
		// A new site beneath the township: not one registered elsewhere.
		recs, err := n.state.Sites()
		if err != nil {
			return nil, grpcapi.Err(err)
		}
		for _, r := range recs {
			if r.Code == site && r.Parent != from {
				return nil, status.Errorf(codes.PermissionDenied, "site %s hangs under %s, not under %s: a township issues tokens for its own subtree", site, r.Parent, from)
			}
		}
	} else {
		parent = ""
	}
	t, err := n.issueJoinToken(ctx, clip(req.GetBy(), 128), site, parent, time.Duration(req.GetTtlSeconds())*time.Second, int(req.GetUses()))
	if err != nil {
		return nil, grpcapi.Err(err)
	}
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	return &pb.IssueJoinTokenResponse{TokenJson: b}, nil
}

// JoinTokens lists the district's join tokens.
func (n *Node) JoinTokens() ([]api.JoinToken, error) {
	if n.cfg.Tier != tier.District {
		return nil, sitestate.Errorf(sitestate.CodeConflict, "%s is not the district: join tokens are kept there", n.cfg.Site)
	}
	ts, err := n.state.JoinTokens()
	if err != nil {
		return nil, err
	}
	out := make([]api.JoinToken, 0, len(ts))
	for i := range ts {
		out = append(out, tokenInfo(&ts[i]))
	}
	return out, nil
}

// RevokeJoinToken stops a join token from admitting anyone more.
func (n *Node) RevokeJoinToken(ctx context.Context, by *auth.Claims, id string) (*api.JoinToken, error) {
	if n.cfg.Tier != tier.District {
		return nil, sitestate.Errorf(sitestate.CodeConflict, "%s is not the district: join tokens are kept there", n.cfg.Site)
	}
	t, err := n.state.RevokeJoinToken(ctx, id)
	if err != nil {
		return nil, err
	}
	info := tokenInfo(t)
	return &info, nil
}

// enrolmentServer serves Enrolment over TLS.
type enrolmentServer struct {
	pb.UnimplementedEnrolmentServer
	n *Node
}

// RedeemJoinToken admits a new node: see the package comment above.
func (e *enrolmentServer) RedeemJoinToken(ctx context.Context, req *pb.RedeemJoinTokenRequest) (*pb.NodeCertificate, error) {
	n := e.n
	if p, ok := peer.FromContext(ctx); !ok || p.AuthInfo == nil || p.AuthInfo.AuthType() != "tls" {
		return nil, status.Error(codes.PermissionDenied, "a join token is redeemed over TLS only: its secret never travels in plain text")
	}
	if n.peerTLS == nil || n.peerTLS.ca.Key == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s holds no CA key: redeem the token at a district node that issues certificates", n.cfg.Name)
	}
	cfg := Config{Name: req.GetNode(), Site: req.GetSite(), Tier: tier.Tier(req.GetTier()), Parent: req.GetParent()}
	if cfg.Name == "" || len(cfg.Name) > 64 || strings.ContainsAny(cfg.Name, "/?# ") {
		return nil, status.Error(codes.InvalidArgument, "node: a name of 1 to 64 characters without / ? # or spaces is required")
	}
	if err := tier.ValidateSiteCode(cfg.Site); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "site: %v", err)
	}
	if err := tier.ValidatePlacement(cfg.Tier, cfg.Parent, ""); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	pub, err := x509.ParsePKIXPublicKey(req.GetPublicKey())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "public_key: not a PKIX public key: %v", err)
	}
	if n.isRevoked(pki.Identity{Grid: n.cfg.GridName, Site: cfg.Site, Node: cfg.Name}) {
		return nil, status.Errorf(codes.PermissionDenied, "node %s of site %s is revoked: a replacement node takes a new name", cfg.Name, cfg.Site)
	}
	// Checked on this node's copy first, so that guessed tokens cost no write to the district's log.
	if ok, err := n.state.CheckJoinTokenSecret(req.GetTokenId(), req.GetSecret()); err != nil {
		return nil, grpcapi.Err(err)
	} else if !ok {
		n.Audit(sitestate.AuditTrustChanged, "", peerAddr(ctx), "join-token/"+clip(req.GetTokenId(), 32), "refused: not a token of this grid, or a wrong secret")
		return nil, status.Error(codes.PermissionDenied, "join token: not one this grid issued, or a wrong secret")
	}
	if _, err := n.state.SpendJoinToken(ctx, req.GetTokenId(), req.GetSecret(), cfg.Site, cfg.Parent, cfg.Name); err != nil {
		return nil, grpcapi.Err(err)
	}
	der, err := n.peerTLS.ca.Issue(pki.Identity{Grid: n.cfg.GridName, Site: cfg.Site, Node: cfg.Name}, pub, n.certLifetime())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "signing the certificate: %v", err)
	}
	n.logger.Info("admitted a node with a join token", "token", req.GetTokenId(), "member", cfg.Name, "member_site", cfg.Site)
	n.Audit(sitestate.AuditTrustChanged, "", peerAddr(ctx), "join-token/"+req.GetTokenId(), fmt.Sprintf("admitted node %s of site %s", cfg.Name, cfg.Site))
	return &pb.NodeCertificate{CertPem: pki.CertPEM(der), CaPem: pki.CertPEM(n.peerTLS.ca.Cert.Raw), GossipKeys: n.gossip.keys(), Grid: n.cfg.GridName,
		GridSecret: n.peerTLS.secret}, nil
}

// certEndpoint serves Cluster.RenewCertificate.
type certEndpoint struct{ n *Node }

// RenewCertificate signs a new certificate for the caller's identity (Cluster, mutual TLS).
func (e *certEndpoint) RenewCertificate(ctx context.Context, req *pb.RenewCertificateRequest) (*pb.NodeCertificate, error) {
	n := e.n
	caller, ok := peerIdentity(ctx, n.peerTLS)
	if !ok {
		return nil, status.Error(codes.PermissionDenied, "a certificate is renewed over mutual TLS with the one it replaces")
	}
	if n.peerTLS.ca.Key == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s holds no CA key: renew at a district node that issues certificates", n.cfg.Name)
	}
	pub, err := x509.ParsePKIXPublicKey(req.GetPublicKey())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "public_key: not a PKIX public key: %v", err)
	}
	der, err := n.peerTLS.ca.Issue(caller, pub, n.certLifetime())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "signing the certificate: %v", err)
	}
	return &pb.NodeCertificate{CertPem: pki.CertPEM(der), CaPem: pki.CertPEM(n.peerTLS.ca.Cert.Raw)}, nil
}

func (n *Node) certLifetime() time.Duration {
	if n.cfg.CertLifetime > 0 {
		return n.cfg.CertLifetime
	}
	return DefaultCertLifetime
}

// redeemJoinToken runs before the node starts when it has no certificate and a join token: it
// writes the node's TLS files into dir and the gossip keyring into the data dir.
func redeemJoinToken(cfg *Config, dir string) error {
	b, err := parseJoinToken(cfg.JoinToken)
	if err != nil {
		return err
	}
	if b.Grid != cfg.GridName {
		return fmt.Errorf("--join-token is grid %q's, and this node's --grid is %q", b.Grid, cfg.GridName)
	}
	key, pubDER, err := newNodeKey()
	if err != nil {
		return err
	}
	req := &pb.RedeemJoinTokenRequest{TokenId: b.ID, Secret: b.Secret, Node: cfg.Name, Site: cfg.Site, Tier: string(cfg.Tier), Parent: cfg.Parent, PublicKey: pubDER}
	tlsCfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // the CA is checked against the token's pin below
		NextProtos:         []string{"h2"},
		VerifyConnection: func(cs tls.ConnectionState) error {
			for _, c := range cs.PeerCertificates {
				if pki.Pin(c) == b.Pin {
					ca := &pki.CA{Cert: c}
					_, err := ca.Verify(cs.PeerCertificates, time.Now())
					return err
				}
			}
			return errors.New("the server's CA is not the one the join token pins: this is not the grid that issued it")
		},
	}
	var errs []error
	for _, addr := range b.Addrs {
		ans, err := redeemAt(cfg, addr, tlsCfg, req)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			if status.Code(err) == codes.PermissionDenied || status.Code(err) == codes.InvalidArgument {
				break // the token itself is refused: another district node says the same
			}
			continue
		}
		keyPEM, err := pki.KeyPEM(key)
		if err != nil {
			return err
		}
		secret := ans.GetGridSecret()
		if len(secret) == 0 {
			secret = nil // a grid without a secret (or a district node from before it)
		} else if len(secret) != pki.GridSecretSize {
			return fmt.Errorf("%s: the grid secret answered is %d bytes, not %d", addr, len(secret), pki.GridSecretSize)
		}
		if err := pki.WriteNode(dir, pki.NodeFiles{CA: ans.GetCaPem(), Cert: ans.GetCertPem(), Key: keyPEM, Secret: secret}); err != nil {
			return err
		}
		if keys := ans.GetGossipKeys(); len(keys) > 0 {
			if err := WriteGossipKeyring(cfg.DataDir, keys); err != nil {
				return err
			}
		}
		cfg.Logger.Info("redeemed the join token: this node has its grid certificate", "token", b.ID, "at", addr)
		return nil
	}
	return fmt.Errorf("--join-token: could not redeem it: %w", errors.Join(errs...))
}

func redeemAt(cfg *Config, addr string, tlsCfg *tls.Config, req *pb.RedeemJoinTokenRequest) (*pb.NodeCertificate, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg))}
	if cfg.Network != nil {
		opts = append(opts, grpc.WithContextDialer(cfg.Network.Dial))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return pb.NewEnrolmentClient(conn).RedeemJoinToken(ctx, req)
}

// renewCertificates renews this node's certificate at two thirds of its life: at a district node
// holding the CA's key (itself, if it holds one), through Cluster.RenewCertificate.
func (n *Node) renewCertificates() {
	for {
		leaf := n.peerTLS.leaf()
		life := leaf.NotAfter.Sub(leaf.NotBefore.Add(pki.Backdate))
		wait := time.Until(pki.RenewAt(leaf))
		if wait < 0 {
			wait = 0
		}
		select {
		case <-n.stop:
			return
		case <-time.After(wait):
		}
		if err := n.renewOnce(); err != nil {
			n.logger.Warn("could not renew this node's certificate; trying again", "expires", leaf.NotAfter, "error", err)
			select {
			case <-n.stop:
				return
			case <-time.After(min(time.Minute, max(life/20, time.Second))):
			}
		}
	}
}

func (n *Node) renewOnce() error {
	key, pubDER, err := newNodeKey()
	if err != nil {
		return err
	}
	var certPEM []byte
	if n.peerTLS.ca.Key != nil {
		der, err := n.peerTLS.ca.Issue(n.peerTLS.id, key.Public(), n.certLifetime())
		if err != nil {
			return err
		}
		certPEM = pki.CertPEM(der)
	} else {
		var errs []error
		for _, addr := range n.districtAddrs() {
			ans, err := n.renewAt(addr, pubDER)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", addr, err))
				continue
			}
			certPEM = ans.GetCertPem()
			break
		}
		if certPEM == nil {
			return fmt.Errorf("no district node renewed it: %w", errors.Join(errs...))
		}
	}
	keyPEM, err := pki.KeyPEM(key)
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
		return err
	}
	cert.Certificate = append(cert.Certificate, n.peerTLS.ca.Cert.Raw)
	if id, err := n.peerTLS.ca.Verify([]*x509.Certificate{cert.Leaf}, time.Now()); err != nil || id != n.peerTLS.id {
		return fmt.Errorf("the renewed certificate names %v (%v), not %v", id, err, n.peerTLS.id)
	}
	if err := pki.WriteFile(filepath.Join(n.peerTLS.dir, pki.NodeKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	if err := pki.WriteFile(filepath.Join(n.peerTLS.dir, pki.NodeCertFile), certPEM, 0o644); err != nil {
		return err
	}
	n.peerTLS.cert.Store(&cert)
	n.logger.Info("renewed this node's certificate", "expires", cert.Leaf.NotAfter)
	return nil
}

func (n *Node) renewAt(addr string, pubDER []byte) (*pb.NodeCertificate, error) {
	conn, err := n.peers.conn(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return pb.NewClusterClient(conn).RenewCertificate(ctx, &pb.RenewCertificateRequest{PublicKey: pubDER})
}

// StartsAGrid tells whether cfg is the first node of a new grid: a district node of a one-node
// site (--bootstrap-expect 1) that joins nobody, with no certificate, no CA and no join token.
// Such a node makes the grid's CA, its own certificate and, if none was given, the gossip key, as
// Consul's first server makes its built-in CA: `govgrid agent --tier district` starts a grid with
// trust on, and every later node comes with a join token from it.
func StartsAGrid(cfg Config) bool {
	dir := cfg.tlsDir()
	_, caErr := os.Stat(filepath.Join(dir, pki.CACertFile))
	_, keyringErr := os.Stat(filepath.Join(cfg.DataDir, GossipKeyringFile))
	return !cfg.InsecurePeers && cfg.Tier == tier.District && cfg.BootstrapExpect == 1 && len(cfg.Join) == 0 &&
		cfg.JoinToken == "" && !hasNodeCert(dir) && errors.Is(caErr, os.ErrNotExist) && errors.Is(keyringErr, os.ErrNotExist)
}

// startGrid makes a new grid's CA (with its key and grid secret) and this node's certificate in
// cfg.TLSDir, and a gossip key unless cfg has one.
func startGrid(cfg *Config, logger *slog.Logger) error {
	ca, err := pki.NewCA(cfg.GridName, 10*365*24*time.Hour)
	if err != nil {
		return err
	}
	if err := pki.Provision(cfg.TLSDir, ca, pki.Identity{Grid: cfg.GridName, Site: cfg.Site, Node: cfg.Name}, DefaultCertLifetime, true); err != nil {
		return err
	}
	if len(cfg.GossipKey) == 0 {
		cfg.GossipKey = make([]byte, 32)
		if _, err := rand.Read(cfg.GossipKey); err != nil {
			return err
		}
	}
	logger.Warn("started a new grid: made its CA and this node's certificate; keep a copy of ca.key and grid.secret offline, "+
		"and admit every other node with a join token (govgrid token create)", "grid", cfg.GridName, "tls_dir", cfg.TLSDir, "ca_pin", pki.Pin(ca.Cert))
	return nil
}

// districtAddrs are the gRPC addresses of the district's alive nodes, as gossip shows them: where
// tokens are issued and certificates signed.
func (n *Node) districtAddrs() []string {
	var addrs []string
	for _, m := range n.gossip.members() {
		if m.Status == "alive" && m.Meta.Tier == tier.District && m.Meta.GRPC != "" {
			addrs = append(addrs, m.Meta.GRPC)
		}
	}
	return addrs
}

// newNodeKey makes a node's new private key and its public half as PKIX DER, to be certified.
func newNodeKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := pki.NewKey()
	if err != nil {
		return nil, nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	return key, pubDER, err
}

// peerAddr is the address a gRPC call came from ("" if unknown).
func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// dialContext is the node's dial for a handshake with a peer (its test network, or TCP).
func (n *Node) dialContext(ctx context.Context, addr string) (net.Conn, error) {
	if n.cfg.Network != nil {
		return n.cfg.Network.Dial(ctx, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}
