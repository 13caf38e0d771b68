package sitestate

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/replication"
)

// Join tokens: the district admits a new node by a secret it issued, scoped to one site (or to any
// new site of the grid, as the demo's), with an expiry and a number of uses. The state keeps the
// secret's SHA-256 only; spending a use is a command, so two nodes redeeming the last use at two
// district nodes cannot both win. Revoked and used-up tokens stay listed until they expire.

func init() { register(cmdJoinToken, "join-token", (*machine).applyJoinToken) }

// AnySite is a join token's site when it admits a node of any site.
const AnySite = "*"

// JoinToken is a join token as the district keeps it.
type JoinToken struct {
	ID string `json:"id"`
	// Site is the site a node it admits must serve, or AnySite.
	Site string `json:"site"`
	// Parent, if set, is the site a new site it admits must hang under (a token a township asked
	// for); a node of Parent itself is admitted too.
	Parent     string    `json:"parent,omitempty"`
	SecretHash []byte    `json:"secret_hash"`
	Expires    time.Time `json:"expires"`
	UsesLeft   int       `json:"uses_left"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
	Revoked    bool      `json:"revoked,omitempty"`
	// Admitted lists the nodes it admitted (site/node), oldest first.
	Admitted []string `json:"admitted,omitempty"`
}

type joinTokenCommand struct {
	Op    string     `json:"op"` // issue, revoke or spend
	Token *JoinToken `json:"token,omitempty"`
	ID    string     `json:"id,omitempty"`
	// Secret, Site, Parent and Node are a spend's: the secret presented and who asks.
	Secret string `json:"secret,omitempty"`
	Site   string `json:"site,omitempty"`
	Parent string `json:"parent,omitempty"`
	Node   string `json:"node,omitempty"`
}

func (m *machine) applyJoinToken(tx *replication.Tx, c *joinTokenCommand) (*Answer, error) {
	switch c.Op {
	case "issue":
		t := c.Token
		if t == nil || t.ID == "" || len(t.SecretHash) != sha256.Size || t.UsesLeft < 1 || t.Site == "" {
			return refuse(errorf(CodeInvalid, "a join token needs an id, a secret, a site and at least one use")), nil
		}
		if ok, err := tx.Has(joinTokenKey(t.ID)); err != nil || ok {
			return refuse(errorf(CodeConflict, "join token %s exists", t.ID)), err
		}
		t.CreatedAt = tx.At()
		return m.putJoinToken(tx, t)
	case "revoke", "spend":
	default:
		return refuse(errorf(CodeInvalid, "join-token op %q is not issue, revoke or spend", c.Op)), nil
	}
	b, ok, err := tx.Get(joinTokenKey(c.ID))
	if err != nil {
		return nil, err
	}
	t := new(JoinToken)
	if !ok || json.Unmarshal(b, t) != nil {
		return refuse(errorf(CodeForbidden, "join token %s is not one this grid issued", c.ID)), nil
	}
	if c.Op == "revoke" {
		t.Revoked = true
		return m.putJoinToken(tx, t)
	}
	switch {
	case !t.secretMatches(c.Secret):
		return refuse(errorf(CodeForbidden, "join token %s: wrong secret", c.ID)), nil
	case t.Revoked:
		return refuse(errorf(CodeForbidden, "join token %s is revoked", c.ID)), nil
	case !tx.At().Before(t.Expires):
		return refuse(errorf(CodeForbidden, "join token %s expired at %s", c.ID, t.Expires.Format(time.RFC3339))), nil
	case t.UsesLeft < 1:
		return refuse(errorf(CodeForbidden, "join token %s is used up", c.ID)), nil
	case t.Site != AnySite && t.Site != c.Site:
		return refuse(errorf(CodeForbidden, "join token %s admits a node of site %q, not %q", c.ID, t.Site, c.Site)), nil
	case t.Parent != "" && c.Site != t.Parent && c.Parent != t.Parent:
		return refuse(errorf(CodeForbidden, "join token %s admits a site under %q, not under %q", c.ID, t.Parent, c.Parent)), nil
	}
	t.UsesLeft--
	t.Admitted = append(t.Admitted, c.Site+"/"+c.Node)
	return m.putJoinToken(tx, t)
}

func (m *machine) putJoinToken(tx *replication.Tx, t *JoinToken) (*Answer, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	tx.Set(joinTokenKey(t.ID), b)
	return &Answer{JoinToken: t}, nil
}

// IssueJoinToken records a new token (t.SecretHash set, t.CreatedAt filled by the log).
func (s *State) IssueJoinToken(ctx context.Context, t *JoinToken) (*JoinToken, error) {
	a, err := s.propose(ctx, cmdJoinToken, &joinTokenCommand{Op: "issue", Token: t})
	if err != nil {
		return nil, err
	}
	return a.JoinToken, nil
}

// RevokeJoinToken stops a token from admitting anyone more.
func (s *State) RevokeJoinToken(ctx context.Context, id string) (*JoinToken, error) {
	a, err := s.propose(ctx, cmdJoinToken, &joinTokenCommand{Op: "revoke", ID: id})
	if err != nil {
		return nil, err
	}
	return a.JoinToken, nil
}

// SpendJoinToken checks a token's secret, expiry, uses, site and parent for node of site (under
// parent), and spends one use; a refusal is CodeForbidden with the reason.
func (s *State) SpendJoinToken(ctx context.Context, id, secret, site, parent, node string) (*JoinToken, error) {
	a, err := s.propose(ctx, cmdJoinToken, &joinTokenCommand{Op: "spend", ID: id, Secret: secret, Site: site, Parent: parent, Node: node})
	if err != nil {
		return nil, err
	}
	return a.JoinToken, nil
}

// CheckJoinTokenSecret tells, from this node's copy, whether id is a token of this grid and secret
// its secret: a redemption is proposed to the log only then (the state machine checks again), so
// that guesses cost no write.
func (s *State) CheckJoinTokenSecret(id, secret string) (bool, error) {
	var t JoinToken
	var found bool
	err := s.view(func(txn *badger.Txn) error {
		var err error
		found, err = getJSON(view{txn}, joinTokenKey(id), &t)
		return err
	})
	if err != nil || !found {
		return false, err
	}
	return t.secretMatches(secret), nil
}

// secretMatches tells, in constant time, whether secret is the token's.
func (t *JoinToken) secretMatches(secret string) bool {
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], t.SecretHash) == 1
}

// JoinTokens lists the tokens the district issued.
func (s *State) JoinTokens() ([]JoinToken, error) {
	var out []JoinToken
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixJoinToken, func(t *JoinToken) bool {
			out = append(out, *t)
			return true
		})
	})
	return out, err
}
