package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"

	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/tier"
)

// The requests and answers of the HTTP API, as it sends and reads them (snake_case JSON). The
// node builds the answers, httpapi serves them, and the CLI and the tests read them: one
// definition each.

// MembersView is GET /v1/members: every node the answering node's gossip knows, alive or not.
type MembersView struct {
	// Node is the answering node's name.
	Node    string   `json:"node"`
	Members []Member `json:"members"`
}

// Member is one node as gossip sees it.
type Member struct {
	Name string `json:"name"`
	// Addr is its gossip address; Status alive, dead or left; Since when it took that status.
	Addr    string    `json:"addr"`
	Status  string    `json:"status"`
	Since   time.Time `json:"since,omitzero"`
	Site    string    `json:"site"`
	Tier    tier.Tier `json:"tier"`
	Parent  string    `json:"parent,omitempty"`
	HTTP    string    `json:"http"`
	GRPC    string    `json:"grpc"`
	Raft    string    `json:"raft"`
	Version string    `json:"version,omitempty"`
	// Meta is the same, as gossiped (short keys, for memberlist's 512-byte limit): kept for
	// clients written against earlier versions.
	Meta GossipMeta `json:"meta"`
}

// GossipMeta is a node's gossip metadata as it travels (see node.Meta). Its keys are short
// because memberlist refuses (panics on) metadata over 512 bytes.
type GossipMeta struct {
	Site    string    `json:"s"`
	Tier    tier.Tier `json:"t"`
	Parent  string    `json:"p,omitempty"`
	GRPC    string    `json:"g"`
	Raft    string    `json:"r"`
	HTTP    string    `json:"h"`
	Version string    `json:"v,omitempty"`
	// Leaving is set when the node is leaving for good: its site leader removes it from Raft.
	// (memberlist's leave events do not say whether a node left or died.)
	Leaving bool `json:"l,omitempty"`
}

// SitesView is GET /v1/sites: the site tree as the answering node knows it.
type SitesView struct {
	Sites []SiteView `json:"sites"`
}

// Find returns the site whose code is site, and whether the view lists it.
func (v SitesView) Find(site string) (SiteView, bool) {
	for _, s := range v.Sites {
		if s.Site == site {
			return s, true
		}
	}
	return SiteView{}, false
}

// SiteView is one site of the tree.
type SiteView struct {
	Site   string    `json:"site"`
	Tier   tier.Tier `json:"tier"`
	Parent string    `json:"parent,omitempty"`
	Leader string    `json:"leader,omitempty"`
	// Health is healthy (every node alive), degraded (a majority alive) or down.
	Health string     `json:"health"`
	Nodes  []SiteNode `json:"nodes"`
	// Registered is true when the site is in the answering node's committed registry (the
	// district's holds the whole tree; a township's its subtree); false when it is only seen
	// in gossip.
	Registered bool `json:"registered"`
	// Outbox lists, for the answering node's own site only, the handoffs waiting per target: a
	// stuck handoff (its target unreachable, or not answering) shows here and on /metrics.
	Outbox []OutboxView `json:"outbox,omitempty"`
	// Retired is set, for the answering node's own site only, while it refuses handoffs.
	Retired *sitestate.RetiredState `json:"retired,omitempty"`
	// Feed is set for the answering site's children: how far its mirror is behind them.
	Feed *FeedView `json:"feed,omitempty"`
}

// SiteNode is one node of a site.
type SiteNode struct {
	Name string `json:"name"`
	// Status is alive, dead or left (gossip); unknown when gossip does not know the node.
	Status string `json:"status"`
	HTTP   string `json:"http,omitempty"`
	GRPC   string `json:"grpc,omitempty"`
}

// FeedView is how far a site has mirrored a child's feed, and what it heard of the child.
type FeedView struct {
	// Cursor is the last entry committed here; Head the child's newest entry, as it last said.
	Cursor uint64 `json:"cursor"`
	Head   uint64 `json:"head"`
	// LagKnown says whether the lag is known now: the site heard the child (an entry or a
	// heartbeat) within its feed's silence window. When it is not known, LagEntries and
	// LagSeconds are absent: a child cut off silently is never shown as caught up.
	LagKnown   bool     `json:"lag_known"`
	LagEntries *uint64  `json:"lag_entries,omitempty"`
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
	// AppliedAt is when an entry of the child was last committed here.
	AppliedAt time.Time `json:"applied_at"`
	// HeardAt is when the site (its leader) last heard the child, null if not since it leads;
	// StreamUp whether the feed stream is open now.
	HeardAt  *time.Time `json:"heard_at"`
	StreamUp bool       `json:"stream_up"`
}

