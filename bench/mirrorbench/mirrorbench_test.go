package mirrorbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/bench/internal/benchtest"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/sitestate"
)

func TestRunSmall(t *testing.T) {
	cfg := Config{
		Visibility: true, Rate: 100, Townships: 1, Communities: 2, Warmup: 200 * time.Millisecond, Duration: time.Second,
		Mirror: true, MirrorCases: 3000, MirrorTownships: 2, MirrorCommunities: 2, ListPages: 5, ListSamples: 4,
		ListFor: 300 * time.Millisecond, QuietMax: 10 * time.Second,
	}
	res := benchtest.Run(t, 2*time.Minute, func(ctx context.Context, progress io.Writer) (Result, error) {
		cfg.Dir, cfg.Progress = t.TempDir(), progress
		return Run(ctx, cfg)
	})
	v := res.Visibility
	if v == nil || v.Offered != 100 || v.Accepted != 100 || v.Errors != 0 || v.Unseen != 0 || v.Lag.Count != 100 ||
		v.Lag.P50 <= 0 || v.Lag.P99 < v.Lag.P50 || v.Lag.Max < v.Lag.P99 || v.Target != TargetVisibilityP99 {
		t.Fatalf("visibility %+v", v)
	}
	if v.Accept.Count != v.Lag.Count || v.ToTownship.P50 <= 0 || v.ToDistrict.P50 <= 0 || v.Seen.P50 < 0 ||
		v.ToTownship.P50 > v.Lag.Max || v.ToDistrict.P50 > v.Lag.Max || v.Submit.Count != 100 || v.AcceptedPerSec <= 0 {
		t.Fatalf("visibility parts %+v", v)
	}
	m := res.Mirror
	if m == nil || m.Mirrored != 3000 || m.Load <= 0 || m.PerSec <= 0 || m.Served < 3000 || m.EntryBytes < 500 ||
		m.Baseline.RSS <= 0 || m.Loaded.RSS <= 0 || m.Listed.RSS <= 0 || m.QuietWait < 2*time.Second || m.Collected.RSS <= 0 || m.RSS != m.Listed.RSS-m.Baseline.RSS ||
		m.DataDisk <= 0 || m.HeapInuse == 0 || m.CasesJSON < 3000*500 || m.DiskRatio <= 0 {
		t.Fatalf("mirror %+v", m)
	}
	if len(m.Listings) != 4 {
		t.Fatalf("listings %+v", m.Listings)
	}
	for i, l := range m.Listings {
		// Rounds go on for ListFor and until paging made 5 requests and each filter 4: one
		// request of each kind a round while either count is short or time is left.
		least, want := 4, m.Listings[1].Requests
		if i == 0 {
			least, want = 5, max(5, want)
		}
		if l.Requests != want || want < least || l.Errors != 0 || l.Latency.Count != want || l.SlowestAt <= 0 || l.Latency.P99 <= 0 || l.Cases == 0 || l.Target != TargetListP99 ||
			!strings.Contains(l.Example, "scope=subtree") || !strings.Contains(l.Example, "status=submitted") {
			t.Errorf("listing %d: %+v", i, l)
		}
	}
	if m.Listings[0].Cases != 50*m.Listings[0].Requests {
		t.Errorf("paging returned %d cases over %d pages of 50", m.Listings[0].Cases, m.Listings[0].Requests)
	}
	benchtest.Printed(t, Print, res, "## Feeds", "| visibility lag, submit at a community → in the district's mirror, 100 cases/s over 2 communities (100 cases): p50 |",
		"| visibility lag: p99 |", "≤ 1s", "| mirror: 3,000 cases loaded through feeds |", "| subtree listing by status, next_page_token followed 5 pages deep, pages of 50",
		"≤ 50ms (p99)", "| district node RSS with 3,000 cases mirrored, after the listings (process VmRSS − baseline) |", "≤ 1024.0 MiB")
}

