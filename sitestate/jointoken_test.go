package sitestate

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"
)

// TestJoinTokenIsSpentOnceAndOnlyAsIssued: every refusal names its reason and spends nothing;
// a token admits its site (and, with a parent, only under it) until its uses, its expiry or a
// revocation end it.
func TestJoinTokenIsSpentOnceAndOnlyAsIssued(t *testing.T) {
	s := newSite(t, "cd")
	s.now = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	hash := sha256.Sum256([]byte("s3cret"))
	issue := func(id, site, parent string, uses int) {
		t.Helper()
		a := s.apply(cmdJoinToken, &joinTokenCommand{Op: "issue", Token: &JoinToken{ID: id, Site: site, Parent: parent, SecretHash: hash[:], UsesLeft: uses, Expires: s.now.Add(time.Hour)}})
		if a.Err != nil || a.JoinToken == nil || !a.JoinToken.CreatedAt.Equal(s.now) {
			t.Fatalf("issue %s: %+v", id, a)
		}
	}
	spend := func(id, secret, site, parent string) string {
		t.Helper()
		a := s.apply(cmdJoinToken, &joinTokenCommand{Op: "spend", ID: id, Secret: secret, Site: site, Parent: parent, Node: site + "-1"})
		if a.Err != nil {
			return a.Err.Message
		}
		return ""
	}
	issue("t1", "cd-x", "", 2)
	issue("t2", AnySite, "cd-dgdj", 5)
	if a := s.apply(cmdJoinToken, &joinTokenCommand{Op: "issue", Token: &JoinToken{ID: "t1", Site: "cd-y", SecretHash: hash[:], UsesLeft: 1}}); a.Err == nil || a.Err.Code != CodeConflict {
		t.Fatalf("a token issued twice: %+v", a.Err)
	}
	for _, tc := range []struct{ id, secret, site, parent, want string }{
		{"t9", "s3cret", "cd-x", "cd", "not one this grid issued"},
		{"t1", "guess", "cd-x", "cd", "wrong secret"},
		{"t1", "s3cret", "cd-y", "cd", `admits a node of site "cd-x"`},
		{"t1", "s3cret", "cd-x", "cd", ""},
		{"t1", "s3cret", "cd-x", "cd", ""},
		{"t1", "s3cret", "cd-x", "cd", "used up"},
		{"t2", "s3cret", "cd-byl-q", "cd-byl", `admits a site under "cd-dgdj"`},
		{"t2", "s3cret", "cd-dgdj-q", "cd-dgdj", ""},
		{"t2", "s3cret", "cd-dgdj", "cd", ""}, // a node of the township itself
	} {
		if got := spend(tc.id, tc.secret, tc.site, tc.parent); tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("spend %s for %s under %s: %q, want %q", tc.id, tc.site, tc.parent, got, tc.want)
		}
	}
	if a := s.apply(cmdJoinToken, &joinTokenCommand{Op: "revoke", ID: "t2"}); a.Err != nil || !a.JoinToken.Revoked {
		t.Fatalf("revoke: %+v", a)
	}
	if got := spend("t2", "s3cret", "cd-dgdj-r", "cd-dgdj"); !strings.Contains(got, "revoked") {
		t.Errorf("a revoked token: %q", got)
	}
	issue("t3", "cd-z", "", 1)
	s.now = s.now.Add(time.Hour)
	if got := spend("t3", "s3cret", "cd-z", "cd"); !strings.Contains(got, "expired") {
		t.Errorf("an expired token: %q", got)
	}
	list, err := s.st.JoinTokens()
	if err != nil || len(list) != 3 {
		t.Fatalf("tokens: %v, %v", list, err)
	}
	for _, tok := range list {
		if tok.ID == "t1" && (tok.UsesLeft != 0 || len(tok.Admitted) != 2) {
			t.Errorf("t1 after two uses: %+v", tok)
		}
		if tok.ID == "t3" && tok.UsesLeft != 1 {
			t.Errorf("a refused spend spent a use: %+v", tok)
		}
	}
}