// OutboxView is the outbox toward one target site, and what the site heard of the target.
type OutboxView struct {
	ToSite        string  `json:"to_site"`
	Depth         int     `json:"depth"`
	OldestSeconds float64 `json:"oldest_seconds"`
	// AnsweredAt is when the target last answered a delivery (null if not since this site's
	// leader leads); FailingSince, set while deliveries fail, since when, with LastError.
	AnsweredAt   *time.Time `json:"answered_at"`
	FailingSince *time.Time `json:"failing_since,omitempty"`
	LastError    string     `json:"last_error,omitempty"`
}

// ConfigView is GET /v1/config: the configuration in force at a site.
type ConfigView struct {
	Site string `json:"site"`
	// Versions is, per owner, the highest change the site has applied.
	Versions map[string]uint64     `json:"versions"`
	Docs     []sitestate.ConfigDoc `json:"docs"`
}

// Case is a case as the API answers with it: POST /v1/cases (201), GET /v1/cases/{number}
// and the moves (202) send the case in its public form (casework.Case.Public: without
// query_code_hash and request_id), with its history. query_code is set only in the answer to
// a submission.
type Case = casework.Case

// CasePage is GET /v1/cases (scope local, the default): a page of the cases the site holds,
// newest first.
type CasePage struct {
	Cases []CaseSummary `json:"cases"`
	// NextPageToken, absent on the last page, is the page_token of the next one.
	NextPageToken string `json:"next_page_token,omitempty"`
}

// CaseSummary is a case in a listing: its public form without its history, and with the
// applicant's identity number masked (see NewCaseSummary).
type CaseSummary struct {
	casework.Case
	// History hides the case's own: a listing never sends it (ask GET /v1/cases/{number}).
	History []casework.Event `json:"history,omitempty"`
}

// NewCaseSummary is c as a listing shows it: public, without history, the applicant's identity
// number and phone masked (casework.MaskIDNumber, casework.MaskPhone): a listing shows many
// people at once, and the full record is one GET away.
func NewCaseSummary(c *casework.Case) CaseSummary {
	pub := c.Public()
	pub.Applicant.IDNumber = casework.MaskIDNumber(pub.Applicant.IDNumber)
	pub.Applicant.Phone = casework.MaskPhone(pub.Applicant.Phone)
	pub.History = nil
	return CaseSummary{Case: pub}
}

// SubtreePage is GET /v1/cases?scope=subtree: a page of the site's mirror of its subtree (its
// own cases and every descendant's), newest first.
type SubtreePage struct {
	Cases []MirroredCase `json:"cases"`
	// NextPageToken, absent on the last page, is the page_token of the next one.
	NextPageToken string `json:"next_page_token,omitempty"`
}

// MirroredCase is a case in a subtree listing: the summary of the site's copy, and where the
// copy came from.
type MirroredCase struct {
	CaseSummary
	Mirror MirrorInfo `json:"mirror"`
}

// MirrorInfo says where a subtree listing's copy of a case came from and how fresh it is.
type MirrorInfo struct {
	// Origin is the site that committed the version copied, CommittedAt when; MirroredAt is
	// when this site committed its copy.
	Origin      string    `json:"origin"`
	CommittedAt time.Time `json:"committed_at"`
	MirroredAt  time.Time `json:"mirrored_at"`
	// DelaySeconds is how long after its commit at the origin this site copied it.
	DelaySeconds float64 `json:"delay_seconds"`
	// AgeSeconds is how long ago this site copied it: a newer change may be on its way.
	AgeSeconds float64 `json:"age_seconds"`
}

// MoveRequest is the body of POST /v1/cases/{number}/escalate, relay, handdown and return.
// The server refuses unknown fields.
type MoveRequest struct {
	// ToSite is the target: required for handdown, optional for the others (their target is
	// the only one allowed).
	ToSite string `json:"to_site,omitempty"`
	// Reason is the opinion (escalate, relay) or reason (return); Instructions, for
	// handdown, is the same field under the name clerks use for it. Give one of them.
	Reason       string `json:"reason,omitempty"`
	Instructions string `json:"instructions,omitempty"`
	// Actor is who does the move, recorded in the case's history.
	Actor string `json:"actor,omitempty"`
}