func TestConfigValidate(t *testing.T) {
	good := Defaults
	good.Dir = os.TempDir()
	benchtest.Rejects(t, good, Config.Validate, map[string]func(*Config){
		"no dir":           func(c *Config) { c.Dir = "" },
		"no phase":         func(c *Config) { c.Visibility, c.Mirror = false, false },
		"no rate":          func(c *Config) { c.Rate = -1 },
		"negative warmup":  func(c *Config) { c.Warmup = -time.Second },
		"no townships":     func(c *Config) { c.Townships = -1 },
		"fewer than one":   func(c *Config) { c.Townships, c.Communities = 3, 2 },
		"100 communities":  func(c *Config) { c.Communities = 100 },
		"no mirror cases":  func(c *Config) { c.MirrorCases = -1 },
		"page size 501":    func(c *Config) { c.PageSize = 501 },
		"negative quiet":   func(c *Config) { c.QuietMax = -time.Second },
		"negative list":    func(c *Config) { c.ListFor = -time.Second },
		"numbers overflow": func(c *Config) { c.MirrorCases, c.MirrorTownships, c.MirrorCommunities = 20_000_000, 1, 4 },
	})
	// A phase that does not run is not checked.
	c := good
	c.Visibility, c.Rate = false, -1
	if err := c.Validate(); err != nil {
		t.Errorf("a bad rate without the visibility phase: %v", err)
	}
	// Zero sizes take the defaults; zero warmup and quiet stay zero; phases are not defaulted.
	c = Config{Dir: "x"}.withDefaults()
	if c.Rate != 500 || c.Communities != 8 || c.Townships != 2 || c.MirrorCases != 1_000_000 || c.Duration != 20*time.Second ||
		c.Warmup != 0 || c.QuietMax != 0 || c.ListFor != 0 || c.Visibility || c.Mirror || c.PageSize != 50 {
		t.Fatalf("withDefaults: %+v", c)
	}
	if _, err := Run(context.Background(), Config{Dir: "x"}); err == nil {
		t.Fatal("Run accepted a config without a phase")
	}
}

func testGenerator(total uint64) *generator {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	return &generator{site: "cd-s01", communities: []string{"cd-s01-c01", "cd-s01-c02"}, index: 0, townships: 2, total: total,
		base: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), step: time.Minute, loc: loc}
}

func TestGenerator(t *testing.T) {
	g := testGenerator(100)
	held := map[string]int{}
	numbers := map[string]bool{}
	var prev time.Time
	for seq := uint64(1); seq <= g.total; seq++ {
		e, err := g.entry(seq)
		if err != nil {
			t.Fatal(err)
		}
		c := e.Case
		if e.Seq != seq || e.Origin != c.HolderSite || !e.At.Equal(c.CreatedAt) || c.Version != 1 || c.Status != casework.StatusSubmitted {
			t.Fatalf("entry %d: %+v", seq, e)
		}
		if err := c.VerifyHistory(); err != nil {
			t.Fatalf("entry %d: %v", seq, err)
		}
		site, _, _, err := casework.ParseNumber(c.Number)
		if err != nil || site != c.HolderSite || numbers[c.Number] {
			t.Fatalf("entry %d: number %s (%v, seen before %v)", seq, c.Number, err, numbers[c.Number])
		}
		numbers[c.Number] = true
		if !c.CreatedAt.After(prev) {
			t.Fatalf("entry %d created at %v, not after %v", seq, c.CreatedAt, prev)
		}
		prev = c.CreatedAt
		held[c.HolderSite]++
		// The same sequence is always the same entry: a reconnecting puller gets what it missed.
		again, _ := g.entry(seq)
		a, _ := json.Marshal(e)
		b, _ := json.Marshal(again)
		if !bytes.Equal(a, b) {
			t.Fatalf("entry %d differs between two calls", seq)
		}
	}
	// Cycles of 5: two per community, one for the township.
	if held["cd-s01-c01"] != 40 || held["cd-s01-c02"] != 40 || held["cd-s01"] != 20 {
		t.Fatalf("holders %v", held)
	}
	if perHolder(100, 1, 2) < 40 || perHolder(1_000_000, 4, 4) > maxPerHolder {
		t.Fatalf("perHolder: %d, %d", perHolder(100, 1, 2), perHolder(1_000_000, 4, 4))
	}
	for i := range 200 {
		sub := randomSubmission(newRand(i), "x")
		if err := sub.Validate(); err != nil {
			t.Fatalf("submission %d: %v", i, err)
		}
	}
}

// serveFeed starts a synthetic township's Feed service alone (no gossip) and returns a client.
func serveFeed(t *testing.T, g *generator) pb.ClusterClient {
	t.Helper()
	s := newSynthTownship(g, "cd")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln, s.srv = ln, grpc.NewServer()
	pb.RegisterClusterServer(s.srv, s)
	go s.srv.Serve(ln)
	t.Cleanup(s.close)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewClusterClient(conn)
}

