package testgrid

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/node"
)

// Every call to a node's API needs a signed-in person. Tests of other things sign in as the
// harness's own member of staff at the node's site: an account with every role, written as the
// site's own configuration document (so it is in force there at once, uplink or not), and
// signed in at that node. Tests of who may do what (the role matrix) make their own accounts
// with SignIn.

// StaffPassword is the password of the harness's accounts.
const StaffPassword = "testgrid-Passw0rd"

// StaffUser is the harness's account at site.
func StaffUser(site string) string { return "tg." + site }

var staffTokens sync.Map // *node.Node -> string

// StaffToken returns a bearer token of the harness's account at n's site, signed in at n (once
// per node; the account is written the first time a node of the site asks).
func StaffToken(t T, n *node.Node) string {
	t.Helper()
	if tok, ok := staffTokens.Load(n); ok {
		return tok.(string)
	}
	tok, err := signIn(n, n.Site(), n, StaffUser(n.Site()), auth.Roles)
	if err != nil {
		t.Fatalf("signing in the harness's staff at %s: %v", n.Name(), err)
	}
	staffTokens.Store(n, tok)
	return tok
}

// AsStaff sets the harness's bearer token at n on req.
func AsStaff(t T, n *node.Node, req *http.Request) *http.Request {
	t.Helper()
	req.Header.Set("Authorization", "Bearer "+StaffToken(t, n))
	return req
}

// SignIn makes an account, user with roles, of site, written as a document of keeper's site (the
// district or township that keeps the account: site itself, or one above it), and signs it in at
// node at once the account is in force there (through the configuration feed when at is beneath
// keeper). Its password is StaffPassword. It returns the token.
func SignIn(t T, keeper *node.Node, site string, at *node.Node, user string, roles ...auth.Role) string {
	t.Helper()
	tok, err := signIn(keeper, site, at, user, roles)
	if err != nil {
		t.Fatalf("signing in %s at %s: %v", user, at.Name(), err)
	}
	return tok
}

// staffHash is the hash of StaffPassword, computed once (argon2id is slow on purpose).
var staffHash = sync.OnceValue(func() string { return auth.HashPassword(StaffPassword, make([]byte, auth.SaltLen)) })

func signIn(keeper *node.Node, site string, at *node.Node, user string, roles []auth.Role) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := auth.ValidateUser(user); err != nil {
		return "", fmt.Errorf("user %s: %v", user, err)
	}
	path := "accounts/" + user
	if !hasDoc(keeper, keeper.Site(), path) {
		v, err := json.Marshal(auth.Account{User: user, Name: "测试员", Site: site, Roles: roles, PasswordHash: staffHash()})
		if err != nil {
			return "", err
		}
		if _, err := keeper.State().PutConfig(ctx, path, v, false); err != nil {
			return "", err
		}
	}
	for !hasDoc(at, keeper.Site(), path) { // until in force at at, which then signs the account in
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the account %s is not in force at %s: %v", path, at.Name(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	a, err := at.Login(ctx, user, StaffPassword, "")
	if err != nil {
		return "", err
	}
	return a.Token, nil
}

// hasDoc says whether n has the document of owner at path in force.
func hasDoc(n *node.Node, owner, path string) bool {
	docs, err := n.State().Config()
	if err != nil {
		return false
	}
	for _, d := range docs {
		if d.Path == path && d.Owner == owner {
			return true
		}
	}
	return false
}
