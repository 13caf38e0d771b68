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
	"github.com/govgrid/govgrid/sitestate/logpb"
	"github.com/govgrid/govgrid/tier"
	"google.golang.org/protobuf/proto"
)

// Opening a case (一号制): the FSM allocates the day's next number, stores the case and its index
// entries, and remembers the request id, so that a retry answers with the same case and the same
// query code however it reaches the site.

// A submission enters the log as protobuf (submit-case-pb): decoding it is a tenth of what
// decoding its JSON cost, on the leader's one FSM goroutine that every write of the site waits
// for. Entries of earlier versions (submit-case, JSON) are still applied the same way.
func init() {
	register(cmdSubmitCase, "submit-case", (*machine).applySubmit)
	registerDecoded(cmdSubmitCasePB, "submit-case-pb", decodeSubmitCommand, (*machine).applySubmit)
}

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
		// A MAC under the grid secret when the node has one (every node of the grid has the
		// same), else the legacy salted hash: the case carries it into mirrors and exports.
		hash = casework.QueryCodeDigest(m.queryCodeSecret, c.Submission.RequestID, c.QueryCode)
	}
	// Accept validates the submission; a refusal writes nothing, the number included.
	cs, err := casework.Accept(&c.Submission, casework.Acceptance{Number: number, Site: c.Site, At: at, QueryCodeHash: hash})
	if err != nil {
		return refuse(refusal(err)), nil
	}
	tx.Set(sequenceKey(day), u32(seq))
	to := c.RelayTo
	if to == "" {
		to = relayTarget(cs.DecideTier, c.Tier, c.Parent)
	}
	// What the site and its parent keep of the code (to answer a retry, to give a restored site
	// back) is sealed under the grid secret: their snapshots and backups do not hold it readable.
	sealed := casework.SealQueryCode(m.queryCodeSecret, number, c.QueryCode)
	if err := m.takeIn(tx, cs, casework.MoveEscalate, c.Site, to, sealed); err != nil {
		return nil, err
	}
	if id := c.Submission.RequestID; id != "" {
		if err := putJSON(tx, requestKey(id), requestRecord{Number: number, QueryCode: sealed, At: at}); err != nil {
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
	if opened, err := casework.OpenQueryCode(m.queryCodeSecret, prev.Number, code); err == nil {
		code = opened
	} else {
		code = "" // the case, without a code this node cannot read (another grid secret)
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
	body, err := encodeSubmitCommand(&cmd)
	if err != nil {
		return nil, false, err
	}
	a, err := s.sendBytes(ctx, cmdSubmitCasePB, body, s.b.ProposeIdempotent)
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

// encodeSubmitCommand is c as the payload of a submit-case-pb entry. RelayTo and QueryCodeHash
// are only ever read from entries of earlier versions, so they are not encoded.
func encodeSubmitCommand(c *submitCommand) ([]byte, error) {
	sub := &c.Submission
	pb := &logpb.SubmitCommand{
		Submission: &logpb.Submission{
			Kind: string(sub.Kind), ItemCode: sub.ItemCode, Title: sub.Title, Description: sub.Description,
			DecideTier: sub.DecideTier, RequestId: sub.RequestID, Actor: sub.Actor, CollectSite: sub.CollectSite,
		},
		Site: c.Site, Tier: string(c.Tier), Parent: c.Parent, QueryCode: c.QueryCode,
	}
	if a := sub.Applicant; a != nil {
		pb.Submission.Applicant = &logpb.Applicant{Name: a.Name, IdNumber: a.IDNumber, Phone: a.Phone}
	}
	for _, m := range sub.Materials {
		pb.Submission.Materials = append(pb.Submission.Materials, &logpb.Material{Name: m.Name, Digest: m.Digest, Pages: int64(m.Pages)})
	}
	return proto.Marshal(pb)
}

// decodeSubmitCommand reads the payload of a submit-case-pb entry.
func decodeSubmitCommand(b []byte) (*submitCommand, error) {
	var pb logpb.SubmitCommand
	if err := proto.Unmarshal(b, &pb); err != nil {
		return nil, err
	}
	s := pb.GetSubmission()
	c := &submitCommand{
		Submission: casework.Submission{
			Kind: casework.Kind(s.GetKind()), ItemCode: s.GetItemCode(), Title: s.GetTitle(), Description: s.GetDescription(),
			DecideTier: s.GetDecideTier(), RequestID: s.GetRequestId(), Actor: s.GetActor(), CollectSite: s.GetCollectSite(),
		},
		Site: pb.GetSite(), Tier: tier.Tier(pb.GetTier()), Parent: pb.GetParent(), QueryCode: pb.GetQueryCode(),
	}
	if a := s.GetApplicant(); a != nil {
		c.Submission.Applicant = &casework.Applicant{Name: a.GetName(), IDNumber: a.GetIdNumber(), Phone: a.GetPhone()}
	}
	if ms := s.GetMaterials(); len(ms) > 0 {
		c.Submission.Materials = make([]casework.Material, len(ms))
		for i, m := range ms {
			pages := m.GetPages()
			if pages != int64(int(pages)) {
				return nil, fmt.Errorf("material %d: %d pages", i+1, pages)
			}
			c.Submission.Materials[i] = casework.Material{Name: m.GetName(), Digest: m.GetDigest(), Pages: int(pages)}
		}
	}
	return c, nil
}
