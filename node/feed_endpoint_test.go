package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/sitestate"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// fakeFeed is a FeedSource whose feed holds the entries trimmed+1 to head, each the text of its
// position, and whose mirror is snapshot (in batches). It records what the endpoint asks, and
// notes every read reaching past the window of the last acknowledgement the test sent (acked).
type fakeFeed struct {
	mu        sync.Mutex
	head      uint64
	trimmed   uint64
	snapshot  [][][]byte
	changed   chan struct{}
	acked     uint64
	reads     int
	snapshots int
	changes   int
	trims     []uint64
	overreach []string
	readErr   error
}

func newFakeFeed(head uint64) *fakeFeed { return &fakeFeed{head: head, changed: make(chan struct{})} }

func (f *fakeFeed) ReadFeed(from uint64, max, maxBytes int) ([][]byte, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if last := from - 1 + uint64(max); last > f.acked+FeedWindow || max > FeedBatchEntries || maxBytes != FeedBatchBytes {
		f.overreach = append(f.overreach, fmt.Sprintf("ReadFeed(%d, %d, %d) after acknowledging %d", from, max, maxBytes, f.acked))
	}
	if f.readErr != nil {
		return nil, 0, f.readErr
	}
	if from <= f.trimmed {
		return nil, 0, &sitestate.Error{Code: sitestate.CodeConflict, Message: fmt.Sprintf("feed entry %d was trimmed", from)}
	}
	var out [][]byte
	for seq := from; seq <= f.head && len(out) < max; seq++ {
		out = append(out, []byte(strconv.FormatUint(seq, 10)))
	}
	return out, f.head, nil
}

func (f *fakeFeed) MirrorSnapshot(maxBytes int, send func(entries [][]byte) error) (uint64, error) {
	f.mu.Lock()
	f.snapshots++
	batches, head := f.snapshot, f.head
	f.mu.Unlock()
	for _, b := range batches {
		if err := send(b); err != nil {
			return 0, err
		}
	}
	return head, nil
}

func (f *fakeFeed) FeedHead() (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.head, nil
}

func (f *fakeFeed) FeedChanged() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes++
	return f.changed
}

func (f *fakeFeed) TrimFeed(ctx context.Context, upto uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trims = append(f.trims, upto)
	return nil
}

// grow appends n entries and signals the change (close and replace, as the state does).
func (f *fakeFeed) grow(n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.head += n
	close(f.changed)
	f.changed = make(chan struct{})
}

// ack notes that the test acknowledges cursor (before it sends the acknowledgement).
func (f *fakeFeed) ack(cursor uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acked = cursor
}

func (f *fakeFeed) check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.overreach {
		t.Errorf("the endpoint read past the window: %s", o)
	}
}

// serveFeed serves the feed endpoint of epSite (whose parent is parent) over state.
func serveFeed(t *testing.T, parent string, state *fakeFeed, stop <-chan struct{}) pb.ClusterClient {
	return serveCluster(t, &clusterServer{FeedServer: &FeedServer{
		Site: epSite, Parent: parent, Stop: stop, Logger: slog.New(slog.DiscardHandler), Source: state,
	}})
}

// openFeed opens the feed as the parent would, naming cursor as committed.
func openFeed(t *testing.T, cl pb.ClusterClient, from string, cursor uint64) pb.Cluster_FeedClient {
	t.Helper()
	stream, err := cl.Feed(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.FeedAck{FromSite: from, Cursor: cursor}); err != nil {
		t.Fatal(err)
	}
	return stream
}

// receiveEntries receives batches until it has the entries next to last, checks that they
// come in order, in batches of at most FeedBatchEntries naming head and none past last, and
// returns last+1. Heartbeats in between are allowed only with heartbeats set.
func receiveEntries(t *testing.T, stream pb.Cluster_FeedClient, next, last, head uint64, heartbeats bool) uint64 {
	t.Helper()
	for next <= last {
		b, err := stream.Recv()
		if err != nil {
			t.Fatalf("waiting for entry %d: %v", next, err)
		}
		if len(b.GetEntries()) == 0 {
			// A heartbeat: it names the head, which may have been lower when it was sent.
			if !heartbeats || b.GetHead() > head {
				t.Fatalf("a heartbeat naming head %d while entries %d to %d are due", b.GetHead(), next, last)
			}
			continue
		}
		if b.GetHead() != head {
			t.Fatalf("batch names head %d, want %d", b.GetHead(), head)
		}
		if len(b.GetEntries()) > FeedBatchEntries {
			t.Fatalf("a batch of %d entries, more than %d", len(b.GetEntries()), FeedBatchEntries)
		}
		for _, e := range b.GetEntries() {
			if string(e) != strconv.FormatUint(next, 10) {
				t.Fatalf("entry %q, want %d", e, next)
			}
			if next > last {
				t.Fatalf("entry %d sent, past %d (the window of the last acknowledgement)", next, last)
			}
			next++
		}
	}
	return next
}

// The endpoint runs at most FeedWindow entries past the parent's last acknowledgement, sends
// heartbeats while it waits, and goes on when the parent acknowledges.
func TestFeedKeepsToTheWindow(t *testing.T) {
	const cursor = 100
	state := newFakeFeed(cursor + 3*FeedWindow)
	state.ack(cursor)
	stream := openFeed(t, serveFeed(t, epParent, state, nil), epParent, cursor)

	next := receiveEntries(t, stream, cursor+1, cursor+FeedWindow, state.head, false)
	// The window is full: what comes next is a heartbeat (within FeedHeartbeat), not an entry.
	b, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(b.GetEntries()) != 0 || b.GetHead() != state.head {
		t.Fatalf("with the window full, a batch of %d entries (head %d), want a heartbeat naming head %d", len(b.GetEntries()), b.GetHead(), state.head)
	}
	state.check(t)

	// An acknowledgement opens the window by as much as it acknowledges.
	const acked = cursor + 300
	state.ack(acked)
	if err := stream.Send(&pb.FeedAck{Cursor: acked}); err != nil {
		t.Fatal(err)
	}
	next = receiveEntries(t, stream, next, acked+FeedWindow, state.head, true)
	state.ack(acked + FeedWindow)
	if err := stream.Send(&pb.FeedAck{Cursor: acked + FeedWindow}); err != nil {
		t.Fatal(err)
	}
	receiveEntries(t, stream, next, acked+2*FeedWindow, state.head, true)
	state.check(t)

	// What the parent named committed when it opened the stream is trimmed.
	waitFor(t, 5*time.Second, func() error {
		state.mu.Lock()
		defer state.mu.Unlock()
		if !slices.Equal(state.trims, []uint64{cursor}) {
			return fmt.Errorf("trims %v, want [%d]", state.trims, cursor)
		}
		return nil
	})
}

// A quiet feed sends new entries as soon as the state signals them.
func TestFeedWakesOnNewEntries(t *testing.T) {
	state := newFakeFeed(5)
	state.ack(5)
	stream := openFeed(t, serveFeed(t, epParent, state, nil), epParent, 5)
	// Wait until the endpoint found nothing to send and waits for a change.
	waitFor(t, 5*time.Second, func() error {
		state.mu.Lock()
		defer state.mu.Unlock()
		if state.reads == 0 || state.changes == 0 {
			return fmt.Errorf("%d reads, %d waits", state.reads, state.changes)
		}
		return nil
	})
	state.grow(3)
	receiveEntries(t, stream, 6, 8, 8, true)
	state.check(t)
}

// A feed starting from nothing trims nothing.
func TestFeedFromTheStart(t *testing.T) {
	state := newFakeFeed(2)
	stream := openFeed(t, serveFeed(t, epParent, state, nil), epParent, 0)
	receiveEntries(t, stream, 1, 2, 2, true)
	state.mu.Lock()
	defer state.mu.Unlock()
	if len(state.trims) != 0 {
		t.Errorf("trims %v with nothing acknowledged", state.trims)
	}
}

func TestFeedOnlyToTheParent(t *testing.T) {
	for _, tt := range []struct {
		name, parent, from string
	}{
		{"a child", epParent, epChild},
		{"a stranger", epParent, "cd-other"},
		{"no site", epParent, ""},
		// The district has no parent: it serves its feed to no one.
		{"at the root", "", epParent},
		{"at the root, no site", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			state := newFakeFeed(10)
			stream := openFeed(t, serveFeed(t, tt.parent, state, nil), tt.from, 0)
			_, err := stream.Recv()
			wantStatus(t, err, codes.PermissionDenied)
			state.mu.Lock()
			defer state.mu.Unlock()
			if state.reads != 0 || len(state.trims) != 0 {
				t.Errorf("the feed was read (%d) or trimmed (%v) for %q", state.reads, state.trims, tt.from)
			}
		})
	}
}

// A parent whose cursor stands before what the site keeps (trimmed) gets the whole mirror, a
// batch per acknowledgement, the last naming the cursor to go on from; then the feed goes on.
func TestFeedResyncsAParentBehindTheTrim(t *testing.T) {
	state := newFakeFeed(10)
	state.trimmed = 5
	state.snapshot = [][][]byte{{[]byte("m1"), []byte("m2")}, {[]byte("m3")}}
	state.ack(2)
	stream := openFeed(t, serveFeed(t, epParent, state, nil), epParent, 2)
	for i, want := range []*pb.FeedBatch{
		{Resync: true, Entries: state.snapshot[0]},
		{Resync: true, Entries: state.snapshot[1], Head: 10, ResyncCursor: 10},
	} {
		b, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(b, want) {
			t.Fatalf("resync batch %d = %v, want %v", i, b, want)
		}
		// The parent acknowledges each batch once committed: its cursor stays until the last.
		cursor := uint64(2)
		if b.GetResyncCursor() != 0 {
			cursor = b.GetResyncCursor()
		}
		state.ack(cursor)
		if err := stream.Send(&pb.FeedAck{Cursor: cursor}); err != nil {
			t.Fatal(err)
		}
	}
	state.grow(2)
	receiveEntries(t, stream, 11, 12, 12, true)
	state.check(t)
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.snapshots != 1 {
		t.Errorf("%d snapshots of the mirror, want 1", state.snapshots)
	}
}

func TestFeedReadError(t *testing.T) {
	state := newFakeFeed(10)
	state.readErr = errors.New("disk on fire")
	stream := openFeed(t, serveFeed(t, epParent, state, nil), epParent, 0)
	_, err := stream.Recv()
	if st := wantStatus(t, err, codes.Unavailable); st.Message() != "disk on fire" {
		t.Errorf("message %q", st.Message())
	}
}

func TestFeedEndsWhenTheNodeStops(t *testing.T) {
	state := newFakeFeed(0)
	stop := make(chan struct{})
	stream := openFeed(t, serveFeed(t, epParent, state, stop), epParent, 0)
	waitFor(t, 5*time.Second, func() error {
		state.mu.Lock()
		defer state.mu.Unlock()
		if state.changes == 0 {
			return errors.New("the endpoint is not waiting yet")
		}
		return nil
	})
	close(stop)
	_, err := stream.Recv()
	wantStatus(t, err, codes.Unavailable)
}
