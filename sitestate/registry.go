package sitestate

import (
	"bytes"
	"context"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/replication"
)

// SiteRecord is one site in a site's registry: the site itself and every site registered
// beneath it. The district's registry is the whole tree.
type SiteRecord struct {
	Code   string   `json:"code"`
	Tier   string   `json:"tier"`
	Parent string   `json:"parent,omitempty"`
	Nodes  []string `json:"nodes,omitempty"`
	Leader string   `json:"leader,omitempty"`
	// Retired is set while the site refuses incoming handoffs, with the reason: its parent keeps
	// it, so that a site restored from its parent comes back retired.
	Retired       bool   `json:"retired,omitempty"`
	RetiredReason string `json:"retired_reason,omitempty"`
	// PublicKey is the site's ed25519 public key (its seal's and its tokens').
	PublicKey []byte `json:"public_key,omitempty"`
	// RegisteredAt is when this site's registry last changed the record (leader's clock).
	RegisteredAt time.Time `json:"registered_at"`
}

// registerCommand upserts site records.
type registerCommand struct {
	Sites []SiteRecord `json:"sites"`
}

func init() { register(cmdRegisterSites, "register-sites", (*machine).applyRegister) }

// applyRegister upserts each record whose content changed; an unchanged record is not rewritten,
// so periodic re-registration costs no state churn.
func (m *machine) applyRegister(tx *replication.Tx, c *registerCommand) (*Answer, error) {
	for _, rec := range c.Sites {
		if rec.Code == "" || rec.Tier == "" {
			return refuse(errorf(CodeInvalid, "site record without code or tier")), nil
		}
	}
	for _, rec := range c.Sites {
		var old SiteRecord
		found, err := getJSON(tx, siteKey(rec.Code), &old)
		if err != nil {
			return nil, err
		}
		if found && old.Tier == rec.Tier && old.Parent == rec.Parent && old.Leader == rec.Leader && slices.Equal(old.Nodes, rec.Nodes) &&
			old.Retired == rec.Retired && old.RetiredReason == rec.RetiredReason && bytes.Equal(old.PublicKey, rec.PublicKey) {
			continue
		}
		rec.RegisteredAt = tx.At()
		if err := putJSON(tx, siteKey(rec.Code), rec); err != nil {
			return nil, err
		}
		tx.Emit(sitesChanged{})
	}
	return &Answer{}, nil
}

// RegisterSites commits site records in this site's registry (forwarded to the leader).
func (s *State) RegisterSites(ctx context.Context, sites []SiteRecord) error {
	return proposeInParts(ctx, s, cmdRegisterSites, sites, func(part []SiteRecord) any {
		return &registerCommand{Sites: part}
	}, nil)
}

// Sites lists this node's copy of the site registry, by code.
func (s *State) Sites() ([]SiteRecord, error) {
	var out []SiteRecord
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixSite, func(rec *SiteRecord) bool { out = append(out, *rec); return true })
	})
	return out, err
}
