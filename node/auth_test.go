package node_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
)

// authCall sends a JSON request with an optional bearer token and decodes a JSON answer into out.
func authCall(t *testing.T, n *node.Node, method, path, token string, body, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+n.Addrs().HTTP+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

type loginAnswer struct {
	Token string   `json:"token"`
	Site  string   `json:"site"`
	Roles []string `json:"roles"`
}

func login(t *testing.T, n *node.Node, user, password string) (string, int) {
	t.Helper()
	var a loginAnswer
	code, _ := authCall(t, n, "POST", "/v1/auth/login", "", map[string]string{"user": user, "password": password}, &a)
	return a.Token, code
}

// TestAccountsSignInAndTokens: the first administrator is created once at the district; it adds
// accounts; they reach every site beneath, where their staff sign in, also with the uplink cut;
// a token is good where it was signed and beneath, not at the site above, nor after signing out
// or a password change; wrong passwords read alike and lock the account for a while; the
// catalogue takes an administrator's token and refuses anyone else's.
func TestAccountsSignInAndTokens(t *testing.T) {
	g := testgrid.New(t, fourSites)
	district, township := g.WaitLeader("cd"), g.WaitLeader("cd-dgdj")
	ngj, bgj := g.WaitLeader("cd-dgdj-ngj"), g.WaitLeader("cd-dgdj-bgj")
	waitRegistered(t, g, district, map[string]string{"cd-dgdj": "cd", "cd-dgdj-ngj": "cd-dgdj", "cd-dgdj-bgj": "cd-dgdj"}, 20*time.Second)

	if code, body := authCall(t, township, "POST", "/v1/auth/bootstrap", "", nil, nil); code != http.StatusForbidden {
		t.Fatalf("bootstrap at a township: %d %s", code, body)
	}
	var first struct{ User, Password string }
	if code, body := authCall(t, district, "POST", "/v1/auth/bootstrap", "", nil, &first); code != http.StatusCreated || first.User != "admin" || len(first.Password) < 10 {
		t.Fatalf("bootstrap: %d %s", code, body)
	}
	if code, _ := authCall(t, district, "POST", "/v1/auth/bootstrap", "", nil, nil); code != http.StatusConflict {
		t.Fatalf("a second bootstrap: %d, want 409", code)
	}
	admin, status := login(t, district, "admin", first.Password)
	if status != http.StatusOK || admin == "" {
		t.Fatalf("admin sign-in: %d", status)
	}
	for _, a := range []map[string]any{
		{"user": "wang.clerk", "password": "ngj-clerk-2026", "name": "王芳", "site": "cd-dgdj-ngj", "roles": []string{"clerk"}},
		{"user": "li.admin", "password": "dgdj-admin-2026", "name": "李强", "site": "cd-dgdj", "roles": []string{"admin", "officer"}},
	} {
		if code, body := authCall(t, district, "POST", "/v1/accounts", admin, a, nil); code != http.StatusCreated || strings.Contains(body, "argon2") {
			t.Fatalf("create %v: %d %s", a["user"], code, body)
		}
	}
	for _, bad := range []struct {
		token string
		body  map[string]any
		want  int
	}{
		{"", map[string]any{"user": "x1"}, http.StatusUnauthorized},
		{"v1.forged.token", map[string]any{"user": "x1"}, http.StatusUnauthorized},
		{admin, map[string]any{"user": "wang.clerk", "password": "another-pass-1", "name": "王", "site": "cd", "roles": []string{"clerk"}}, http.StatusConflict},
		{admin, map[string]any{"user": "X", "password": "short", "name": "", "site": "nowhere", "roles": []string{"boss"}}, http.StatusBadRequest},
	} {
		if code, body := authCall(t, district, "POST", "/v1/accounts", bad.token, bad.body, nil); code != bad.want {
			t.Fatalf("create %v with %q: %d %s, want %d", bad.body, bad.token, code, body, bad.want)
		}
	}

	// Of several who create the same account at once, one does; the others hear it exists.
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = authCall(t, district, "POST", "/v1/accounts", admin, map[string]any{"user": "dup.user", "password": fmt.Sprintf("dup-password-%d", i),
				"name": "重复", "site": "cd", "roles": []string{"clerk"}}, nil)
		}()
	}
	wg.Wait()
	created := 0
	for _, c := range codes {
		switch c {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
		default:
			t.Fatalf("concurrent creates answered %v", codes)
		}
	}
	if created != 1 {
		t.Fatalf("concurrent creates of one account answered %v: %d created, want 1", codes, created)
	}

	// The configuration endpoints neither show the accounts' hashes nor write accounts or keys.
	if code, body := authCall(t, district, "GET", "/v1/config", testgrid.StaffToken(t, district), nil, nil); code != http.StatusOK || strings.Contains(body, "argon2") || strings.Contains(body, "accounts/") {
		t.Fatalf("GET /v1/config shows the accounts: %d %s", code, body)
	}
	for _, path := range []string{"accounts/evil", "auth/keys/cd"} {
		if code, _ := authCall(t, district, "PUT", "/v1/config/"+path, admin, map[string]string{"user": "evil"}, nil); code != http.StatusForbidden {
			t.Fatalf("PUT /v1/config/%s: %d, want 403", path, code)
		}
	}

	// The accounts reach the community (a sign-in before would count as a failure), which signs
	// its clerk in even cut off from its township.
	g.Eventually(30*time.Second, func() error {
	sites:
		for _, n := range []*node.Node{ngj, bgj} {
			docs, err := n.State().Config()
			if err != nil {
				return err
			}
			for _, d := range docs {
				if d.Path == "accounts/wang.clerk" {
					continue sites
				}
			}
			return fmt.Errorf("the clerk's account has not reached %s", n.Site())
		}
		return nil
	})
	clerk, code := login(t, ngj, "wang.clerk", "ngj-clerk-2026")
	if code != http.StatusOK {
		t.Fatalf("clerk's sign-in at the community: %d", code)
	}
	// A case submitted with the clerk's token records the clerk as its actor, whatever the body says.
	sub := map[string]any{"kind": "grievance", "title": "路灯不亮", "actor": "someone else",
		"applicant": map[string]string{"name": "李梅", "id_number": "630102198506151227", "phone": "13909710001"}, "materials": []any{}}
	var opened struct {
		History []struct {
			Actor string `json:"actor"`
		} `json:"history"`
	}
	if code, body := authCall(t, ngj, "POST", "/v1/cases", clerk, sub, &opened); code != http.StatusCreated || len(opened.History) != 1 || opened.History[0].Actor != "王芳 (wang.clerk)" {
		t.Fatalf("a case submitted with the clerk's token: %d %s", code, body)
	}
	if code, _ := authCall(t, ngj, "POST", "/v1/cases", "v1.bad.token", sub, nil); code != http.StatusUnauthorized {
		t.Fatalf("a case submitted with a bad token: %d, want 401", code)
	}

	g.Isolate(ngj.Name())
	if tok, code := login(t, ngj, "wang.clerk", "ngj-clerk-2026"); code != http.StatusOK || tok == "" {
		t.Fatalf("sign-in at a cut-off community: %d", code)
	}
	var who struct {
		User   string   `json:"sub"`
		Issuer string   `json:"iss"`
		Roles  []string `json:"roles"`
	}
	if code, body := authCall(t, ngj, "GET", "/v1/auth/whoami", clerk, nil, &who); code != http.StatusOK || who.User != "wang.clerk" || who.Issuer != "cd-dgdj-ngj" {
		t.Fatalf("whoami: %d %s", code, body)
	}
	g.Heal()
	// A community's token is good at the community, not at its township; the clerk signs in at
	// the community only (a sibling is not the clerk's site nor above it).
	if code, _ := authCall(t, township, "GET", "/v1/auth/whoami", clerk, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("a community's token at its township: %d, want 401", code)
	}
	if _, code := login(t, bgj, "wang.clerk", "ngj-clerk-2026"); code != http.StatusForbidden {
		t.Fatalf("the clerk signing in at a sibling community: %d, want 403", code)
	}
	// The district's token is good beneath it, once its key has reached the community.
	g.Eventually(30*time.Second, func() error {
		if code, body := authCall(t, ngj, "GET", "/v1/auth/whoami", admin, nil, nil); code != http.StatusOK {
			return fmt.Errorf("the district's token at a community: %d %s", code, body)
		}
		return nil
	})

	// Wrong passwords read as unknown users, and five lock the account at this node.
	_, c1 := authCall(t, ngj, "POST", "/v1/auth/login", "", map[string]string{"user": "wang.clerk", "password": "wrong-password"}, nil)
	_, b2 := authCall(t, ngj, "POST", "/v1/auth/login", "", map[string]string{"user": "nobody", "password": "wrong-password"}, nil)
	if c1 != b2 {
		t.Fatalf("wrong password: %q; unknown user: %q", c1, b2)
	}
	for range 4 {
		login(t, ngj, "wang.clerk", "wrong-password")
	}
	if _, code := login(t, ngj, "wang.clerk", "ngj-clerk-2026"); code != http.StatusTooManyRequests {
		t.Fatalf("after 5 failures: %d, want 429", code)
	}

	// The catalogue: an administrator's token here, not a clerk's, not another site's admin.
	item := `{"code":"MZ-900","name":"测试事项","department":"MZ","type":"public_service","mode":"promised","accept_tiers":["district"],"decide_tier":"district","materials":[],"steps":[{"name":"申请"}],"statutory_limit":{"working_days":5},"promised_limit":{"working_days":3}}`
	dept := `{"departments":[{"code":"MZ","name":"民政局"}],"items":[]}`
	if code, body := catalogRequestAs(t, district, "POST", "/v1/catalog/import", admin, dept); code != http.StatusOK {
		t.Fatalf("import with the admin's token: %d %s", code, body)
	}
	townAdmin, code := login(t, township, "li.admin", "dgdj-admin-2026")
	if code != http.StatusOK {
		t.Fatalf("township admin's sign-in: %d", code)
	}
	for _, c := range []struct {
		tok  string
		want int
	}{{admin, http.StatusOK}, {townAdmin, http.StatusUnauthorized}, {"v1.x.y", http.StatusUnauthorized}} {
		if code, body := catalogRequestAs(t, district, "PUT", "/v1/catalog/items/MZ-900", c.tok, item); code != c.want {
			t.Fatalf("PUT an item at the district with %.12s…: %d %s, want %d", c.tok, code, body, c.want)
		}
	}

	// Signing out revokes the token; a password change revokes every earlier token.
	if code, _ := authCall(t, district, "POST", "/v1/auth/logout", admin, nil, nil); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	if code, _ := authCall(t, district, "GET", "/v1/auth/whoami", admin, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("a signed-out token: %d, want 401", code)
	}
	// The township's administrator's account is kept by the district: the township passes the
	// change on, the district checks the old password (a wrong one is refused there) and the new
	// account comes back down, revoking the earlier token at the township.
	if code, body := authCall(t, township, "POST", "/v1/auth/password", townAdmin, map[string]string{"old_password": "not-the-password", "new_password": "dgdj-admin-2027"}, nil); code != http.StatusForbidden || !strings.Contains(body, "old password") {
		t.Fatalf("password change with a wrong old password, passed on: %d %s", code, body)
	}
	if code, body := authCall(t, township, "POST", "/v1/auth/password", townAdmin, map[string]string{"old_password": "dgdj-admin-2026", "new_password": "dgdj-admin-2027"}, nil); code != http.StatusNoContent {
		t.Fatalf("password change away from the account's owner: %d %s", code, body)
	}
	g.Eventually(30*time.Second, func() error {
		if code, _ := authCall(t, township, "GET", "/v1/auth/whoami", townAdmin, nil, nil); code != http.StatusUnauthorized {
			return fmt.Errorf("the township admin's earlier token still answers %d at the township", code)
		}
		return nil
	})
	if _, code := login(t, township, "li.admin", "dgdj-admin-2027"); code != http.StatusOK {
		t.Fatalf("sign-in with the new password at the township: %d", code)
	}
	admin2, _ := login(t, district, "admin", first.Password)
	if code, body := authCall(t, district, "POST", "/v1/auth/password", admin2, map[string]string{"old_password": first.Password, "new_password": "a-new-admin-password"}, nil); code != http.StatusNoContent {
		t.Fatalf("password change: %d %s", code, body)
	}
	if code, _ := authCall(t, district, "GET", "/v1/auth/whoami", admin2, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("a token from before the password change: %d, want 401", code)
	}
	admin3, code := login(t, district, "admin", "a-new-admin-password")
	if code != http.StatusOK {
		t.Fatalf("sign-in with the new password: %d", code)
	}

	// The audit trail: the district's has its administrative changes and sign-ins, the community's
	// the clerk's sign-ins and the failed ones; both chains intact; for administrators and
	// supervisors only.
	type trail struct {
		Entries []struct {
			Seq  uint64 `json:"seq"`
			Kind string `json:"kind"`
			User string `json:"user"`
		} `json:"entries"`
		ChainOK bool `json:"chain_ok"`
	}
	for _, c := range []struct {
		n     *node.Node
		kinds []string
	}{
		{district, []string{"bootstrap", "sign_in", "account_created", "catalog_changed", "sign_out", "password_changed"}},
		{ngj, []string{"sign_in", "sign_in_failed"}},
	} {
		g.Eventually(10*time.Second, func() error {
			var tr trail
			if code, body := authCall(t, c.n, "GET", "/v1/audit?limit=1000", admin3, nil, &tr); code != http.StatusOK {
				return fmt.Errorf("GET /v1/audit at %s: %d %s", c.n.Site(), code, body)
			}
			seen := map[string]bool{}
			for i, e := range tr.Entries {
				if e.Seq != uint64(i+1) {
					return fmt.Errorf("entry %d has sequence %d", i, e.Seq)
				}
				seen[e.Kind] = true
			}
			for _, k := range c.kinds {
				if !seen[k] {
					return fmt.Errorf("%s's audit trail has no %s yet (%d entries)", c.n.Site(), k, len(tr.Entries))
				}
			}
			if !tr.ChainOK {
				return fmt.Errorf("%s's audit chain is broken", c.n.Site())
			}
			return nil
		})
	}
	if code, _ := authCall(t, ngj, "GET", "/v1/audit", "", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("the audit trail without a token: %d, want 401", code)
	}
	if code, _ := authCall(t, ngj, "GET", "/v1/audit", clerk, nil, nil); code != http.StatusForbidden {
		t.Fatalf("the audit trail with a clerk's token: %d, want 403", code)
	}
	if code, _ := authCall(t, district, "GET", "/v1/audit", townAdmin, nil, nil); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Fatalf("the audit trail with a township's token at the district: %d", code)
	}
}

func catalogRequestAs(t *testing.T, n *node.Node, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.Addrs().HTTP+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
