package replication

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/casework"
)

// Feeds and the mirror (docs/DESIGN.md, "Feeds"). Every change this site commits to a case it
// holds becomes an entry of the site's feed, with a dense per-site sequence, and a copy in the
// site's own mirror. A parent's leader pulls each child's feed from its stored cursor and
// commits a batch of entries with the new cursor in one command; the entries its mirror accepts
// (a higher version than it had) are appended to its own feed with their origin kept, so its own
// parent receives them too: the district mirrors the whole district.

// FeedEntry is one committed change of a case, as the feed serves it. The feed stores only a
// pointer (feedRef) to the mirror record of the case; serving an entry reads the record, so it
// carries the newest version this site has (which the parent keeps in place of the older one).
// An entry whose case already appeared earlier in the same batch is served without a case:
// it only advances the parent's cursor.
type FeedEntry struct {
	// Seq is the entry's place in the feed of the site serving it (dense, from 1).
	Seq uint64 `json:"seq"`
	// Origin is the site where the change was committed, At when.
	Origin string    `json:"origin"`
	At     time.Time `json:"at"`
	// Case is the case after the change, whole (history included), so that a lost site can be
	// rebuilt from its parent's mirror; nil when the batch already carries it.
	Case *casework.Case `json:"case,omitempty"`
}

// feedRef is what the feed stores for an entry: which case changed.
type feedRef struct {
	Number string `json:"n"`
}

// mirrorMeta is what the FSM needs of a mirror record to replace it, kept under its own key so
// that replacing a record never reads (and parses) the whole case.
type mirrorMeta struct {
	Version   uint64          `json:"v"`
	Status    casework.Status `json:"s"`
	CreatedAt int64           `json:"c"`
}

// MirrorRecord is an ancestor's copy of a case in its subtree.
type MirrorRecord struct {
	Case *casework.Case `json:"case"`
	// Origin is the site that committed this version, At when; MirroredAt is when this site
	// committed its copy, and Via the child whose feed brought it ("" for this site's own).
	Origin     string    `json:"origin"`
	At         time.Time `json:"at"`
	MirroredAt time.Time `json:"mirrored_at"`
	Via        string    `json:"via,omitempty"`
}

// FeedCursor is how far this site has mirrored one child's feed.
type FeedCursor struct {
	Child string `json:"child"`
	// Cursor is the last entry applied; Head the child's newest entry when that batch was read.
	Cursor uint64 `json:"cursor"`
	Head   uint64 `json:"head"`
	// LastAt is when the last applied entry was committed at its origin; AppliedAt when this
	// site applied it.
	LastAt    time.Time `json:"last_at"`
	AppliedAt time.Time `json:"applied_at"`
}

// mirrorCommand commits a batch of a child's feed and the new cursor.
type mirrorCommand struct {
	Child   string      `json:"child"`
	Entries []FeedEntry `json:"entries"`
	Head    uint64      `json:"head"`
}

// maxTrim is the most feed entries one trim command drops: a command must fit in one badger
// transaction (about 13,000 writes with the state's 8 MiB memtables).
const maxTrim = 4096

// trimFeedCommand drops feed entries up to and including Upto, at most maxTrim of them: the
// parent has mirrored them.
type trimFeedCommand struct {
	Upto uint64 `json:"upto"`
}

var (
	prefixFeed        = []byte("f/")
	keyFeedSeq        = []byte("m/feedseq")
	prefixMirror      = []byte("M/")
	prefixMirrorTime  = []byte("X/t/")
	prefixMirrorState = []byte("X/s/")
	prefixCursor      = []byte("k/")
	prefixMirrorMeta  = []byte("X/v/")
)

func mirrorMetaKey(number string) []byte { return concat(prefixMirrorMeta, []byte(number)) }

func feedKey(seq uint64) []byte          { return concat(prefixFeed, u64(seq)) }
func mirrorKey(number string) []byte     { return concat(prefixMirror, []byte(number)) }
func cursorKey(child string) []byte      { return concat(prefixCursor, []byte(child)) }
func mirrorStatusPrefix(s string) []byte { return concat(prefixMirrorState, []byte(s), []byte{0}) }

func mirrorIndexKeys(number string, status casework.Status, created time.Time) [][]byte {
	nanos := u64(uint64(created.UnixNano()))
	return [][]byte{
		concat(prefixMirrorTime, nanos, []byte(number)),
		concat(mirrorStatusPrefix(string(status)), nanos, []byte(number)),
	}
}

