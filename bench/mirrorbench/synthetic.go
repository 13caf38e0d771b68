package mirrorbench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/pki"
	"github.com/govgrid/govgrid/tier"
)

// unusedRaftAddr is the Raft address a synthetic township's member advertises: gossip metadata
// requires one, and no node ever dials another site's Raft address. Port 1 refuses at once.
const unusedRaftAddr = "127.0.0.1:1"

// synthTownship is a township as the district sees it: a gossip member advertising a gRPC
// address, whose Cluster.Feed serves a generated feed, and a registration of the township and
// its communities. It has no Raft, no store and no other service. Like a real township's node it
// holds a certificate of the grid's CA naming its site and member (the district pulls feeds over
// TLS and checks it, and takes RegisterSites only from a child's certificate), and its gossip is
// encrypted with the grid's key.
type synthTownship struct {
	pb.UnimplementedClusterServer
	parent string
	member string // its gossip member's name, also its "node" in the registration and certificate
	gen    *generator
	ca     *pki.CA
	cert   tls.Certificate // of ca, for pki.Identity{grid, gen.site, member}

	ln   net.Listener
	srv  *grpc.Server
	list *memberlist.Memberlist
	wg   sync.WaitGroup

	feed    *node.FeedServer
	served  atomic.Uint64 // entries read for sending, re-sent ones included
	bytes   atomic.Uint64 // bytes of those entries
	genNS   atomic.Int64  // time spent building and encoding entries
	streams atomic.Int32  // feed streams opened
}

// newSynthTownship is a township serving gen's feed to parent, not yet started.
func newSynthTownship(gen *generator, parent string) *synthTownship {
	s := &synthTownship{parent: parent, member: gen.site + "-synthetic", gen: gen}
	s.feed = &node.FeedServer{Site: gen.site, Parent: parent, Stop: make(chan struct{}),
		Logger: slog.New(slog.DiscardHandler), Source: &generatedFeed{s: s}}
	return s
}

// startSynthTownship starts the township's gRPC server (TLS, with a certificate of ca for its
// site) and gossip member (encrypted with gossipKey) and joins the grid through join (a gossip
// address). gridName must be the grid's gossip label and ca's grid.
func startSynthTownship(gen *generator, parent, gridName, join string, ca *pki.CA, gossipKey []byte) (*synthTownship, error) {
	s := newSynthTownship(gen, parent)
	var err error
	s.ca = ca
	if s.cert, err = issueCert(ca, pki.Identity{Grid: gridName, Site: gen.site, Node: s.member}); err != nil {
		return nil, fmt.Errorf("mirrorbench: certificate for %s: %w", gen.site, err)
	}
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	// As a node's gRPC port: a caller may present a certificate, which must be the grid's
	// (node.Node's grpcServer); Feed itself checks the caller names the parent.
	s.srv = grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion:       tls.VersionTLS12,
		Certificates:     []tls.Certificate{s.cert},
		ClientAuth:       tls.RequestClientCert,
		NextProtos:       []string{"h2"},
		VerifyConnection: s.verifyPeer(false),
	})))
	pb.RegisterClusterServer(s.srv, s)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(s.ln)
	}()
	meta, err := node.Meta{
		Site: gen.site, Tier: tier.Township, Parent: parent, GRPC: s.ln.Addr().String(), Raft: unusedRaftAddr, Version: "mirrorbench",
	}.Encode()
	if err != nil {
		s.close()
		return nil, err
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = s.member
	mc.BindAddr, mc.BindPort, mc.AdvertisePort = "127.0.0.1", 0, 0
	mc.Label = gridName
	if mc.Keyring, err = memberlist.NewKeyring(nil, gossipKey); err != nil {
		s.close()
		return nil, fmt.Errorf("mirrorbench: gossip key for %s: %w", gen.site, err)
	}
	mc.Delegate = metaDelegate(meta)
	mc.Logger = log.New(io.Discard, "", 0)
	if s.list, err = memberlist.Create(mc); err != nil {
		s.close()
		return nil, fmt.Errorf("mirrorbench: gossip member for %s: %w", gen.site, err)
	}
	if _, err := s.list.Join([]string{join}); err != nil {
		s.close()
		return nil, fmt.Errorf("mirrorbench: %s joining the grid: %w", gen.site, err)
	}
	return s, nil
}

