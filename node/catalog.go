package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"sync"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/catalog"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/tier"
)

// The catalogue travels as configuration documents (sitestate/config.go): the district's
// departments under catalogDepartmentsPath and each item under catalogItemPrefix + its code in
// lower case. The district's items reach every site; a township's local convenience items its
// own subtree; a community has the catalogue in force above it even while its uplink is cut.
const (
	catalogDepartmentsPath = "catalog/departments"
	catalogItemPrefix      = "catalog/items/"
)

func catalogItemPath(code string) string { return catalogItemPrefix + strings.ToLower(code) }

// fromConfig keeps a value built from the configuration in force, with the versions it was built
// at: it is built again only when a document changed.
type fromConfig[T any] struct {
	mu       sync.Mutex
	versions map[string]uint64
	value    T
	built    bool
}

// get returns the value, building it from the configuration in force when that changed.
func (c *fromConfig[T]) get(n *Node, build func(*api.ConfigView) (T, error)) (T, error) {
	versions, err := n.state.ConfigVersions()
	if err != nil {
		var zero T
		return zero, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.built && maps.Equal(c.versions, versions) {
		return c.value, nil
	}
	view, err := n.Configuration()
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := build(view)
	if err != nil {
		var zero T
		return zero, err
	}
	c.value, c.versions, c.built = v, versions, true
	return v, nil
}

// Catalog is the catalogue in force at this site.
func (n *Node) Catalog() (*catalog.Catalog, error) {
	return n.catalog.get(n, n.buildCatalog)
}

func (n *Node) buildCatalog(view *api.ConfigView) (*catalog.Catalog, error) {
	var depts []catalog.Department
	var items []catalog.Entry
	for _, d := range view.Docs {
		switch {
		case d.Path == catalogDepartmentsPath:
			if err := json.Unmarshal(d.Value, &depts); err != nil {
				n.logger.Warn("the catalogue's departments do not decode", "owner", d.Owner, "error", err)
			}
		case strings.HasPrefix(d.Path, catalogItemPrefix):
			e := catalog.Entry{Owner: d.Owner, Version: d.Version, UpdatedAt: d.UpdatedAt}
			if err := json.Unmarshal(d.Value, &e.Item); err != nil {
				n.logger.Warn("a catalogue item does not decode", "path", d.Path, "owner", d.Owner, "error", err)
				continue
			}
			items = append(items, e)
		}
	}
	return catalog.New(depts, items), nil
}

// maxImportPart bounds the documents of one import command, well under a command's byte limit.
const maxImportPart = 512 << 10

// ImportCatalog adds or replaces the file's departments and items in this site's catalogue.
// The file is validated whole first (every problem named, nothing written); then the changes
// are committed in commands of at most maxImportPart bytes each (one, for any catalogue of a
// district's size), each all or nothing. Items not in the file are kept.
func (n *Node) ImportCatalog(ctx context.Context, f *catalog.File) (*api.CatalogImport, error) {
	if err := n.mayEditCatalog(); err != nil {
		return nil, err
	}
	cur, err := n.Catalog()
	if err != nil {
		return nil, err
	}
	if err := f.Validate(cur.DepartmentCodes(), nil).Err(); err != nil {
		return nil, err
	}
	if err := n.checkLocalItems(cur, f); err != nil {
		return nil, err
	}
	var changes []sitestate.ConfigChange
	if len(f.Departments) > 0 {
		merged := map[string]catalog.Department{}
		for _, d := range cur.Departments {
			merged[d.Code] = d
		}
		for _, d := range f.Departments {
			merged[d.Code] = d
		}
		all := catalog.New(slicesOf(merged), nil).Departments
		if !sameJSON(all, cur.Departments) {
			b, err := json.Marshal(all)
			if err != nil {
				return nil, err
			}
			changes = append(changes, sitestate.ConfigChange{Path: catalogDepartmentsPath, Value: b})
		}
	}
	for _, it := range f.Items {
		if e, ok := cur.Item(it.Code); ok && e.Owner == n.cfg.Site && sameJSON(e.Item, it) {
			continue
		}
		b, err := json.Marshal(it)
		if err != nil {
			return nil, err
		}
		changes = append(changes, sitestate.ConfigChange{Path: catalogItemPath(it.Code), Value: b})
	}
	for start := 0; start < len(changes); {
		end, size := start, 0
		for end < len(changes) && (end == start || size+len(changes[end].Value) <= maxImportPart) {
			size += len(changes[end].Value)
			end++
		}
		if _, err := n.state.PutConfigMany(ctx, changes[start:end]); err != nil {
			return nil, err
		}
		start = end
	}
	return &api.CatalogImport{Departments: len(f.Departments), Items: len(f.Items), Changed: len(changes)}, nil
}

// PutCatalogItem adds or replaces one item of this site's catalogue.
func (n *Node) PutCatalogItem(ctx context.Context, it catalog.Item) (*catalog.Entry, error) {
	if _, err := n.ImportCatalog(ctx, &catalog.File{Items: []catalog.Item{it}}); err != nil {
		return nil, err
	}
	cat, err := n.Catalog()
	if err != nil {
		return nil, err
	}
	e, ok := cat.Item(it.Code)
	if !ok {
		return nil, errors.New("node: the item just written is not in force")
	}
	return e, nil
}

// DeleteCatalogItem removes an item this site owns from the catalogue.
func (n *Node) DeleteCatalogItem(ctx context.Context, code string) error {
	if err := n.mayEditCatalog(); err != nil {
		return err
	}
	cat, err := n.Catalog()
	if err != nil {
		return err
	}
	e, ok := cat.Item(code)
	switch {
	case !ok:
		return sitestate.Errorf(sitestate.CodeNotFound, "no item %s in the catalogue", catalog.NormalizeCode(code))
	case e.Owner != n.cfg.Site:
		return sitestate.Errorf(sitestate.CodeForbidden, "item %s belongs to %s's catalogue, not %s's", e.Code, e.Owner, n.cfg.Site)
	}
	_, err = n.state.PutConfig(ctx, catalogItemPath(e.Code), nil, true)
	return err
}

// mayEditCatalog refuses an edit at a community: the catalogue is the district's, with a
// township's local items.
func (n *Node) mayEditCatalog() error {
	if n.cfg.Tier == tier.Community {
		return sitestate.Errorf(sitestate.CodeForbidden,
			"%s is a community: the catalogue is edited at the district, or at a township for its local items", n.cfg.Site)
	}
	return nil
}

// checkLocalItems holds a township to its local items: convenience services decided within its
// subtree, under codes the district does not use, and no departments of its own.
func (n *Node) checkLocalItems(cur *catalog.Catalog, f *catalog.File) error {
	if n.cfg.Tier != tier.Township {
		return nil
	}
	var p catalog.Problems
	if len(f.Departments) > 0 {
		p = append(p, catalog.Problem{Field: "departments", Reason: "departments are the district's: a township adds local items only"})
	}
	for _, it := range f.Items {
		add := func(field, reason string) {
			p = append(p, catalog.Problem{Item: it.Code, Field: field, Reason: reason})
		}
		if it.Type != catalog.TypeConvenience {
			add("type", "a township's local items are convenience services (convenience_service)")
		}
		if it.DecideTier.Level() < tier.Township.Level() {
			add("decide_tier", "a township's local item is decided within its subtree (township or community)")
		}
		for _, t := range it.AcceptTiers {
			if t.Level() < tier.Township.Level() {
				add("accept_tiers", "a township's local item is accepted within its subtree")
			}
		}
		if e, ok := cur.Item(it.Code); ok && e.Owner != n.cfg.Site {
			add("code", "the code is "+e.Owner+"'s item "+e.Name+": a local item takes a code of its own")
		}
	}
	return p.Err()
}

func slicesOf(m map[string]catalog.Department) []catalog.Department {
	out := make([]catalog.Department, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	return out
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
