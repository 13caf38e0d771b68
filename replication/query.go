package replication

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/casework"
)

// Filter selects cases for ListCases. Zero fields match everything.
type Filter struct {
	Status   casework.Status
	Kind     casework.Kind
	ItemCode string
	// From is inclusive, To exclusive, on the case's creation time.
	From, To time.Time
	// Limit is the page size: 1 to MaxPageSize, DefaultPageSize when 0.
	Limit int
	// PageToken continues a listing where the previous page ended.
	PageToken string
}

// Paging limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Page is one page of a listing, newest first.
type Page struct {
	Cases         []*casework.Case
	NextPageToken string
}

// getCase reads one case from this node's state.
func (f *fsm) getCase(number string) (*casework.Case, error) {
	var c *casework.Case
	err := f.view(func(txn *badger.Txn) error {
		var err error
		c, err = getCase(txn, number)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	return c, err
}

// listCases walks the time index (or the status index when filtering by status) newest first.
func (f *fsm) listCases(flt Filter) (*Page, error) {
	limit := flt.Limit
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 0 || limit > MaxPageSize {
		return nil, errorf(CodeInvalid, "page size must be between 1 and %d", MaxPageSize)
	}
	prefix := prefixByTime
	if flt.Status != "" {
		prefix = byStatusPrefix(string(flt.Status))
	}
	// Reverse iteration seeks to the largest key not above the seek key.
	seek := append(append([]byte{}, prefix...), 0xff)
	if !flt.To.IsZero() {
		seek = concat(prefix, u64(uint64(flt.To.UnixNano()-1)), []byte{0xff})
	}
	if flt.PageToken != "" {
		tok, err := base64.RawURLEncoding.DecodeString(flt.PageToken)
		if err != nil || !bytes.HasPrefix(tok, prefix) {
			return nil, errorf(CodeInvalid, "page_token is not valid for this listing")
		}
		seek = tok
	}
	page := &Page{}
	err := f.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Reverse = true
		opts.PrefetchValues = false
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		skipFirst := flt.PageToken != ""
		for it.Seek(seek); it.Valid(); it.Next() {
			key := it.Item().Key()
			if skipFirst && bytes.Equal(key, seek) {
				continue
			}
			created := int64(u64from(key[len(prefix):]))
			if !flt.From.IsZero() && created < flt.From.UnixNano() {
				break
			}
			c, err := getCase(txn, numberFromIndexKey(prefix, key))
			if err != nil {
				return fmt.Errorf("index entry without its case: %w", err)
			}
			if flt.Kind != "" && c.Kind != flt.Kind || flt.ItemCode != "" && c.ItemCode != flt.ItemCode {
				continue
			}
			if len(page.Cases) == limit {
				page.NextPageToken = base64.RawURLEncoding.EncodeToString(lastKeyOf(page, prefix))
				return nil
			}
			page.Cases = append(page.Cases, c)
		}
		return nil
	})
	return page, err
}

// lastKeyOf rebuilds the index key of the page's last case: the next page starts after it.
func lastKeyOf(p *Page, prefix []byte) []byte {
	c := p.Cases[len(p.Cases)-1]
	return concat(prefix, u64(uint64(c.CreatedAt.UnixNano())), []byte(c.Number))
}

func u64from(b []byte) uint64 {
	var v uint64
	for _, x := range b[:8] {
		v = v<<8 | uint64(x)
	}
	return v
}

// exportState returns every key and value of this node's state, for determinism tests and
// diagnostics. It reads one consistent view.
func (f *fsm) exportState() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := f.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(it.Item().KeyCopy(nil))] = v
		}
		return nil
	})
	return out, err
}
