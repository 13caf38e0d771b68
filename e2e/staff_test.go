package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/testgrid"
)

// Every case call needs a signed-in member of staff (Authorization: Bearer <token>, 401
// without), whose roles and site decide what they may do (403 otherwise); the configuration,
// backups, leave, retire and reinstate need an administrator's token once the node has an
// account. The tests of other things act as one account that may do everything everywhere: every
// role, at the district. signInStaff makes it and signs it in; waitToken waits until a node takes
// its token (the district's key and the account travel down the tree as configuration).

const (
	staffUser     = "e2e.staff"
	staffName     = "端到端"
	staffPassword = "e2e-Staff-Passw0rd"
	// staffActor is how a case's events name the staff account (auth.Claims.Actor): the actor
	// of a submission or a move is the signed-in account, whatever the request says.
	staffActor = staffName + " (" + staffUser + ")"
)

// staffEnv is the extra environment that makes a govgrid client command carry token.
func staffEnv(token string) []string { return []string{"GOVGRID_TOKEN=" + token} }

// signInStaff creates the grid's accounts at district, a node of the district site, and returns
// a token of the staff account signed there:
//
//   - POST /v1/auth/bootstrap makes the grid's first administrator (the node takes it only from
//     its own host, and once: the agents listen on 127.0.0.1, where the test runs);
//   - the administrator, signed in, creates the staff account at the district with every role
//     (POST /v1/accounts);
//   - the staff account signs in at the same node (POST /v1/auth/login).
//
// The token is good at the district's nodes as soon as they have applied the account, and at the
// sites beneath once the district's key and the account have reached them: call waitToken before
// using it at another node.
func signInStaff(t *testing.T, district *agentProc) string {
	t.Helper()
	var boot api.BootstrapAnswer
	// The site may still be settling its leader: a request that got no answer, or a 5xx, is
	// tried again. A 409 says the grid has accounts already (a bootstrap whose answer was lost
	// committed): the test cannot know the password then, and fails.
	var last error
	if _, err := testgrid.Poll(20*time.Second, func() error {
		status, err := postJSON(district.baseURL()+"/v1/auth/bootstrap", "", nil, &boot)
		switch {
		case err == nil && status == http.StatusCreated && boot.User != "" && boot.Password != "":
			return nil
		case err != nil && status != 0 && status < 500:
			t.Fatalf("%s: POST /v1/auth/bootstrap from loopback: %v", district.name, err)
		}
		last = fmt.Errorf("status %d: %v", status, err)
		return last
	}); err != nil {
		t.Fatalf("%s: no first administrator after 20s: %v", district.name, last)
	}
	admin := login(t, district, boot.User, boot.Password)
	req := api.AccountRequest{User: staffUser, Password: staffPassword, Name: staffName, Site: admin.Site, Roles: auth.Roles}
	if status, err := postJSON(district.baseURL()+"/v1/accounts", admin.Token, req, nil); err != nil || status != http.StatusCreated {
		t.Fatalf("%s: POST /v1/accounts %s as %s: %d %v", district.name, staffUser, boot.User, status, err)
	}
	staff := login(t, district, staffUser, staffPassword)
	district.logf("signed in %s (roles %v) at %s", staffUser, staff.Roles, staff.Site)
	return staff.Token
}

// login signs user in at a and returns the answer; it fails the test unless a answers 200 with a
// token. (A wrong sign-in counts toward the account's lock-out: sign in only where the account is
// known to be.)
func login(t *testing.T, a *agentProc, user, password string) api.LoginAnswer {
	t.Helper()
	var ans api.LoginAnswer
	status, err := postJSON(a.baseURL()+"/v1/auth/login", "", map[string]string{"user": user, "password": password}, &ans)
	if err != nil || status != http.StatusOK || ans.Token == "" {
		t.Fatalf("%s: signing %s in: %d %v", a.name, user, status, err)
	}
	return ans
}

// waitToken polls GET /v1/auth/whoami with token at each agent until it answers 200, failing the
// test if one does not within timeout (all agents share it). It returns how long it waited.
func waitToken(t *testing.T, token string, timeout time.Duration, agents ...*agentProc) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for _, a := range agents {
		var last string
		_, err := testgrid.Poll(max(time.Until(deadline), time.Millisecond), func() error {
			status, body, err := httpGetAs(a.baseURL()+"/v1/auth/whoami", token)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("%d %s", status, bytes.TrimSpace(body))
			}
			if err != nil {
				last = err.Error()
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s does not take the staff token after %s: GET /v1/auth/whoami: %s", a.name, timeout, last)
		}
	}
	return time.Since(start)
}

// postJSON POSTs body (nil: none) as JSON to url with token as its bearer ("" sends none) and
// decodes a 2xx answer into out (nil: ignored). It returns the status (0 when no answer came) and
// an error carrying the body of any other answer.
func postJSON(url, token string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(http.MethodPost, url, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	setBearer(req, token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("POST %s: %v in %s", url, err, b)
		}
	}
	return resp.StatusCode, nil
}
