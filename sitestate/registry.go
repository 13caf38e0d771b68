package replication

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// SiteRecord is one site in a site's registry: the site itself and every site registered
// beneath it. The district's registry is the whole tree.
type SiteRecord struct {
	Code   string   `json:"code"`
	Tier   string   `json:"tier"`
	Parent string   `json:"parent,omitempty"`
	Nodes  []string `json:"nodes,omitempty"`
	Leader string   `json:"leader,omitempty"`
	// RegisteredAt is when this site's registry last changed the record (leader's clock).
	RegisteredAt time.Time `json:"registered_at"`
}

// registerCommand upserts site records.
type registerCommand struct {
	Sites []SiteRecord `json:"sites"`
}

var prefixSite = []byte("g/")

func siteKey(code string) []byte { return concat(prefixSite, []byte(code)) }

// applyRegister upserts each record whose content changed; an unchanged record is not rewritten,
// so periodic re-registration costs no state churn.
func (f *fsm) applyRegister(txn *badger.Txn, c *registerCommand, at time.Time) (*result, error) {
	for _, rec := range c.Sites {
		if rec.Code == "" || rec.Tier == "" {
			return &result{Err: errorf(CodeInvalid, "site record without code or tier")}, nil
		}
	}
	for _, rec := range c.Sites {
		old, err := getSite(txn, rec.Code)
		switch {
		case err == nil && old.Tier == rec.Tier && old.Parent == rec.Parent && old.Leader == rec.Leader && slices.Equal(old.Nodes, rec.Nodes):
			continue
		case err != nil && !errors.Is(err, badger.ErrKeyNotFound):
			return nil, err
		}
		rec.RegisteredAt = at
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		if err := txn.Set(siteKey(rec.Code), b); err != nil {
			return nil, err
		}
		f.sitesChanged = true
	}
	return &result{}, nil
}

func getSite(txn *badger.Txn, code string) (*SiteRecord, error) {
	item, err := txn.Get(siteKey(code))
	if err != nil {
		return nil, err
	}
	rec := new(SiteRecord)
	return rec, item.Value(func(v []byte) error { return json.Unmarshal(v, rec) })
}

// RegisterSites commits site records in this site's registry (forwarded to the leader).
func (s *Store) RegisterSites(ctx context.Context, sites []SiteRecord) error {
	cmd, err := encodeCommand(cmdRegisterSites, &registerCommand{Sites: sites})
	if err != nil {
		return err
	}
	_, err = s.proposeWithRetry(ctx, cmd)
	return err
}

// Sites lists this node's copy of the site registry, by code.
func (s *Store) Sites() ([]SiteRecord, error) {
	var out []SiteRecord
	err := s.fsm.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixSite, func(rec *SiteRecord) bool { out = append(out, *rec); return true })
	})
	return out, err
}