// storeCase writes a case this site holds and records the change: the site's own mirror copy
// and a feed entry pointing to it. Every write of a held case goes through here.
func (f *fsm) storeCase(txn *badger.Txn, c *casework.Case, site string, at time.Time) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := txn.Set(caseKey(c.Number), b); err != nil {
		return err
	}
	e := FeedEntry{Origin: site, At: at, Case: c}
	if _, err := f.mirror(txn, &e, "", at, nil); err != nil {
		return err
	}
	return f.appendFeed(txn, c.Number)
}

// getMirror reads a mirror record, resolving a reference to the held case into its bytes.
func getMirror(txn *badger.Txn, number string) (*storedMirror, error) {
	rec := new(storedMirror)
	if err := getJSON(txn, mirrorKey(number), rec); err != nil {
		return nil, err
	}
	return rec, resolveHeld(txn, rec)
}

func resolveHeld(txn *badger.Txn, rec *storedMirror) error {
	if !rec.Held {
		return nil
	}
	item, err := txn.Get(caseKey(rec.Number))
	if err != nil {
		return fmt.Errorf("mirror reference to held case %s: %w", rec.Number, err)
	}
	rec.Case, err = item.ValueCopy(nil)
	rec.Held, rec.Number = false, ""
	return err
}

// record decodes a resolved stored record.
func (rec *storedMirror) record() (*MirrorRecord, error) {
	out := &MirrorRecord{Origin: rec.Origin, At: rec.At, MirroredAt: rec.MirroredAt, Via: rec.Via, Case: new(casework.Case)}
	return out, json.Unmarshal(rec.Case, out.Case)
}

func getMirrorRecord(txn *badger.Txn, number string) (*MirrorRecord, error) {
	rec, err := getMirror(txn, number)
	if err != nil {
		return nil, err
	}
	return rec.record()
}

// unholdMirror copies the held case's bytes into its mirror record: the case is leaving.
func unholdMirror(txn *badger.Txn, number string) error {
	rec := new(storedMirror)
	err := getJSON(txn, mirrorKey(number), rec)
	if errors.Is(err, badger.ErrKeyNotFound) || err == nil && !rec.Held {
		return nil
	}
	if err != nil {
		return err
	}
	if err := resolveHeld(txn, rec); err != nil {
		return err
	}
	return putJSON(txn, mirrorKey(number), rec)
}

// storedMirror is a MirrorRecord as stored and sent: the same JSON, with the case's bytes
// carried as they are, so a record is built and served without encoding or decoding the case.
// The mirror record of a case this site holds is a reference (Held, Number): its bytes are the
// held record's, and are copied in only when the case leaves (settled), so a case kept where it
// was accepted is stored once.
type storedMirror struct {
	Case       json.RawMessage `json:"case,omitempty"`
	Held       bool            `json:"held,omitempty"`
	Number     string          `json:"number,omitempty"`
	Origin     string          `json:"origin"`
	At         time.Time       `json:"at"`
	MirroredAt time.Time       `json:"mirrored_at"`
	Via        string          `json:"via,omitempty"`
}

// wireEntry is a FeedEntry as sent, with the case's bytes as stored.
type wireEntry struct {
	Seq    uint64          `json:"seq"`
	Origin string          `json:"origin,omitempty"`
	At     time.Time       `json:"at,omitzero"`
	Case   json.RawMessage `json:"case,omitempty"`
}

// appendFeed adds an entry for case number to this site's feed, with the next sequence.
func (f *fsm) appendFeed(txn *badger.Txn, number string) error {
	seq, err := getUint64(txn, keyFeedSeq)
	if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
		return err
	}
	seq++
	if err := putJSON(txn, feedKey(seq), feedRef{Number: number}); err != nil {
		return err
	}
	f.feedAppended = true
	return txn.Set(keyFeedSeq, u64(seq))
}

