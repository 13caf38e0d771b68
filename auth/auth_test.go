package auth

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"
)

func TestPasswords(t *testing.T) {
	salt := []byte("0123456789abcdef")
	h := HashPassword("correct horse battery", salt)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if !CheckPassword(h, "correct horse battery") {
		t.Fatal("the right password does not check")
	}
	for _, wrong := range []string{"", "correct horse batter", "Correct horse battery"} {
		if CheckPassword(h, wrong) {
			t.Fatalf("%q checks", wrong)
		}
	}
	for _, bad := range []string{"", "plain", "$argon2id$v=19$m=0,t=2,p=1$a$b", "$argon2i$v=19$m=19456,t=2,p=1$YQ$Yg", strings.Replace(h, "m=19456", "m=99999999", 1)} {
		if CheckPassword(bad, "correct horse battery") {
			t.Fatalf("hash %q checks", bad)
		}
	}
	if HashPassword("x", salt) == HashPassword("x", []byte("fedcba9876543210")) {
		t.Fatal("the salt does not change the hash")
	}
	for pw, ok := range map[string]bool{"short": false, "1234567890123": false, "长城长城长城长城长城": true, "password-12": true, strings.Repeat("a", 129): false} {
		if err := ValidatePassword(pw); (err == nil) != ok {
			t.Errorf("ValidatePassword(%q) = %v", pw, err)
		}
	}
}

func TestAccountRules(t *testing.T) {
	good := Account{User: "zhang.li", Name: "张丽", Site: "cd", Roles: []Role{RoleClerk, RoleOfficer}}
	if p := good.Validate(); len(p) != 0 {
		t.Fatalf("%v", p)
	}
	for _, c := range []struct {
		change func(*Account)
		field  string
	}{
		{func(a *Account) { a.User = "Zhang" }, "user"},
		{func(a *Account) { a.User = "z" }, "user"},
		{func(a *Account) { a.Name = " " }, "name"},
		{func(a *Account) { a.Site = "" }, "site"},
		{func(a *Account) { a.Roles = nil }, "roles"},
		{func(a *Account) { a.Roles = []Role{"boss"} }, "roles[0]"},
		{func(a *Account) { a.Roles = []Role{RoleAdmin, RoleAdmin} }, "roles[1]"},
	} {
		a := good
		c.change(&a)
		if p := a.Validate(); len(p) != 1 || p[0].Field != c.field {
			t.Errorf("%+v: %v, want one problem naming %s", a, p, c.field)
		}
	}
	if (Account{PasswordHash: "x"}).Public().PasswordHash != "" {
		t.Fatal("Public shows the hash")
	}
}

// TestTokens: a token verifies with its site's key, within its life, in its grid; a forged,
// altered, expired, foreign or unknown-issuer token does not.
func TestTokens(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	otherPub, otherPriv, _ := ed25519.GenerateKey(nil)
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	c := &Claims{ID: "t1", Grid: "cd", User: "admin", Name: "管理员", Site: "cd", Roles: []Role{RoleAdmin}, Issuer: "cd", IssuedAt: now, ExpiresAt: now.Add(TokenLife)}
	tok, err := Sign(c, priv)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]ed25519.PublicKey{"cd": pub, "cd-dgdj": otherPub}
	keyOf := func(s string) (ed25519.PublicKey, bool) { k, ok := keys[s]; return k, ok }
	got, err := Verify(tok, "cd", now.Add(time.Hour), keyOf)
	if err != nil || got.User != "admin" || !got.Has(RoleAdmin) || got.Has(RoleClerk) {
		t.Fatalf("verify: %+v %v", got, err)
	}
	forged, _ := Sign(c, otherPriv) // signed by another site's key, claiming cd
	altered := strings.Replace(tok, tok[3:10], "AAAAAAA", 1)
	c2 := *c
	c2.Issuer = "cd-x"
	unknown, _ := Sign(&c2, priv)
	c3 := *c
	c3.Grid = "xd"
	foreign, _ := Sign(&c3, priv)
	for name, tc := range map[string]struct {
		tok  string
		at   time.Time
		want error
	}{
		"forged":  {forged, now, ErrBadSignature},
		"altered": {altered, now, nil},
		"expired": {tok, now.Add(TokenLife), ErrExpired},
		"unknown": {unknown, now, ErrUnknownIssuer},
		"foreign": {foreign, now, ErrOtherGrid},
		"garbage": {"v1.x.y", now, ErrMalformedToken},
		"empty":   {"", now, ErrMalformedToken},
	} {
		_, err := Verify(tc.tok, "cd", tc.at, keyOf)
		if err == nil || tc.want != nil && !strings.Contains(err.Error(), tc.want.Error()) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}
