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

// The mirror: every site keeps the newest copy it knows of each case in its subtree (its own
// cases included), fed by its children's feeds. The parent's leader commits a batch of a child's
// feed with the new cursor in one mirror command; the highest version of each case wins, so
// re-delivery and overlapping batches are harmless.

func init() { register(cmdMirror, "mirror", (*machine).applyMirror) }

// MirrorRecord is an ancestor's copy of a case in its subtree.
type MirrorRecord struct {
	Case *casework.Case `json:"case"`
	// Origin is the site that committed this version, At when; MirroredAt is when this site
	// committed its copy, and Via the child whose feed brought it ("" for this site's own).
	Origin     string    `json:"origin"`
	At         time.Time `json:"at"`
	MirroredAt time.Time `json:"mirrored_at"`
	Via        string    `json:"via,omitempty"`
	// QueryCode is the citizen's code, kept by the site that accepted the case and by its
	// parent (so that a restored site can answer a retried submission with it). It never goes
	// further up, and no listing shows it.
	QueryCode string `json:"query_code,omitempty"`
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

// String describes the cursor for logs: "<child> at <cursor> of <head>".
func (c FeedCursor) String() string {
	return fmt.Sprintf("%s at %d of %d", c.Child, c.Cursor, c.Head)
}

// mirrorCommand commits a batch of a child's feed and the new cursor. With Resync, the entries
// are a snapshot of the child's mirror (no sequences) and the cursor moves to ResyncCursor
// (when set: the snapshot's last batch).
type mirrorCommand struct {
	Child        string            `json:"child"`
	Entries      []json.RawMessage `json:"entries"`
	Head         uint64            `json:"head"`
	Resync       bool              `json:"resync,omitempty"`
	ResyncCursor uint64            `json:"resync_cursor,omitempty"`
}

// mirrorMeta is what the FSM needs of a mirror record to replace it, kept under its own key so
// that replacing a record never reads (and parses) the whole case.
type mirrorMeta struct {
	Version   uint64          `json:"v"`
	Status    casework.Status `json:"s"`
	CreatedAt int64           `json:"c"`
	// QueryCode is kept from the version that brought it (see MirrorRecord.QueryCode).
	QueryCode string `json:"qc,omitempty"`
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
	QueryCode  string          `json:"qc,omitempty"`
}

func mirrorIndexKeys(number string, status casework.Status, createdNanos int64) [][]byte {
	return [][]byte{
		timeIndexKey(prefixMirrorTime, createdNanos, number),
		timeIndexKey(mirrorStatusPrefix(string(status)), createdNanos, number),
	}
}

func getMirrorMeta(r reader, number string) (mirrorMeta, bool, error) {
	var meta mirrorMeta
	ok, err := getJSON(r, mirrorMetaKey(number), &meta)
	return meta, ok, err
}

// getMirror reads a mirror record, resolving a reference to the held case into its bytes.
func getMirror(r reader, number string) (*storedMirror, bool, error) {
	rec, ok, err := getStoredMirror(r, number)
	if err != nil || !ok {
		return nil, ok, err
	}
	return rec, true, resolveHeld(r, rec)
}

func resolveHeld(r reader, rec *storedMirror) error {
	if !rec.Held {
		return nil
	}
	b, ok, err := r.Get(caseKey(rec.Number))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: mirror reference to held case %s, which is not here", errMalformed, rec.Number)
	}
	rec.Case, rec.Held, rec.Number = b, false, ""
	return nil
}

// record decodes a resolved stored record.
func (rec *storedMirror) record() (*MirrorRecord, error) {
	out := &MirrorRecord{Origin: rec.Origin, At: rec.At, MirroredAt: rec.MirroredAt, Via: rec.Via, QueryCode: rec.QueryCode, Case: new(casework.Case)}
	if err := json.Unmarshal(rec.Case, out.Case); err != nil {
		return nil, fmt.Errorf("%w: mirror record: %v", errMalformed, err)
	}
	return out, nil
}

func getMirrorRecord(r reader, number string) (*MirrorRecord, bool, error) {
	rec, ok, err := getMirror(r, number)
	if err != nil || !ok {
		return nil, ok, err
	}
	out, err := rec.record()
	return out, err == nil, err
}

// unholdMirror copies the held case's bytes into its mirror record: the case is leaving.
func unholdMirror(tx *replication.Tx, number string) error {
	rec, ok, err := getStoredMirror(tx, number)
	if err != nil || !ok || !rec.Held {
		return err
	}
	if err := resolveHeld(tx, rec); err != nil {
		return err
	}
	return putStoredMirror(tx, number, rec)
}

