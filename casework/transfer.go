package casework

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Move is the way a case goes from one site to a neighbour in the tree.
type Move string

// The moves. Escalate and relay go to the parent, hand-down to a child, return to the site the
// case last came from.
const (
	// MoveEscalate sends a case up for a decision the holder cannot make (上报).
	MoveEscalate Move = "escalate"
	// MoveRelay forwards a case received from below to the tier that must decide it (转报).
	MoveRelay Move = "relay"
	// MoveHandDown sends a case to a child site with instructions (交办/下派).
	MoveHandDown Move = "handdown"
	// MoveReturn sends a case back to the site it came from (退回).
	MoveReturn Move = "return"
)

// Valid reports whether m is a known move.
func (m Move) Valid() bool {
	switch m {
	case MoveEscalate, MoveRelay, MoveHandDown, MoveReturn:
		return true
	}
	return false
}

// The event types of moves between sites.
const (
	EventEscalated      EventType = "escalated"
	EventRelayed        EventType = "relayed"
	EventHandedDown     EventType = "handed_down"
	EventReturned       EventType = "returned"
	EventReceived       EventType = "received"
	EventHandoffRefused EventType = "handoff_refused"
)

var moveEvents = map[Move]EventType{
	MoveEscalate: EventEscalated, MoveRelay: EventRelayed, MoveHandDown: EventHandedDown, MoveReturn: EventReturned,
}

// MaxReason is the longest reason, opinion or instruction a move may carry, in characters.
const MaxReason = 1000

// Transit is set while a case is on its way to another site. The case is locked: its holder
// may not change it until the target has taken it (the holder then keeps only a pointer) or
// refused it (the lock is lifted and the refusal recorded).
type Transit struct {
	HandoffID string    `json:"handoff_id"`
	To        string    `json:"to_site"`
	Move      Move      `json:"move"`
	Since     time.Time `json:"since"`
}

// ConflictError says that a step does not fit the case's current state: it is in transit, or
// held elsewhere. The front ends answer it with 409.
type ConflictError struct{ Reason string }

// Error returns the reason.
func (e *ConflictError) Error() string { return e.Reason }

func conflictf(format string, args ...any) error {
	return &ConflictError{Reason: fmt.Sprintf(format, args...)}
}

// HandoffID names the handoff that moves case number at version: <number>#<version>. The version
// is the one the case has once the move is recorded, so ids never repeat.
func HandoffID(number string, version uint64) string {
	return number + "#" + strconv.FormatUint(version, 10)
}

// ParseHandoffID returns the case number a handoff id names.
func ParseHandoffID(id string) (number string, version uint64, err error) {
	i := strings.LastIndexByte(id, '#')
	if i <= 0 {
		return "", 0, fmt.Errorf("casework: %q is not a handoff id", id)
	}
	v, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("casework: %q is not a handoff id", id)
	}
	return id[:i], v, nil
}

// Departure is a move decided at the holder: where the case goes, who sends it and why.
type Departure struct {
	Move   Move
	Site   string // the holder, sending
	To     string
	Actor  string
	Reason string
	At     time.Time
}

// Validate checks the form of a departure; whether To is a neighbour is the grid's business.
func (d *Departure) Validate() error {
	var fe FieldErrors
	if !d.Move.Valid() {
		fe.add("move", "must be escalate, relay, handdown or return")
	}
	checkText(&fe, "to_site", d.To, 64, true)
	checkText(&fe, "actor", d.Actor, MaxActor, false)
	checkText(&fe, "reason", d.Reason, MaxReason, false)
	if d.To != "" && d.To == d.Site {
		fe.add("to_site", "is the site that holds the case")
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

// Depart records a move out of the holder and locks the case. It returns the handoff id.
func (c *Case) Depart(d Departure) (string, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	if err := c.checkHeldBy(d.Site); err != nil {
		return "", err
	}
	c.appendEvent(Event{
		Type: moveEvents[d.Move], At: d.At, Site: d.Site, Actor: d.Actor, Note: d.Reason,
		FromStatus: c.Status, ToStatus: c.Status, FromSite: d.Site, ToSite: d.To,
	})
	id := HandoffID(c.Number, c.Version)
	c.Transit = &Transit{HandoffID: id, To: d.To, Move: d.Move, Since: d.At}
	return id, nil
}

// checkHeldBy refuses a change to a case that site does not hold, or that is locked in transit.
func (c *Case) checkHeldBy(site string) error {
	if c.HolderSite != site {
		return conflictf("case %s is held by %s, not %s: only the holder changes it", c.Number, c.HolderSite, site)
	}
	if c.Transit != nil {
		return conflictf("case %s is in transit to %s (handoff %s, since %s): it is locked until %s takes or refuses it",
			c.Number, c.Transit.To, c.Transit.HandoffID, c.Transit.Since.Format(time.RFC3339), c.Transit.To)
	}
	return nil
}

// CheckChangeable reports, as a ConflictError, why site may not change c now, or nil.
func (c *Case) CheckChangeable(site string) error { return c.checkHeldBy(site) }

// Arrive takes in a case delivered by handoff id at site: the record must be intact and in
// transit to site under that id. The case is unlocked and site becomes its holder.
func (c *Case) Arrive(id, site string, at time.Time) error {
	if err := c.VerifyHistory(); err != nil {
		return fmt.Errorf("record does not verify: %w", err)
	}
	if c.Transit == nil || c.Transit.HandoffID != id || c.Transit.To != site {
		return fmt.Errorf("record of %s is not in transit to %s under handoff %s", c.Number, site, id)
	}
	from := c.HolderSite
	move := c.Transit.Move
	c.Transit = nil
	c.HolderSite = site
	c.appendEvent(Event{
		Type: EventReceived, At: at, Site: site, Note: string(move),
		FromStatus: c.Status, ToStatus: c.Status, FromSite: from, ToSite: site,
	})
	return nil
}

// Refused lifts the lock of handoff id after its target refused it, recording the reason.
func (c *Case) Refused(id, reason string, at time.Time) error {
	if c.Transit == nil || c.Transit.HandoffID != id {
		return fmt.Errorf("case %s is not in transit under handoff %s", c.Number, id)
	}
	to := c.Transit.To
	c.Transit = nil
	c.appendEvent(Event{
		Type: EventHandoffRefused, At: at, Site: c.HolderSite, Note: reason,
		FromStatus: c.Status, ToStatus: c.Status, FromSite: c.HolderSite, ToSite: to,
	})
	return nil
}

// CameFrom is the site the case last arrived from, or "" if it never moved to its holder.
func (c *Case) CameFrom() string {
	for i := len(c.History) - 1; i >= 0; i-- {
		e := &c.History[i]
		if e.Type == EventReceived {
			if e.ToSite == c.HolderSite {
				return e.FromSite
			}
			return ""
		}
	}
	return ""
}
