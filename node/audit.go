package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/sitestate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Audit events are gathered in memory at the node that saw them and committed to the site's
// trail (sitestate/audit.go) in batches, every auditFlushEvery or when auditFlushAt gather. The
// buffer is bounded: past auditBufferMax the surplus is counted and recorded as one event, so a
// flood of failed sign-ins cannot grow the node's memory or the log faster than a batch a second.
const (
	auditFlushEvery = 500 * time.Millisecond
	auditFlushAt    = 200
	auditBufferMax  = 5000
)

// auditBuffer holds the node's events not yet committed.
type auditBuffer struct {
	mu      sync.Mutex
	events  []sitestate.AuditEvent
	dropped int
	wake    chan struct{}
}

// Audit records an event seen at this node, to be committed shortly.
func (n *Node) Audit(kind, user, client, subject, detail string) {
	b := &n.audit
	e := sitestate.AuditEvent{At: time.Now().UTC(), Kind: kind, User: clip(user, 64), Node: n.cfg.Name,
		Client: clip(client, 64), Subject: clip(subject, 200), Detail: clip(detail, 500)}
	b.mu.Lock()
	if len(b.events) >= auditBufferMax {
		b.dropped++
	} else {
		b.events = append(b.events, e)
	}
	full := len(b.events) >= auditFlushAt
	b.mu.Unlock()
	if full {
		nudge(b.wake)
	}
}

// flushAudit commits what the buffer holds, waiting at most timeout; on failure the events go
// back to its front.
func (n *Node) flushAudit(timeout time.Duration) error {
	b := &n.audit
	b.mu.Lock()
	events, dropped := b.events, b.dropped
	b.events, b.dropped = nil, 0
	b.mu.Unlock()
	if dropped > 0 {
		events = append(events, sitestate.AuditEvent{At: time.Now().UTC(), Kind: sitestate.AuditDropped, Node: n.cfg.Name,
			Detail: fmt.Sprintf("%d events were not recorded: more than %d waited at once", dropped, auditBufferMax)})
	}
	if len(events) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done, err := n.state.AppendAudit(ctx, events)
	if err != nil {
		// What was not committed goes back to the front, within the buffer's bound. (A batch
		// committed by the leader after this node gave up waiting is committed again: a
		// duplicate entry, never a lost one.)
		rest := events[done:]
		b.mu.Lock()
		keep := min(len(rest), auditBufferMax)
		b.dropped += len(rest) - keep
		b.events = append(rest[:keep:keep], b.events...)
		b.mu.Unlock()
		return err
	}
	return nil
}

// clip cuts s to at most max bytes, on a character boundary, marking the cut.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max] + "…"
}

// runAudit flushes the node's audit buffer until stop, and once more at the end.
func (n *Node) runAudit(stop <-chan struct{}) {
	t := time.NewTicker(auditFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			// Once more, briefly: a stopping site may have no leader left to take them.
			if err := n.flushAudit(2 * time.Second); err != nil {
				n.logger.Warn("audit events not committed at shutdown", "error", err)
			}
			return
		case <-t.C:
		case <-n.audit.wake:
		}
		if err := n.flushAudit(10 * time.Second); err != nil {
			n.logger.Debug("could not commit audit events yet; keeping them", "error", err)
		}
	}
}

// AuditTrail is a page of the audit trail of site ("" for this one), for the administrators and
// supervisors of that site and of the sites above it. Another site's page is asked of that site
// (each site keeps its own trail): so the district's supervision reads any site's trail at the
// district, and a township's any of its subtree's.
func (n *Node) AuditTrail(ctx context.Context, by *auth.Claims, site string, from uint64, limit int) (*sitestate.AuditPage, error) {
	if site == "" {
		site = n.cfg.Site
	}
	if _, err := n.authorize(auth.NewContext(ctx, by), auth.ActReadAudit, site); err != nil {
		return nil, err
	}
	if site == n.cfg.Site {
		return n.state.Audit(from, limit)
	}
	if !n.inSubtree(site) {
		return nil, sitestate.Errorf(sitestate.CodeNotFound, "no site %s beneath %s", site, n.cfg.Site)
	}
	return askCaseSite(ctx, n, site, "", 0, func(ctx context.Context, c pb.ClusterClient) (*sitestate.AuditPage, error) {
		resp, err := c.PeerAudit(ctx, &pb.PeerAuditRequest{From: from, Limit: int32(limit)})
		if err != nil {
			return nil, err
		}
		var page sitestate.AuditPage
		if err := json.Unmarshal(resp.GetPageJson(), &page); err != nil {
			return nil, fmt.Errorf("site %s's audit page: %w", site, err)
		}
		return &page, nil
	})
}

// PeerAudit answers a page of this site's trail to a node above it (see AuditTrail).
func (e *caseEndpoint) PeerAudit(ctx context.Context, req *pb.PeerAuditRequest) (*pb.PeerAuditResponse, error) {
	limit := int(req.GetLimit())
	if limit < 1 || limit > 1000 {
		return nil, status.Error(codes.InvalidArgument, "limit: 1 to 1000")
	}
	page, err := e.cases.n.state.Audit(max(req.GetFrom(), 1), limit)
	if err != nil {
		return nil, grpcapi.Err(err)
	}
	b, err := json.Marshal(page)
	if err != nil {
		return nil, err
	}
	return &pb.PeerAuditResponse{PageJson: b}, nil
}