// mirror keeps e's case if it is newer than this site's copy, and reports whether it was.
// caseJSON, if not nil, is e.Case already encoded; with via empty (this site's own change to a
// case it holds) the record refers to the held case instead of copying it.
func (m *machine) mirror(tx *replication.Tx, e *FeedEntry, via string, caseJSON []byte) (bool, error) {
	old, seen, err := getMirrorMeta(tx, e.Case.Number)
	switch {
	case err != nil:
		return false, err
	case seen && old.Version >= e.Case.Version:
		return false, nil // at or below what we have: re-delivery, or overtaken on the way
	case seen:
		for _, k := range mirrorIndexKeys(e.Case.Number, old.Status, old.CreatedAt) {
			tx.Delete(k)
		}
	}
	meta := mirrorMeta{Version: e.Case.Version, Status: e.Case.Status, CreatedAt: e.Case.CreatedAt.UnixNano(), QueryCode: old.QueryCode}
	if e.QueryCode != "" {
		meta.QueryCode = e.QueryCode
	}
	if err := putJSON(tx, mirrorMetaKey(e.Case.Number), meta); err != nil {
		return false, err
	}
	rec := storedMirror{Held: true, Number: e.Case.Number, Origin: e.Origin, At: e.At, MirroredAt: tx.At(), Via: via, QueryCode: meta.QueryCode}
	if via != "" {
		if caseJSON == nil {
			var err error
			if caseJSON, err = json.Marshal(e.Case); err != nil {
				return false, err
			}
		}
		rec.Case, rec.Held, rec.Number = caseJSON, false, ""
	}
	if err := putStoredMirror(tx, e.Case.Number, &rec); err != nil {
		return false, err
	}
	for _, k := range mirrorIndexKeys(e.Case.Number, e.Case.Status, meta.CreatedAt) {
		tx.Set(k, nil)
	}
	return true, nil
}

