package sitestate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/replication"
)

// The site's audit trail of access (审计日志): sign-ins and failed ones, sign-outs, reads of whole
// case records, administrative changes. It is append-only and hash-chained like a case's history:
// each entry's hash covers the one before, so a removed or altered entry breaks the chain at every
// replica and in every backup. Nodes gather events in memory and commit them in batches (an
// attacker's wrong passwords then cost one write a second, not one each).

func init() { register(cmdAudit, "audit", (*machine).applyAudit) }

// The kinds of audit events.
const (
	AuditSignIn          = "sign_in"
	AuditSignInFailed    = "sign_in_failed"
	AuditSignOut         = "sign_out"
	AuditPasswordChanged = "password_changed"
	AuditBootstrap       = "bootstrap"
	AuditAccountCreated  = "account_created"
	AuditRecordRead      = "record_read"
	AuditCatalogChanged  = "catalog_changed"
	AuditConfigChanged   = "config_changed"
	AuditSiteChanged     = "site_changed" // leave, retire, reinstate, restore
	AuditDropped         = "events_dropped"
	AuditTrustChanged    = "trust_changed" // join tokens issued, revoked, redeemed
)

// MaxAuditBatch is the most entries one audit command appends.
const MaxAuditBatch = 500

// AuditEvent is something to record: what, who, from where, about what.
type AuditEvent struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
	// User is the account that acted (or tried to), "" when nobody signed in.
	User string `json:"user,omitempty"`
	// Node is the node that saw it; Client the address the request came from.
	Node    string `json:"node,omitempty"`
	Client  string `json:"client,omitempty"`
	Subject string `json:"subject,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// AuditEntry is a committed AuditEvent, numbered and chained.
type AuditEntry struct {
	Seq uint64 `json:"seq"`
	AuditEvent
	PrevHash string `json:"prev_hash,omitempty"`
	Hash     string `json:"hash"`
}

// ComputeHash is the hash of e's content and the hash before it.
func (e *AuditEntry) ComputeHash() string {
	c := *e
	c.Hash = ""
	b, _ := json.Marshal(&c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type auditCommand struct {
	Events []AuditEvent `json:"events"`
}

// auditHead is the last entry's sequence and hash.
type auditHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

func auditKey(seq uint64) []byte {
	k := make([]byte, len(prefixAudit)+8)
	copy(k, prefixAudit)
	binary.BigEndian.PutUint64(k[len(prefixAudit):], seq)
	return k
}

func (m *machine) applyAudit(tx *replication.Tx, c *auditCommand) (*Answer, error) {
	if len(c.Events) == 0 || len(c.Events) > MaxAuditBatch {
		return refuse(errorf(CodeInvalid, "an audit batch has 1 to %d events", MaxAuditBatch)), nil
	}
	for i, e := range c.Events {
		if e.Kind == "" || e.At.IsZero() {
			return refuse(errorf(CodeInvalid, "audit event %d has no kind or time", i+1)), nil
		}
	}
	var head auditHead
	if _, err := getJSON(tx, keyAuditHead, &head); err != nil {
		return nil, err
	}
	for _, e := range c.Events {
		e.At = e.At.UTC()
		entry := AuditEntry{Seq: head.Seq + 1, AuditEvent: e, PrevHash: head.Hash}
		entry.Hash = entry.ComputeHash()
		if err := putJSON(tx, auditKey(entry.Seq), &entry); err != nil {
			return nil, err
		}
		head = auditHead{Seq: entry.Seq, Hash: entry.Hash}
	}
	if err := putJSON(tx, keyAuditHead, &head); err != nil {
		return nil, err
	}
	return &Answer{}, nil
}

// AppendAudit commits events to the site's audit trail, in batches of MaxAuditBatch, and returns
// how many it committed (all of them, or those of the batches before the one that failed).
func (s *State) AppendAudit(ctx context.Context, events []AuditEvent) (int, error) {
	done := 0
	for done < len(events) {
		n := min(len(events)-done, MaxAuditBatch)
		if _, err := s.propose(ctx, cmdAudit, &auditCommand{Events: events[done : done+n]}); err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// AuditPage is a page of the audit trail, oldest first.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	// Next is the sequence to ask from for the next page; 0 at the end.
	Next uint64 `json:"next,omitempty"`
	// ChainOK says that every entry of the page hashes to its hash and links to the one before
	// (the first to the entry before the page, when there is one).
	ChainOK bool `json:"chain_ok"`
}

// Audit returns up to limit entries from sequence from on.
func (s *State) Audit(from uint64, limit int) (*AuditPage, error) {
	page := &AuditPage{Entries: []AuditEntry{}, ChainOK: true}
	err := s.view(func(txn *badger.Txn) error {
		prev := ""
		if from > 1 {
			var before AuditEntry
			ok, err := getJSON(view{txn}, auditKey(from-1), &before)
			if err != nil {
				return err
			}
			if ok {
				prev = before.Hash
			}
		}
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixAudit
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(auditKey(max(from, 1))); it.Valid(); it.Next() {
			var e AuditEntry
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) }); err != nil {
				return fmt.Errorf("%w: audit entry: %v", errMalformed, err)
			}
			if len(page.Entries) == limit {
				page.Next = e.Seq
				break
			}
			if e.PrevHash != prev || e.ComputeHash() != e.Hash {
				page.ChainOK = false
			}
			prev = e.Hash
			page.Entries = append(page.Entries, e)
		}
		return nil
	})
	return page, err
}
