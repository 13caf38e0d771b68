package sitestate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/tier"
)

// Opening a case (一号制): the FSM allocates the day's next number, stores the case and its index
// entries, and remembers the request id, so that a retry answers with the same case and the same
// query code however it reaches the site.

func init() { register(cmdSubmitCase, "submit-case", (*machine).applySubmit) }

// maxDailySequence is the largest sequence a case number's six digits can hold.
const maxDailySequence = 999_999

// submitCommand opens a case. The node that took the request fills it: it draws the citizen's
// query code (which stays in this site's log and request table, and never travels: the case
// keeps only its hash); the leader stamps the command's time.
type submitCommand struct {
	Submission casework.Submission `json:"submission"`
	Site       string              `json:"site"`
	// Tier and Parent place the site, so that a case whose decide tier is above it is escalated
	// to the parent in the same commit. RelayTo is what entries of earlier versions carry
	// instead: the site they escalated to.
	Tier      tier.Tier `json:"tier,omitempty"`
	Parent    string    `json:"parent,omitempty"`
	RelayTo   string    `json:"relay_to,omitempty"`
	QueryCode string    `json:"query_code,omitempty"`
	// QueryCodeHash is what entries written before the code entered the log carry instead.
	QueryCodeHash string `json:"query_code_hash,omitempty"`
}

// requestRecord is what the site keeps of a submission it applied, under its request id.
type requestRecord struct {
	Number    string    `json:"n"`
	QueryCode string    `json:"qc,omitempty"`
	At        time.Time `json:"at"`
}

// getRequest reads a request record; records written before they were JSON hold the number alone.
func getRequest(r reader, id string) (*requestRecord, bool, error) {
	b, ok, err := r.Get(requestKey(id))
	if err != nil || !ok {
		return nil, false, err
	}
	rec := new(requestRecord)
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, rec); err != nil {
			return nil, false, fmt.Errorf("%w: request %s: %v", errMalformed, id, err)
		}
		return rec, true, nil
	}
	rec.Number = string(b)
	return rec, true, nil
}

func (m *machine) applySubmit(tx *replication.Tx, c *submitCommand) (*Answer, error) {
	if c.Site == "" {
		// Only a node of a newer or broken version proposes such a command.
		return refuse(errorf(CodeInvalid, "submit command without a site")), nil
	}
	if id := c.Submission.RequestID; id != "" {
		prev, ok, err := getRequest(tx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			return m.duplicate(tx, prev)
		}
	}
	if a, err := refuseWhileRestoring(tx); a != nil || err != nil {
		return a, err
	}
	if err := c.Submission.Validate(); err != nil {
		return refuse(refusal(err)), nil
	}
	at := tx.At()
	day := at.In(m.loc).Format("20060102")
	seq, err := getUint32(tx, sequenceKey(day))
	if err != nil {
		return nil, err
	}
	if seq >= maxDailySequence {
		return refuse(errorf(CodeExhausted, "site %s has used all %d case numbers of %s", c.Site, maxDailySequence, day)), nil
	}
	if seq+1 >= restoreReserve {
		if st, err := getRestoreState(tx); err != nil {
			return nil, err
		} else if st.Day != day {
			return refuse(errorf(CodeExhausted, "site %s has used all %d case numbers of %s (the numbers from %d are kept for a restored site)", c.Site, restoreReserve-1, day, restoreReserve)), nil
		}
	}
	seq++
	number := casework.FormatNumber(c.Site, day, seq)
	hash := c.QueryCodeHash
	if c.QueryCode != "" {
		hash = casework.HashQueryCode(c.Submission.RequestID, c.QueryCode)
	}
	cs, err := casework.Accept(&c.Submission, casework.Acceptance{Number: number, Site: c.Site, At: at, QueryCodeHash: hash})
	if err != nil {
		return refuse(refusal(err)), nil
	}
	tx.Set(sequenceKey(day), u32(seq))
	to := c.RelayTo
	if to == "" {
		to = relayTarget(cs.DecideTier, c.Tier, c.Parent)
	}
	if err := m.takeIn(tx, cs, casework.MoveEscalate, c.Site, to, c.QueryCode); err != nil {
		return nil, err
	}
	if id := c.Submission.RequestID; id != "" {
		if err := putJSON(tx, requestKey(id), requestRecord{Number: number, QueryCode: c.QueryCode, At: at}); err != nil {
			return nil, err
		}
	}
	tx.Emit(counted{accepted: 1})
	return &Answer{Case: cs, QueryCode: c.QueryCode}, nil
}

