package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/casework"
)

// The handoff protocol (docs/DESIGN.md, "Handoff"): the source commits a departure, which locks
// the case and puts the handoff in its outbox; the source leader's worker delivers the record; the
// target commits the arrival once per handoff id and acknowledges; the source settles the handoff,
// leaving a stub that points to the new holder, or unlocks the case on a refusal.
//
// Every step is a command whose effect depends only on the state it is applied to, so replay and
// re-delivery are harmless: a second arrival of the same id is answered from the applied-handoff
// table, a second settlement finds the outbox entry gone and does nothing.

// OutboxEntry is one handoff waiting to be delivered and acknowledged.
type OutboxEntry struct {
	ID     string        `json:"id"`
	Number string        `json:"number"`
	To     string        `json:"to_site"`
	Move   casework.Move `json:"move"`
	Since  time.Time     `json:"since"`
}

// Stub is what a site keeps of a case it handed on: a pointer to the holder it gave it to. It is
// not a version of the case and never outranks the holder's copy.
type Stub struct {
	Number    string    `json:"number"`
	Holder    string    `json:"holder_site"`
	HandoffID string    `json:"handoff_id"`
	MovedAt   time.Time `json:"moved_at"`
}

// Arrival is one delivered handoff as the target receives it.
type Arrival struct {
	ID   string         `json:"id"`
	From string         `json:"from_site"`
	Case *casework.Case `json:"case"`
	// RelayTo, if set, sends the case straight on to that site in the same commit (its tier must
	// decide it). The receiving node decides it before proposing, so it is part of the log.
	RelayTo string `json:"relay_to,omitempty"`
}

// Handoff outcomes answered to the source.
const (
	OutcomeApplied   = "applied"
	OutcomeDuplicate = "duplicate"
	OutcomeRefused   = "refused"
)

