package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Restoring a lost site (`govgrid site restore --from-parent`): a fresh node of the site starts
// with Config.RestoreFromParent. Once it leads its new site, and before the site takes cases,
// it asks its parent for what the parent's mirror holds of it (ExportSite) and commits it in
// batches (replication.Store.RestoreBatch); then it registers with its parent like any site.
// RestoreMarker is the file in the data dir that marks a restore in progress.
const RestoreMarker = "restoring"

const (
	restoreBatch = 64
	exportChunk  = 256
)

// ServeExport streams what this site's mirror holds of a child site.
func (n *Node) ServeExport(site string, stream pb.Cluster_ExportSiteServer) error {
	if n.childStatus(site) != siteChild {
		return status.Errorf(codes.PermissionDenied, "site %q is not a child of %s: only a site's parent can restore it", site, n.cfg.Site)
	}
	exp, err := n.store.ExportSite(site)
	if err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	chunk := &pb.ExportChunk{Total: uint64(len(exp.Records)), FeedCursor: exp.FeedCursor}
	for _, rec := range exp.Records {
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		chunk.Records = append(chunk.Records, b)
		if len(chunk.Records) == exportChunk {
			if err := stream.Send(chunk); err != nil {
				return err
			}
			chunk = &pb.ExportChunk{Total: uint64(len(exp.Records)), FeedCursor: exp.FeedCursor}
		}
	}
	return stream.Send(chunk)
}

// restoreFromParent runs once, on the leader of a site started to be restored, until it has
// succeeded or leadership ends (a new leader takes over from what was committed).
func (n *Node) restoreFromParent(stop <-chan struct{}) bool {
	backoff := time.Second
	for {
		err := n.restoreOnce(stop)
		if err == nil {
			n.restoring.Store(false)
			_ = os.Remove(n.DataPath(RestoreMarker))
			return true
		}
		n.logger.Warn("restore from the parent site failed; retrying", "parent", n.cfg.Parent, "error", err)
		select {
		case <-stop:
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (n *Node) restoreOnce(stop <-chan struct{}) error {
	st, err := n.store.Restored()
	if err != nil || st.Restored {
		return err
	}
	conn, err := n.dialSite(n.cfg.Parent, "")
	if err != nil {
		return err
	}
	ctx, cancel := stopContext(stop)
	defer cancel()
	stream, err := pb.NewClusterClient(conn).ExportSite(ctx, &pb.ExportSiteRequest{Site: n.cfg.Site})
	if err != nil {
		return err
	}
	var (
		batch   []*casework.Case
		done    int
		total   int
		feedSeq uint64
		first   = true
	)
	flush := func(last bool) error {
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		defer ccancel()
		seq := uint64(0)
		if first {
			seq, first = feedSeq, false
		}
		if err := n.store.RestoreBatch(cctx, batch, seq, last); err != nil {
			return err
		}
		done += len(batch)
		batch = batch[:0]
		n.progress(done, total)
		return nil
	}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		total, feedSeq = int(chunk.GetTotal()), chunk.GetFeedCursor()
		for _, b := range chunk.GetRecords() {
			var rec replication.MirrorRecord
			if err := json.Unmarshal(b, &rec); err != nil || rec.Case == nil {
				return fmt.Errorf("undecodable record from the parent: %v", err)
			}
			batch = append(batch, rec.Case)
			if len(batch) == restoreBatch {
				if err := flush(false); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(true); err != nil {
		return err
	}
	n.logger.Info("site restored from its parent's mirror", "parent", n.cfg.Parent, "cases", done)
	return nil
}

func (n *Node) progress(done, total int) {
	if n.cfg.RestoreProgress != nil {
		n.cfg.RestoreProgress(done, total)
	}
}

// Restoring reports whether this node's site is still being restored from its parent.
func (n *Node) Restoring() bool { return n.restoring.Load() }

var errRestoring = fmt.Errorf("%w: the site is being restored from its parent; try again shortly", replication.ErrNoLeader)
