package node

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/govgrid/govgrid/api"
	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/tier"
)

// Configuration down the tree (replication/config.go): the site's leader asks its parent every
// configPoll for the documents it lacks and commits them through its own Raft, so they survive
// a cut uplink. The parent serves what it has: its own documents and those from above.
const (
	configPoll  = time.Second
	configBatch = 256
)

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
	known, err := n.state.ConfigVersions()
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
	if err != nil {
		n.peers.forgetIfTimedOut(conn, err)
		return false, err
	}
	if len(resp.GetDocs()) == 0 {
		return false, nil
	}
	// The documents pass through undecoded: the state reads them.
	if err := n.state.SyncConfig(ctx, resp.GetDocs()); err != nil {
		return false, err
	}
	return len(resp.GetDocs()) == configBatch, nil
}

// PutConfig changes a document this site owns. Only the district and townships own documents:
// the district's reach every site, a township's its own subtree.
func (n *Node) putConfig(ctx context.Context, path string, value json.RawMessage, del bool) (*sitestate.ConfigDoc, error) {
	if n.cfg.Tier == tier.Community {
		// A rule of the site, not of who asks (409, where a refused person hears 403).
		return nil, sitestate.Errorf(sitestate.CodeConflict,
			"%s is a community: configuration is changed by the district, or by a township for its own subtree", n.cfg.Site)
	}
	return n.state.PutConfig(ctx, path, value, del)
}

// Configuration returns the documents in force at this site: for a path owned at several
// levels, the nearest owner's (this site, then its parent, then the district) wins; deletions
// are left out.
func (n *Node) Configuration() (*api.ConfigView, error) {
	docs, err := n.state.Config()
	if err != nil {
		return nil, err
	}
	versions, err := n.state.ConfigVersions()
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
	best := map[string]sitestate.ConfigDoc{}
	for _, d := range docs {
		if b, ok := best[d.Path]; !ok || rank(d.Owner) < rank(b.Owner) {
			best[d.Path] = d
		}
	}
	view := &api.ConfigView{Site: n.cfg.Site, Versions: versions, Docs: []sitestate.ConfigDoc{}}
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

// Configuration is the configuration in force here as GET /v1/config shows it: without the
// accounts, whose documents carry password hashes (they are read through /v1/accounts).
func (c configService) Configuration() (*api.ConfigView, error) {
	view, err := c.n.Configuration()
	if err != nil {
		return nil, err
	}
	docs := view.Docs[:0:0]
	for _, d := range view.Docs {
		if !strings.HasPrefix(d.Path, accountPrefix) {
			docs = append(docs, d)
		}
	}
	view.Docs = docs
	return view, nil
}
func (c configService) ConfigDoc(path string) (*sitestate.ConfigDoc, error) {
	snap, err := c.Configuration()
	if err != nil {
		return nil, err
	}
	for i := range snap.Docs {
		if snap.Docs[i].Path == path {
			return &snap.Docs[i], nil
		}
	}
	return nil, sitestate.Errorf(sitestate.CodeNotFound, "no configuration document %s in force at %s", path, c.n.cfg.Site)
}
func (c configService) PutConfig(ctx context.Context, path string, value json.RawMessage, del bool) (*sitestate.ConfigDoc, error) {
	if strings.HasPrefix(path, accountPrefix) || strings.HasPrefix(path, "auth/") || strings.HasPrefix(path, sealPrefix) || strings.HasPrefix(path, trustPrefix) {
		return nil, sitestate.Errorf(sitestate.CodeForbidden, "%s is kept through /v1/accounts, /v1/auth, /v1/seal and /v1/certificates, not as raw configuration", path)
	}
	return c.n.putConfig(ctx, path, value, del)
}