func TestSynthFeedProtocol(t *testing.T) {
	const total = 3000
	client := serveFeed(t, testGenerator(total))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Another site than the parent is refused.
	stream, err := client.Feed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&pb.FeedAck{FromSite: "cd-other", Cursor: 0})
	if _, err := stream.Recv(); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a stranger got %v", err)
	}

	// The parent gets every entry once, in order, and nothing beyond a window ahead of its acks.
	stream, err = client.Feed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&pb.FeedAck{FromSite: "cd", Cursor: 0})
	batches, errc := make(chan *pb.FeedBatch, 64), make(chan error, 1)
	go func() {
		for {
			b, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			batches <- b
		}
	}()
	var next, acked uint64 = 1, 0
	for next <= total {
		var batch *pb.FeedBatch
		select {
		case batch = <-batches:
		case err := <-errc:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("no batch")
		}
		if batch.GetHead() != total {
			t.Fatalf("head %d", batch.GetHead())
		}
		size := 0
		for _, b := range batch.GetEntries() {
			size += len(b)
			var e sitestate.FeedEntry
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			if e.Seq != next || e.Case == nil || e.Origin == "" {
				t.Fatalf("entry %d after %d", e.Seq, next-1)
			}
			next++
		}
		if n := len(batch.GetEntries()); n == 0 || n > node.FeedBatchEntries || size > node.FeedBatchBytes {
			t.Fatalf("batch of %d entries, %d bytes", n, size)
		}
		switch unacked := next - 1 - acked; {
		case unacked > node.FeedWindow:
			t.Fatalf("%d entries unacknowledged", unacked)
		case unacked == node.FeedWindow || next > total:
			// The window is full: no entry comes until the parent acknowledges (a heartbeat,
			// an empty batch every node.FeedHeartbeat, may).
			quiet := time.After(200 * time.Millisecond)
		wait:
			for {
				select {
				case b := <-batches:
					if len(b.GetEntries()) > 0 {
						t.Fatalf("a batch of %d entries beyond the window", len(b.GetEntries()))
					}
				case <-quiet:
					break wait
				}
			}
			acked = next - 1
			stream.Send(&pb.FeedAck{Cursor: acked})
		}
	}
	stream.CloseSend()
	for ended := false; !ended; {
		select {
		case err := <-errc:
			if !errors.Is(err, io.EOF) {
				t.Fatalf("after closing: %v", err)
			}
			ended = true
		case b := <-batches:
			if len(b.GetEntries()) > 0 { // a heartbeat may still come
				t.Fatalf("a batch of %d entries after the head", len(b.GetEntries()))
			}
		case <-ctx.Done():
			t.Fatal("the stream did not end")
		}
	}

	// A new stream from a cursor resumes right after it.
	stream, err = client.Feed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&pb.FeedAck{FromSite: "cd", Cursor: 2000})
	batch, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var e sitestate.FeedEntry
	if err := json.Unmarshal(batch.GetEntries()[0], &e); err != nil || e.Seq != 2001 {
		t.Fatalf("resumed at %d (%v)", e.Seq, err)
	}
}

func TestBatchSizeLimit(t *testing.T) {
	f := &generatedFeed{s: &synthTownship{gen: testGenerator(2000)}}
	b1, head, err := f.ReadFeed(1, 2000, node.FeedBatchBytes)
	if err != nil || head != 2000 {
		t.Fatal(head, err)
	}
	size := 0
	for _, e := range b1 {
		size += len(e)
	}
	if size > node.FeedBatchBytes || f.carry == nil || len(b1) < 100 {
		t.Fatalf("first batch: %d entries, %d bytes, carry %d bytes", len(b1), size, len(f.carry))
	}
	next := uint64(len(b1)) + 1
	b2, _, err := f.ReadFeed(next, 1, node.FeedBatchBytes)
	if err != nil {
		t.Fatal(err)
	}
	var e sitestate.FeedEntry
	if err := json.Unmarshal(b2[0], &e); err != nil || e.Seq != next || f.carry != nil {
		t.Fatalf("second batch starts at %d (%v), carry %d bytes", e.Seq, err, len(f.carry))
	}
}

func newRand(i int) *rand.Rand { return rand.New(rand.NewPCG(9, uint64(i))) }

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1_000_000: "1,000,000", 12345: "12,345"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q", n, got)
		}
	}
}

func TestPrintPartial(t *testing.T) {
	var out bytes.Buffer
	Print(&out, Result{})
	if out.Len() != 0 {
		t.Fatalf("an empty result printed %q", out.String())
	}
	s := benchtest.Printed(t, Print, Result{Visibility: &VisibilityResult{Rate: 500, Communities: 8, Offered: 10000, Accepted: 9000, MaxSlip: 30 * time.Millisecond,
		Lag: Dist{Count: 9000, P50: 80 * time.Millisecond, P99: 1500 * time.Millisecond, Max: 2 * time.Second}, Target: TargetVisibilityP99}},
		"| visibility lag: p99 | 1.50 s | ≤ 1s | **no** |", "**not sustained**", "did not sustain 500 cases/s**: 9000 of 10000 offered cases accepted")
	if strings.Contains(s, "loaded through feeds") || strings.Contains(s, "| subtree listing") || strings.Contains(s, "RSS") {
		t.Errorf("report shows a phase that did not run:\n%s", s)
	}
}
