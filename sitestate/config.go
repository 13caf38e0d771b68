package sitestate

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/replication"
)

// Configuration flows down the tree: the district's documents (the catalogue, supervision
// policy, calendar and accounts will be their payload) and a township's documents for its own
// subtree reach every site beneath through each site's Raft, so a community cut off from its
// township still has them. A document belongs to the site that wrote it (its owner); each owner
// numbers its changes, and a site keeps, per owner, the highest number it has applied, which is
// what it asks its parent for more than.

// ConfigDoc is one configuration document.
type ConfigDoc struct {
	Owner string `json:"owner"`
	Path  string `json:"path"`
	// Version is the owner's change number: it rises by one with every change the owner makes.
	Version   uint64          `json:"version"`
	UpdatedAt time.Time       `json:"updated_at"`
	Value     json.RawMessage `json:"value,omitempty"`
	// Deleted marks a removed document (kept, so the removal flows down too).
	Deleted bool `json:"deleted,omitempty"`
}

// MaxConfigValue is the largest document value, in bytes: a change is one Raft entry.
const MaxConfigValue = 256 << 10

type configPutCommand struct {
	Owner  string          `json:"owner"`
	Path   string          `json:"path"`
	Value  json.RawMessage `json:"value,omitempty"`
	Delete bool            `json:"delete,omitempty"`
}

// configPutManyCommand changes several documents of one owner at once: all of them or, when one
// is refused, none.
type configPutManyCommand struct {
	Owner   string         `json:"owner"`
	Changes []ConfigChange `json:"changes"`
}

// ConfigChange is one change of a PutConfigMany: a document's new value, or its removal.
type ConfigChange struct {
	Path   string          `json:"path"`
	Value  json.RawMessage `json:"value,omitempty"`
	Delete bool            `json:"delete,omitempty"`
	// Create refuses the whole command (a conflict) if the owner has the document already (and
	// has not removed it): two who create the same document at once, one wins, the other hears it.
	Create bool `json:"create,omitempty"`
}

type configSyncCommand struct {
	Docs []ConfigDoc `json:"docs"`
}

func init() {
	register(cmdConfigPut, "config-put", (*machine).applyConfigPut)
	register(cmdConfigSync, "config-sync", (*machine).applyConfigSync)
	register(cmdConfigPutMany, "config-put-many", (*machine).applyConfigPutMany)
}

// ValidateConfigPath checks a document path: 1 to 200 bytes of segments of a-z 0-9 . _ -
// joined by '/'.
func ValidateConfigPath(p string) error {
	if p == "" || len(p) > 200 || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
		return errorf(CodeInvalid, "path %q: 1 to 200 characters of segments joined by '/'", p)
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' || r == '/') {
			return errorf(CodeInvalid, "path %q: segments may hold only a-z, 0-9, '.', '_' and '-'", p)
		}
	}
	return nil
}

func (m *machine) applyConfigPut(tx *replication.Tx, c *configPutCommand) (*Answer, error) {
	docs, a, err := m.putConfigChanges(tx, c.Owner, []ConfigChange{{Path: c.Path, Value: c.Value, Delete: c.Delete}})
	if a != nil || err != nil {
		return a, err
	}
	return &Answer{Config: &docs[0]}, nil
}

func (m *machine) applyConfigPutMany(tx *replication.Tx, c *configPutManyCommand) (*Answer, error) {
	docs, a, err := m.putConfigChanges(tx, c.Owner, c.Changes)
	if a != nil || err != nil {
		return a, err
	}
	return &Answer{Configs: docs}, nil
}

// putConfigChanges checks every change and then writes them, each with the owner's next
// version: a refusal of any writes none.
func (m *machine) putConfigChanges(tx *replication.Tx, owner string, changes []ConfigChange) ([]ConfigDoc, *Answer, error) {
	if owner == "" || len(changes) == 0 {
		return nil, refuse(errorf(CodeInvalid, "a configuration change needs an owner and at least one document")), nil
	}
	docs := make([]ConfigDoc, len(changes))
	for i, c := range changes {
		if err := ValidateConfigPath(c.Path); err != nil {
			return nil, refuse(refusal(err)), nil
		}
		if !c.Delete && !json.Valid(c.Value) || len(c.Value) > MaxConfigValue {
			return nil, refuse(errorf(CodeInvalid, "%s: a configuration document is a JSON value of at most %d bytes", c.Path, MaxConfigValue)), nil
		}
		if c.Create {
			var old ConfigDoc
			found, err := getJSON(tx, configKey(owner, c.Path), &old)
			if err != nil {
				return nil, nil, err
			}
			if found && !old.Deleted {
				return nil, refuse(errorf(CodeConflict, "%s exists already", c.Path)), nil
			}
		}
		docs[i] = ConfigDoc{Owner: owner, Path: c.Path, UpdatedAt: tx.At(), Deleted: c.Delete}
		if !c.Delete {
			var buf bytes.Buffer
			if err := json.Compact(&buf, c.Value); err != nil {
				return nil, refuse(errorf(CodeInvalid, "%s: value: %v", c.Path, err)), nil
			}
			docs[i].Value = buf.Bytes()
		}
	}
	v, err := getUint64(tx, configVersionKey(owner))
	if err != nil {
		return nil, nil, err
	}
	for i := range docs {
		v++
		docs[i].Version = v
		if err := putConfig(tx, &docs[i]); err != nil {
			return nil, nil, err
		}
	}
	return docs, nil, nil
}

