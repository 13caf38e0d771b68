package sitestate

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
)

// Restoring a lost site. A fresh node of the site first commits the beginning of the restore:
// from then on, every node of the site refuses cases and handoffs (the state says so, so they
// all agree, and a new leader finishes an interrupted restore). It then collects what the
// grid knows of the site: from the parent's mirror, every case that touched the site, with the
// citizens' query codes, the parent's cursor in the site's feed and its registry record (the
// retired mark); from each child's mirror, every case that touched the site (a child may hold a
// case the site handed down just before the loss, which the parent never heard of), and the
// configuration the site owned. It commits them in batches through its own Raft: each case is
// kept at the newest version any of them knew, so the site ends up holding exactly the cases no
// one took from it, with stubs to where it sent the others. The last batch sets the number
// counters past anything the lost site may have issued and ends the restore.

func init() { register(cmdRestore, "restore", (*machine).applyRestore) }

// Number reserve: a site issues numbers up to 899,999 a day. Numbers from restoreReserve on are
// issued only on a day the site was restored: the lost site may have issued numbers that never
// reached anyone, however long it was cut off, and they must never be issued again; the restored
// site's numbers for its restore day start here (or RestoreNumberMargin past the last number the
// grid saw, if a restore that day already used the reserve).
const (
	restoreReserve = 900_000
	// RestoreNumberMargin is how far past the highest number seen today a second restore on the
	// same day starts.
	RestoreNumberMargin = 1000
)

// SiteExport is what a neighbour sends a site being restored.
type SiteExport struct {
	// Records are the mirror records that touch the site (held there, accepted there, or moved
	// through it), with query codes where the answering site keeps them.
	Records []*MirrorRecord
	// FeedCursor is the answering site's cursor in the site's feed (a parent's; 0 else).
	FeedCursor uint64
	// Site is the answering site's registry record of the site, if it has one.
	Site *SiteRecord
	// Config are the documents the site owned, as the answering site has them.
	Config []ConfigDoc
}