// mirror keeps e's case if it is newer than this site's copy, and reports whether it was.
// caseJSON, if not nil, is e.Case already encoded; with via empty (this site's own change to a
// case it holds) the record refers to the held case instead of copying it.
func (f *fsm) mirror(txn *badger.Txn, e *FeedEntry, via string, at time.Time, caseJSON []byte) (bool, error) {
	var old mirrorMeta
	err := getJSON(txn, mirrorMetaKey(e.Case.Number), &old)
	switch {
	case err == nil && old.Version >= e.Case.Version:
		return false, nil // at or below what we have: re-delivery, or overtaken on the way
	case err == nil:
		for _, k := range mirrorIndexKeys(e.Case.Number, old.Status, time.Unix(0, old.CreatedAt)) {
			if err := txn.Delete(k); err != nil {
				return false, err
			}
		}
	case !errors.Is(err, badger.ErrKeyNotFound):
		return false, err
	}
	meta := mirrorMeta{Version: e.Case.Version, Status: e.Case.Status, CreatedAt: e.Case.CreatedAt.UnixNano()}
	if err := putJSON(txn, mirrorMetaKey(e.Case.Number), meta); err != nil {
		return false, err
	}
	rec := storedMirror{Held: true, Number: e.Case.Number, Origin: e.Origin, At: e.At, MirroredAt: at, Via: via}
	if via != "" {
		if caseJSON == nil {
			var err error
			if caseJSON, err = json.Marshal(e.Case); err != nil {
				return false, err
			}
		}
		rec.Case, rec.Held, rec.Number = caseJSON, false, ""
	}
	if err := putJSON(txn, mirrorKey(e.Case.Number), rec); err != nil {
		return false, err
	}
	for _, k := range mirrorIndexKeys(e.Case.Number, e.Case.Status, e.Case.CreatedAt) {
		if err := txn.Set(k, nil); err != nil {
			return false, err
		}
	}
	return true, nil
}

// applyMirror commits a batch of a child's feed. Entries at or below the stored cursor are
// skipped (re-delivery after a leader change); a gap refuses the rest of the batch, so the
// puller starts again from the cursor and nothing is ever skipped.
func (f *fsm) applyMirror(txn *badger.Txn, c *mirrorCommand, at time.Time) (*result, error) {
	cur := FeedCursor{Child: c.Child}
	if err := getJSON(txn, cursorKey(c.Child), &cur); err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
		return nil, err
	}
	before := cur.Cursor
	var gap *Error
	for i := range c.Entries {
		e := &c.Entries[i]
		if e.Seq <= cur.Cursor {
			continue
		}
		if e.Seq != cur.Cursor+1 {
			gap = errorf(CodeConflict, "feed of %s: entry %d after %d: a gap", c.Child, e.Seq, cur.Cursor)
			break
		}
		if e.Case != nil {
			if e.Origin == "" || e.Case.Number == "" {
				gap = errorf(CodeInvalid, "feed of %s: entry %d without an origin or a case number", c.Child, e.Seq)
				break
			}
			accepted, err := f.mirror(txn, e, c.Child, at, nil)
			if err != nil {
				return nil, err
			}
			if accepted {
				if err := f.appendFeed(txn, e.Case.Number); err != nil {
					return nil, err
				}
			}
		}
		cur.Cursor = e.Seq
		if !e.At.IsZero() {
			cur.LastAt = e.At
		}
	}
	if head := max(c.Head, cur.Cursor); cur.Cursor != before || head != cur.Head {
		cur.Head, cur.AppliedAt = head, at
		if err := putJSON(txn, cursorKey(c.Child), cur); err != nil {
			return nil, err
		}
	}
	if gap != nil {
		return &result{Err: gap}, nil
	}
	return &result{}, nil
}

func (f *fsm) applyTrimFeed(txn *badger.Txn, c *trimFeedCommand) (*result, error) {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefixFeed
	opts.PrefetchValues = false
	it := txn.NewIterator(opts)
	var keys [][]byte
	for it.Rewind(); it.Valid() && len(keys) < maxTrim; it.Next() {
		k := it.Item().KeyCopy(nil)
		if binary.BigEndian.Uint64(k[len(prefixFeed):]) > c.Upto {
			break
		}
		keys = append(keys, k)
	}
	it.Close()
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return nil, err
		}
	}
	return &result{}, nil
}

func getUint64(txn *badger.Txn, key []byte) (uint64, error) {
	item, err := txn.Get(key)
	if err != nil {
		return 0, err
	}
	var n uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return errors.New("replication: malformed counter")
		}
		n = binary.BigEndian.Uint64(v)
		return nil
	})
	return n, err
}

