package sitestate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/tier"
)

// The handoff protocol (docs/DESIGN.md, "Handoff"): the source commits a departure, which locks
// the case and puts the handoff in its outbox; the source leader's worker delivers the record; the
// target commits the arrival once per handoff id and acknowledges; the source settles the handoff,
// leaving a stub that points to the new holder, or unlocks the case on a refusal.
//
// Every step is a command whose effect depends only on the state it is applied to, so replay and
// re-delivery are harmless. A second arrival of the same handoff is recognised by the version:
// the target's mirror keeps every case it ever held at the newest version it knows, and a record
// at or below a version the target has already passed is an old copy, answered as a duplicate
// and never applied again. A second settlement finds the outbox entry gone and does nothing.

func init() {
	register(cmdDepart, "depart", (*machine).applyDepart)
	register(cmdArrive, "arrive", (*machine).applyArrive)
	register(cmdSettle, "settle", (*machine).applySettle)
	register(cmdRetire, "retire", (*machine).applyRetire)
}

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

// Arrival is one delivered handoff as the target receives it: the record as the source sent it
// (JSON of a casework.Case), decoded only by the state machine.
type Arrival struct {
	ID     string          `json:"id"`
	From   string          `json:"from_site"`
	Record json.RawMessage `json:"case"`
	// RelayTo is what arrivals of earlier versions carry: the site the receiving node decided
	// the case goes on to. Newer ones leave it empty; the command's tier and parent decide.
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

// arriveCommand takes in delivered handoffs. It names the site's tier and parent, so that a case
// on its way up to a higher tier goes straight on in the same commit.
type arriveCommand struct {
	Site     string    `json:"site"`
	Tier     tier.Tier `json:"tier,omitempty"`
	Parent   string    `json:"parent,omitempty"`
	Arrivals []Arrival `json:"arrivals"`
}

type settleCommand struct {
	Settlements []Settlement `json:"settlements"`
}

type retireCommand struct {
	Retired bool   `json:"retired"`
	Reason  string `json:"reason,omitempty"`
}

// handoffRecord is a target's memory of a handoff it refused: kept so that a late retry is
// refused the same way. (Entries written by earlier versions also record applied handoffs; the
// version check makes those redundant.)
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
func (m *machine) applyDepart(tx *replication.Tx, c *departCommand) (*Answer, error) {
	if a, err := refuseWhileRestoring(tx); a != nil || err != nil {
		return a, err
	}
	cs, ok, err := getCase(tx, c.Number)
	if err != nil {
		return nil, err
	}
	if !ok {
		return m.notHeld(tx, c.Number)
	}
	if _, err := cs.Depart(casework.Departure{Move: c.Move, Site: c.Site, To: c.To, Actor: c.Actor, Reason: c.Reason, At: tx.At()}); err != nil {
		return refuse(refusal(err)), nil
	}
	if err := m.queue(tx, cs, ""); err != nil {
		return nil, err
	}
	return &Answer{Case: cs}, nil
}

// notHeld answers a step on a case this site does not hold: a conflict naming the holder when
// a stub points on, not found otherwise.
func (m *machine) notHeld(tx *replication.Tx, number string) (*Answer, error) {
	var st Stub
	ok, err := getJSON(tx, stubKey(number), &st)
	if err != nil {
		return nil, err
	}
	if !ok {
		return refuse(errorf(CodeNotFound, "case %s is not held at this site", number)), nil
	}
	return refuse(errorf(CodeConflict, "case %s was handed on to %s (handoff %s): only the holder changes it", number, st.Holder, st.HandoffID)), nil
}

// queue stores a case that has just departed and puts its handoff in the outbox (code: see
// storeCase).
func (m *machine) queue(tx *replication.Tx, cs *casework.Case, code string) error {
	if err := m.storeCase(tx, cs, cs.HolderSite, code); err != nil {
		return err
	}
	e := OutboxEntry{ID: cs.Transit.HandoffID, Number: cs.Number, To: cs.Transit.To, Move: cs.Transit.Move, Since: cs.Transit.Since}
	tx.Emit(outboxAdded(e))
	return putJSON(tx, outboxKey(e.To, e.ID), e)
}

// applyArrive takes in delivered cases, each at most once per handoff.
func (m *machine) applyArrive(tx *replication.Tx, c *arriveCommand) (*Answer, error) {
	// Refused whole while restoring: the source is told to try again (a refusal of one arrival
	// would unlock the case there).
	if a, err := refuseWhileRestoring(tx); a != nil || err != nil {
		return a, err
	}
	var retired RetiredState
	if _, err := getJSON(tx, keyRetired, &retired); err != nil {
		return nil, err
	}
	out := make([]ArrivalOutcome, 0, len(c.Arrivals))
	for i := range c.Arrivals {
		o, err := m.arrive(tx, c, &c.Arrivals[i], &retired)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return &Answer{Arrivals: out}, nil
}

func (m *machine) arrive(tx *replication.Tx, c *arriveCommand, a *Arrival, retired *RetiredState) (ArrivalOutcome, error) {
	site := c.Site
	var prev handoffRecord
	known, err := getJSON(tx, handoffKey(a.ID), &prev)
	switch {
	case err != nil:
		return ArrivalOutcome{}, err
	case known && prev.Outcome == OutcomeRefused:
		return ArrivalOutcome{ID: a.ID, Outcome: OutcomeRefused, Reason: prev.Reason}, nil
	case known:
		return ArrivalOutcome{ID: a.ID, Outcome: OutcomeDuplicate}, nil
	}
	refuse := func(reason string) (ArrivalOutcome, error) {
		tx.Emit(counted{handoffsRefused: 1})
		return ArrivalOutcome{ID: a.ID, Outcome: OutcomeRefused, Reason: reason},
			putJSON(tx, handoffKey(a.ID), handoffRecord{From: a.From, Outcome: OutcomeRefused, Reason: reason, At: tx.At()})
	}
	cs, derr := decodeCase(a.Record)
	switch {
	case retired.Retired:
		return refuse(fmt.Sprintf("site %s is retired: %s", site, retired.Reason))
	case derr != nil:
		return refuse("the delivery carries no readable case record: " + derr.Error())
	case cs.HolderSite != a.From:
		return refuse(fmt.Sprintf("the record is held by %s, not by the sender %s", cs.HolderSite, a.From))
	}
	// An old copy: this site already knows the case at a later version than the one delivered
	// (it took this handoff in before, or the case has moved on since). Never apply it again.
	meta, seen, err := getMirrorMeta(tx, cs.Number)
	if err != nil {
		return ArrivalOutcome{}, err
	}
	if seen && meta.Version > cs.Version {
		return ArrivalOutcome{ID: a.ID, Outcome: OutcomeDuplicate}, nil
	}
	// Only a case on its way up goes on up: one handed down or returned stays, or it would
	// bounce between the tiers.
	relayTo, onward := a.RelayTo, casework.MoveRelay
	switch {
	case collecting(cs):
		// A decided case on its way to the collection site goes on toward it.
		if relayTo, onward, err = collectionHop(tx, cs, site, c.Parent); err != nil {
			return ArrivalOutcome{}, err
		}
	case relayTo == "" && cs.Transit != nil && (cs.Transit.Move == casework.MoveEscalate || cs.Transit.Move == casework.MoveRelay):
		relayTo = relayTarget(cs.DecideTier, c.Tier, c.Parent)
	}
	if err := cs.Arrive(a.ID, site, tx.At()); err != nil {
		return refuse(err.Error())
	}
	local, held, err := getCase(tx, cs.Number)
	switch {
	case err != nil:
		return ArrivalOutcome{}, err
	case held && local.Transit != nil:
		// This site sent the case away and it came back before the first handoff was settled
		// here: its return proves the target took it, so that handoff is done.
		tx.Delete(outboxKey(local.Transit.To, local.Transit.HandoffID))
		tx.Emit(outboxRemoved(local.Transit.HandoffID))
		unindexCase(tx, local)
	case held && appliedBefore(local, cs, a.ID, site):
		return ArrivalOutcome{ID: a.ID, Outcome: OutcomeDuplicate}, nil
	case held:
		return refuse(fmt.Sprintf("case %s is already held here at version %d", cs.Number, local.Version))
	}
	tx.Delete(stubKey(cs.Number))
	tx.Emit(counted{handoffsIn: 1})
	return ArrivalOutcome{ID: a.ID, Outcome: OutcomeApplied}, m.takeIn(tx, cs, onward, site, relayTo, "")
}

// relayTarget is where a case taken in at a site of tier t under parent must go on to: the
// parent, while the tier that must decide the case is above t; "" to keep it.
func relayTarget(decideTier string, t tier.Tier, parent string) string {
	d, err := tier.Parse(decideTier)
	if decideTier == "" || err != nil || parent == "" || t == "" {
		return ""
	}
	if d.Level() < t.Level() {
		return parent
	}
	return ""
}

// decodeCase decodes a case record from a peer.
func decodeCase(b []byte) (*casework.Case, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("empty record")
	}
	c := new(casework.Case)
	if err := json.Unmarshal(b, c); err != nil {
		return nil, err
	}
	if c.Number == "" {
		return nil, fmt.Errorf("record without a case number")
	}
	return c, nil
}

// relay sends a case just taken in (accepted or arrived) straight on toward the tier that must
// decide it, in the same commit. It reports false, having changed nothing, when there is
// nowhere to send it; the caller then stores the case as held.
func (m *machine) relay(tx *replication.Tx, cs *casework.Case, move casework.Move, site, to, code string) (bool, error) {
	reason := fmt.Sprintf("to be decided by the %s tier", cs.DecideTier)
	if collecting(cs) {
		reason = "送往领证站点 to the collection site " + cs.CollectionSite()
	}
	return m.forward(tx, cs, move, site, to, reason, code)
}

// forward departs cs from site to to by the grid itself (AutoActor), for reason; false when to
// is "" or the departure is not possible (logged: the case then stays).
func (m *machine) forward(tx *replication.Tx, cs *casework.Case, move casework.Move, site, to, reason, code string) (bool, error) {
	if to == "" {
		return false, nil
	}
	d := casework.Departure{Move: move, Site: site, To: to, Actor: AutoActor, Reason: reason, At: tx.At()}
	if err := d.Validate(); err != nil {
		m.logger.Warn("not relaying a case", "number", cs.Number, "to", to, "error", err)
		return false, nil
	}
	if _, err := cs.Depart(d); err != nil {
		m.logger.Warn("not relaying a case", "number", cs.Number, "to", to, "error", err)
		return false, nil
	}
	return true, m.queue(tx, cs, code)
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
func (m *machine) applySettle(tx *replication.Tx, c *settleCommand) (*Answer, error) {
	for _, s := range c.Settlements {
		number, _, err := casework.ParseHandoffID(s.ID)
		if err != nil {
			continue
		}
		cs, ok, err := getCase(tx, number)
		if err != nil {
			return nil, err
		}
		if !ok || cs.Transit == nil || cs.Transit.HandoffID != s.ID {
			continue
		}
		tx.Delete(outboxKey(cs.Transit.To, s.ID))
		tx.Emit(outboxRemoved(s.ID))
		if s.Refused {
			if err := cs.Refused(s.ID, s.Reason, tx.At()); err != nil {
				continue // cannot happen: the transit was checked above
			}
			if err := m.storeCase(tx, cs, cs.HolderSite, ""); err != nil {
				return nil, err
			}
			continue
		}
		unindexCase(tx, cs)
		if err := unholdMirror(tx, number); err != nil {
			return nil, err
		}
		tx.Delete(caseKey(number))
		if err := putJSON(tx, stubKey(number), Stub{Number: number, Holder: cs.Transit.To, HandoffID: s.ID, MovedAt: tx.At()}); err != nil {
			return nil, err
		}
	}
	return &Answer{}, nil
}

func (m *machine) applyRetire(tx *replication.Tx, c *retireCommand) (*Answer, error) {
	if !c.Retired {
		tx.Delete(keyRetired)
		return &Answer{}, nil
	}
	return &Answer{}, putJSON(tx, keyRetired, RetiredState{Retired: true, Reason: c.Reason, Since: tx.At()})
}

// MoveCase moves a case this site holds to a neighbour: it commits the departure (the case is
// locked, the handoff queued) and returns the locked case. Delivery follows asynchronously.
func (s *State) MoveCase(ctx context.Context, number string, d casework.Departure) (*casework.Case, error) {
	d.Site = s.cfg.Site
	d.At = time.Time{}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	// Not retried on a lost leader: a departure is not idempotent, and its caller sees the
	// case locked if the first attempt did commit.
	a, err := s.propose(ctx, cmdDepart, &departCommand{Number: number, Move: d.Move, Site: d.Site, To: d.To, Actor: d.Actor, Reason: d.Reason})
	if err != nil {
		return nil, err
	}
	return a.Case, nil
}

// ReceiveHandoffs commits delivered handoffs at this site and returns one outcome per arrival,
// in their order. A delivery too large for one command is committed in parts.
func (s *State) ReceiveHandoffs(ctx context.Context, arrivals []Arrival) ([]ArrivalOutcome, error) {
	for i := range arrivals {
		if !json.Valid(arrivals[i].Record) {
			arrivals[i].Record = nil // refused by the state machine: not a readable record
		}
		arrivals[i].RelayTo = ""
	}
	out := make([]ArrivalOutcome, 0, len(arrivals))
	err := proposeInParts(ctx, s, cmdArrive, arrivals, func(part []Arrival) any {
		return &arriveCommand{Site: s.cfg.Site, Tier: s.cfg.Tier, Parent: s.cfg.Parent, Arrivals: part}
	}, func(a *Answer) { out = append(out, a.Arrivals...) })
	return out, err
}

// SettleHandoffs commits the targets' answers for handoffs in this site's outbox.
func (s *State) SettleHandoffs(ctx context.Context, settlements []Settlement) error {
	return proposeInParts(ctx, s, cmdSettle, settlements, func(part []Settlement) any {
		return &settleCommand{Settlements: part}
	}, nil)
}

// SetRetired retires the site (it refuses incoming handoffs, with reason) or reinstates it.
func (s *State) SetRetired(ctx context.Context, retired bool, reason string) error {
	_, err := s.proposeIdempotent(ctx, cmdRetire, &retireCommand{Retired: retired, Reason: reason})
	return err
}

// Retired reports whether this site is retired.
func (s *State) Retired() (*RetiredState, error) {
	st, err := getOne[RetiredState](s, keyRetired)
	if errors.Is(err, ErrNotFound) {
		return &RetiredState{}, nil
	}
	return st, err
}

// Outbox lists the handoffs waiting for delivery, oldest id first per target.
func (s *State) Outbox() ([]OutboxEntry, error) {
	var out []OutboxEntry
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixOutbox, func(e *OutboxEntry) bool { out = append(out, *e); return true })
	})
	return out, err
}

// HandoffRecord is the record a pending handoff delivers: the case as stored at this site, as its
// bytes, when handoff id is still the case's transit (else ok is false: it was settled).
func (s *State) HandoffRecord(number, id string) (record []byte, ok bool, err error) {
	err = s.view(func(txn *badger.Txn) error {
		b, found, err := view{txn}.Get(caseKey(number))
		if err != nil || !found {
			return err
		}
		var probe struct {
			Transit *casework.Transit `json:"transit"`
		}
		if err := json.Unmarshal(b, &probe); err != nil {
			return fmt.Errorf("%w: case %s: %v", errMalformed, number, err)
		}
		if probe.Transit != nil && probe.Transit.HandoffID == id {
			record, ok = b, true
		}
		return nil
	})
	return record, ok, err
}

// GetStub returns the pointer this site keeps to a case it handed on, or ErrNotFound.
func (s *State) GetStub(number string) (*Stub, error) { return getOne[Stub](s, stubKey(number)) }