// StepRequest is the body of a step of a case's life, POST /v1/cases/{number}/<step>: what the
// step records. The signed-in account is its actor.
type StepRequest struct {
	Comment string `json:"comment,omitempty"`
	// Reason and LegalBasis: required to reject (不予受理); a denial needs its reason.
	Reason     string `json:"reason,omitempty"`
	LegalBasis string `json:"legal_basis,omitempty"`
	// Missing: request-supplement names every missing material at once (一次性告知).
	Missing []string `json:"missing,omitempty"`
	// Materials: what a supplement hands in.
	Materials []casework.Material `json:"materials,omitempty"`
	// Exception: accept with a required material missing, and why.
	Exception string `json:"exception,omitempty"`
	// Department: the department that signs off a joint item.
	Department string `json:"department,omitempty"`
	// The bill: the line charged or exempted ("" for the only line; to exempt, the whole bill),
	// the amount in fen (a charge, or the payment of the whole bill), the payment's reference.
	FeeLine    string `json:"fee_line,omitempty"`
	AmountFen  int64  `json:"amount_fen,omitempty"`
	PaymentRef string `json:"payment_ref,omitempty"`
}

// Request is the domain's request for step s.
func (r StepRequest) Request(s casework.Step) casework.StepRequest {
	return casework.StepRequest{Step: s, Comment: r.Comment, Reason: r.Reason, LegalBasis: r.LegalBasis,
		Missing: r.Missing, Materials: r.Materials, Exception: r.Exception, Department: r.Department,
		FeeLine: r.FeeLine, AmountFen: r.AmountFen, PaymentRef: r.PaymentRef}
}

// StepsAnswer is GET /v1/cases/{number}/steps: the steps the signed-in caller may take on the
// case now, at the node's site (its status, the place, the caller's roles, and 一审一核: not the
// approval of a case they reviewed). Empty where the case is not held.
type StepsAnswer struct {
	Number     string          `json:"number"`
	Status     casework.Status `json:"status"`
	HolderSite string          `json:"holder_site"`
	Steps      []casework.Step `json:"steps"`
}

// SealKey is one of the grid's site keys (GET /v1/seal/keys): the key that seals a site's
// decisions and signs its tokens.
type SealKey struct {
	Site      string    `json:"site"`
	PublicKey []byte    `json:"public_key"` // base64 in JSON
	KeyID     string    `json:"key_id"`     // hex of its first 8 bytes
	Since     time.Time `json:"since,omitzero"`
	// Revoked keys still verify their old signatures; a certificate sealed with one shows it.
	Revoked       bool      `json:"revoked,omitempty"`
	RevokedReason string    `json:"revoked_reason,omitempty"`
	RevokedAt     time.Time `json:"revoked_at,omitzero"`
}

// SealKeys is the grid's keys as a site knows them (GET /v1/seal/keys): what `govgrid verify`
// checks a certificate against, offline.
type SealKeys struct {
	Grid string    `json:"grid"`
	Keys []SealKey `json:"keys"`
}

// Find returns the index of site's key pub among these keys, or -1.
func (k *SealKeys) Find(site string, pub []byte) int {
	return slices.IndexFunc(k.Keys, func(sk SealKey) bool { return sk.Site == site && bytes.Equal(sk.PublicKey, pub) })
}

// Verify checks a seal against these keys.
func (k *SealKeys) Verify(s *casework.Seal) error {
	return s.Verify(k.Grid, func(site string, key []byte) casework.KeyStatus {
		switch i := k.Find(site, key); {
		case i < 0:
			return casework.KeyUnknown
		case k.Keys[i].Revoked:
			return casework.KeyRevoked
		}
		return casework.KeyValid
	})
}

// CertificateAnswer is GET /v1/cases/{number}/certificate: the sealed decision and whether it
// verifies against the keys the answering site knows.
type CertificateAnswer struct {
	Seal *casework.Seal `json:"seal"`
	// Verified: "valid", or why not ("revoked: ...", "unknown key", "forged").
	Verified string `json:"verified"`
	Status   string `json:"status"`
}

// RetireRequest is the body of POST /v1/site/retire (required there: the reason) and,
// optionally and empty, of POST /v1/site/reinstate.
type RetireRequest struct {
	// Reason is told to the sites that send cases here while the site is retired.
	Reason string `json:"reason"`
}

