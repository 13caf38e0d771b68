package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/tier"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Configuration down the tree (replication/config.go): the site's leader asks its parent every
// configPoll for the documents it lacks and commits them through its own Raft, so they survive
// a cut uplink. The parent serves what it has: its own documents and those from above.
const (
	configPoll  = time.Second
	configBatch = 256
)

// ConfigSince serves a child site the documents it lacks.
func (n *Node) ConfigSince(ctx context.Context, from string, known map[string]uint64) ([][]byte, error) {
	if n.childStatus(from) != siteChild {
		return nil, status.Errorf(codes.PermissionDenied, "site %s serves configuration to its children, and %q is not one (yet)", n.cfg.Site, from)
	}
	docs, err := n.store.ConfigSince(known, configBatch)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(docs))
	for _, d := range docs {
		b, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// syncConfig is leader work: keep this site's configuration up to date with its parent's.
func (n *Node) syncConfig(stop <-chan struct{}) {
	if n.cfg.Parent == "" {
		return
	}
	t := time.NewTicker(configPoll)
	defer t.Stop()
	for {
		for more := true; more; {
			var err error
			if more, err = n.pullConfig(); err != nil {
				n.logger.Debug("configuration sync failed; retrying", "parent", n.cfg.Parent, "error", err)
			}
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// pullConfig asks the parent once and commits what it sends; it reports whether there may be more.
func (n *Node) pullConfig() (bool, error) {
	known, err := n.store.ConfigVersions()
	if err != nil {
		return false, err
	}
	conn, err := n.dialSite(n.cfg.Parent, "")
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := pb.NewClusterClient(conn).ConfigSince(ctx, &pb.ConfigSinceRequest{FromSite: n.cfg.Site, Known: known})
	if err != nil || len(resp.GetDocs()) == 0 {
		return false, err
	}
	docs := make([]replication.ConfigDoc, 0, len(resp.GetDocs()))
	for _, b := range resp.GetDocs() {
		var d replication.ConfigDoc
		if err := json.Unmarshal(b, &d); err != nil {
			return false, fmt.Errorf("undecodable configuration document from %s: %w", n.cfg.Parent, err)
		}
		docs = append(docs, d)
	}
	if err := n.store.SyncConfig(ctx, docs); err != nil {
		return false, err
	}
	return len(docs) == configBatch, nil
}

// PutConfig changes a document this site owns. Only the district and townships own documents:
// the district's reach every site, a township's its own subtree.
func (n *Node) PutConfig(ctx context.Context, path string, value json.RawMessage, del bool) (*replication.ConfigDoc, error) {
	if n.cfg.Tier == tier.Community {
		return nil, &replication.Error{Code: replication.CodeForbidden, Message: fmt.Sprintf(
			"%s is a community: configuration is changed by the district, or by a township for its own subtree", n.cfg.Site)}
	}
	return n.store.PutConfig(ctx, path, value, del)
}

// ConfigSnapshot is this site's configuration: every document in force.
type ConfigSnapshot struct {
	Site     string                  `json:"site"`
	Versions map[string]uint64       `json:"versions"`
	Docs     []replication.ConfigDoc `json:"docs"`
}

// Configuration returns the documents in force at this site: for a path owned at several
// levels, the nearest owner's (this site, then its parent, then the district) wins; deletions
// are left out.
func (n *Node) Configuration() (*ConfigSnapshot, error) {
	docs, err := n.store.Config()
	if err != nil {
		return nil, err
	}
	versions, err := n.store.ConfigVersions()
	if err != nil {
		return nil, err
	}
	rank := func(owner string) int {
		switch owner {
		case n.cfg.Site:
			return 0
		case n.cfg.Parent:
			return 1
		}
		return 2
	}
	best := map[string]replication.ConfigDoc{}
	for _, d := range docs {
		if b, ok := best[d.Path]; !ok || rank(d.Owner) < rank(b.Owner) {
			best[d.Path] = d
		}
	}
	view := &ConfigSnapshot{Site: n.cfg.Site, Versions: versions, Docs: []replication.ConfigDoc{}}
	for _, d := range best {
		if !d.Deleted {
			view.Docs = append(view.Docs, d)
		}
	}
	sort.Slice(view.Docs, func(i, j int) bool { return view.Docs[i].Path < view.Docs[j].Path })
	return view, nil
}

// configService adapts the node to httpapi.ConfigService.
type configService struct{ n *Node }

func (c configService) Configuration() (any, error) { return c.n.Configuration() }
func (c configService) ConfigDoc(path string) (*replication.ConfigDoc, error) {
	snap, err := c.n.Configuration()
	if err != nil {
		return nil, err
	}
	for i := range snap.Docs {
		if snap.Docs[i].Path == path {
			return &snap.Docs[i], nil
		}
	}
	return nil, &replication.Error{Code: replication.CodeNotFound, Message: "no configuration document " + path + " in force at " + c.n.cfg.Site}
}
func (c configService) PutConfig(ctx context.Context, path string, value json.RawMessage, del bool) (*replication.ConfigDoc, error) {
	return c.n.PutConfig(ctx, path, value, del)
}
