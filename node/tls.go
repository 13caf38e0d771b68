package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/govgrid/govgrid/pki"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Trust between nodes (issue 15). Every node holds a certificate of its grid's CA naming its grid,
// site and node (package pki). Raft's port takes only nodes of the same site; the gRPC port takes
// clients in plain text (the public Cases service, health, reflection) and nodes over mutual TLS,
// and the Cluster service answers only a caller whose certificate's identity its rules allow
// (peer_rules.go). A node checks a peer by the identity its certificate names, never by host
// name: village PCs are dialled by IP and renumbered.

// TLSDirName is the directory of the data dir that holds the node's TLS files (ca.pem, node.pem,
// node.key, grid.secret, and at an issuing district node ca.key), unless Config.TLSDir says
// otherwise.
const TLSDirName = "tls"

// peerTLS is this node's TLS material: the grid's CA and its own certificate, which renewal
// replaces while the node runs, and the grid secret.
type peerTLS struct {
	ca   *pki.CA
	id   pki.Identity
	dir  string
	cert atomic.Pointer[tls.Certificate]
	// secret is the grid secret (dir/grid.secret, pki.GridSecretFile): the key of citizens'
	// query codes (casework.QueryCodeMAC). Nil where the grid has none (a CA made before it).
	secret []byte
	// refused counts connections and calls refused by the rules, by path and rule.
	refused *prometheus.CounterVec
	expiry  prometheus.GaugeFunc
	logger  *slog.Logger
	// isRevoked, set once the node's state is open (Raft's listener takes connections before),
	// tells whether the district revoked an identity (revoke.go); unset: nothing is revoked yet.
	isRevoked atomic.Pointer[func(pki.Identity) bool]
}

// loadPeerTLS reads dir's CA and node certificate and checks that the certificate names this
// node (cfg's grid, site and node).
func loadPeerTLS(cfg Config, dir string) (*peerTLS, error) {
	ca, err := pki.LoadCA(dir)
	if err != nil {
		return nil, fmt.Errorf("TLS files in %s: %w", dir, err)
	}
	if ca.Grid() != cfg.GridName {
		return nil, fmt.Errorf("%s: the CA is grid %q's, and this node's --grid is %q", filepath.Join(dir, pki.CACertFile), ca.Grid(), cfg.GridName)
	}
	cert, id, err := pki.LoadNode(dir, ca)
	if err != nil {
		return nil, fmt.Errorf("TLS files in %s: %w", dir, err)
	}
	if want := (pki.Identity{Grid: cfg.GridName, Site: cfg.Site, Node: cfg.Name}); id != want {
		return nil, fmt.Errorf("%s names %s, but this node is %s: issue it a certificate of its own (govgrid tls cert create, or --join-token)",
			filepath.Join(dir, pki.NodeCertFile), id, want)
	}
	t := &peerTLS{ca: ca, id: id, dir: dir, secret: ca.Secret}
	t.cert.Store(&cert)
	return t, nil
}

// hasNodeCert reports whether dir holds a node certificate.
func hasNodeCert(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, pki.NodeCertFile))
	return err == nil
}

func (t *peerTLS) register(reg prometheus.Registerer) {
	t.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "govgrid_peer_refused_total",
		Help: "Connections and calls from other nodes refused by the trust rules, by path (raft, grpc) and rule.",
	}, []string{"path", "rule"})
	t.expiry = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "govgrid_tls_cert_expiry_seconds",
		Help: "Seconds until this node's grid certificate expires (renewed at two thirds of its life).",
	}, func() float64 { return time.Until(t.leaf().NotAfter).Seconds() })
	reg.MustRegister(t.refused, t.expiry)
}

func (t *peerTLS) leaf() *x509.Certificate { return t.cert.Load().Leaf }

func (t *peerTLS) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return t.cert.Load(), nil
}

func (t *peerTLS) getClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return t.cert.Load(), nil
}

// verify checks a peer's chain against the grid's CA, and that the district has not revoked its
// identity, and returns the identity.
func (t *peerTLS) verify(cs tls.ConnectionState) (pki.Identity, error) {
	id, err := t.ca.Verify(cs.PeerCertificates, time.Now())
	if err == nil && t.revoked(id) {
		return id, fmt.Errorf("the certificate of %s is revoked by the district", id)
	}
	return id, err
}

func (t *peerTLS) revoked(id pki.Identity) bool {
	f := t.isRevoked.Load()
	return f != nil && (*f)(id)
}

// raftServer is the TLS of Raft's listener: only a node of this site, with its certificate.
func (t *peerTLS) raftServer() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: t.getCertificate,
		ClientAuth:     tls.RequireAnyClientCert, // checked by VerifyConnection against the grid's CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			return t.sameSite("raft", cs)
		},
	}
}

