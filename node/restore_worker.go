package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/internal/backoff"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Restoring a lost site (`govgrid site restore --from-parent`, sitestate/restore.go): a fresh
// node of the site starts with Config.RestoreFromParent. Once it leads its new site it commits
// the beginning of the restore (every node of the site then refuses cases and handoffs), asks
// its parent and then each of its children what they know of it (Cluster.ExportSite, answered
// by their leaders) and commits it in batches; then it ends the restore and the site goes on like
// any other. A leader that finds a restore begun and not ended (the first one lost leadership)
// finishes it.

// RestoreMarker is the file in the data dir that marks a restore in progress.
const RestoreMarker = "restoring"

// restoreBatch is the most records one restore command carries (the state machine splits a
// command that is still too large).
const restoreBatch = 64

// restoring reports whether this site is being restored (or is to be, by this node): it takes no
// cases meanwhile. The state decides for every node of the site; a node started to restore it
// says so before the beginning is committed.
func (n *Node) restoring() bool {
	st, err := n.state.Restored()
	if err != nil {
		return false
	}
	return st.Restoring || n.cfg.RestoreFromParent && !st.Restored
}

// restoreFromParent runs on the leader, before any other leader work, while the site is to be
// restored; it returns false if leadership ended first (the next leader takes over from what
// was committed).
func (n *Node) restoreFromParent(stop <-chan struct{}) bool {
	retry := backoff.Backoff{Min: time.Second, Max: 10 * time.Second, Jitter: 0.2}
	for {
		err := n.restoreOnce(stop)
		if err == nil {
			_ = os.Remove(n.DataPath(RestoreMarker))
			return true
		}
		n.logger.Warn("restore of the site failed; retrying", "parent", n.cfg.Parent, "error", err)
		select {
		case <-stop:
			return false
		case <-time.After(retry.Next()):
		}
	}
}

func (n *Node) restoreOnce(stop <-chan struct{}) error {
	st, err := n.state.Restored()
	if err != nil || st.Restored && !st.Restoring {
		return err
	}
	ctx, cancel := stopContext(stop)
	defer cancel()
	if !st.Restoring {
		if err := n.state.BeginRestore(ctx, n.cfg.Parent); err != nil {
			return err
		}
	}
	from := restoreSource{n: n, ctx: ctx}
	parent := &exported{}
	if n.cfg.Parent != "" {
		if parent, err = from.export(n.cfg.Parent, true); err != nil {
			return fmt.Errorf("from the parent %s: %w", n.cfg.Parent, err)
		}
	}
	// The children: the parent's registry names them; gossip may show more (not registered yet).
	children := parent.children
	for _, c := range n.children() {
		if !slices.Contains(children, c) {
			children = append(children, c)
		}
	}
	config := parent.config
	for _, child := range children {
		got, err := from.export(child, false)
		if err != nil {
			// Restore must hear from every child: one may hold a case this site handed down
			// just before it was lost, which no one else knows.
			return fmt.Errorf("from the child %s: %w", child, err)
		}
		config = append(config, got.config...)
	}
	var retired *sitestate.RetiredState
	if parent.site != nil && parent.site.Retired {
		retired = &sitestate.RetiredState{Retired: true, Reason: parent.site.RetiredReason, Since: time.Now().UTC()}
	}
	if err := n.state.FinishRestore(ctx, parent.feedCursor, retired, newestDocs(config)); err != nil {
		return err
	}
	n.logger.Info("site restored: what its neighbours knew is back", "parent", n.cfg.Parent, "children", len(children), "cases", from.done)
	return nil
}

// restoreSource asks the neighbours of a site being restored what they know of it, and commits
// each record as it comes.
type restoreSource struct {
	n    *Node
	ctx  context.Context
	done int // records committed, for the progress bar
}

// exported is what one neighbour sent besides the records (committed on the way).
type exported struct {
	feedCursor uint64
	site       *sitestate.SiteRecord
	children   []string
	config     []sitestate.ConfigDoc
}

