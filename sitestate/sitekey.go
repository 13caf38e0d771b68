package sitestate

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/replication"
)

// The site's signing key: an ed25519 key whose seed is committed once, so every node of the site
// signs with the same key and a token signed at one is good at all. The first leader proposes a
// seed it drew; the state keeps the first seed committed and ignores any later one (two leaders
// racing to propose one leave the first). The key stays in the state, snapshots and backups: a
// site restored from its parent's mirror draws a new one, and its earlier tokens stop working.

func init() { register(cmdSiteKey, "site-key", (*machine).applySiteKey) }

type siteKeyCommand struct {
	Seed []byte `json:"seed"`
}

func (m *machine) applySiteKey(tx *replication.Tx, c *siteKeyCommand) (*Answer, error) {
	if len(c.Seed) != ed25519.SeedSize {
		return refuse(errorf(CodeInvalid, "a site key is a %d-byte ed25519 seed", ed25519.SeedSize)), nil
	}
	if _, ok, err := tx.Get(keySiteKey); err != nil || ok {
		return &Answer{}, err
	}
	tx.Set(keySiteKey, c.Seed)
	return &Answer{}, nil
}

// SiteKey returns the site's signing key, if one is committed.
func (s *State) SiteKey() (ed25519.PrivateKey, bool, error) {
	var seed []byte
	err := s.view(func(txn *badger.Txn) error {
		b, ok, err := view{txn}.Get(keySiteKey)
		if ok {
			seed = append([]byte(nil), b...)
		}
		return err
	})
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, false, err
	}
	return ed25519.NewKeyFromSeed(seed), true, nil
}

// EnsureSiteKey commits a freshly drawn key seed unless the site has a key, and returns the key.
func (s *State) EnsureSiteKey(ctx context.Context) (ed25519.PrivateKey, error) {
	if k, ok, err := s.SiteKey(); err != nil || ok {
		return k, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	if _, err := s.propose(ctx, cmdSiteKey, &siteKeyCommand{Seed: seed}); err != nil {
		return nil, err
	}
	k, ok, err := s.SiteKey()
	if err == nil && !ok {
		err = errorf(CodeUnavailable, "the site's key is not applied on this node yet")
	}
	return k, err
}