// applyConfigSync applies documents from the parent: each is kept if it is newer than this
// site's copy, and each owner's version only rises.
func (m *machine) applyConfigSync(tx *replication.Tx, c *configSyncCommand) (*Answer, error) {
	for i := range c.Docs {
		d := &c.Docs[i]
		if d.Owner == "" || ValidateConfigPath(d.Path) != nil || !d.Deleted && !json.Valid(d.Value) {
			return refuse(errorf(CodeInvalid, "configuration document without owner, with a bad path or a value that is not JSON")), nil
		}
	}
	for i := range c.Docs {
		d := &c.Docs[i]
		var old ConfigDoc
		found, err := getJSON(tx, configKey(d.Owner, d.Path), &old)
		if err != nil {
			return nil, err
		}
		if found && old.Version >= d.Version {
			continue
		}
		if err := putConfig(tx, d); err != nil {
			return nil, err
		}
	}
	return &Answer{}, nil
}

func putConfig(tx *replication.Tx, d *ConfigDoc) error {
	if err := putJSON(tx, configKey(d.Owner, d.Path), d); err != nil {
		return err
	}
	v, err := getUint64(tx, configVersionKey(d.Owner))
	if err != nil {
		return err
	}
	if d.Version > v {
		tx.Set(configVersionKey(d.Owner), u64(d.Version))
	}
	return nil
}

// PutConfig commits a change to a document this site owns (delete removes it).
func (s *State) PutConfig(ctx context.Context, path string, value json.RawMessage, del bool) (*ConfigDoc, error) {
	if err := ValidateConfigPath(path); err != nil {
		return nil, err
	}
	if !del && (len(value) > MaxConfigValue || !json.Valid(value)) {
		return nil, errorf(CodeInvalid, "value: a JSON value of at most %d bytes", MaxConfigValue)
	}
	a, err := s.propose(ctx, cmdConfigPut, &configPutCommand{Owner: s.cfg.Site, Path: path, Value: value, Delete: del})
	if err != nil {
		return nil, err
	}
	return a.Config, nil
}

// PutConfigMany commits changes to several documents this site owns in one command: all of them
// or none. The changes together must fit one command (ErrCommandTooLarge otherwise).
func (s *State) PutConfigMany(ctx context.Context, changes []ConfigChange) ([]ConfigDoc, error) {
	for _, c := range changes {
		if err := ValidateConfigPath(c.Path); err != nil {
			return nil, err
		}
		if !c.Delete && (len(c.Value) > MaxConfigValue || !json.Valid(c.Value)) {
			return nil, errorf(CodeInvalid, "%s: a JSON value of at most %d bytes", c.Path, MaxConfigValue)
		}
	}
	a, err := s.propose(ctx, cmdConfigPutMany, &configPutManyCommand{Owner: s.cfg.Site, Changes: changes})
	if err != nil {
		return nil, err
	}
	return a.Configs, nil
}

// SyncConfig commits documents received from the parent site: each as the JSON ConfigSince made
// there, passed through undecoded.
func (s *State) SyncConfig(ctx context.Context, docs [][]byte) error {
	parsed := make([]ConfigDoc, len(docs))
	for i, b := range docs {
		if err := json.Unmarshal(b, &parsed[i]); err != nil {
			return errorf(CodeInvalid, "configuration document %d from the parent does not decode: %v", i+1, err)
		}
	}
	return proposeInParts(ctx, s, cmdConfigSync, parsed, func(part []ConfigDoc) any {
		return &configSyncCommand{Docs: part}
	}, nil)
}

// ConfigVersions returns, per owner, the highest change this site has applied.
func (s *State) ConfigVersions() (map[string]uint64, error) {
	out := map[string]uint64{}
	prefix := prefixConfigVer
	err := s.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			owner := string(it.Item().Key()[len(prefix):])
			err := it.Item().Value(func(v []byte) error {
				if len(v) != 8 {
					return errors.New("replication: malformed configuration version")
				}
				out[owner] = binary.BigEndian.Uint64(v)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// ConfigSince returns every document (deletions included) whose owner's version is above what
// known says the asker has, at most max of them, owners in order and each owner's by version.
func (s *State) ConfigSince(known map[string]uint64, max int) ([]ConfigDoc, error) {
	var out []ConfigDoc
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixConfig, func(d *ConfigDoc) bool {
			if d.Version > known[d.Owner] {
				out = append(out, *d)
			}
			return true
		})
	})
	// Each owner's documents in version order: cut anywhere, what was sent is every change of
	// that owner up to the last one sent, so the asker's version for it stays exact.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Owner != out[j].Owner {
			return out[i].Owner < out[j].Owner
		}
		return out[i].Version < out[j].Version
	})
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out, err
}

// Config returns every document this site has, deletions included.
func (s *State) Config() ([]ConfigDoc, error) { return s.ConfigSince(nil, 0) }
