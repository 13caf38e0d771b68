package systems

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/auth"
)

// Every case call to govgrid needs a signed-in member of staff (Authorization: Bearer <token>
// on HTTP, metadata authorization on gRPC). A new site has no account: its first, an
// administrator, is made from the node's own host, once, at a district (POST
// /v1/auth/bootstrap, what `govgrid auth bootstrap` calls; the benchmark runs on that host).
// An administrator reads no cases, so it makes the benchmark's own account, with every role,
// and the benchmark signs that in. Each request then costs the node a token verification (an
// ed25519 signature): that is the product's cost, and it stays in the measurement.

// benchUser is the benchmark's account.
const benchUser = "bench"

// staffSignIn makes the benchmark's account at site and returns a token of it that every node
// at httpAddrs (all of the site) verifies.
func staffSignIn(ctx context.Context, timeout time.Duration, procs []*process, site string, httpAddrs []string) (string, error) {
	hc := &http.Client{}
	first := "http://" + httpAddrs[0]

	// The first administrator. An answer lost after the account was made cannot be asked for
	// again (409: bootstrap is done once), so only a refusal that made nothing is retried.
	var admin api.BootstrapAnswer
	err := waitUntil(ctx, timeout, "govgrid's first account (POST /v1/auth/bootstrap)", procs, func(ctx context.Context) error {
		status, err := postJSON(ctx, hc, first+"/v1/auth/bootstrap", "", nil, &admin)
		if status == http.StatusConflict {
			return permanent{fmt.Errorf("%w (the site has an account already: a fresh data directory has none, unless an attempt before made it and its answer was lost)", err)}
		}
		return err
	})
	if err != nil {
		return "", err
	}
	adminToken, err := login(ctx, hc, first, admin.User, admin.Password)
	if err != nil {
		return "", err
	}
	password, err := randomPassword()
	if err != nil {
		return "", err
	}
	req := api.AccountRequest{User: benchUser, Password: password, Name: "基准测试员", Site: site, Roles: auth.Roles}
	if _, err := postJSON(ctx, hc, first+"/v1/accounts", adminToken, req, nil); err != nil {
		return "", fmt.Errorf("govgrid: create the benchmark's account: %w", err)
	}
	// Signed in where the account was made (the node that wrote it waits until it applied it):
	// a sign-in where it has not arrived yet would count as a failed one.
	token, err := login(ctx, hc, first, benchUser, password)
	if err != nil {
		return "", err
	}
	// The other nodes of the site take the token once they applied the account.
	for _, addr := range httpAddrs {
		err := waitUntil(ctx, timeout, "the benchmark's token at "+addr+" (GET /v1/auth/whoami)", procs, func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/auth/whoami", nil)
			if err != nil {
				return err
			}
			_, err = do(hc, req, token, nil)
			return err
		})
		if err != nil {
			return "", err
		}
	}
	return token, nil
}

// login signs user in at base (http://host:port) and returns the token.
func login(ctx context.Context, hc *http.Client, base, user, password string) (string, error) {
	var a api.LoginAnswer
	if _, err := postJSON(ctx, hc, base+"/v1/auth/login", "", map[string]string{"user": user, "password": password}, &a); err != nil {
		return "", fmt.Errorf("govgrid: sign in as %s: %w", user, err)
	}
	if a.Token == "" {
		return "", fmt.Errorf("govgrid: sign in as %s: no token in the answer", user)
	}
	return a.Token, nil
}

// postJSON POSTs body (none when nil) as JSON to url, with token as the bearer unless "", and
// decodes a 2xx answer into out (if not nil). It returns the status (0 without an answer).
func postJSON(ctx context.Context, hc *http.Client, url, token string, body, out any) (int, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return 0, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	return do(hc, req, token, out)
}

// do sends req, with token as the bearer unless "", and decodes a 2xx answer into out (if not
// nil); any other answer is an error. It returns the status (0 without an answer).
func do(hc *http.Client, req *http.Request, token string, out any) (int, error) {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %.300s", req.Method, req.URL.Path, resp.Status, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
		}
	}
	return resp.StatusCode, nil
}

// randomPassword is a password the node takes (at least 10 characters, not digits only).
func randomPassword() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "bench-" + hex.EncodeToString(b), nil
}

// bearer sends a token with every gRPC call (metadata authorization: Bearer <token>); the
// benchmark's connections have no transport security, like its nodes.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }
