package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/sitestate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FeedSource is what a site's feed is served from (FeedServer): the site's state in a node; in
// the benchmarks, a generated feed.
type FeedSource interface {
	// ReadFeed returns up to max entries from position from on, at most maxBytes of them (but
	// at least one), and the feed's head; a sitestate.Error with CodeConflict when from was
	// trimmed.
	ReadFeed(from uint64, max, maxBytes int) ([][]byte, uint64, error)
	// MirrorSnapshot sends the site's whole mirror in pieces of at most maxBytes, from one
	// consistent view, and returns the feed position the view was taken at (a resync).
	MirrorSnapshot(maxBytes int, send func(entries [][]byte) error) (uint64, error)
	// FeedHead is the newest position; FeedChanged is closed when the feed grows.
	FeedHead() (uint64, error)
	FeedChanged() <-chan struct{}
	// TrimFeed drops the entries up to upto, which the parent has committed.
	TrimFeed(ctx context.Context, upto uint64) error
}

// FeedServer serves Cluster.Feed: a site's feed, streamed to its parent.
type FeedServer struct {
	Site, Parent string
	Stop         <-chan struct{} // closed when the node stops
	Logger       *slog.Logger
	Source       FeedSource
	// trimming is set while a trim runs, so a stream of acknowledgements starts one at a time.
	trimming atomic.Bool
}

// Feed streams this site's feed to its parent: the parent names its committed cursor, the site
// sends batches in order, at most FeedWindow entries past the last acknowledgement, and
// heartbeats while the feed is quiet. What the parent acknowledges it has committed, so this
// node trims it (every feedTrimEvery): through the site's Raft, whichever node serves the stream.
func (e *FeedServer) Feed(stream pb.Cluster_FeedServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if e.Parent == "" || first.GetFromSite() != e.Parent {
		return status.Errorf(codes.PermissionDenied, "site %s serves its feed only to its parent %q, not to %q", e.Site, e.Parent, first.GetFromSite())
	}
	var acked atomic.Uint64
	acked.Store(first.GetCursor())
	ackCh := make(chan struct{}, 1)
	recvErr := make(chan error, 1)
	go func() {
		for {
			a, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if c := a.GetCursor(); c > acked.Load() {
				acked.Store(c)
			}
			nudge(ackCh) // every acknowledgement, also one that does not move the cursor (a resync)
		}
	}()
	next := first.GetCursor() + 1
	heartbeat := time.NewTicker(FeedHeartbeat)
	defer heartbeat.Stop()
	var lastTrim time.Time
	for {
		if time.Since(lastTrim) >= feedTrimEvery {
			lastTrim = time.Now()
			e.trim(acked.Load())
		}
		changed := e.Source.FeedChanged()
		var entries [][]byte
		var head uint64
		if room := FeedWindow - (int64(next) - 1 - int64(acked.Load())); room > 0 {
			entries, head, err = e.Source.ReadFeed(next, int(min(room, FeedBatchEntries)), FeedBatchBytes)
			if isTrimmed(err) {
				// The parent stands before what this site keeps (it was restored, or lost its
				// cursor): send it the whole mirror instead, then go on from where it was taken.
				if next, err = e.resync(stream, ackCh, recvErr); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return feedStatus(err)
			}
		}
		if len(entries) > 0 {
			if err := stream.Send(&pb.FeedBatch{Head: head, Entries: entries}); err != nil {
				return err
			}
			next += uint64(len(entries))
			continue
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-e.Stop:
			return status.Error(codes.Unavailable, "node stopping")
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil // the parent closed its side: the stream ends cleanly
			}
			return err
		case <-changed:
		case <-ackCh:
		case <-heartbeat.C:
			head, err := e.Source.FeedHead()
			if err != nil {
				return feedStatus(err)
			}
			if err := stream.Send(&pb.FeedBatch{Head: head}); err != nil {
				return err
			}
		}
	}
}

// resync streams a snapshot of this site's mirror to the parent, one batch per acknowledgement,
// and returns the feed position to go on from.
func (e *FeedServer) resync(stream pb.Cluster_FeedServer, ackCh <-chan struct{}, recvErr <-chan error) (uint64, error) {
	e.Logger.Info("the parent stands before the oldest feed entry kept: sending it the whole mirror", "parent", e.Parent)
	select { // an acknowledgement from before counts for nothing here
	case <-ackCh:
	default:
	}
	var pending *pb.FeedBatch
	flush := func() error {
		if pending == nil {
			return nil
		}
		if err := stream.Send(pending); err != nil {
			return err
		}
		pending = nil
		select { // the parent commits each batch before the next: no more in flight than that
		case <-ackCh:
			return nil
		case err := <-recvErr:
			return err
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-e.Stop:
			return status.Error(codes.Unavailable, "node stopping")
		}
	}
	head, err := e.Source.MirrorSnapshot(FeedBatchBytes, func(entries [][]byte) error {
		if err := flush(); err != nil {
			return err
		}
		pending = &pb.FeedBatch{Entries: entries, Resync: true}
		return nil
	})
	if err != nil {
		return 0, feedStatus(err)
	}
	if pending == nil {
		pending = &pb.FeedBatch{Resync: true}
	}
	pending.Head, pending.ResyncCursor = head, max(head, 1)
	if err := flush(); err != nil {
		return 0, err
	}
	return max(head, 1) + 1, nil
}

// isTrimmed reports whether a feed read failed because the position was trimmed.
func isTrimmed(err error) bool {
	var re *sitestate.Error
	return errors.As(err, &re) && re.Code == sitestate.CodeConflict
}

// trim drops, in the background, the feed entries the parent has committed.
func (e *FeedServer) trim(upto uint64) {
	if upto == 0 || !e.trimming.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer e.trimming.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Source.TrimFeed(ctx, upto); err != nil {
			e.Logger.Debug("could not trim the feed; the next acknowledgement tries again", "upto", upto, "error", err)
		}
	}()
}

// feedStatus maps a feed read error for the parent (a trimmed position, a conflict, is answered
// with a resync before it gets here).
func feedStatus(err error) error {
	var re *sitestate.Error
	if errors.As(err, &re) && re.Code == sitestate.CodeConflict {
		return status.Error(codes.FailedPrecondition, re.Message)
	}
	return status.Error(codes.Unavailable, err.Error())
}