// ExportSite selects from this site's mirror what a lost neighbour needs to be rebuilt.
func (s *State) ExportSite(site string) (*SiteExport, error) {
	out := &SiteExport{}
	err := s.view(func(txn *badger.Txn) error {
		r := view{txn}
		var cur FeedCursor
		if _, err := getJSON(r, cursorKey(site), &cur); err != nil {
			return err
		}
		out.FeedCursor = cur.Cursor
		var rec SiteRecord
		if ok, err := getJSON(r, siteKey(site), &rec); err != nil {
			return err
		} else if ok {
			out.Site = &rec
		}
		if err := scanJSON(txn, configPrefix(site), func(d *ConfigDoc) bool { out.Config = append(out.Config, *d); return true }); err != nil {
			return err
		}
		var err error
		scanErr := scanMirror(txn, func(stored *storedMirror) bool {
			var rec *MirrorRecord
			if err = resolveHeld(r, stored); err == nil {
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

// restoreCommand commits one step of a restore.
type restoreCommand struct {
	Site string `json:"site"`
	// Begin opens the restore (Parent names where it comes from).
	Begin  bool   `json:"begin,omitempty"`
	Parent string `json:"parent,omitempty"`
	// Cases are records of the site's cases; QueryCodes the citizens' codes by case number.
	Cases      []*casework.Case  `json:"cases,omitempty"`
	QueryCodes map[string]string `json:"query_codes,omitempty"`
	// FeedSeq is where this site's feed continues (the parent's cursor).
	FeedSeq uint64 `json:"feed_seq,omitempty"`
	// Retired is the retired mark the parent kept; Config the documents the site owned.
	Retired *RetiredState `json:"retired,omitempty"`
	Config  []ConfigDoc   `json:"config,omitempty"`
	// Done ends the restore.
	Done bool `json:"done,omitempty"`
}

// RestoreState says whether this site is being, or was, restored.
type RestoreState struct {
	// Restoring is set from the restore's beginning to its end: the site takes no cases.
	Restoring bool      `json:"restoring,omitempty"`
	Parent    string    `json:"parent,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// Restored is set once a restore ended, At when, on Day (yyyymmdd in the grid's zone).
	Restored bool      `json:"restored"`
	At       time.Time `json:"at"`
	Day      string    `json:"day,omitempty"`
	Cases    int       `json:"cases"`
}

func getRestoreState(r reader) (RestoreState, error) {
	var st RestoreState
	_, err := getJSON(r, keyRestored, &st)
	return st, err
}

// refuseWhileRestoring answers a command the site cannot take during a restore, or nil.
func refuseWhileRestoring(r reader) (*Answer, error) {
	st, err := getRestoreState(r)
	if err != nil || !st.Restoring {
		return nil, err
	}
	return refuse(errorf(CodeUnavailable, "the site is being restored from %s; try again shortly", st.Parent)), nil
}

func (m *machine) applyRestore(tx *replication.Tx, c *restoreCommand) (*Answer, error) {
	for _, cs := range c.Cases {
		if cs == nil || cs.Number == "" {
			return refuse(errorf(CodeInvalid, "restore batch with a record without a case number")), nil
		}
	}
	for i := range c.Config {
		if d := &c.Config[i]; d.Owner != c.Site || ValidateConfigPath(d.Path) != nil {
			return refuse(errorf(CodeInvalid, "restore batch with a configuration document the site does not own")), nil
		}
	}
	state, err := getRestoreState(tx)
	if err != nil {
		return nil, err
	}
	if c.Begin && !state.Restoring {
		state = RestoreState{Restoring: true, Parent: c.Parent, StartedAt: tx.At(), Cases: state.Cases}
	}
	if c.FeedSeq > 0 {
		seq, err := getUint64(tx, keyFeedSeq)
		if err != nil {
			return nil, err
		}
		if c.FeedSeq > seq {
			tx.Set(keyFeedSeq, u64(c.FeedSeq))
		}
	}
	for _, cs := range c.Cases {
		if err := m.restoreCase(tx, c.Site, cs, c.QueryCodes[cs.Number]); err != nil {
			return nil, err
		}
		state.Cases++
	}
	for i := range c.Config {
		var old ConfigDoc
		found, err := getJSON(tx, configKey(c.Config[i].Owner, c.Config[i].Path), &old)
		if err != nil {
			return nil, err
		}
		if !found || old.Version < c.Config[i].Version {
			if err := putConfig(tx, &c.Config[i]); err != nil {
				return nil, err
			}
		}
	}
	if c.Retired != nil && c.Retired.Retired {
		if err := putJSON(tx, keyRetired, c.Retired); err != nil {
			return nil, err
		}
	}
	if c.Done {
		day := tx.At().In(m.loc).Format("20060102")
		state.Restoring, state.Restored, state.At, state.Day = false, true, tx.At(), day
		// Numbers the lost site may have issued today without anyone hearing of them: the
		// restored site starts in the reserve (see restoreReserve).
		seq, err := getUint32(tx, sequenceKey(day))
		if err != nil {
			return nil, err
		}
		next := max(seq+RestoreNumberMargin, restoreReserve-1)
		tx.Set(sequenceKey(day), u32(min(next, maxDailySequence)))
	}
	tx.Emit(restoreChanged{})
	return &Answer{}, putJSON(tx, keyRestored, state)
}

// restoreCase puts back what site knew of one case, unless it already knows a version as new:
// the case itself if it holds it (with its handoff pending again if it was in transit: the
// target answers applied or duplicate), else a copy and a stub to where it sent it; the request
// id of a case it accepted (with the citizen's code), the handoffs it refused, and its number
// counter.
func (m *machine) restoreCase(tx *replication.Tx, site string, cs *casework.Case, code string) error {
	if origin, day, seq, err := casework.ParseNumber(cs.Number); err == nil && origin == site {
		old, err := getUint32(tx, sequenceKey(day))
		if err != nil {
			return err
		}
		if seq > old {
			tx.Set(sequenceKey(day), u32(seq))
		}
		if cs.RequestID != "" {
			prev, found, err := getRequest(tx, cs.RequestID)
			if err != nil {
				return err
			}
			if !found || prev.QueryCode == "" && code != "" {
				if err := putJSON(tx, requestKey(cs.RequestID), requestRecord{Number: cs.Number, QueryCode: code, At: cs.CreatedAt}); err != nil {
					return err
				}
			}
		}
	}
	if err := restoreRefusals(tx, site, cs); err != nil {
		return err
	}
	// What this site knows as its own part in the case: the copy it holds, or the handoff its
	// stub names. A record no newer than that is old news (another source's copy, a retried
	// batch, or a copy from before the site handed the case on). The mirror does not count: a
	// feed may have brought the newest record (one on its way here) before this restore did.
	known, err := restoredVersion(tx, cs.Number)
	if err != nil {
		return err
	}
	if cs.Version <= known {
		if _, err := m.mirror(tx, &FeedEntry{Origin: cs.HolderSite, At: cs.UpdatedAt, Case: cs, QueryCode: code}, "restore", nil); err != nil {
			return err
		}
		return nil
	}
	old, held, err := getCase(tx, cs.Number)
	if err != nil {
		return err
	}
	if held {
		unindexCase(tx, old)
		if old.Transit != nil {
			tx.Delete(outboxKey(old.Transit.To, old.Transit.HandoffID))
			tx.Emit(outboxRemoved(old.Transit.HandoffID))
		}
	}
	if cs.Transit != nil && cs.Transit.To == site {
		// On its way to this site: its source may have settled the handoff (its answer came
		// before the loss, or the backup is older than it), so take the case in now; a copy
		// delivered again is answered as a duplicate by the version.
		if err := cs.Arrive(cs.Transit.HandoffID, site, tx.At()); err != nil {
			m.logger.Warn("not taking in a case restored in transit to this site", "number", cs.Number, "error", err)
		} else {
			tx.Emit(counted{handoffsIn: 1})
		}
	}
	if cs.HolderSite == site {
		tx.Delete(stubKey(cs.Number))
		indexCase(tx, cs)
		if cs.Transit != nil {
			return m.queue(tx, cs, code)
		}
		return m.storeCase(tx, cs, site, code)
	}
	// Not held here: keep a copy, and point to where this site last sent it.
	if held {
		if err := unholdMirror(tx, cs.Number); err != nil { // its mirror record referred to the held copy
			return err
		}
		tx.Delete(caseKey(cs.Number))
	}
	e := FeedEntry{Origin: cs.HolderSite, At: cs.UpdatedAt, Case: cs, QueryCode: code}
	accepted, err := m.mirror(tx, &e, "restore", nil)
	if err != nil {
		return err
	}
	if accepted {
		if err := appendFeed(tx, cs.Number); err != nil {
			return err
		}
	}
	for i := len(cs.History) - 1; i >= 0; i-- {
		e := cs.History[i]
		if e.FromSite == site && e.ToSite != "" && e.Type != casework.EventReceived && e.Type != casework.EventHandoffRefused {
			return putJSON(tx, stubKey(cs.Number), Stub{Number: cs.Number, Holder: e.ToSite, HandoffID: casework.HandoffID(cs.Number, e.Seq), MovedAt: e.At})
		}
	}
	tx.Delete(stubKey(cs.Number))
	return nil
}

// restoredVersion is the version of a case this site holds, or of the handoff its stub names
// (0 when it has neither).
func restoredVersion(tx *replication.Tx, number string) (uint64, error) {
	c, held, err := getCase(tx, number)
	if err != nil || held {
		if held {
			return c.Version, nil
		}
		return 0, err
	}
	var st Stub
	found, err := getJSON(tx, stubKey(number), &st)
	if err != nil || !found {
		return 0, err
	}
	_, v, err := casework.ParseHandoffID(st.HandoffID)
	if err != nil {
		return 0, nil
	}
	return v, nil
}

// restoreRefusals puts back the handoffs site refused, from the case's history (the refusal
// event names site as the target, and follows the departure toward it), so that a late copy of
// one is refused again, never applied after its source unlocked the case.
func restoreRefusals(tx *replication.Tx, site string, cs *casework.Case) error {
	for i, e := range cs.History {
		if e.Type != casework.EventHandoffRefused || e.ToSite != site {
			continue
		}
		for j := i - 1; j >= 0; j-- {
			d := cs.History[j]
			if d.ToSite == site && d.FromSite == e.FromSite && d.Type != casework.EventReceived && d.Type != casework.EventHandoffRefused {
				id := casework.HandoffID(cs.Number, d.Seq)
				if err := putJSON(tx, handoffKey(id), handoffRecord{From: e.FromSite, Outcome: OutcomeRefused, Reason: e.Note, At: e.At}); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// BeginRestore commits the beginning of a restore from parent: every node of the site refuses
// cases and handoffs until FinishRestore.
func (s *State) BeginRestore(ctx context.Context, parent string) error {
	_, err := s.proposeIdempotent(ctx, cmdRestore, &restoreCommand{Site: s.cfg.Site, Begin: true, Parent: parent})
	return err
}

// RestoreCases commits records of the site's cases collected from a neighbour (split as the
// state machine needs), with the citizens' codes by number.
func (s *State) RestoreCases(ctx context.Context, cases []*casework.Case, codes map[string]string) error {
	return proposeInParts(ctx, s, cmdRestore, cases, func(part []*casework.Case) any {
		c := &restoreCommand{Site: s.cfg.Site, Cases: part}
		for _, cs := range part {
			if code := codes[cs.Number]; code != "" {
				if c.QueryCodes == nil {
					c.QueryCodes = map[string]string{}
				}
				c.QueryCodes[cs.Number] = code
			}
		}
		return c
	}, nil)
}

// FinishRestore commits what the restore learnt of the site itself (where its feed continues,
// its retired mark, the configuration it owned) and ends it.
func (s *State) FinishRestore(ctx context.Context, feedSeq uint64, retired *RetiredState, config []ConfigDoc) error {
	_, err := s.proposeIdempotent(ctx, cmdRestore, &restoreCommand{Site: s.cfg.Site, FeedSeq: feedSeq, Retired: retired, Config: config, Done: true})
	return err
}

// Restored reports whether this site is being, or was, restored. Every request to open a case
// asks, so the answer is kept in memory until a committed restore command or a snapshot changes it.
func (s *State) Restored() (*RestoreState, error) {
	if st := s.restoreCache.get(); st != nil {
		return st, nil
	}
	gen := s.restoreCache.gen.Load()
	st, err := getOne[RestoreState](s, keyRestored)
	if errors.Is(err, ErrNotFound) {
		st, err = &RestoreState{}, nil
	}
	if err == nil {
		s.restoreCache.put(gen, st)
	}
	return st, err
}

// restoreCache keeps the site's restore state between the commands that change it. A reader
// that read the database before a change was committed must not leave its old answer behind:
// every entry carries the generation it was read in, and an entry of an older generation is
// ignored.
type restoreCache struct {
	gen   atomic.Uint64
	entry atomic.Pointer[restoreCacheEntry]
}

type restoreCacheEntry struct {
	gen uint64
	st  RestoreState
}

// get returns a copy of the cached state, or nil.
func (c *restoreCache) get() *RestoreState {
	e := c.entry.Load()
	if e == nil || e.gen != c.gen.Load() {
		return nil
	}
	st := e.st
	return &st
}

// put caches st, read in generation gen.
func (c *restoreCache) put(gen uint64, st *RestoreState) {
	c.entry.Store(&restoreCacheEntry{gen: gen, st: *st})
}

// invalidate forgets the cached state: a restore command was committed, or a snapshot installed.
func (c *restoreCache) invalidate() { c.gen.Add(1) }
