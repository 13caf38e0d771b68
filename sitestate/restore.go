package replication

import (
	"context"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/casework"
)

// Restoring a lost site from its parent's mirror. The parent selects, from its mirror, every
// case the lost site held (in transit or not) and every case that passed through it; a fresh
// node of the lost site commits them through its own Raft in batches: the cases it held (with
// their handoffs pending again, and the handoffs it had applied recorded from their
// histories), a stub for each case it had handed on, its number counters, and its feed
// sequence continuing where the parent's cursor stands.

// RestoreNumberMargin is how far past the highest number the parent saw today a restored site's
// counter starts: cases accepted in the last moments before the loss may not have reached the
// parent, and their numbers must never be given again.
const RestoreNumberMargin = 1000

// SiteExport is what a parent sends a lost child: the records of its cases and where the
// parent's copy of the child's feed stands.
type SiteExport struct {
	Records    []*MirrorRecord
	FeedCursor uint64
}

// ExportSite selects from this site's mirror what a lost child site needs to be rebuilt.
func (s *Store) ExportSite(site string) (*SiteExport, error) {
	out := &SiteExport{}
	err := s.fsm.view(func(txn *badger.Txn) error {
		var cur FeedCursor
		if err := getJSON(txn, cursorKey(site), &cur); err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		out.FeedCursor = cur.Cursor
		var err error
		scanErr := scanJSON(txn, prefixMirror, func(stored *storedMirror) bool {
			var rec *MirrorRecord
			if err = resolveHeld(txn, stored); err == nil {
				rec, err = stored.record()
			}
			if err == nil && touches(rec.Case, site) {
				out.Records = append(out.Records, rec)
			}
			return err == nil
		})
		return errors.Join(scanErr, err)
	})
	return out, err
}

// touches reports whether c was ever at site: held there now, accepted there, or moved there.
func touches(c *casework.Case, site string) bool {
	if c.HolderSite == site || c.OriginSite == site {
		return true
	}
	for i := range c.History {
		if c.History[i].FromSite == site || c.History[i].ToSite == site {
			return true
		}
	}
	return false
}

// restoreCommand commits one batch of a restore.
type restoreCommand struct {
	Site  string           `json:"site"`
	Cases []*casework.Case `json:"cases"`
	// FeedSeq is where this site's feed continues (the first batch carries it).
	FeedSeq uint64 `json:"feed_seq,omitempty"`
	// Done marks the last batch.
	Done bool `json:"done,omitempty"`
}

// RestoreState says whether this site was restored from its parent, and when.
type RestoreState struct {
	Restored bool      `json:"restored"`
	At       time.Time `json:"at"`
	Cases    int       `json:"cases"`
}

var keyRestored = []byte("m/restored")

func (f *fsm) applyRestore(txn *badger.Txn, c *restoreCommand, at time.Time) (*result, error) {
	if c.FeedSeq > 0 {
		seq, err := getUint64(txn, keyFeedSeq)
		if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return nil, err
		}
		if c.FeedSeq > seq {
			if err := txn.Set(keyFeedSeq, u64(c.FeedSeq)); err != nil {
				return nil, err
			}
		}
	}
	var state RestoreState
	if err := getJSON(txn, keyRestored, &state); err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
		return nil, err
	}
	today := at.In(f.loc).Format("20060102")
	for _, cs := range c.Cases {
		if err := f.restoreCase(txn, c.Site, cs, today); err != nil {
			return nil, err
		}
		state.Cases++
	}
	if c.Done {
		state.Restored, state.At = true, at
		// Numbers of today's last cases may never have reached the parent: skip past them.
		seq, err := getUint32(txn, sequenceKey(today))
		if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return nil, err
		}
		if err := txn.Set(sequenceKey(today), u32(seq+RestoreNumberMargin)); err != nil {
			return nil, err
		}
	}
	return &result{}, putJSON(txn, keyRestored, state)
}

// restoreCase puts back what site had of one case: the case itself if it holds it, else a stub
// to where it sent it; the handoffs it applied; and its number counter.
func (f *fsm) restoreCase(txn *badger.Txn, site string, cs *casework.Case, today string) error {
	if origin, day, seq, err := casework.ParseNumber(cs.Number); err == nil && origin == site {
		old, err := getUint32(txn, sequenceKey(day))
		if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if seq > old {
			if err := txn.Set(sequenceKey(day), u32(seq)); err != nil {
				return err
			}
		}
	}
	// The handoffs this site applied: each receipt here follows its departure event.
	for i, e := range cs.History {
		if e.Type == casework.EventReceived && e.ToSite == site && i > 0 {
			id := casework.HandoffID(cs.Number, cs.History[i-1].Seq)
			if err := putJSON(txn, handoffKey(id), handoffRecord{From: e.FromSite, Outcome: OutcomeApplied, At: e.At}); err != nil {
				return err
			}
		}
	}
	if _, err := getCase(txn, cs.Number); err == nil {
		return nil // already restored (a retried batch)
	}
	if cs.HolderSite == site {
		if err := indexCase(txn, cs); err != nil {
			return err
		}
		if cs.Transit != nil {
			return f.queue(txn, cs) // pending again: the target answers applied or duplicate
		}
		return f.storeCase(txn, cs, site, cs.UpdatedAt)
	}
	// Handed on: point to where this site last sent it.
	for i := len(cs.History) - 1; i >= 0; i-- {
		e := cs.History[i]
		if e.FromSite == site && e.ToSite != "" && e.Type != casework.EventReceived && e.Type != casework.EventHandoffRefused {
			return putJSON(txn, stubKey(cs.Number), Stub{Number: cs.Number, Holder: e.ToSite, HandoffID: casework.HandoffID(cs.Number, e.Seq), MovedAt: e.At})
		}
	}
	return nil
}

func u32(v uint32) []byte {
	b := make([]byte, 4)
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	return b
}

// RestoreBatch commits one batch of a restore from the parent.
func (s *Store) RestoreBatch(ctx context.Context, cases []*casework.Case, feedSeq uint64, done bool) error {
	cmd, err := encodeCommand(cmdRestore, &restoreCommand{Site: s.cfg.Site, Cases: cases, FeedSeq: feedSeq, Done: done})
	if err != nil {
		return err
	}
	_, err = s.proposeWithRetry(ctx, cmd)
	return err
}

// Restored reports whether (and when) this site was restored from its parent.
func (s *Store) Restored() (*RestoreState, error) {
	st := new(RestoreState)
	err := s.fsm.view(func(txn *badger.Txn) error { return getJSON(txn, keyRestored, st) })
	if errors.Is(err, badger.ErrKeyNotFound) {
		return st, nil
	}
	return st, err
}
