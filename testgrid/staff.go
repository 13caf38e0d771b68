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
// signed in at that node. Tests of who may do what (the role matrix) make their own accounts.

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
	tok, err := staffToken(n)
	if err != nil {
		t.Fatalf("signing in the harness's staff at %s: %v", n.Name(), err)
	}
	staffTokens.Store(n, tok)
	return tok
}

var staffAccount = struct {
	sync.Mutex
	hash string
}{}

func staffToken(n *node.Node) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := "accounts/" + StaffUser(n.Site())
	written := hasDoc(n, path)
	for !hasDoc(n, path) { // until applied at n, which then signs the account in
		if !written {
			written = writeStaffAccount(ctx, n) == nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the account %s is not applied at %s: %v", path, n.Name(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	a, err := n.Login(ctx, StaffUser(n.Site()), StaffPassword, "")
	if err != nil {
		return "", err
	}
	return a.Token, nil
}

// writeStaffAccount writes the harness's account as n's site's document, unless n has it.
func writeStaffAccount(ctx context.Context, n *node.Node) error {
	user := StaffUser(n.Site())
	staffAccount.Lock()
	if staffAccount.hash == "" {
		staffAccount.hash = auth.HashPassword(StaffPassword, make([]byte, auth.SaltLen))
	}
	hash := staffAccount.hash
	staffAccount.Unlock()
	a := auth.Account{User: user, Name: "测试员", Site: n.Site(), Roles: auth.Roles, PasswordHash: hash}
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = n.State().PutConfig(ctx, "accounts/"+user, v, false)
	return err
}

// AsStaff sets the harness's bearer token at n on req.
func AsStaff(t T, n *node.Node, req *http.Request) *http.Request {
	t.Helper()
	req.Header.Set("Authorization", "Bearer "+StaffToken(t, n))
	return req
}

// hasDoc says whether n has applied its site's document at path.
func hasDoc(n *node.Node, path string) bool {
	docs, err := n.State().Config()
	if err != nil {
		return false
	}
	for _, d := range docs {
		if d.Path == path && d.Owner == n.Site() {
			return true
		}
	}
	return false
}
