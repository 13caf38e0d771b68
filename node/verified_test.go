package node

import (
	"testing"
	"time"

	"github.com/govgrid/govgrid/auth"
)

// TestVerifiedTokensExpireAndAreCopies: a remembered token is forgotten once it expires, and what
// it answers is a copy (Authenticate overwrites the roles with the account's current ones).
func TestVerifiedTokensExpireAndAreCopies(t *testing.T) {
	var v verifiedTokens
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	v.put("tok", &auth.Claims{User: "wang.fang", Roles: []auth.Role{auth.RoleClerk}, ExpiresAt: now.Add(time.Hour)})
	c, ok := v.get("tok", now)
	if !ok || c.User != "wang.fang" {
		t.Fatalf("a remembered token: %v %+v", ok, c)
	}
	c.Roles[0] = auth.RoleAdmin
	if again, _ := v.get("tok", now); again.Roles[0] != auth.RoleClerk {
		t.Fatal("a caller changed the remembered claims")
	}
	if _, ok := v.get("tok", now.Add(time.Hour)); ok {
		t.Fatal("an expired token is still remembered")
	}
	if _, ok := v.get("other", now); ok {
		t.Fatal("a token never verified is remembered")
	}
	for i := range maxVerifiedTokens + 1 {
		v.put(string(rune(i)), &auth.Claims{ExpiresAt: now.Add(time.Hour)})
	}
	if len(v.m) > maxVerifiedTokens {
		t.Fatalf("%d tokens remembered", len(v.m))
	}
}
