package casework

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// EventType names what happened to a case.
type EventType string

// The event types. Later workflow steps add to this list.
const (
	EventSubmitted EventType = "submitted"
)

// Event is one entry of a case's history. History is append-only and chained: each event
// carries the hash of the one before it, so a changed or dropped event is detectable.
type Event struct {
	Seq   uint64    `json:"seq"`
	Type  EventType `json:"type"`
	At    time.Time `json:"at"`
	Site  string    `json:"site"`
	Actor string    `json:"actor,omitempty"`
	// Role is the role the actor took the step in (a step of a case's life).
	Role       string `json:"role,omitempty"`
	Note       string `json:"note,omitempty"`
	FromStatus Status `json:"from_status,omitempty"`
	ToStatus   Status `json:"to_status"`
	// FromSite and ToSite are set on moves between sites.
	FromSite string `json:"from_site,omitempty"`
	ToSite   string `json:"to_site,omitempty"`
	PrevHash string `json:"prev_hash,omitempty"`
	Hash     string `json:"hash"`
}

// computeHash is SHA-256 over the event's fields and its predecessor's hash, each field
// length-prefixed so that no two different events share an encoding.
func (e *Event) computeHash() string {
	h := sha256.New()
	field := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	field(e.PrevHash)
	field(strconv.FormatUint(e.Seq, 10))
	field(string(e.Type))
	field(strconv.FormatInt(e.At.UnixNano(), 10))
	field(e.Site)
	field(e.Actor)
	field(e.Note)
	field(string(e.FromStatus))
	field(string(e.ToStatus))
	if e.FromSite != "" || e.ToSite != "" {
		// Only moves carry sites: events without them keep the hash they always had.
		field("sites")
		field(e.FromSite)
		field(e.ToSite)
	}
	if e.Role != "" {
		// Only steps carry a role: older events keep their hash.
		field("role")
		field(e.Role)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// appendEvent seals e onto c's history: it numbers it, links it to the previous event, hashes
// it, and raises the case's version.
func (c *Case) appendEvent(e Event) {
	e.Seq = uint64(len(c.History)) + 1
	e.PrevHash = c.LastHash()
	e.Hash = e.computeHash()
	c.History = append(c.History, e)
	c.Version++
	c.UpdatedAt = e.At
}

// VerifyHistory checks that c's history is numbered from 1 without gaps and that every event's
// hash matches its contents and links to its predecessor.
func (c *Case) VerifyHistory() error {
	if uint64(len(c.History)) != c.Version {
		return &HistoryError{Seq: uint64(len(c.History)), Reason: "history is shorter or longer than the case's version"}
	}
	prev := ""
	for i := range c.History {
		e := &c.History[i]
		if e.Seq != uint64(i)+1 {
			return &HistoryError{Seq: e.Seq, Reason: "out of sequence"}
		}
		if e.PrevHash != prev {
			return &HistoryError{Seq: e.Seq, Reason: "does not link to the previous event"}
		}
		if e.Hash != e.computeHash() {
			return &HistoryError{Seq: e.Seq, Reason: "hash does not match its contents"}
		}
		prev = e.Hash
	}
	return nil
}

// HistoryError says which event of a history failed verification and why.
type HistoryError struct {
	Seq    uint64
	Reason string
}

func (e *HistoryError) Error() string {
	return "casework: event " + strconv.FormatUint(e.Seq, 10) + " " + e.Reason
}