// raftClient is the TLS of Raft's dials: the other end must be a node of this site.
func (t *peerTLS) raftClient() *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetClientCertificate: t.getClientCertificate,
		InsecureSkipVerify:   true, // no host names: VerifyConnection checks the grid identity
		VerifyConnection: func(cs tls.ConnectionState) error {
			return t.sameSite("raft", cs)
		},
	}
}

func (t *peerTLS) sameSite(path string, cs tls.ConnectionState) error {
	id, err := t.verify(cs)
	if err != nil {
		t.refuse(path, "grid certificate", err)
		return err
	}
	if id.Site != t.id.Site {
		err := fmt.Errorf("raft: %s is a node of site %q: only nodes of site %q join its Raft group", id, id.Site, t.id.Site)
		t.refuse(path, "same site", err)
		return err
	}
	return nil
}

// grpcServer is the TLS of the gRPC port's encrypted side: a client may come without a
// certificate (a person's tool over TLS), but one that presents a certificate must present the
// grid's; the Cluster service then answers only identities its rules allow.
func (t *peerTLS) grpcServer() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: t.getCertificate,
		ClientAuth:     tls.RequestClientCert,
		NextProtos:     []string{"h2"},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			if _, err := t.verify(cs); err != nil {
				t.refuse("grpc", "grid certificate", err)
				return err
			}
			return nil
		},
	}
}

// grpcClient is the TLS of this node's calls to its peers: the other end must be a node of
// this grid (the rules of what it may ask are the server's).
func (t *peerTLS) grpcClient() *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetClientCertificate: t.getClientCertificate,
		InsecureSkipVerify:   true, // no host names: VerifyConnection checks the grid identity
		NextProtos:           []string{"h2"},
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := t.verify(cs)
			return err
		},
	}
}

// refuse counts and logs a refusal.
func (t *peerTLS) refuse(path, rule string, err error) {
	if t.refused != nil {
		t.refused.WithLabelValues(path, rule).Inc()
	}
	if t.logger != nil {
		t.logger.Warn("refused a peer", "path", path, "rule", rule, "error", err)
	}
}

// peerIdentity is the grid identity of the node that made a gRPC call, if it came over mutual
// TLS with a certificate of this grid.
func peerIdentity(ctx context.Context, t *peerTLS) (pki.Identity, bool) {
	if t == nil {
		return pki.Identity{}, false
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return pki.Identity{}, false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return pki.Identity{}, false
	}
	// The handshake verified the chain (grpcServer's VerifyConnection refuses a connection whose
	// certificate is not the grid's, and a connection made before its peer renewed keeps the
	// identity it proved then): read the identity, without a signature check per call.
	id, err := pki.ParseIdentity(info.State.PeerCertificates[0])
	if id.Grid != t.id.Grid {
		return pki.Identity{}, false
	}
	return id, err == nil
}

// checkMember makes a TLS handshake with a member's Raft address and checks that its certificate
// names this site and the member's name: the leader adds to the site's Raft group only a node
// whose certificate says it belongs there, whatever gossip announced.
func (t *peerTLS) checkMember(ctx context.Context, dial func(ctx context.Context, addr string) (net.Conn, error), addr, name string) error {
	conn, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	cfg := t.raftClient()
	var got pki.Identity
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		id, err := t.verify(cs)
		got = id
		return err
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		err = fmt.Errorf("gossip announces node %q of site %q at %s, and its Raft port has no certificate of the grid: %w", name, t.id.Site, addr, err)
		t.refuse("raft", "member certificate", err)
		return err
	}
	if got.Site != t.id.Site || got.Node != name {
		err := fmt.Errorf("gossip announces node %q of site %q at %s, but its certificate names %s", name, t.id.Site, addr, got)
		t.refuse("raft", "member certificate", err)
		return err
	}
	return nil
}

// raftDialer wraps dial so that Raft's connections speak TLS to nodes of this site.
func (t *peerTLS) raftDialer(dial func(addr string, timeout time.Duration) (net.Conn, error)) func(addr string, timeout time.Duration) (net.Conn, error) {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		conn, err := dial(addr, timeout)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(conn, t.raftClient())
		conn.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return nil, err
		}
		conn.SetDeadline(time.Time{})
		return tc, nil
	}
}

// errNoTrust is the start error of a node with no certificate and no way to get one.
var errNoTrust = errors.New("this node has no grid certificate: start it with --join-token (issued by the district: govgrid token create), " +
	"or, for the first node of a new grid, as a district node of a one-node site that joins nobody (it makes the grid's CA), " +
	"or put ca.pem, node.pem, node.key and grid.secret (govgrid tls cert create) in its TLS directory (--tls-dir, default DATA_DIR/tls); " +
	"--insecure-peers runs without trust between nodes, for a laboratory only")

// CertificateNotAfter is when this node's grid certificate expires (zero without certificates).
func (n *Node) CertificateNotAfter() time.Time {
	if n.peerTLS == nil {
		return time.Time{}
	}
	return n.peerTLS.leaf().NotAfter
}
