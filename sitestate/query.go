package replication

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
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
	page := &Page{}
	token, err := f.walkIndex(flt, prefixByTime, byStatusPrefix, func(txn *badger.Txn, number string, add bool) (bool, error) {
		c, err := getCase(txn, number)
		if err != nil {
			return false, fmt.Errorf("index entry without its case: %w", err)
		}
		if !flt.matches(c) {
			return false, nil
		}
		if add {
			page.Cases = append(page.Cases, c)
		}
		return true, nil
	})
	page.NextPageToken = token
	return page, err
}

func (flt *Filter) matches(c *casework.Case) bool {
	return (flt.Kind == "" || c.Kind == flt.Kind) && (flt.ItemCode == "" || c.ItemCode == flt.ItemCode)
}

// walkIndex visits, newest first, the numbers in an index of keys <prefix><created nanos BE>
// <number> (the status index when the filter names a status) within the filter's dates, until
// visit has matched (and, with add, taken) a page's worth; visit without add only says whether a
// number matches. It returns the token of the next page, if there is one.
func (f *fsm) walkIndex(flt Filter, byTime []byte, byStatus func(string) []byte, visit func(txn *badger.Txn, number string, add bool) (bool, error)) (string, error) {
	limit := flt.Limit
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 0 || limit > MaxPageSize {
		return "", errorf(CodeInvalid, "page size must be between 1 and %d", MaxPageSize)
	}
	prefix := byTime
	if flt.Status != "" {
		prefix = byStatus(string(flt.Status))
	}
	// Reverse iteration seeks to the largest key not above the seek key.
	seek := append(append([]byte{}, prefix...), 0xff)
	if !flt.To.IsZero() {
		seek = concat(prefix, u64(uint64(flt.To.UnixNano()-1)), []byte{0xff})
	}
	if flt.PageToken != "" {
		tok, err := base64.RawURLEncoding.DecodeString(flt.PageToken)
		if err != nil || !bytes.HasPrefix(tok, prefix) {
			return "", errorf(CodeInvalid, "page_token is not valid for this listing")
		}
		seek = tok
	}
	var next string
	err := f.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Reverse = true
		opts.PrefetchValues = false
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		matched := 0
		var last []byte
		for it.Seek(seek); it.Valid(); it.Next() {
			key := it.Item().Key()
			if flt.PageToken != "" && bytes.Equal(key, seek) {
				continue
			}
			created := int64(u64from(key[len(prefix):]))
			if !flt.From.IsZero() && created < flt.From.UnixNano() {
				break
			}
			ok, err := visit(txn, string(key[len(prefix)+8:]), matched < limit)
			if err != nil {
				return err
			}
			switch {
			case ok && matched == limit:
				// One more match exists beyond this page: the next page starts after it.
				next = base64.RawURLEncoding.EncodeToString(last)
				return nil
			case ok:
				matched++
				last = append(last[:0], key...)
			}
		}
		return nil
	})
	return next, err
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

// MirrorFilter selects mirrored cases: a Filter, plus the holder site or the holder's tier (the
// node turns them into Holders, the set of holder sites to keep; nil keeps all).
type MirrorFilter struct {
	Filter
	Site, Tier string
	Holders    map[string]bool
}

// MirrorPage is one page of a subtree listing, newest first.
type MirrorPage struct {
	Records       []*MirrorRecord
	NextPageToken string
}

// ListMirror lists this site's mirror of its subtree (its own cases included), newest first.
func (s *Store) ListMirror(flt MirrorFilter) (*MirrorPage, error) {
	page := &MirrorPage{}
	token, err := s.fsm.walkIndex(flt.Filter, prefixMirrorTime, mirrorStatusPrefix, func(txn *badger.Txn, number string, add bool) (bool, error) {
		rec, err := getMirrorRecord(txn, number)
		if err != nil {
			return false, fmt.Errorf("mirror index entry without its case: %w", err)
		}
		if !flt.matches(rec.Case) || flt.Holders != nil && !flt.Holders[rec.Case.HolderSite] {
			return false, nil
		}
		if add {
			page.Records = append(page.Records, rec)
		}
		return true, nil
	})
	page.NextPageToken = token
	return page, err
}

// scanJSON decodes, in key order, every value under prefix into a T and hands it to visit,
// until visit returns false.
func scanJSON[T any](txn *badger.Txn, prefix []byte, visit func(*T) bool) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		v := new(T)
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, v) }); err != nil {
			return err
		}
		if !visit(v) {
			return nil
		}
	}
	return nil
}