// register sends the township's registry (itself and its communities) to the district, as a
// township's leader does (node.registerUpward).
func (s *synthTownship) register(ctx context.Context, districtGRPC string) error {
	conn, err := grpc.NewClient(districtGRPC, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{s.cert},
		InsecureSkipVerify: true, // no host names: verifyPeer checks the grid identity
		NextProtos:         []string{"h2"},
		VerifyConnection:   s.verifyPeer(true),
	})))
	if err != nil {
		return err
	}
	defer conn.Close()
	req := &pb.RegisterSitesRequest{FromSite: s.gen.site, Sites: []*pb.SiteRecord{{
		Code: s.gen.site, Tier: string(tier.Township), Parent: s.parent, Nodes: []string{s.member}, Leader: s.member,
	}}}
	for _, c := range s.gen.communities {
		name := c + "-synthetic"
		req.Sites = append(req.Sites, &pb.SiteRecord{Code: c, Tier: string(tier.Community), Parent: s.gen.site, Nodes: []string{name}, Leader: name})
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = pb.NewClusterClient(conn).RegisterSites(cctx, req)
	return err
}

// verifyPeer checks that the other end of a TLS connection presents a certificate of the grid's
// CA, as a node does; a client without a certificate passes unless required.
func (s *synthTownship) verifyPeer(required bool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 && !required {
			return nil
		}
		_, err := s.ca.Verify(cs.PeerCertificates, time.Now())
		return err
	}
}

// issueCert makes a key and a certificate of ca for id.
func issueCert(ca *pki.CA, id pki.Identity) (tls.Certificate, error) {
	key, err := pki.NewKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	der, err := ca.Issue(id, key.Public(), 24*time.Hour)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func (s *synthTownship) close() {
	if s.list != nil {
		_ = s.list.Shutdown()
	}
	if s.srv != nil {
		s.srv.Stop()
	} else if s.ln != nil {
		s.ln.Close()
	}
	s.wg.Wait()
}

// Feed serves the generated feed to the parent with node's own feed server (node.FeedServer):
// the same protocol, batch sizes, window and heartbeats as a township's.
func (s *synthTownship) Feed(stream pb.Cluster_FeedServer) error {
	s.streams.Add(1)
	return s.feed.Feed(stream)
}

// generatedFeed is the synthetic township's feed as a node.FeedSource: entry n is built and
// encoded when it is read. The feed is whole from the start: it never grows, is never trimmed,
// and keeps no mirror to resync a parent from (the load never needs one).
type generatedFeed struct {
	s  *synthTownship
	mu sync.Mutex
	// carry is an entry built but left out of the last read for its size, at carrySeq.
	carrySeq uint64
	carry    []byte
}

func (f *generatedFeed) ReadFeed(from uint64, max, maxBytes int) ([][]byte, uint64, error) {
	t0 := time.Now()
	defer func() { f.s.genNS.Add(int64(time.Since(t0))) }()
	f.mu.Lock()
	defer f.mu.Unlock()
	total := f.s.gen.total
	var entries [][]byte
	size := 0
	for seq := from; len(entries) < max && seq <= total; seq++ {
		b := f.carry
		if f.carrySeq != seq || b == nil {
			e, err := f.s.gen.entry(seq)
			if err != nil {
				return nil, 0, err
			}
			if b, err = json.Marshal(e); err != nil {
				return nil, 0, err
			}
		}
		f.carry = nil
		if size+len(b) > maxBytes && len(entries) > 0 {
			f.carrySeq, f.carry = seq, b
			break
		}
		size += len(b)
		entries = append(entries, b)
	}
	f.s.served.Add(uint64(len(entries)))
	f.s.bytes.Add(uint64(size))
	return entries, total, nil
}

func (f *generatedFeed) MirrorSnapshot(int, func([][]byte) error) (uint64, error) {
	return 0, errors.New("mirrorbench: a synthetic township keeps no mirror to resync a parent from")
}

func (f *generatedFeed) FeedHead() (uint64, error) { return f.s.gen.total, nil }

// FeedChanged never fires: the generated feed does not grow.
func (f *generatedFeed) FeedChanged() <-chan struct{} { return nil }

func (f *generatedFeed) TrimFeed(context.Context, uint64) error { return nil }

// metaDelegate publishes a fixed node.Meta in gossip.
type metaDelegate []byte

func (d metaDelegate) NodeMeta(limit int) []byte {
	if len(d) > limit {
		return nil
	}
	return d
}
func (metaDelegate) NotifyMsg([]byte)                {}
func (metaDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (metaDelegate) LocalState(bool) []byte          { return nil }
func (metaDelegate) MergeRemoteState([]byte, bool)   {}