// export streams ExportSite from the leader of site and commits the records in batches.
func (r *restoreSource) export(site string, parent bool) (*exported, error) {
	n := r.n
	var out *exported
	err := n.callLeader(site, func(c pb.ClusterClient) error {
		// A stream that brings nothing for a minute is on a dead link: give up and try again.
		ctx, cancel := context.WithCancel(r.ctx)
		defer cancel()
		silent := time.AfterFunc(time.Minute, cancel)
		defer silent.Stop()
		stream, err := c.ExportSite(ctx, &pb.ExportSiteRequest{Site: n.cfg.Site, FromSite: n.cfg.Site})
		if err != nil {
			return err
		}
		out = &exported{}
		var batch []*casework.Case
		codes := map[string]string{}
		flush := func() error {
			cctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
			defer cancel()
			if err := n.state.RestoreCases(cctx, batch, codes); err != nil {
				return err
			}
			r.done += len(batch)
			batch, codes = batch[:0], map[string]string{}
			return nil
		}
		total, first := 0, true
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			silent.Reset(time.Minute)
			if first {
				first = false
				out.feedCursor, out.children = chunk.GetFeedCursor(), chunk.GetChildren()
				if b := chunk.GetSite(); len(b) > 0 {
					out.site = new(sitestate.SiteRecord)
					if err := json.Unmarshal(b, out.site); err != nil {
						return fmt.Errorf("undecodable site record from %s: %w", site, err)
					}
				}
				for _, b := range chunk.GetConfig() {
					var d sitestate.ConfigDoc
					if err := json.Unmarshal(b, &d); err != nil {
						return fmt.Errorf("undecodable configuration document from %s: %w", site, err)
					}
					out.config = append(out.config, d)
				}
				total = r.done + int(chunk.GetTotal())
			}
			for _, b := range chunk.GetRecords() {
				var rec sitestate.MirrorRecord
				if err := json.Unmarshal(b, &rec); err != nil || rec.Case == nil {
					return fmt.Errorf("undecodable record from %s: %v", site, err)
				}
				batch = append(batch, rec.Case)
				if rec.QueryCode != "" {
					codes[rec.Case.Number] = rec.QueryCode
				}
				if len(batch) == restoreBatch {
					if err := flush(); err != nil {
						return err
					}
					n.progress(r.done, total)
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		n.progress(r.done, total)
		return nil
	})
	return out, err
}

// newestDocs keeps, per owner and path, the newest of the documents the neighbours sent.
func newestDocs(docs []sitestate.ConfigDoc) []sitestate.ConfigDoc {
	best := map[[2]string]sitestate.ConfigDoc{}
	for _, d := range docs {
		k := [2]string{d.Owner, d.Path}
		if b, ok := best[k]; !ok || d.Version > b.Version {
			best[k] = d
		}
	}
	out := make([]sitestate.ConfigDoc, 0, len(best))
	for _, d := range best {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b sitestate.ConfigDoc) int { return int(a.Version) - int(b.Version) })
	return out
}

// callLeader calls fn against the nodes of site until one answers (only its leader does, for
// calls that need the whole committed state; the others answer Unavailable).
func (n *Node) callLeader(site string, fn func(c pb.ClusterClient) error) error {
	prefer := ""
	if recs, err := n.state.Sites(); err == nil {
		for _, r := range recs {
			if r.Code == site {
				prefer = r.Leader
			}
		}
	}
	var lastErr error
	for _, m := range n.siteMembers(site, prefer) {
		conn, err := n.peers.conn(m.Meta.GRPC)
		if err != nil {
			lastErr = err
			continue
		}
		err = fn(pb.NewClusterClient(conn))
		if err == nil {
			return nil
		}
		n.peers.forgetIfTimedOut(conn, err)
		lastErr = fmt.Errorf("%s: %w", m.Name, err)
		if status.Code(err) != codes.Unavailable {
			return lastErr
		}
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no node of site %s is alive in gossip", site)
	}
	return lastErr
}

func (n *Node) progress(done, total int) {
	if n.cfg.RestoreProgress != nil {
		n.cfg.RestoreProgress(done, total)
	}
}

// Restoring reports whether this node's site is still being restored.
func (n *Node) Restoring() bool { return n.restoring() }

var errRestoring = fmt.Errorf("%w: the site is being restored; try again shortly", replication.ErrNoLeader)
