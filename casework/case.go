package casework

import "time"

// Kind says what a case is: an application for an administrative licence or a convenience
// service (申请), or a resident's grievance or petition (诉求).
type Kind string

// The kinds of case.
const (
	KindApplication Kind = "application"
	KindGrievance   Kind = "grievance"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindApplication || k == KindGrievance }

// Status is where a case stands in its workflow.
type Status string

// The status of a new case; the others are its life's (workflow.go).
const (
	StatusSubmitted Status = "submitted"
)

// Applicant is the citizen or organisation that brought the case.
type Applicant struct {
	Name     string `json:"name"`
	IDNumber string `json:"id_number"`
	Phone    string `json:"phone"`
}

// Material is one document handed in with a case. Only its digest is kept here: scanned bytes
// belong in a content-addressed blob area, never in the Raft log.
type Material struct {
	Name   string `json:"name"`
	Digest string `json:"digest,omitempty"`
	Pages  int    `json:"pages,omitempty"`
}

// Case is one matter handled by the grid, identified by its number (一号制) for its whole life.
type Case struct {
	Number      string     `json:"number"`
	Kind        Kind       `json:"kind"`
	ItemCode    string     `json:"item_code"`
	Title       string     `json:"title"`
	Description string     `json:"description,omitempty"`
	Applicant   Applicant  `json:"applicant"`
	Materials   []Material `json:"materials"`
	Status      Status     `json:"status"`
	HolderSite  string     `json:"holder_site"`
	OriginSite  string     `json:"origin_site"`
	// DecideTier is the tier that must decide the case; empty means the site that accepted it.
	DecideTier string `json:"decide_tier,omitempty"`
	// Transit is set while the case is on its way to another site: it is locked meanwhile.
	Transit *Transit `json:"transit,omitempty"`
	// CollectSite is where the applicant collects the certificate; empty: where it was taken in.
	CollectSite string `json:"collect_site,omitempty"`
	// The life of the case (workflow.go): the materials a supplement request asked for, the
	// stopped clock, who reviewed it, the decision and a joint item's sign-offs.
	Missing       []string   `json:"missing,omitempty"`
	PausedSince   *time.Time `json:"paused_since,omitempty"`
	PausedSeconds int64      `json:"paused_seconds,omitempty"`
	ReviewedBy    string     `json:"reviewed_by,omitempty"`
	Decision      string     `json:"decision,omitempty"`
	SignOffs      []SignOff  `json:"sign_offs,omitempty"`
	// Bill is the case's one bill (bill.go), made at acceptance from the item's fees.
	Bill *Bill `json:"bill,omitempty"`
	// Seal is the deciding site's signed decision (certificate.go).
	Seal *Seal `json:"seal,omitempty"`
	// Version rises by one with every change, wherever the case is held.
	Version uint64 `json:"version"`
	// QueryCode is the citizen's 6-digit code. It is set only in the answer to a submission;
	// the stored case keeps QueryCodeHash instead.
	QueryCode string `json:"query_code,omitempty"`
	// QueryCodeHash is the stored form of the code: "h1:" + its HMAC under the grid secret
	// (QueryCodeMAC), or, for cases accepted before the grid secret or without one, the bare
	// salted hash (HashQueryCode). Check a code with CheckQueryCode.
	QueryCodeHash string `json:"query_code_hash,omitempty"`
	// RequestID is the submission's idempotency key (salt of QueryCodeHash).
	RequestID string    `json:"request_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	History   []Event   `json:"history"`
}

// Public returns a copy of c fit to show outside the site: without the query code's hash and
// its salt.
func (c Case) Public() Case {
	c.QueryCodeHash = ""
	c.RequestID = ""
	return c
}

// LastHash is the hash of c's newest event, or "" when it has none.
func (c *Case) LastHash() string {
	if len(c.History) == 0 {
		return ""
	}
	return c.History[len(c.History)-1].Hash
}
