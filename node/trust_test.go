package node_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/pki"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// trustSites: a district, two townships, a community under the first.
var trustSites = testgrid.Spec{Sites: []testgrid.Site{
	{Code: "cd", Tier: tier.District, Nodes: 1},
	{Code: "cd-a", Tier: tier.Township, Parent: "cd", Nodes: 1},
	{Code: "cd-b", Tier: tier.Township, Parent: "cd", Nodes: 1},
	{Code: "cd-a-1", Tier: tier.Community, Parent: "cd-a", Nodes: 1},
}}

func trustContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantCode(t *testing.T, what string, err error, want codes.Code, says string) {
	t.Helper()
	if status.Code(err) != want || !strings.Contains(err.Error(), says) {
		t.Errorf("%s: %v, want %s saying %q", what, err, want, says)
	}
}

// A plain-text client and a client with another grid's certificate are refused on the gRPC and
// Raft ports; the public Cases service still answers in plain text (the contract's clients).
func TestPeerPortsRefuseStrangers(t *testing.T) {
	g := testgrid.New(t, testgrid.Spec{Sites: trustSites.Sites[:2]})
	township := g.WaitLeader("cd-a")
	addrs := township.Addrs()
	ctx := trustContext(t)

	plain, err := grpc.NewClient(addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	_, err = pb.NewClusterClient(plain).Apply(ctx, &pb.ApplyRequest{Command: []byte{1}})
	wantCode(t, "plain-text Cluster.Apply", err, codes.PermissionDenied, "mutual TLS")
	_, err = pb.NewClusterClient(plain).Handoff(ctx, &pb.HandoffRequest{FromSite: "cd"})
	wantCode(t, "plain-text Cluster.Handoff", err, codes.PermissionDenied, "mutual TLS")
	if _, err := pb.NewCasesClient(plain).GetCase(ctx, &pb.GetCaseRequest{Number: "x"}); status.Code(err) == codes.PermissionDenied && strings.Contains(err.Error(), "mutual TLS") {
		t.Errorf("the public Cases service refused a plain-text client as a peer: %v", err)
	}

	other, err := pki.NewCA("elsewhere", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	stranger := testgrid.ClientTLS(t, other, pki.Identity{Grid: "elsewhere", Site: "cd-a", Node: "cd-a-9"})
	_, err = pb.NewClusterClient(testgrid.DialTLS(t, addrs.GRPC, stranger)).Apply(ctx, &pb.ApplyRequest{Command: []byte{1}})
	if status.Code(err) != codes.Unavailable && status.Code(err) != codes.PermissionDenied {
		t.Errorf("another grid's certificate on the gRPC port: %v, want the handshake refused", err)
	}
	// A CA that calls itself ours, but is not, is no better.
	forged, err := pki.NewCA("testgrid", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	impostor := testgrid.ClientTLS(t, forged, pki.Identity{Grid: "testgrid", Site: "cd-a", Node: "cd-a-9"})
	_, err = pb.NewClusterClient(testgrid.DialTLS(t, addrs.GRPC, impostor)).Apply(ctx, &pb.ApplyRequest{Command: []byte{1}})
	if status.Code(err) != codes.Unavailable && status.Code(err) != codes.PermissionDenied {
		t.Errorf("a forged CA's certificate on the gRPC port: %v, want the handshake refused", err)
	}

	for _, cfg := range []*tls.Config{stranger, {InsecureSkipVerify: true}} {
		conn, err := net.DialTimeout("tcp", addrs.Raft, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		tc := tls.Client(conn, cfg)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		err = tc.Handshake()
		if err == nil {
			// TLS 1.3 finishes the client's side before the server has checked its
			// certificate: the refusal arrives on the first read.
			_, err = tc.Read(make([]byte, 1))
		}
		if err == nil {
			t.Errorf("raft port accepted a connection without a certificate of the site (%v)", cfg.Certificates != nil)
		}
		tc.Close()
	}
	raw, err := net.DialTimeout("tcp", addrs.Raft, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	raw.Write([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err == nil {
		t.Error("raft port answered plain-text bytes")
	}
	raw.Close()

	testgrid.Eventually(t, 5*time.Second, func() error {
		if v := metric(t, township, `govgrid_peer_refused_total{path="grpc",rule="grid certificate"}`); v < 2 {
			return errors.New("gRPC refusals not counted")
		}
		if v := metric(t, township, `govgrid_peer_refused_total{path="raft",rule="grid certificate"}`); v < 1 {
			return errors.New("raft refusals not counted")
		}
		return nil
	})
}

// A node of the grid may do only what its certificate's site may: Raft and forwarding within its
// site, handoffs with its neighbours in its own name, feeds to the parent.
func TestCertificateDecidesWhatAPeerMayDo(t *testing.T) {
	g := testgrid.New(t, trustSites)
	townA, community := g.WaitLeader("cd-a"), g.WaitLeader("cd-a-1")
	waitRegistered(t, g, townA, map[string]string{"cd-a-1": "cd-a"}, 20*time.Second)
	ctx := trustContext(t)
	siteB := pki.Identity{Site: "cd-b", Node: "cd-b-1"}

	// Raft: a certificate of site cd-b is refused at cd-a's Raft port.
	tc, err := tls.Dial("tcp", townA.Addrs().Raft, testgrid.ClientTLS(t, g.CA(), pki.Identity{Grid: "testgrid", Site: "cd-b", Node: "cd-b-1"}))
	if err == nil {
		tc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = tc.Read(make([]byte, 1))
		tc.Close()
	}
	if err == nil {
		t.Error("cd-a's raft port took a node of cd-b")
	}

	toA := pb.NewClusterClient(g.PeerConn(siteB, townA.Addrs().GRPC))
	_, err = toA.Apply(ctx, &pb.ApplyRequest{Command: []byte{1}})
	wantCode(t, "cd-b forwards to cd-a", err, codes.PermissionDenied, "same site")
	_, err = toA.RaftStatus(ctx, &pb.RaftStatusRequest{})
	wantCode(t, "cd-b asks cd-a's raft status", err, codes.PermissionDenied, "same site")
	_, err = toA.Handoff(ctx, &pb.HandoffRequest{FromSite: "cd-b"})
	wantCode(t, "cd-b hands off to its sibling", err, codes.PermissionDenied, "parent site or a child site")
	// The district, cd-a's parent, hands off to cd-a in cd-a-1's name: a forged from_site.
	asDistrict := pb.NewClusterClient(g.PeerConn(pki.Identity{Site: "cd", Node: "cd-9"}, townA.Addrs().GRPC))
	_, err = asDistrict.Handoff(ctx, &pb.HandoffRequest{FromSite: "cd-a-1"})
	wantCode(t, "the district hands off as cd-a-1", err, codes.PermissionDenied, "from_site")

	toCommunity := pb.NewClusterClient(g.PeerConn(siteB, community.Addrs().GRPC))
	_, err = toCommunity.Handoff(ctx, &pb.HandoffRequest{FromSite: "cd-b"})
	wantCode(t, "cd-b hands off to a community not beneath it", err, codes.PermissionDenied, "parent site or a child site")
	feed, err := toCommunity.Feed(ctx)
	if err == nil {
		feed.Send(&pb.FeedAck{FromSite: "cd-b"})
		_, err = feed.Recv()
	}
	wantCode(t, "cd-b pulls cd-a-1's feed", err, codes.PermissionDenied, "parent site or a child site")
	stream, err := toCommunity.ExportSite(ctx, &pb.ExportSiteRequest{Site: "cd-a-1", FromSite: "cd-a-1"})
	if err == nil {
		_, err = stream.Recv()
	}
	wantCode(t, "cd-b exports cd-a-1", err, codes.PermissionDenied, "")

	// cd-a, cd-a-1's parent, may pull its feed in its own name, and not in another's.
	asA := pb.NewClusterClient(g.PeerConn(pki.Identity{Site: "cd-a", Node: "cd-a-7"}, community.Addrs().GRPC))
	feed, err = asA.Feed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := feed.Send(&pb.FeedAck{FromSite: "cd-a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := feed.Recv(); err != nil {
		t.Errorf("the parent's feed: %v", err)
	}
	if err := feed.Send(&pb.FeedAck{FromSite: "cd-b"}); err == nil {
		_, err = feed.Recv()
		for err == nil {
			_, err = feed.Recv()
		}
		wantCode(t, "the parent's feed acknowledged in another's name", err, codes.PermissionDenied, "from_site")
	}

	if v := metric(t, community, `govgrid_peer_refused_total{path="grpc",rule="from_site"}`); v < 1 {
		t.Errorf("from_site refusals counted %v", v)
	}
}

// A node that gossip announces as a node of a site, without a certificate of that site, is never
// added to the site's Raft group.
func TestLeaderAddsOnlyNodesWhoseCertificateNamesTheSite(t *testing.T) {
	g := testgrid.New(t, testgrid.Spec{Sites: trustSites.Sites[:2]})
	leader := g.WaitLeader("cd-a")
	// An impostor: it has the gossip key, but no certificate of cd-a (it runs without trust).
	cfg := g.Config(testgrid.Site{Code: "cd-a", Tier: tier.Township, Parent: "cd", Nodes: 2}, "cd-a-impostor")
	cfg.InsecurePeers = true
	os.RemoveAll(filepath.Join(cfg.DataDir, node.TLSDirName))
	g.StartConfig(cfg)
	testgrid.Eventually(t, 20*time.Second, func() error {
		if metric(t, leader, `govgrid_peer_refused_total{path="raft",rule="member certificate"}`) < 1 {
			return errors.New("the leader has not checked the impostor yet")
		}
		return nil
	})
	servers, err := leader.Raft().Servers()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		if s.ID == "cd-a-impostor" {
			t.Fatalf("the impostor is in cd-a's Raft configuration: %+v", servers)
		}
	}
}

// A join token admits a node of its site once per use, and not after it expired or was revoked;
// the admitted node gets its certificate and the gossip key, and serves its site.
func TestJoinTokens(t *testing.T) {
	g := testgrid.New(t, testgrid.Spec{Sites: trustSites.Sites[:2]})
	district := g.WaitLeader("cd")
	ctx := trustContext(t)
	newNode := func(site testgrid.Site, name, token string) (node.Config, error) {
		cfg := g.Config(site, name)
		os.RemoveAll(filepath.Join(cfg.DataDir, node.TLSDirName))
		cfg.GossipKey, cfg.JoinToken = nil, token
		n, err := node.New(cfg)
		if err == nil {
			n.Close()
		}
		return cfg, err
	}
	village := testgrid.Site{Code: "cd-a-9", Tier: tier.Community, Parent: "cd-a", Nodes: 1}

	once, err := district.CreateJoinToken(ctx, nil, "cd-a-9", time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newNode(testgrid.Site{Code: "cd-a-8", Tier: tier.Community, Parent: "cd-a", Nodes: 1}, "cd-a-8-1", once.Token); err == nil || !strings.Contains(err.Error(), `admits a node of site "cd-a-9"`) {
		t.Errorf("a token of cd-a-9 redeemed for cd-a-8: %v", err)
	}
	cfg := g.Config(village, "cd-a-9-1")
	os.RemoveAll(filepath.Join(cfg.DataDir, node.TLSDirName))
	cfg.GossipKey, cfg.JoinToken = nil, once.Token
	n := g.StartConfig(cfg)
	if got := n.CertificateNotAfter(); got.IsZero() {
		t.Fatal("the admitted node has no certificate")
	}
	if secret, err := pki.LoadGridSecret(filepath.Join(cfg.DataDir, node.TLSDirName)); err != nil || !bytes.Equal(secret, g.CA().Secret) {
		t.Fatalf("the admitted node's grid secret: %x, %v; want the grid's", secret, err)
	}
	g.WaitLeader("cd-a-9")
	waitRegistered(t, g, g.WaitLeader("cd-a"), map[string]string{"cd-a-9": "cd-a"}, 20*time.Second)
	c := submit(t, n, 1)
	if c.HolderSite != "cd-a-9" {
		t.Fatalf("the admitted site holds %q", c.HolderSite)
	}
	if stored, err := n.State().GetCase(c.Number); err != nil || stored.QueryCodeHash != casework.QueryCodeMAC(g.CA().Secret, stored.RequestID, c.QueryCode) {
		t.Fatalf("the admitted site keeps the query code as %+v, %v; want its MAC under the grid secret", stored, err)
	}
	if _, err := newNode(village, "cd-a-9-2", once.Token); err == nil || !strings.Contains(err.Error(), "used up") {
		t.Errorf("a used-up token: %v", err)
	}

	brief, err := district.CreateJoinToken(ctx, nil, sitestate.AnySite, 300*time.Millisecond, 5)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(brief.Expires.Add(10 * time.Millisecond)))
	if _, err := newNode(village, "cd-a-9-3", brief.Token); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired token: %v", err)
	}
	revoked, err := district.CreateJoinToken(ctx, nil, sitestate.AnySite, time.Hour, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := district.RevokeJoinToken(ctx, nil, revoked.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := newNode(village, "cd-a-9-4", revoked.Token); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a revoked token: %v", err)
	}
	if _, err := newNode(village, "cd-a-9-5", strings.Replace(revoked.Token, "ggjt1.", "ggjt1.x", 1)); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("a damaged token: %v", err)
	}
	// A guessed secret is refused on the district node's copy, before anything is written.
	body, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(revoked.Token, node.JoinTokenPrefix))
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatal(err)
	}
	fields["s"] = "0000"
	body, _ = json.Marshal(fields)
	guessed := node.JoinTokenPrefix + base64.RawURLEncoding.EncodeToString(body)
	applied := district.Raft().AppliedIndex()
	if _, err := newNode(village, "cd-a-9-6", guessed); err == nil || !strings.Contains(err.Error(), "wrong secret") {
		t.Errorf("a guessed secret: %v", err)
	}
	if now := district.Raft().AppliedIndex(); now > applied+1 { // an audit batch may commit meanwhile
		t.Errorf("a guessed secret wrote to the district's log: applied %d -> %d", applied, now)
	}
	list, err := district.JoinTokens()
	if err != nil || len(list) != 3 {
		t.Fatalf("tokens listed: %v, %v", list, err)
	}
	for _, tok := range list {
		if tok.Token != "" {
			t.Errorf("the list shows a token's secret: %+v", tok)
		}
	}
}

// Certificates are renewed before they expire while the grid runs, and the grid keeps working
// on the renewed ones.
func TestCertificatesAreRenewedWhileTheGridRuns(t *testing.T) {
	spec := trustSites
	spec.Sites = spec.Sites[:2]
	spec.CertLifetime = 12 * time.Second
	g := testgrid.New(t, spec)
	township := g.WaitLeader("cd-a")
	district := g.WaitLeader("cd")
	first := map[string]time.Time{"cd": district.CertificateNotAfter(), "cd-a": township.CertificateNotAfter()}
	testgrid.Eventually(t, 30*time.Second, func() error {
		for site, n := range map[string]*node.Node{"cd": district, "cd-a": township} {
			if !n.CertificateNotAfter().After(first[site].Add(time.Second)) {
				return errors.New(site + " has not renewed its certificate")
			}
		}
		return nil
	})
	// Past the first certificates' expiry the grid still carries a case up the tree.
	time.Sleep(time.Until(first["cd-a"].Add(time.Second)))
	c := submitDecided(t, township, 1, tier.District)
	waitHeld(t, g, district, c.Number, "cd", 20*time.Second)
}

// A township issues join tokens, through the district, for itself and for new sites beneath it,
// never for a site elsewhere in the tree; the token fixes the new site's parent.
func TestTownshipIssuesJoinTokensForItsSubtree(t *testing.T) {
	g := testgrid.New(t, testgrid.Spec{Sites: trustSites.Sites[:3]})
	townA := g.WaitLeader("cd-a")
	waitRegistered(t, g, g.WaitLeader("cd"), map[string]string{"cd-a": "cd", "cd-b": "cd"}, 20*time.Second)
	ctx := trustContext(t)
	if _, err := townA.CreateJoinToken(ctx, nil, "cd-b", time.Hour, 1); err == nil || !strings.Contains(err.Error(), "hangs under cd") {
		t.Errorf("a township's token for a sibling township: %v", err)
	}
	if _, err := townA.CreateJoinToken(ctx, nil, sitestate.AnySite, time.Hour, 1); err == nil {
		t.Error("a township issued a token for any site")
	}
	tok, err := townA.CreateJoinToken(ctx, nil, "cd-a-7", time.Hour, 2)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Parent != "cd-a" || !strings.HasSuffix(tok.CreatedBy, "@cd-a") {
		t.Fatalf("token %+v: want parent cd-a, created by someone at cd-a", tok)
	}
	wrongParent := testgrid.Site{Code: "cd-a-7", Tier: tier.Community, Parent: "cd-b", Nodes: 1}
	cfg := g.Config(wrongParent, "cd-a-7-x")
	os.RemoveAll(filepath.Join(cfg.DataDir, node.TLSDirName))
	cfg.GossipKey, cfg.JoinToken = nil, tok.Token
	if n, err := node.New(cfg); err == nil {
		n.Close()
		t.Fatal("a token for a site under cd-a admitted one under cd-b")
	} else if !strings.Contains(err.Error(), `admits a site under "cd-a"`) {
		t.Fatalf("wrong parent: %v", err)
	}
	village := testgrid.Site{Code: "cd-a-7", Tier: tier.Community, Parent: "cd-a", Nodes: 1}
	cfg = g.Config(village, "cd-a-7-1")
	os.RemoveAll(filepath.Join(cfg.DataDir, node.TLSDirName))
	cfg.GossipKey, cfg.JoinToken = nil, tok.Token
	g.StartConfig(cfg)
	g.WaitLeader("cd-a-7")
	waitRegistered(t, g, townA, map[string]string{"cd-a-7": "cd-a"}, 20*time.Second)
}

// A node identity the district revokes is refused wherever the revocation has reached: at the Raft
// handshake, on every Cluster call (over a connection made before too), at renewal and at
// redemption; the site's leader removes a revoked node from its Raft group.
func TestRevokedCertificateIsRefusedEverywhere(t *testing.T) {
	g := testgrid.New(t, testgrid.Spec{Sites: []testgrid.Site{
		{Code: "cd", Tier: tier.District, Nodes: 1},
		{Code: "cd-a", Tier: tier.Township, Parent: "cd", Nodes: 2},
	}})
	district, township := g.WaitLeader("cd"), g.WaitLeader("cd-a")
	ctx := trustContext(t)
	stolen := pki.Identity{Site: "cd-a", Node: "cd-a-9"}
	asStolen := pb.NewClusterClient(g.PeerConn(stolen, township.Addrs().GRPC))
	if _, err := asStolen.RaftStatus(ctx, &pb.RaftStatusRequest{}); err != nil {
		t.Fatalf("before the revocation: %v", err)
	}
	if _, err := township.RevokeCertificate(ctx, nil, "cd-a", "cd-a-9", "被盗"); err == nil || !strings.Contains(err.Error(), "not the district") {
		t.Errorf("a township revoked a certificate: %v", err)
	}
	if _, err := district.RevokeCertificate(ctx, nil, "cd-a", "", "x"); err == nil {
		t.Error("a revocation without a node")
	}
	if _, err := district.RevokeCertificate(ctx, nil, "cd-a", "cd-a-9", "被盗 (stolen)"); err != nil {
		t.Fatal(err)
	}
	// The same connection, made before: refused once the revocation reached the township.
	testgrid.Eventually(t, 20*time.Second, func() error {
		_, err := asStolen.RaftStatus(ctx, &pb.RaftStatusRequest{})
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "revoked") {
			return fmt.Errorf("a revoked node's call: %v", err)
		}
		return nil
	})
	tc, err := tls.Dial("tcp", township.Addrs().Raft, testgrid.ClientTLS(t, g.CA(), pki.Identity{Grid: "testgrid", Site: "cd-a", Node: "cd-a-9"}))
	if err == nil {
		tc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = tc.Read(make([]byte, 1))
		tc.Close()
	}
	if err == nil {
		t.Error("a revoked node's Raft handshake was taken")
	}
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(key.Public())
	_, err = pb.NewClusterClient(g.PeerConn(stolen, district.Addrs().GRPC)).RenewCertificate(ctx, &pb.RenewCertificateRequest{PublicKey: pub})
	if c := status.Code(err); c != codes.Unavailable && c != codes.PermissionDenied { // the handshake refuses it
		t.Errorf("a revoked node's renewal: %v", err)
	}

	// A node of the site, revoked, leaves its Raft group.
	var follower *node.Node
	for _, n := range g.SiteNodes("cd-a") {
		if n.Name() != township.Name() {
			follower = n
		}
	}
	if _, err := district.RevokeCertificate(ctx, nil, "cd-a", follower.Name(), "taken out"); err != nil {
		t.Fatal(err)
	}
	testgrid.Eventually(t, 30*time.Second, func() error {
		servers, err := g.WaitLeader("cd-a").Raft().Servers()
		if err != nil {
			return err
		}
		for _, s := range servers {
			if string(s.ID) == follower.Name() {
				return fmt.Errorf("%s is still in cd-a's Raft group", follower.Name())
			}
		}
		return nil
	})
	// Revocations are written through the district's endpoint only, never as raw configuration (a
	// township's administrator could otherwise cut its subtree off the district).
	for _, n := range []*node.Node{district, township} {
		if code, body := authCall(t, n, "PUT", "/v1/config/trust/revoked/cd/cd-1", testgrid.StaffToken(t, n), map[string]string{"site": "cd", "node": "cd-1"}, nil); code != http.StatusForbidden {
			t.Errorf("a revocation as raw configuration at %s: %d %s", n.Site(), code, body)
		}
	}
	list, err := township.RevokedCertificates()
	if err != nil || len(list) != 2 {
		t.Fatalf("revocations at the township: %v %v", list, err)
	}
}