// applyMirror commits a batch of a child's feed. Entries at or below the stored cursor are
// skipped (re-delivery after a leader change); a gap, or an entry that does not decode, refuses
// the whole batch, so the puller starts again from the committed cursor and nothing is ever
// skipped. The answer carries the new cursor.
func (m *machine) applyMirror(tx *replication.Tx, c *mirrorCommand) (*Answer, error) {
	if c.Child == "" {
		return refuse(errorf(CodeInvalid, "mirror command without a child site")), nil
	}
	cur := FeedCursor{Child: c.Child}
	if _, err := getJSON(tx, cursorKey(c.Child), &cur); err != nil {
		return nil, err
	}
	if c.Resync {
		return m.applyResync(tx, c, cur)
	}
	before := cur.Cursor
	for i, raw := range c.Entries {
		var e FeedEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return refuse(errorf(CodeInvalid, "feed of %s: entry %d of the batch does not decode: %v", c.Child, i+1, err)), nil
		}
		if e.Seq <= cur.Cursor {
			continue
		}
		if e.Seq != cur.Cursor+1 {
			return refuse(errorf(CodeConflict, "feed of %s: entry %d after %d: a gap", c.Child, e.Seq, cur.Cursor)), nil
		}
		if e.Case != nil {
			if e.Origin == "" || e.Case.Number == "" {
				return refuse(errorf(CodeInvalid, "feed of %s: entry %d without an origin or a case number", c.Child, e.Seq)), nil
			}
			accepted, err := m.mirror(tx, &e, c.Child, nil)
			if err != nil {
				return nil, err
			}
			if accepted {
				if err := appendFeed(tx, e.Case.Number); err != nil {
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
		cur.Head, cur.AppliedAt = head, tx.At()
		if err := putJSON(tx, cursorKey(c.Child), cur); err != nil {
			return nil, err
		}
	}
	return &Answer{Cursor: &cur}, nil
}

// applyResync commits a batch of a snapshot of the child's mirror: each case kept if newer (and
// re-exported then), and, on the last batch, the cursor moved to where the snapshot was taken.
func (m *machine) applyResync(tx *replication.Tx, c *mirrorCommand, cur FeedCursor) (*Answer, error) {
	entries := make([]FeedEntry, len(c.Entries))
	for i, raw := range c.Entries {
		if err := json.Unmarshal(raw, &entries[i]); err != nil || entries[i].Case == nil || entries[i].Case.Number == "" || entries[i].Origin == "" {
			return refuse(errorf(CodeInvalid, "resync of %s: entry %d is not a case record", c.Child, i+1)), nil
		}
	}
	for i := range entries {
		accepted, err := m.mirror(tx, &entries[i], c.Child, nil)
		if err != nil {
			return nil, err
		}
		if accepted {
			if err := appendFeed(tx, entries[i].Case.Number); err != nil {
				return nil, err
			}
		}
	}
	if c.ResyncCursor > cur.Cursor {
		cur.Cursor = c.ResyncCursor
		cur.Head = max(cur.Head, c.Head, c.ResyncCursor)
		cur.AppliedAt = tx.At()
		if err := putJSON(tx, cursorKey(c.Child), cur); err != nil {
			return nil, err
		}
	}
	return &Answer{Cursor: &cur}, nil
}

// ResyncChild commits a batch of a snapshot of a child's mirror (the child's answer to a cursor
// it no longer keeps), and on the last batch (cursor > 0) moves the child's cursor there.
func (s *State) ResyncChild(ctx context.Context, child string, entries [][]byte, head, cursor uint64) (*FeedCursor, error) {
	raw := make([]json.RawMessage, len(entries))
	for i, b := range entries {
		if !json.Valid(b) {
			b = []byte(`"undecodable"`)
		}
		raw[i] = b
	}
	a, err := s.proposeIdempotent(ctx, cmdMirror, &mirrorCommand{Child: child, Entries: raw, Head: head, Resync: true, ResyncCursor: cursor})
	if err != nil {
		return nil, err
	}
	return a.Cursor, nil
}

// MirrorSnapshot sends this site's whole mirror in batches of at most maxBytes (one record at
// least), each record as a feed entry without a sequence, from one consistent view, and returns
// the feed's head in that view: a parent that commits every batch has everything up to it.
func (s *State) MirrorSnapshot(maxBytes int, send func(entries [][]byte) error) (uint64, error) {
	var head uint64
	err := s.view(func(txn *badger.Txn) error {
		r := view{txn}
		var err error
		if head, err = getUint64(r, keyFeedSeq); err != nil {
			return err
		}
		var batch [][]byte
		size := 0
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixMirror
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			number := string(it.Item().Key()[len(prefixMirror):])
			rec := new(storedMirror)
			if err := it.Item().Value(func(v []byte) error { return decodeStoredMirror(v, rec) }); err != nil {
				return fmt.Errorf("%w: mirror record %s: %v", errMalformed, number, err)
			}
			if err := resolveHeld(r, rec); err != nil {
				return err
			}
			e := wireEntry{Origin: rec.Origin, At: rec.At, Case: rec.Case}
			if origin, _, _, err := casework.ParseNumber(number); err == nil && origin == s.cfg.Site {
				e.QueryCode = rec.QueryCode // a code goes to the accepting site's parent only
			}
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if size+len(b) > maxBytes && len(batch) > 0 {
				if err := send(batch); err != nil {
					return err
				}
				batch, size = nil, 0
			}
			batch, size = append(batch, b), size+len(b)
		}
		if len(batch) > 0 {
			return send(batch)
		}
		return nil
	})
	return head, err
}

// MirrorChild commits a batch of a child's feed as received (entries are the JSON that ReadFeed
// made at the child, passed through undecoded) and returns the new cursor. A batch with a gap is
// refused whole (a conflict): the caller starts again from the committed cursor.
func (s *State) MirrorChild(ctx context.Context, child string, entries [][]byte, head uint64) (*FeedCursor, error) {
	raw := make([]json.RawMessage, len(entries))
	for i, b := range entries {
		if !json.Valid(b) {
			b = []byte(`"undecodable"`) // refused in order by the state machine: a gap from here
		}
		raw[i] = b
	}
	var cur *FeedCursor
	err := proposeInParts(ctx, s, cmdMirror, raw, func(part []json.RawMessage) any {
		return &mirrorCommand{Child: child, Entries: part, Head: head}
	}, func(a *Answer) { cur = a.Cursor })
	return cur, err
}

// FeedCursors lists how far this site has mirrored each child.
func (s *State) FeedCursors() (map[string]FeedCursor, error) {
	out := map[string]FeedCursor{}
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixCursor, func(c *FeedCursor) bool { out[c.Child] = *c; return true })
	})
	return out, err
}

// MirrorCase returns this site's mirrored copy of a case in its subtree, or ErrNotFound.
func (s *State) MirrorCase(number string) (*MirrorRecord, error) {
	var rec *MirrorRecord
	var ok bool
	err := s.view(func(txn *badger.Txn) error {
		var err error
		rec, ok, err = getMirrorRecord(view{txn}, number)
		return err
	})
	if err == nil && !ok {
		return nil, ErrNotFound
	}
	return rec, err
}
