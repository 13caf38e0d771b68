package sitestate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
)

// The feed (docs/DESIGN.md, "Feeds"). Every change this site commits to a case it holds becomes
// an entry of the site's feed, with a dense per-site sequence, and a copy in the site's own
// mirror (mirror.go). A parent pulls the feed from its stored cursor; the entries its mirror
// accepts are appended to its own feed, origin kept, for its own parent: the district mirrors
// the whole district. A site trims what its parent has committed.

func init() { register(cmdTrimFeed, "trim-feed", (*machine).applyTrimFeed) }

// FeedEntry is one committed change of a case, as the feed serves it. The feed stores only a
// pointer (feedRef) to the mirror record of the case; serving an entry reads the record, so it
// carries the newest version this site has (which the parent keeps in place of the older one).
type FeedEntry struct {
	// Seq is the entry's place in the feed of the site serving it (dense, from 1).
	Seq uint64 `json:"seq"`
	// Origin is the site where the change was committed, At when.
	Origin string    `json:"origin"`
	At     time.Time `json:"at"`
	// Case is the case after the change, whole (history included), so that a lost site can be
	// rebuilt from its parent's mirror; nil when a later entry of the same batch carries it.
	Case *casework.Case `json:"case,omitempty"`
	// QueryCode is the citizen's code, sent only by the site that accepted the case, to its
	// parent (see MirrorRecord.QueryCode).
	QueryCode string `json:"qc,omitempty"`
}

// feedRef is what the feed stores for an entry: which case changed.
type feedRef struct {
	Number string `json:"n"`
}

// wireEntry is a FeedEntry as sent, with the case's bytes as stored.
type wireEntry struct {
	Seq       uint64          `json:"seq"`
	Origin    string          `json:"origin,omitempty"`
	At        time.Time       `json:"at,omitzero"`
	Case      json.RawMessage `json:"case,omitempty"`
	QueryCode string          `json:"qc,omitempty"`
}

// maxTrim is the most feed entries one trim command drops (a command's write limit).
const maxTrim = 4096

// trimFeedCommand drops feed entries up to and including Upto, at most maxTrim of them: the
// parent has mirrored them.
type trimFeedCommand struct {
	Upto uint64 `json:"upto"`
}

// storeCase writes a case this site holds and records the change: the site's own mirror copy
// and a feed entry pointing to it. Every write of a held case goes through here. code is the
// citizen's query code when the case was just accepted here ("" otherwise: the mirror keeps it).
func (m *machine) storeCase(tx *replication.Tx, c *casework.Case, site string, code string) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tx.Set(caseKey(c.Number), b)
	e := FeedEntry{Origin: site, At: tx.At(), Case: c, QueryCode: code}
	if _, err := m.mirror(tx, &e, "", nil); err != nil {
		return err
	}
	return appendFeed(tx, c.Number)
}

// appendFeed adds an entry for case number to this site's feed, with the next sequence.
func appendFeed(tx *replication.Tx, number string) error {
	seq, err := getUint64(tx, keyFeedSeq)
	if err != nil {
		return err
	}
	seq++
	if err := putJSON(tx, feedKey(seq), feedRef{Number: number}); err != nil {
		return err
	}
	tx.Set(keyFeedSeq, u64(seq))
	tx.Emit(feedAppended{})
	return nil
}

func (m *machine) applyTrimFeed(tx *replication.Tx, c *trimFeedCommand) (*Answer, error) {
	var keys [][]byte
	err := tx.ScanKeys(prefixFeed, func(k []byte) (bool, error) {
		if seqFromFeedKey(k) > c.Upto {
			return false, nil
		}
		keys = append(keys, append([]byte(nil), k...))
		return len(keys) < maxTrim, nil
	})
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		tx.Delete(k)
	}
	return &Answer{}, nil
}

// ReadFeed returns up to max entries of this site's feed from seq from on, each as the JSON a
// parent receives (made without decoding the stored case), and the newest sequence. The batch
// stops before its cases' records pass maxBytes (one entry at least). Entries below from that
// were trimmed are gone: asking for them is a conflict.
//
// A case that appears more than once in the batch is attached to its last entry; the others
// only advance the cursor. A parent that applies this batch after an older, overlapping one
// therefore still ends with the newest version, because the case rides on the entry furthest
// along (the batch is cut before attachments are chosen, so the rule holds for what is sent).
func (s *State) ReadFeed(from uint64, max, maxBytes int) ([][]byte, uint64, error) {
	var out [][]byte
	var head uint64
	err := s.view(func(txn *badger.Txn) error {
		r := view{txn}
		var err error
		if head, err = getUint64(r, keyFeedSeq); err != nil {
			return err
		}
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixFeed
		it := txn.NewIterator(opts)
		defer it.Close()
		var entries []wireEntry
		records := map[string]*storedMirror{}
		last := map[string]int{}
		size := 0
		for it.Seek(feedKey(from)); it.Valid() && len(entries) < max; it.Next() {
			seq := seqFromFeedKey(it.Item().Key())
			if len(entries) == 0 && seq != from {
				return errorf(CodeConflict, "feed entry %d was trimmed (oldest kept: %d)", from, seq)
			}
			var ref feedRef
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &ref) }); err != nil {
				return fmt.Errorf("%w: feed entry %d: %v", errMalformed, seq, err)
			}
			if _, seen := records[ref.Number]; !seen {
				rec, ok, err := getMirror(r, ref.Number)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("%w: feed entry %d without its mirror record", errMalformed, seq)
				}
				if size += len(rec.Case) + 64; size > maxBytes && len(entries) > 0 {
					break
				}
				records[ref.Number] = rec
			}
			entries = append(entries, wireEntry{Seq: seq})
			last[ref.Number] = len(entries) - 1
		}
		if len(entries) == 0 && from >= 1 && from <= head {
			return errorf(CodeConflict, "feed entry %d was trimmed (the feed is empty up to %d)", from, head)
		}
		for number, i := range last {
			rec := records[number]
			entries[i].Origin, entries[i].At, entries[i].Case = rec.Origin, rec.At, rec.Case
			if origin, _, _, err := casework.ParseNumber(number); err == nil && origin == s.cfg.Site {
				entries[i].QueryCode = rec.QueryCode // a code goes to the accepting site's parent only
			}
		}
		for _, e := range entries {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			out = append(out, b)
		}
		return nil
	})
	return out, head, err
}

// FeedHead is the sequence of this site's newest feed entry.
func (s *State) FeedHead() (uint64, error) {
	var head uint64
	err := s.view(func(txn *badger.Txn) error {
		var err error
		head, err = getUint64(view{txn}, keyFeedSeq)
		return err
	})
	return head, err
}

// FeedChanged returns a channel closed when the feed next grows.
func (s *State) FeedChanged() <-chan struct{} { return s.feedNew.C() }

// TrimFeed drops this site's feed entries up to upto (the parent has them), in commands of at
// most maxTrim entries each.
func (s *State) TrimFeed(ctx context.Context, upto uint64) error {
	for {
		oldest, err := s.oldestFeedSeq()
		if err != nil || oldest == 0 || oldest > upto {
			return err
		}
		if _, err := s.proposeIdempotent(ctx, cmdTrimFeed, &trimFeedCommand{Upto: upto}); err != nil {
			return err
		}
	}
}

// oldestFeedSeq is the sequence of the oldest entry kept, or 0 when the feed is empty.
func (s *State) oldestFeedSeq() (uint64, error) {
	var seq uint64
	err := s.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixFeed
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		if it.Rewind(); it.Valid() {
			seq = seqFromFeedKey(it.Item().Key())
		}
		return nil
	})
	return seq, err
}