// duplicate answers a retried submission with the case its first attempt opened, wherever it is
// now: held here, or handed on (this site's mirror keeps the copy it last had; the node then asks
// the holder for the newest).
func (m *machine) duplicate(tx *replication.Tx, prev *requestRecord) (*Answer, error) {
	code := prev.QueryCode
	if code == "" {
		// A site restored from its parent has the code in its mirror, as the parent kept it.
		meta, _, err := getMirrorMeta(tx, prev.Number)
		if err != nil {
			return nil, err
		}
		code = meta.QueryCode
	}
	cs, ok, err := getCase(tx, prev.Number)
	if err != nil {
		return nil, err
	}
	if !ok {
		rec, found, err := getMirrorRecord(tx, prev.Number)
		if err != nil {
			return nil, err
		}
		if !found {
			return refuse(errorf(CodeConflict, "request id already opened case %s, which this site no longer has", prev.Number)), nil
		}
		cs = rec.Case
	}
	return &Answer{Case: cs, QueryCode: code, Duplicate: true}, nil
}

// takeIn stores a case just taken in (accepted here, with its query code, or arrived), or, when
// its decide tier is above this site's (to names the next site up), sends it straight on in the
// same commit.
func (m *machine) takeIn(tx *replication.Tx, cs *casework.Case, move casework.Move, site, to, code string) error {
	indexCase(tx, cs)
	relayed, err := m.relay(tx, cs, move, site, to, code)
	if relayed || err != nil {
		return err
	}
	return m.storeCase(tx, cs, site, code)
}

func getCase(r reader, number string) (*casework.Case, bool, error) {
	c := new(casework.Case)
	ok, err := getJSON(r, caseKey(number), c)
	if !ok {
		return nil, false, err
	}
	return c, true, err
}

// indexCase writes a held case's listing index entries.
func indexCase(tx *replication.Tx, c *casework.Case) {
	nanos := c.CreatedAt.UnixNano()
	tx.Set(timeIndexKey(prefixByTime, nanos, c.Number), nil)
	tx.Set(timeIndexKey(byStatusPrefix(string(c.Status)), nanos, c.Number), nil)
}

func unindexCase(tx *replication.Tx, c *casework.Case) {
	nanos := c.CreatedAt.UnixNano()
	tx.Delete(timeIndexKey(prefixByTime, nanos, c.Number))
	tx.Delete(timeIndexKey(byStatusPrefix(string(c.Status)), nanos, c.Number))
}

// SubmitCase opens a case at this site and returns it once committed, with its query code. On a
// follower the write is forwarded to the leader. Every submission carries a request id (the
// caller's, or a random one), so retrying after a lost leader can never open a second case: a
// retry answers with the first attempt's case and code, and duplicate set. When that case has
// left the site since, the answer is the copy the site kept when it left.
func (s *State) SubmitCase(ctx context.Context, sub *casework.Submission) (c *casework.Case, duplicate bool, err error) {
	cmd := submitCommand{Submission: *sub, Site: s.cfg.Site, Tier: s.cfg.Tier, Parent: s.cfg.Parent, QueryCode: newQueryCode()}
	if cmd.Submission.RequestID == "" {
		cmd.Submission.RequestID = newRequestID()
	}
	a, err := s.proposeIdempotent(ctx, cmdSubmitCase, &cmd)
	if err != nil {
		return nil, false, err
	}
	a.Case.QueryCode = a.QueryCode
	return a.Case, a.Duplicate, nil
}

// GetCase reads a case this site holds (or has in transit) from this node's copy, or ErrNotFound.
func (s *State) GetCase(number string) (*casework.Case, error) {
	var c *casework.Case
	var ok bool
	err := s.view(func(txn *badger.Txn) error {
		var err error
		c, ok, err = getCase(view{txn}, number)
		return err
	})
	if err == nil && !ok {
		return nil, ErrNotFound
	}
	return c, err
}

// newQueryCode draws a uniformly random 6-digit code.
func newQueryCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// newRequestID draws a random idempotency key for a submission that came without one.
func newRequestID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "g-" + hex.EncodeToString(b[:])
}
