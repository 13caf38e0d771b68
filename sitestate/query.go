package sitestate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
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

// ListCases lists the cases this site holds, newest first: it walks the time index (or the
// status index when filtering by status).
func (s *State) ListCases(flt Filter) (*Page, error) {
	page := &Page{}
	token, err := s.walkIndex(flt, prefixByTime, byStatusPrefix, func(txn *badger.Txn, number string, add bool) (bool, error) {
		c, ok, err := getCase(view{txn}, number)
		if err != nil {
			return false, err
		}
		if !ok {
			return false, fmt.Errorf("%w: index entry without its case %s", errMalformed, number)
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
func (s *State) walkIndex(flt Filter, byTime []byte, byStatus func(string) []byte, visit func(txn *badger.Txn, number string, add bool) (bool, error)) (string, error) {
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
	err := s.view(func(txn *badger.Txn) error {
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

// SubtreeFilter selects mirrored cases: a Filter, plus the holder site or the holder's tier.
type SubtreeFilter struct {
	Filter
	Site, Tier string
}

// SubtreePage is one page of a subtree listing, newest first.
type SubtreePage struct {
	Records       []*MirrorRecord
	NextPageToken string
}

// ListSubtree lists this site's mirror of its subtree (its own cases and every descendant's),
// newest first. The filter's site and tier select holders through the site registry.
func (s *State) ListSubtree(flt SubtreeFilter) (*SubtreePage, error) {
	holders, err := s.holders(flt.Site, flt.Tier)
	if err != nil {
		return nil, err
	}
	page := &SubtreePage{}
	token, err := s.walkIndex(flt.Filter, prefixMirrorTime, mirrorStatusPrefix, func(txn *badger.Txn, number string, add bool) (bool, error) {
		stored, ok, err := getMirror(view{txn}, number)
		if err != nil {
			return false, err
		}
		if !ok {
			return false, fmt.Errorf("%w: mirror index entry without its case %s", errMalformed, number)
		}
		// A filter by site or item code passes over many records for each it keeps: it reads
		// the few fields it tests first, and decodes the whole case only for a match.
		var head caseHead
		if err := json.Unmarshal(stored.Case, &head); err != nil {
			return false, fmt.Errorf("%w: mirror record %s: %v", errMalformed, number, err)
		}
		if !flt.matches(&casework.Case{Kind: head.Kind, ItemCode: head.ItemCode}) || holders != nil && !holders[head.HolderSite] {
			return false, nil
		}
		if add {
			rec, err := stored.record()
			if err != nil {
				return false, err
			}
			page.Records = append(page.Records, rec)
		}
		return true, nil
	})
	page.NextPageToken = token
	return page, err
}

// caseHead is what a subtree listing's filters test of a case.
type caseHead struct {
	Kind       casework.Kind `json:"kind"`
	ItemCode   string        `json:"item_code"`
	HolderSite string        `json:"holder_site"`
}

// holders is the set of holder sites a subtree listing keeps for a site and tier filter (nil
// keeps all): the sites of the registry that match, and the named site even when it is not
// registered yet (it may already hold mirrored cases).
func (s *State) holders(site, tier string) (map[string]bool, error) {
	if site == "" && tier == "" {
		return nil, nil
	}
	recs, err := s.Sites()
	if err != nil {
		return nil, err
	}
	tiers := map[string]string{s.cfg.Site: string(s.cfg.Tier)}
	for _, r := range recs {
		tiers[r.Code] = r.Tier
	}
	out := map[string]bool{}
	for code, t := range tiers {
		if (site == "" || site == code) && (tier == "" || tier == t) {
			out[code] = true
		}
	}
	if site != "" && tier == "" {
		out[site] = true
	}
	return out, nil
}