// ReadFeed returns up to max entries of this site's feed from seq from on, and the newest
// sequence. Entries below from that were trimmed are gone: asking for them is an error.
func (s *Store) ReadFeed(from uint64, max int) ([]FeedEntry, uint64, error) {
	raw, head, err := s.ReadFeedRaw(from, max)
	if err != nil {
		return nil, head, err
	}
	out := make([]FeedEntry, len(raw))
	for i, b := range raw {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			return nil, head, err
		}
	}
	return out, head, nil
}

// ReadFeedRaw is ReadFeed with each entry as its JSON encoding, made without decoding the
// stored case: what a site sends its parent.
func (s *Store) ReadFeedRaw(from uint64, max int) ([][]byte, uint64, error) {
	var out [][]byte
	var head uint64
	err := s.fsm.view(func(txn *badger.Txn) error {
		var err error
		if head, err = getUint64(txn, keyFeedSeq); err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixFeed
		it := txn.NewIterator(opts)
		defer it.Close()
		inBatch := map[string]bool{}
		for it.Seek(feedKey(from)); it.Valid() && len(out) < max; it.Next() {
			seq := binary.BigEndian.Uint64(it.Item().Key()[len(prefixFeed):])
			if len(out) == 0 && seq != from {
				return errorf(CodeConflict, "feed entry %d was trimmed (oldest kept: %d)", from, seq)
			}
			var ref feedRef
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &ref) }); err != nil {
				return err
			}
			e := wireEntry{Seq: seq}
			if !inBatch[ref.Number] {
				inBatch[ref.Number] = true
				rec, err := getMirror(txn, ref.Number)
				if err != nil {
					return fmt.Errorf("feed entry %d without its mirror record: %w", seq, err)
				}
				e.Origin, e.At, e.Case = rec.Origin, rec.At, rec.Case
			}
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

// FeedChanged returns a channel closed when the feed next grows.
func (s *Store) FeedChanged() <-chan struct{} { return s.fsm.feedSignal() }

// MirrorChildRaw commits a batch of a child's feed as received: entries are FeedEntry JSON,
// passed into the command without decoding (the FSM decodes them once).
func (s *Store) MirrorChildRaw(ctx context.Context, child string, entries [][]byte, head uint64) error {
	raw := make([]json.RawMessage, len(entries))
	for i, b := range entries {
		raw[i] = b
	}
	cmd, err := encodeCommand(cmdMirror, &struct {
		Child   string            `json:"child"`
		Entries []json.RawMessage `json:"entries"`
		Head    uint64            `json:"head"`
	}{child, raw, head})
	if err != nil {
		return err
	}
	_, err = s.proposeWithRetry(ctx, cmd)
	return err
}

// TrimFeed drops this site's feed entries up to upto (the parent has them), in commands of at
// most maxTrim entries each.
func (s *Store) TrimFeed(ctx context.Context, upto uint64) error {
	for {
		oldest, err := s.oldestFeedSeq()
		if err != nil || oldest == 0 || oldest > upto {
			return err
		}
		cmd, err := encodeCommand(cmdTrimFeed, &trimFeedCommand{Upto: upto})
		if err != nil {
			return err
		}
		if _, err := s.proposeWithRetry(ctx, cmd); err != nil {
			return err
		}
	}
}

// oldestFeedSeq is the sequence of the oldest entry kept, or 0 when the feed is empty.
func (s *Store) oldestFeedSeq() (uint64, error) {
	var seq uint64
	err := s.fsm.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixFeed
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		if it.Rewind(); it.Valid() {
			seq = binary.BigEndian.Uint64(it.Item().Key()[len(prefixFeed):])
		}
		return nil
	})
	return seq, err
}

// FeedCursors lists how far this site has mirrored each child.
func (s *Store) FeedCursors() (map[string]FeedCursor, error) {
	out := map[string]FeedCursor{}
	err := s.fsm.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixCursor, func(c *FeedCursor) bool { out[c.Child] = *c; return true })
	})
	return out, err
}

// MirrorCase returns this site's mirrored copy of a case in its subtree, or ErrNotFound.
func (s *Store) MirrorCase(number string) (*MirrorRecord, error) {
	var rec *MirrorRecord
	err := s.fsm.view(func(txn *badger.Txn) error {
		var err error
		rec, err = getMirrorRecord(txn, number)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	return rec, err
}

// String describes the cursor for logs: "<child> at <cursor> of <head>".
func (c FeedCursor) String() string {
	return fmt.Sprintf("%s at %d of %d", c.Child, c.Cursor, c.Head)
}
