package sitestate

import (
	"context"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
)

// Bounded tables. What a site keeps only so that a retry or a late message is answered the same
// way is dropped once no retry or message can still come, by a prune command that the leader
// proposes and the state machine checks entry by entry (each deletion depends only on the entry
// and the command's horizon, so every replica drops the same):
//
//   - r/ request ids: a retried submission answers with the first case for RetryWindow after it
//     was accepted. After that the id is forgotten, and the same id would open a new case.
//   - p/ stubs: a case handed on is followed by its stub for StubWindow; after that the site's
//     own mirror copy (kept like every mirror record) still says where it went.
//   - h/ applied handoffs, which earlier versions recorded: an old copy of a handoff is now
//     recognised by the version (see handoff.go), so they go at once. Refusals stay: they are
//     few, and the source of a refused handoff may still deliver an old copy at any time.
//
// The feed (f/) is trimmed by what the parent has committed (feed.go).
const (
	RetryWindow = 7 * 24 * time.Hour
	StubWindow  = 30 * 24 * time.Hour
	// maxPrune is the most entries one prune command drops (a command's write limit).
	maxPrune = 2048
)

func init() { register(cmdPrune, "prune", (*machine).applyPrune) }

// pruneCommand drops the named entries that are past the command's horizon.
type pruneCommand struct {
	// Requests are request ids, Stubs case numbers, Handoffs handoff ids.
	Requests []string `json:"requests,omitempty"`
	Stubs    []string `json:"stubs,omitempty"`
	Handoffs []string `json:"handoffs,omitempty"`
}

func (m *machine) applyPrune(tx *replication.Tx, c *pruneCommand) (*Answer, error) {
	if len(c.Requests)+len(c.Stubs)+len(c.Handoffs) > maxPrune {
		return refuse(errorf(CodeTooLarge, "a prune command drops at most %d entries", maxPrune)), nil
	}
	now := tx.At()
	for _, id := range c.Requests {
		rec, ok, err := getRequest(tx, id)
		if err != nil {
			return nil, err
		}
		if ok && requestExpired(rec, now, m.loc) {
			tx.Delete(requestKey(id))
		}
	}
	for _, number := range c.Stubs {
		var st Stub
		ok, err := getJSON(tx, stubKey(number), &st)
		if err != nil {
			return nil, err
		}
		if ok && now.Sub(st.MovedAt) > StubWindow {
			tx.Delete(stubKey(number))
		}
	}
	for _, id := range c.Handoffs {
		var h handoffRecord
		ok, err := getJSON(tx, handoffKey(id), &h)
		if err != nil {
			return nil, err
		}
		if ok && h.Outcome != OutcomeRefused {
			tx.Delete(handoffKey(id))
		}
	}
	return &Answer{}, nil
}

// requestExpired reports whether a request record is past the retry window at now. Records of
// earlier versions carry no time: their case number's day stands for it.
func requestExpired(rec *requestRecord, now time.Time, loc *time.Location) bool {
	at := rec.At
	if at.IsZero() {
		_, day, _, err := casework.ParseNumber(rec.Number)
		if err != nil {
			return true
		}
		if at, err = time.ParseInLocation("20060102", day, loc); err != nil {
			return true
		}
		at = at.Add(24 * time.Hour) // the end of that day, to be safe
	}
	return now.Sub(at) > RetryWindow
}

// pruneCandidates reads, from this node's copy, up to maxPrune entries that a prune at now would
// drop; the state machine checks each again.
func (s *State) pruneCandidates(now time.Time) (*pruneCommand, error) {
	c := &pruneCommand{}
	n := 0
	err := s.view(func(txn *badger.Txn) error {
		r := view{txn}
		opts := badger.DefaultIteratorOptions
		for _, scan := range []struct {
			prefix []byte
			take   func(key []byte, v []byte)
		}{
			{prefixRequest, func(k, v []byte) {
				id := string(k[len(prefixRequest):])
				if rec, ok, err := getRequest(r, id); err == nil && ok && requestExpired(rec, now, s.cfg.Location) {
					c.Requests = append(c.Requests, id)
					n++
				}
			}},
			{prefixStub, func(k, v []byte) {
				var st Stub
				if jsonUnmarshalOK(v, &st) && now.Sub(st.MovedAt) > StubWindow {
					c.Stubs = append(c.Stubs, string(k[len(prefixStub):]))
					n++
				}
			}},
			{prefixHandoff, func(k, v []byte) {
				var h handoffRecord
				if jsonUnmarshalOK(v, &h) && h.Outcome != OutcomeRefused {
					c.Handoffs = append(c.Handoffs, string(k[len(prefixHandoff):]))
					n++
				}
			}},
		} {
			opts.Prefix = scan.prefix
			it := txn.NewIterator(opts)
			for it.Rewind(); it.Valid() && n < maxPrune; it.Next() {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					it.Close()
					return err
				}
				scan.take(it.Item().Key(), v)
			}
			it.Close()
		}
		return nil
	})
	return c, err
}

// Prune drops up to maxPrune entries past their window (leader work, run now and then); it
// reports how many it named, so the caller can run it again at once while there are more.
func (s *State) Prune(ctx context.Context) (int, error) {
	c, err := s.pruneCandidates(time.Now())
	if err != nil {
		return 0, err
	}
	n := len(c.Requests) + len(c.Stubs) + len(c.Handoffs)
	if n == 0 {
		return 0, nil
	}
	_, err = s.proposeIdempotent(ctx, cmdPrune, c)
	return n, err
}