// RetireAnswer is the answer of POST /v1/site/retire and /v1/site/reinstate: whether the site
// is retired now, and the reason given.
type RetireAnswer struct {
	Retired bool   `json:"retired"`
	Reason  string `json:"reason"`
}

// ErrorBody is every error answer of the API (4xx, 5xx):
// {"error":{"code","message","fields"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is what went wrong with a request.
type ErrorDetail struct {
	// Code is short and machine-readable (see Status): invalid, not_found, conflict,
	// forbidden, too_large, exhausted, unavailable, timeout, canceled or internal.
	Code    string `json:"code"`
	Message string `json:"message"`
	// Fields lists, for an invalid request, every field found wrong and why.
	Fields casework.FieldErrors `json:"fields,omitempty"`
}

// CatalogImport says what an import into the catalogue changed.
type CatalogImport struct {
	Departments int `json:"departments"`
	Items       int `json:"items"`
	// Changed is how many documents were written: an item already in force as given is left
	// alone, so importing the same file twice writes nothing the second time.
	Changed int `json:"changed"`
}

// LoginAnswer is POST /v1/auth/login's answer: a token for `Authorization: Bearer`, good until
// ExpiresAt at the site that signed it and the sites beneath it.
type LoginAnswer struct {
	Token     string      `json:"token"`
	ExpiresAt time.Time   `json:"expires_at"`
	User      string      `json:"user"`
	Name      string      `json:"name"`
	Site      string      `json:"site"`
	Roles     []auth.Role `json:"roles"`
}

// BootstrapAnswer is the grid's first account: POST /v1/auth/bootstrap, once.
type BootstrapAnswer struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// AccountRequest is POST /v1/accounts.
type AccountRequest struct {
	User     string      `json:"user"`
	Password string      `json:"password"`
	Name     string      `json:"name"`
	Site     string      `json:"site"`
	Roles    []auth.Role `json:"roles"`
}

// KeyringView is GET /v1/keyring and the answer to its changes: the keys this node's gossip is
// encrypted with, by fingerprint (never the keys), the primary (the one that encrypts) first.
type KeyringView struct {
	// Node is the answering node's name.
	Node string `json:"node"`
	// Encrypted is false when gossip on the node is in the clear (no key): Keys is empty.
	Encrypted bool      `json:"encrypted"`
	Keys      []KeyView `json:"keys"`
}

// KeyView is one gossip key: "sha256:" and the hex of the key's SHA-256, and whether it is
// the primary.
type KeyView struct {
	Fingerprint string `json:"fingerprint"`
	Primary     bool   `json:"primary"`
}

// KeyFingerprint names a gossip key without giving it away: "sha256:" and the hex of its
// SHA-256.
func KeyFingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// KeyRequest is the body of POST /v1/keyring/install, /use and /remove: a gossip key, base64
// (standard, padded) of 16, 24 or 32 bytes.
type KeyRequest struct {
	Key string `json:"key"`
}

// JoinToken is a join token as the district lists it: never its secret, except in Token, which
// only the answer that created it carries.
type JoinToken struct {
	ID   string `json:"id"`
	Site string `json:"site"` // "*": any site
	// Parent is the site a new site it admits must hang under (a township's token).
	Parent    string    `json:"parent,omitempty"`
	Expires   time.Time `json:"expires"`
	UsesLeft  int       `json:"uses_left"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	Revoked   bool      `json:"revoked"`
	// Admitted lists the nodes it admitted, site/node.
	Admitted []string `json:"admitted,omitempty"`
	Token    string   `json:"token,omitempty"`
}

// JoinTokenRequest asks the district for a join token: for a node of site ("*": any site), valid
// for TTL (a Go duration, e.g. "24h"), for Uses redemptions.
type JoinTokenRequest struct {
	Site string `json:"site"`
	TTL  string `json:"ttl"`
	Uses int    `json:"uses"`
}

// RevokedCertificate is a node identity the district revoked: its certificates are refused at
// every handshake and renewal, wherever the revocation has reached (it travels down the tree as
// configuration).
type RevokedCertificate struct {
	Site      string    `json:"site"`
	Node      string    `json:"node"`
	Reason    string    `json:"reason"`
	RevokedAt time.Time `json:"revoked_at"`
	By        string    `json:"by"`
}
