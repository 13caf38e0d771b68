package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/testgrid"
)

// Every case call needs a signed-in member of staff. The compose grid starts with no account:
// its first, an administrator, is made once, from a district node's own host (POST
// /v1/auth/bootstrap, what `govgrid auth bootstrap` sends, is taken only over loopback); the
// administrator makes the test's account, with every role, at the district, whose token every
// site beneath takes once the district's key and the account reached it.
//
// The node's own host is its container's network namespace, and nothing listens on its loopback
// there: every address is the container's IP on the grid network (docker-compose.yml), so
// `govgrid auth bootstrap --addr 127.0.0.1:8080`, run in the container (docker exec) or in its
// namespace, finds no one. So the test enters the namespace (nsenter, as root, like the uplink
// faults) and runs itself there (bootstrapEnv): it connects to the node's address from
// 127.0.0.1, a connection on that host's loopback interface, which is what the node checks.

// bootstrapEnv, in this test binary's environment, makes it POST /v1/auth/bootstrap to the
// address it names (host:port) from 127.0.0.1, print the answer's body and exit.
const bootstrapEnv = "GOVGRID_DEPLOY_BOOTSTRAP"

// composeUser is the test's account.
const composeUser = "deploy.test"

// maybeRunBootstrap is the bootstrap mode of the test binary (bootstrapEnv).
func maybeRunBootstrap() {
	addr := os.Getenv(bootstrapEnv)
	if addr == "" {
		return
	}
	status, body, err := bootstrapFromLoopback(addr)
	if err != nil || status != http.StatusCreated {
		fmt.Fprintf(os.Stderr, "bootstrap: POST http://%s/v1/auth/bootstrap from 127.0.0.1: %d %v %s\n", addr, status, err, body)
		os.Exit(1)
	}
	os.Stdout.Write(body)
	os.Exit(0)
}

// bootstrapFromLoopback POSTs /v1/auth/bootstrap to addr over a connection from 127.0.0.1.
func bootstrapFromLoopback(addr string) (int, []byte, error) {
	dialer := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext}}
	resp, err := client.Post("http://"+addr+"/v1/auth/bootstrap", "application/json", nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// signIn bootstraps the grid's administrator from cd-1's own host, makes the test's account at
// the district with every role, signs it in at cd-1 and waits until each of services takes its
// token (the configuration feed carries the district's key and the account down the tree). The
// token is then g.token. It needs root (skipWithoutHostTools).
func (g *composeGrid) signIn(t *testing.T, services ...string) {
	t.Helper()
	ns := g.enterNetns(t, "cd-1")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nsenterPath, "-t", strconv.Itoa(ns.pid), "-n", self, "-test.run=^$")
	cmd.Env = append(os.Environ(), bootstrapEnv+"="+net.JoinHostPort(ns.addr.String(), "8080"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var admin api.BootstrapAnswer
	if err != nil || json.Unmarshal(out, &admin) != nil || admin.User == "" || admin.Password == "" {
		t.Fatalf("bootstrap in cd-1's namespace: %v %s %s", err, out, stderr.Bytes())
	}
	t.Logf("bootstrapped the administrator %s from cd-1's own host (%s, from 127.0.0.1)", admin.User, ns.addr)

	district := g.url("cd-1")
	adminToken := login(t, district, admin.User, admin.Password)
	password := "deploy-" + randomHex(t, 12)
	req := api.AccountRequest{User: composeUser, Password: password, Name: "部署测试员", Site: "cd", Roles: auth.Roles}
	if status, body, err := postJSONAs(district+"/v1/accounts", adminToken, req); err != nil || status != http.StatusCreated {
		t.Fatalf("POST /v1/accounts at cd-1: %d %v %s", status, err, body)
	}
	// Signed in where the account was made (that node waits until it applied it): a sign-in
	// where it has not arrived yet would count as a failed one, and five lock it.
	token := login(t, district, composeUser, password)
	for _, service := range services {
		took, err := testgrid.Poll(30*time.Second, func() error {
			status, body := httpGetAs(g.url(service)+"/v1/auth/whoami", token)
			if status != http.StatusOK {
				return fmt.Errorf("GET /v1/auth/whoami at %s: %d %s", service, status, body)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("the district's token is not taken at %s: %v", service, err)
		}
		t.Logf("%s takes the token of %s (site cd, every role) %s after it was signed in", service, composeUser, took.Round(time.Millisecond))
	}
	g.mu.Lock()
	g.token = token
	g.mu.Unlock()
}

// login signs user in at base and returns the token.
func login(t *testing.T, base, user, password string) string {
	t.Helper()
	var a api.LoginAnswer
	status, body, err := postJSONAs(base+"/v1/auth/login", "", map[string]string{"user": user, "password": password})
	if err != nil || status != http.StatusOK || json.Unmarshal(body, &a) != nil || a.Token == "" {
		t.Fatalf("POST /v1/auth/login as %s at %s: %d %v %s", user, base, status, err, body)
	}
	return a.Token
}

// postJSONAs posts body as JSON to url once, with token as the bearer unless "".
func postJSONAs(url, token string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := faultHTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// checkNeedsToken checks that service takes no case call without a token: 401, and nothing
// made.
func (g *composeGrid) checkNeedsToken(t *testing.T, service string) {
	t.Helper()
	sub := testgrid.Submission(0)
	sub.RequestID = "composetest-no-token"
	status, body, err := postJSONAs(g.url(service)+"/v1/cases", "", sub)
	if err != nil || status != http.StatusUnauthorized || !strings.Contains(string(body), "sign in") {
		t.Errorf("POST /v1/cases at %s without a token: %d %v %s; want 401 (sign in first)", service, status, err, body)
	}
}