// ArrivalOutcome is the target's answer for one handoff.
type ArrivalOutcome struct {
	ID      string `json:"id"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}

// Settlement closes one handoff at its source: done unless Refused is set.
type Settlement struct {
	ID      string `json:"id"`
	Refused bool   `json:"refused,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// departCommand moves a case out of this site.
type departCommand struct {
	Number string        `json:"number"`
	Move   casework.Move `json:"move"`
	Site   string        `json:"site"`
	To     string        `json:"to_site"`
	Actor  string        `json:"actor,omitempty"`
	Reason string        `json:"reason,omitempty"`
}

type arriveCommand struct {
	Site     string    `json:"site"`
	Arrivals []Arrival `json:"arrivals"`
}

type settleCommand struct {
	Settlements []Settlement `json:"settlements"`
}

type retireCommand struct {
	Retired bool   `json:"retired"`
	Reason  string `json:"reason,omitempty"`
}

// handoffRecord is a target's memory of a handoff it answered: kept after the case moves on, so
// that a late retry is answered the same way and never applied twice.
type handoffRecord struct {
	From    string    `json:"from_site"`
	Outcome string    `json:"outcome"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// RetiredState says whether the site refuses incoming handoffs, and why.
type RetiredState struct {
	Retired bool      `json:"retired"`
	Reason  string    `json:"reason,omitempty"`
	Since   time.Time `json:"since"`
}

// applyDepart locks a held case and queues its handoff.
func (f *fsm) applyDepart(txn *badger.Txn, c *departCommand, at time.Time) (*result, error) {
	cs, err := getCase(txn, c.Number)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return f.notHeld(txn, c.Number)
	}
	if err != nil {
		return nil, err
	}
	if _, err := cs.Depart(casework.Departure{Move: c.Move, Site: c.Site, To: c.To, Actor: c.Actor, Reason: c.Reason, At: at}); err != nil {
		return &result{Err: refusal(err)}, nil
	}
	if err := f.queue(txn, cs); err != nil {
		return nil, err
	}
	return &result{Case: cs}, nil
}

// notHeld answers a step on a case this site does not hold: a conflict naming the holder when
// a stub points on, not found otherwise.
func (f *fsm) notHeld(txn *badger.Txn, number string) (*result, error) {
	st, err := getStub(txn, number)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return &result{Err: errorf(CodeNotFound, "case %s is not held at this site", number)}, nil
	}
	if err != nil {
		return nil, err
	}
	return &result{Err: errorf(CodeConflict, "case %s was handed on to %s (handoff %s): only the holder changes it", number, st.Holder, st.HandoffID)}, nil
}

// queue stores a case that has just departed and puts its handoff in the outbox.
func (f *fsm) queue(txn *badger.Txn, cs *casework.Case) error {
	if err := f.storeCase(txn, cs, cs.HolderSite, cs.Transit.Since); err != nil {
		return err
	}
	e := OutboxEntry{ID: cs.Transit.HandoffID, Number: cs.Number, To: cs.Transit.To, Move: cs.Transit.Move, Since: cs.Transit.Since}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f.outboxAdded = append(f.outboxAdded, e)
	return txn.Set(outboxKey(e.To, e.ID), b)
}

// applyArrive takes in delivered cases, each at most once per handoff id.
func (f *fsm) applyArrive(txn *badger.Txn, c *arriveCommand, at time.Time) (*result, error) {
	retired, err := getRetired(txn)
	if err != nil {
		return nil, err
	}
	out := make([]ArrivalOutcome, 0, len(c.Arrivals))
	for i := range c.Arrivals {
		a := &c.Arrivals[i]
		o, err := f.arrive(txn, c.Site, a, retired, at)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return &result{Arrivals: out}, nil
}

func (f *fsm) arrive(txn *badger.Txn, site string, a *Arrival, retired *RetiredState, at time.Time) (ArrivalOutcome, error) {
	prev, err := getHandoffRecord(txn, a.ID)
	switch {
	case err == nil && prev.Outcome == OutcomeRefused:
		return ArrivalOutcome{ID: a.ID, Outcome: OutcomeRefused, Reason: prev.Reason}, nil
	case err == nil:
		return ArrivalOutcome{ID: a.ID, Outcome: OutcomeDuplicate}, nil
	case !errors.Is(err, badger.ErrKeyNotFound):
		return ArrivalOutcome{}, err
	}
	refuse := func(reason string) (ArrivalOutcome, error) {
		f.stats.handoffsRefused++
		return ArrivalOutcome{ID: a.ID, Outcome: OutcomeRefused, Reason: reason},
			putJSON(txn, handoffKey(a.ID), handoffRecord{From: a.From, Outcome: OutcomeRefused, Reason: reason, At: at})
	}
	cs := a.Case
	switch {
	case retired.Retired:
		return refuse(fmt.Sprintf("site %s is retired: %s", site, retired.Reason))
	case cs == nil:
		return refuse("the delivery carries no case record")
	case cs.HolderSite != a.From:
		return refuse(fmt.Sprintf("the record is held by %s, not by the sender %s", cs.HolderSite, a.From))
	}
	if err := cs.Arrive(a.ID, site, at); err != nil {
		return refuse(err.Error())
	}
	local, err := getCase(txn, cs.Number)
	switch {
	case err == nil && local.Transit != nil:
		// This site sent the case away and it came back before the first handoff was settled
		// here: its return proves the target took it, so that handoff is done.
		if err := txn.Delete(outboxKey(local.Transit.To, local.Transit.HandoffID)); err != nil {
			return ArrivalOutcome{}, err
		}
		f.outboxRemoved = append(f.outboxRemoved, local.Transit.HandoffID)
		if err := unindexCase(txn, local); err != nil {
			return ArrivalOutcome{}, err
		}
	case err == nil && appliedBefore(local, cs, a.ID, site):
		// The table lost this handoff (a site restored from its parent's mirror), but the
		// history shows it was applied: answer as for any duplicate.
		return ArrivalOutcome{ID: a.ID, Outcome: OutcomeDuplicate}, nil
	case err == nil:
		return refuse(fmt.Sprintf("case %s is already held here at version %d", cs.Number, local.Version))
	case !errors.Is(err, badger.ErrKeyNotFound):
		return ArrivalOutcome{}, err
	}
	if err := txn.Delete(stubKey(cs.Number)); err != nil {
		return ArrivalOutcome{}, err
	}
	if err := putJSON(txn, handoffKey(a.ID), handoffRecord{From: a.From, Outcome: OutcomeApplied, At: at}); err != nil {
		return ArrivalOutcome{}, err
	}
	if err := indexCase(txn, cs); err != nil {
		return ArrivalOutcome{}, err
	}
	f.stats.handoffsIn++
	if relayed, err := f.relay(txn, cs, casework.MoveRelay, site, a.RelayTo, at); relayed || err != nil {
		return ArrivalOutcome{ID: a.ID, Outcome: OutcomeApplied}, err
	}
	return ArrivalOutcome{ID: a.ID, Outcome: OutcomeApplied}, f.storeCase(txn, cs, site, at)
}

// relay sends a case just taken in (accepted or arrived) straight on toward the tier that must
// decide it, in the same commit. It reports false, having changed nothing, when there is
// nowhere to send it; the caller then stores the case as held.
func (f *fsm) relay(txn *badger.Txn, cs *casework.Case, move casework.Move, site, to string, at time.Time) (bool, error) {
	if to == "" {
		return false, nil
	}
	d := casework.Departure{Move: move, Site: site, To: to, Actor: AutoActor,
		Reason: fmt.Sprintf("to be decided by the %s tier", cs.DecideTier), At: at}
	if err := d.Validate(); err != nil {
		f.logger.Warn("not relaying a case", "number", cs.Number, "to", to, "error", err)
		return false, nil
	}
	if _, err := cs.Depart(d); err != nil {
		f.logger.Warn("not relaying a case", "number", cs.Number, "to", to, "error", err)
		return false, nil
	}
	return true, f.queue(txn, cs)
}

// appliedBefore reports whether local's history already holds the arrival of handoff id: the
// event after the departure is this site's receipt, and the departure is the arriving record's.
// arrived is the record after Arrive (one event longer than what was sent).
func appliedBefore(local, arrived *casework.Case, id, site string) bool {
	_, v, err := casework.ParseHandoffID(id)
	if err != nil || v == 0 || uint64(len(local.History)) <= v || uint64(len(arrived.History)) < v {
		return false
	}
	departure, receipt := local.History[v-1], local.History[v]
	return departure.Hash == arrived.History[v-1].Hash && receipt.Type == casework.EventReceived && receipt.Site == site
}

// AutoActor is the actor of moves the grid makes on its own (relaying a case to the tier that
// must decide it).
const AutoActor = "govgrid"

// applySettle closes handoffs at the source. A settlement for a handoff no longer in the outbox
// (already settled, or proven done by the case coming back) changes nothing.
func (f *fsm) applySettle(txn *badger.Txn, c *settleCommand, at time.Time) (*result, error) {
	for _, s := range c.Settlements {
		number, _, err := casework.ParseHandoffID(s.ID)
		if err != nil {
			continue
		}
		cs, err := getCase(txn, number)
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if cs.Transit == nil || cs.Transit.HandoffID != s.ID {
			continue
		}
		if err := txn.Delete(outboxKey(cs.Transit.To, s.ID)); err != nil {
			return nil, err
		}
		f.outboxRemoved = append(f.outboxRemoved, s.ID)
		if s.Refused {
			if err := cs.Refused(s.ID, s.Reason, at); err != nil {
				return nil, err
			}
			if err := f.storeCase(txn, cs, cs.HolderSite, at); err != nil {
				return nil, err
			}
			continue
		}
		if err := unindexCase(txn, cs); err != nil {
			return nil, err
		}
		if err := unholdMirror(txn, number); err != nil {
			return nil, err
		}
		if err := txn.Delete(caseKey(number)); err != nil {
			return nil, err
		}
		if err := putJSON(txn, stubKey(number), Stub{Number: number, Holder: cs.Transit.To, HandoffID: s.ID, MovedAt: at}); err != nil {
			return nil, err
		}
	}
	return &result{}, nil
}

func (f *fsm) applyRetire(txn *badger.Txn, c *retireCommand, at time.Time) (*result, error) {
	st := RetiredState{Retired: c.Retired, Reason: c.Reason, Since: at}
	if !c.Retired {
		return &result{}, txn.Delete(keyRetired)
	}
	return &result{}, putJSON(txn, keyRetired, st)
}

func getRetired(txn *badger.Txn) (*RetiredState, error) {
	st := new(RetiredState)
	err := getJSON(txn, keyRetired, st)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return st, nil
	}
	return st, err
}

func getStub(txn *badger.Txn, number string) (*Stub, error) {
	st := new(Stub)
	return st, getJSON(txn, stubKey(number), st)
}

func getHandoffRecord(txn *badger.Txn, id string) (*handoffRecord, error) {
	r := new(handoffRecord)
	return r, getJSON(txn, handoffKey(id), r)
}

func putJSON(txn *badger.Txn, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(key, b)
}

func getJSON(txn *badger.Txn, key []byte, v any) error {
	item, err := txn.Get(key)
	if err != nil {
		return err
	}
	return item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

// indexCase writes a held case's listing index entries.
func indexCase(txn *badger.Txn, c *casework.Case) error {
	nanos := c.CreatedAt.UnixNano()
	if err := txn.Set(byTimeKey(nanos, c.Number), nil); err != nil {
		return err
	}
	return txn.Set(byStatusKey(string(c.Status), nanos, c.Number), nil)
}

func unindexCase(txn *badger.Txn, c *casework.Case) error {
	nanos := c.CreatedAt.UnixNano()
	if err := txn.Delete(byTimeKey(nanos, c.Number)); err != nil {
		return err
	}
	return txn.Delete(byStatusKey(string(c.Status), nanos, c.Number))
}

// MoveCase moves a case this site holds to a neighbour: it commits the departure (the case is
// locked, the handoff queued) and returns the locked case. Delivery follows asynchronously.
func (s *Store) MoveCase(ctx context.Context, number string, d casework.Departure) (*casework.Case, error) {
	d.Site = s.cfg.Site
	d.At = time.Time{}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	cmd, err := encodeCommand(cmdDepart, &departCommand{Number: number, Move: d.Move, Site: d.Site, To: d.To, Actor: d.Actor, Reason: d.Reason})
	if err != nil {
		return nil, err
	}
	// Not retried on a lost leader: a departure is not idempotent, and its caller sees the
	// case locked if the first attempt did commit.
	res, err := s.propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return res.Case, nil
}

// ReceiveHandoffs commits delivered handoffs at this site and returns one outcome per arrival.
func (s *Store) ReceiveHandoffs(ctx context.Context, arrivals []Arrival) ([]ArrivalOutcome, error) {
	if s.cfg.RelayTo != nil {
		for i := range arrivals {
			// Only a case on its way up goes on up: one handed down or returned stays, or it
			// would bounce between the tiers.
			if a := &arrivals[i]; a.Case != nil && a.Case.Transit != nil &&
				(a.Case.Transit.Move == casework.MoveEscalate || a.Case.Transit.Move == casework.MoveRelay) {
				a.RelayTo = s.cfg.RelayTo(a.Case.DecideTier)
			}
		}
	}
	cmd, err := encodeCommand(cmdArrive, &arriveCommand{Site: s.cfg.Site, Arrivals: arrivals})
	if err != nil {
		return nil, err
	}
	res, err := s.proposeWithRetry(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return res.Arrivals, nil
}

// SettleHandoffs commits the targets' answers for handoffs in this site's outbox.
func (s *Store) SettleHandoffs(ctx context.Context, settlements []Settlement) error {
	cmd, err := encodeCommand(cmdSettle, &settleCommand{Settlements: settlements})
	if err != nil {
		return err
	}
	_, err = s.proposeWithRetry(ctx, cmd)
	return err
}

// SetRetired retires the site (it refuses incoming handoffs, with reason) or reinstates it.
func (s *Store) SetRetired(ctx context.Context, retired bool, reason string) error {
	cmd, err := encodeCommand(cmdRetire, &retireCommand{Retired: retired, Reason: reason})
	if err != nil {
		return err
	}
	_, err = s.proposeWithRetry(ctx, cmd)
	return err
}

// Retired reports whether this site is retired.
func (s *Store) Retired() (*RetiredState, error) {
	var st *RetiredState
	err := s.fsm.view(func(txn *badger.Txn) error {
		var err error
		st, err = getRetired(txn)
		return err
	})
	return st, err
}

// Outbox lists up to limit handoffs waiting for delivery to site to, oldest id first (all
// targets when to is empty; every entry when limit is 0).
func (s *Store) Outbox(to string, limit int) ([]OutboxEntry, error) {
	var out []OutboxEntry
	prefix := prefixOutbox
	if to != "" {
		prefix = outboxPrefix(to)
	}
	err := s.fsm.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefix, func(e *OutboxEntry) bool {
			out = append(out, *e)
			return limit == 0 || len(out) < limit
		})
	})
	return out, err
}

// OutboxDepths counts the waiting handoffs per target site and gives the oldest one's time.
func (s *Store) OutboxDepths() (map[string]OutboxDepth, error) {
	out := map[string]OutboxDepth{}
	err := s.fsm.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixOutbox, func(e *OutboxEntry) bool {
			d := out[e.To]
			d.Depth++
			if d.Oldest.IsZero() || e.Since.Before(d.Oldest) {
				d.Oldest = e.Since
			}
			out[e.To] = d
			return true
		})
	})
	return out, err
}

// OutboxDepth is the size of the outbox toward one site.
type OutboxDepth struct {
	Depth  int
	Oldest time.Time
}

// CaseRecord reads the whole stored record of a case held or in transit here, for delivery.
func (s *Store) CaseRecord(number string) (*casework.Case, error) { return s.fsm.getCase(number) }

// GetStub returns the pointer this site keeps to a case it handed on, or ErrNotFound.
func (s *Store) GetStub(number string) (*Stub, error) {
	var st *Stub
	err := s.fsm.view(func(txn *badger.Txn) error {
		var err error
		st, err = getStub(txn, number)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	return st, err
}
