package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/tier"
)

// fakeNode records the requests the CLI sends and answers each path with a canned reply.
type fakeNode struct {
	t       *testing.T
	mu      sync.Mutex
	paths   []string
	bodies  []map[string]any
	auths   []string             // each request's Authorization header
	replies map[string]fakeReply // by "METHOD /path"
}

type fakeReply struct {
	status int
	body   string
}

func newFakeNode(t *testing.T, replies map[string]fakeReply) (*fakeNode, string) {
	f := &fakeNode{t: t, replies: replies}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return f, strings.TrimPrefix(srv.URL, "http://")
}

func (f *fakeNode) serve(w http.ResponseWriter, r *http.Request) {
	key := r.Method + " " + r.URL.Path
	var body map[string]any
	if r.ContentLength != 0 {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			f.t.Errorf("%s: body is not a JSON object: %v", key, err)
		}
	}
	f.mu.Lock()
	f.paths = append(f.paths, key)
	f.bodies = append(f.bodies, body)
	f.auths = append(f.auths, r.Header.Get("Authorization"))
	f.mu.Unlock()
	rep, ok := f.replies[key]
	if !ok {
		rep = fakeReply{http.StatusNotFound, `{"error":{"code":"not_found","message":"no route ` + key + `"}}`}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_, _ = w.Write([]byte(rep.body))
}

func (f *fakeNode) only(t *testing.T) (string, map[string]any) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.paths) != 1 {
		t.Fatalf("want exactly one request, got %v", f.paths)
	}
	return f.paths[0], f.bodies[0]
}

// runGovgrid runs the root command with args and returns its standard output and error.
func runGovgrid(args ...string) (string, error) {
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

const (
	testNumber  = "cd-dgdj-ngj-20260101-000001"
	transitCase = `{"number":"` + testNumber + `","holder_site":"cd-dgdj-ngj","status":"accepted",` +
		`"transit":{"handoff_id":"h-42","to_site":"cd-dgdj","move":"escalate","since":"2026-01-01T08:00:00Z"}}`
)

func TestCaseEscalateSendsMoveAndPrintsHandoff(t *testing.T) {
	t.Setenv("USER", "wangfang")
	f, addr := newFakeNode(t, map[string]fakeReply{
		"POST /v1/cases/" + testNumber + "/escalate": {http.StatusAccepted, transitCase},
	})
	out, err := runGovgrid("case", "escalate", testNumber, "--reason", "需区级审批", "--addr", addr)
	if err != nil {
		t.Fatalf("escalate: %v (output %q)", err, out)
	}
	_, body := f.only(t)
	// No actor: the node records the signed-in account.
	if len(body) != 1 || body["reason"] != "需区级审批" {
		t.Errorf("body %v, want only the reason (no to_site, no instructions, no actor)", body)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("want one line, got %q", out)
	}
	for _, s := range []string{"已上报", testNumber, "cd-dgdj", "h-42", "escalated"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q: %q", s, out)
		}
	}
	if strings.Index(out, "已上报") > strings.Index(out, "escalated") {
		t.Errorf("Chinese should come first: %q", out)
	}
}

// TestCaseMoveSendsTheToken: the move carries the token (the node records its account as the
// actor); an old script's --actor is accepted and not sent.
func TestCaseMoveSendsTheToken(t *testing.T) {
	t.Setenv("GOVGRID_TOKEN", "v1.claims.sig")
	f, addr := newFakeNode(t, map[string]fakeReply{
		"POST /v1/cases/" + testNumber + "/return": {http.StatusAccepted, transitCase},
	})
	if out, err := runGovgrid("case", "return", testNumber, "--actor", "旧脚本", "--addr", addr); err != nil {
		t.Fatalf("return: %v (output %q)", err, out)
	}
	if _, body := f.only(t); len(body) != 0 {
		t.Errorf("body %v, want nothing (no actor)", body)
	}
	if f.auths[0] != "Bearer v1.claims.sig" {
		t.Errorf("Authorization %q", f.auths[0])
	}
}

func TestCaseHanddownSendsInstructionsAndTarget(t *testing.T) {
	f, addr := newFakeNode(t, map[string]fakeReply{
		"POST /v1/cases/" + testNumber + "/handdown": {http.StatusAccepted, strings.ReplaceAll(transitCase, `"to_site":"cd-dgdj"`, `"to_site":"cd-dgdj-bgj"`)},
	})
	out, err := runGovgrid("case", "handdown", testNumber, "--to", "cd-dgdj-bgj", "--instructions", "请核实住址", "--actor", "李明", "--addr", addr)
	if err != nil {
		t.Fatalf("handdown: %v (output %q)", err, out)
	}
	_, body := f.only(t)
	if body["to_site"] != "cd-dgdj-bgj" || body["instructions"] != "请核实住址" || body["actor"] != nil || body["reason"] != nil {
		t.Errorf("body %v", body)
	}
	if !strings.Contains(out, "已下派") || !strings.Contains(out, "cd-dgdj-bgj") || !strings.Contains(out, "handed down") {
		t.Errorf("output %q", out)
	}

	// --to is required: no request is sent without it.
	f2, addr2 := newFakeNode(t, nil)
	if _, err := runGovgrid("case", "handdown", testNumber, "--addr", addr2); err == nil || !strings.Contains(err.Error(), "to") {
		t.Errorf("handdown without --to: err %v, want a required-flag error", err)
	}
	if len(f2.paths) != 0 {
		t.Errorf("handdown without --to sent %v", f2.paths)
	}
}

func TestCaseMoveJSONPrintsTheAnswer(t *testing.T) {
	_, addr := newFakeNode(t, map[string]fakeReply{
		"POST /v1/cases/" + testNumber + "/relay": {http.StatusAccepted, transitCase},
	})
	out, err := runGovgrid("case", "relay", testNumber, "--json", "--addr", addr)
	if err != nil {
		t.Fatalf("relay --json: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("--json output is not JSON (%v): %q", err, out)
	}
	if tr, _ := got["transit"].(map[string]any); tr["handoff_id"] != "h-42" || got["status"] != "accepted" {
		t.Errorf("--json output %v", got)
	}
	// The node's key order is kept (raw JSON, indented).
	if strings.Index(out, `"number"`) > strings.Index(out, `"holder_site"`) {
		t.Errorf("--json reordered the answer: %q", out)
	}
}

func TestCaseMoveErrorsCarryServerMessageAndCode(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   []string
	}{
		{http.StatusConflict, `{"error":{"code":"conflict","message":"case ` + testNumber + ` was handed on to cd-dgdj: only the holder changes it"}}`,
			[]string{"上报失败", "handed on to cd-dgdj", "409 conflict"}},
		{http.StatusNotFound, `{"error":{"code":"not_found","message":"unknown site nowhere"}}`,
			[]string{"unknown site nowhere", "404 not_found"}},
		{http.StatusBadRequest, `{"error":{"code":"invalid","message":"invalid request: reason: is too long","fields":[{"field":"reason","reason":"is too long"}]}}`,
			[]string{"reason: is too long", "400 invalid"}},
		{http.StatusConflict, `{"error":{"code":"conflict","message":"site retired","fields":[{"field":"to_site","reason":"is retired: 合并"}]}}`,
			[]string{"site retired; to_site: is retired: 合并", "409 conflict"}},
		{http.StatusServiceUnavailable, `not json`, []string{"503 Service Unavailable", "503 error"}},
	} {
		_, addr := newFakeNode(t, map[string]fakeReply{
			"POST /v1/cases/" + testNumber + "/escalate": {tc.status, tc.body},
		})
		out, err := runGovgrid("case", "escalate", testNumber, "--addr", addr)
		if err == nil {
			t.Errorf("%d: no error; output %q", tc.status, out)
			continue
		}
		if out != "" || strings.Contains(err.Error(), "\n") {
			t.Errorf("%d: want one error line and no output, got %q / %q", tc.status, err, out)
		}
		for _, s := range tc.want {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%d: error %q lacks %q", tc.status, err, s)
			}
		}
	}
}

func TestSiteRetireAndReinstate(t *testing.T) {
	f, addr := newFakeNode(t, map[string]fakeReply{
		"POST /v1/site/retire":    {http.StatusOK, `{"retired":true,"reason":"并入八一路街道"}`},
		"POST /v1/site/reinstate": {http.StatusOK, `{"retired":false,"reason":""}`},
	})
	out, err := runGovgrid("site", "retire", "--reason", "并入八一路街道", "--addr", addr)
	if err != nil {
		t.Fatalf("retire: %v", err)
	}
	if !strings.Contains(out, "站点已停用") || !strings.Contains(out, "并入八一路街道") || !strings.Contains(out, "retired") {
		t.Errorf("retire output %q", out)
	}
	out, err = runGovgrid("site", "reinstate", "--addr", addr)
	if err != nil {
		t.Fatalf("reinstate: %v", err)
	}
	if !strings.Contains(out, "站点已恢复") || !strings.Contains(out, "reinstated") {
		t.Errorf("reinstate output %q", out)
	}
	if len(f.paths) != 2 || f.bodies[0]["reason"] != "并入八一路街道" || len(f.bodies[0]) != 1 || f.bodies[1] != nil {
		t.Errorf("requests %v with bodies %v", f.paths, f.bodies)
	}
	out, err = runGovgrid("site", "reinstate", "--json", "--addr", addr)
	if err != nil || !strings.Contains(out, `"retired": false`) {
		t.Errorf("reinstate --json: %v, %q", err, out)
	}

	// --reason is required; the node is not asked.
	if _, err := runGovgrid("site", "retire", "--addr", addr); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Errorf("retire without --reason: %v", err)
	}
	if len(f.paths) != 3 {
		t.Errorf("retire without --reason sent a request: %v", f.paths)
	}
}

func TestSiteRetireFromAnotherHost(t *testing.T) {
	_, addr := newFakeNode(t, map[string]fakeReply{
		"POST /v1/site/retire": {http.StatusForbidden, `{"error":{"code":"forbidden","message":"retire and reinstate are accepted only from the node's own host"}}`},
	})
	_, err := runGovgrid("site", "retire", "--reason", "x", "--addr", addr)
	if err == nil || !strings.Contains(err.Error(), "only from the node's own host") || !strings.Contains(err.Error(), "403") {
		t.Errorf("retire refused: err %v", err)
	}
}

// TestCallErrorFormat pins the error line of the older commands, which call's typed error keeps.
func TestCallErrorFormat(t *testing.T) {
	_, addr := newFakeNode(t, map[string]fakeReply{
		"GET /v1/cases/cd-20000101-999999": {http.StatusNotFound, `{"error":{"code":"not_found","message":"no such case"}}`},
		"GET /v1/cases/cd-20000101-000000": {http.StatusBadGateway, `oops`},
	})
	if _, err := runGovgrid("case", "get", "cd-20000101-999999", "--addr", addr); err == nil ||
		err.Error() != "GET /v1/cases/cd-20000101-999999: no such case (404)" {
		t.Errorf("case get of a missing case: %v", err)
	}
	if _, err := runGovgrid("case", "get", "cd-20000101-000000", "--addr", addr); err == nil ||
		err.Error() != "GET /v1/cases/cd-20000101-000000: 502 Bad Gateway" {
		t.Errorf("case get, bare 502: %v", err)
	}
}

func TestSitesTreeShowsOutboxAndRetired(t *testing.T) {
	_, addr := newFakeNode(t, map[string]fakeReply{
		"GET /v1/sites": {http.StatusOK, `{"sites":[
			{"site":"cd","tier":"district","leader":"cd-1","health":"healthy","nodes":[{"name":"cd-1","status":"alive"}]},
			{"site":"cd-dgdj","tier":"township","parent":"cd","leader":"dgdj-1","health":"healthy","nodes":[{"name":"dgdj-1","status":"alive"}],
			 "outbox":[{"to_site":"cd","depth":3,"oldest_seconds":12.7},{"to_site":"cd-dgdj-ngj","depth":0,"oldest_seconds":0}],
			 "retired":{"retired":true,"reason":"并入\n八一路街道","since":"2026-01-01T08:00:00Z"}},
			{"site":"cd-dgdj-ngj","tier":"community","parent":"cd-dgdj","health":"down","nodes":[{"name":"ngj-1","status":"dead"}]}]}`},
	})
	out, err := runGovgrid("sites", "--addr", addr)
	if err != nil {
		t.Fatal(err)
	}
	want := "cd [district] healthy: cd-1*(alive)\n" +
		"  cd-dgdj [township] healthy: dgdj-1*(alive) | 待发 outbox: cd=3 (oldest 12s) | 已停用 retired: 并入 八一路街道\n" +
		"    cd-dgdj-ngj [community] down: ngj-1(dead)\n"
	if out != want {
		t.Errorf("sites printed\n%s\nwant\n%s", out, want)
	}
}

// TestSitesTreeShowsFeedLag: a child's feed shows its lag while it is known, and "lag ?" (never
// 0) while it is not: absent or null lags, lag_known false.
func TestSitesTreeShowsFeedLag(t *testing.T) {
	_, addr := newFakeNode(t, map[string]fakeReply{
		"GET /v1/sites": {http.StatusOK, `{"sites":[
			{"site":"cd-dgdj","tier":"township","parent":"cd","leader":"dgdj-1","health":"healthy","nodes":[{"name":"dgdj-1","status":"alive"}]},
			{"site":"cd-dgdj-bgj","tier":"community","parent":"cd-dgdj","health":"healthy","nodes":[{"name":"bgj-1","status":"alive"}],
			 "feed":{"cursor":40,"head":43,"lag_known":true,"lag_entries":3,"lag_seconds":2.4,"applied_at":"2026-01-01T08:00:00Z","heard_at":"2026-01-01T08:00:01Z","stream_up":true}},
			{"site":"cd-dgdj-ngj","tier":"community","parent":"cd-dgdj","health":"healthy","nodes":[{"name":"ngj-1","status":"alive"}],
			 "feed":{"cursor":41,"head":41,"lag_known":false,"lag_entries":null,"applied_at":"2026-01-01T08:00:00Z","heard_at":"2026-01-01T08:00:00Z","stream_up":false}},
			{"site":"cd-dgdj-xyl","tier":"community","parent":"cd-dgdj","health":"down","nodes":[{"name":"xyl-1","status":"dead"}],
			 "feed":{"cursor":0,"head":0,"lag_known":false,"applied_at":"0001-01-01T00:00:00Z","heard_at":null,"stream_up":false}}]}`},
	})
	out, err := runGovgrid("sites", "--addr", addr)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 lines, got %q", out)
	}
	if want := "  cd-dgdj-bgj [community] healthy: bgj-1(alive) | 镜像 feed: lag 3 (2s)"; lines[1] != want {
		t.Errorf("known lag: %q, want %q", lines[1], want)
	}
	for _, l := range lines[2:] {
		if !strings.Contains(l, "镜像 feed: lag ? (") || !strings.Contains(l, "stream down") || strings.Contains(l, "lag 0") {
			t.Errorf("unknown lag: %q, want lag ? with the stream down, never lag 0", l)
		}
	}
	if !strings.Contains(lines[3], "never heard") {
		t.Errorf("a child never heard: %q", lines[3])
	}

	// How long ago a silent child was heard is counted from when the answer came.
	now := time.Date(2026, 1, 1, 8, 0, 12, 400e6, time.UTC)
	heard := now.Add(-12 * time.Second)
	var b strings.Builder
	printSiteTree(&b, []api.SiteView{{Site: "cd-dgdj-ngj", Tier: tier.Community, Health: "healthy",
		Feed: &api.FeedView{Cursor: 41, Head: 41, HeardAt: &heard}}}, now)
	if want := "cd-dgdj-ngj [community] healthy:  | 镜像 feed: lag ? (heard 12s ago, stream down)\n"; b.String() != want {
		t.Errorf("silent child: %q, want %q", b.String(), want)
	}
	zero := uint64(0)
	b.Reset()
	printSiteTree(&b, []api.SiteView{{Site: "cd-dgdj-ngj", Tier: tier.Community, Health: "healthy",
		Feed: &api.FeedView{Cursor: 41, Head: 41, HeardAt: &heard, LagKnown: true, LagEntries: &zero, StreamUp: true}}}, now)
	if want := "cd-dgdj-ngj [community] healthy:  | 镜像 feed: lag 0\n"; b.String() != want {
		t.Errorf("caught-up child: %q, want %q", b.String(), want)
	}
}

func TestRenderBar(t *testing.T) {
	for _, tc := range []struct {
		done, total int
		want        string
	}{
		{0, 10, "[----------] 0/10 cases   0%"},
		{5, 10, "[#####-----] 5/10 cases  50%"},
		{10, 10, "[##########] 10/10 cases 100%"},
	} {
		if got := renderBar(tc.done, tc.total, 10); got != tc.want {
			t.Errorf("renderBar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
	if got := renderBar(0, 0, 10); !strings.Contains(got, "0/0") {
		t.Errorf("empty restore: %q", got)
	}
}

func TestCheckFreshDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := checkFreshDataDir(dir); err != nil {
		t.Fatalf("empty dir: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wal", "wal-meta.db"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := checkFreshDataDir(dir); err == nil || !strings.Contains(err.Error(), "govgrid agent") {
		t.Fatalf("dir with a site's data: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "restoring"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := checkFreshDataDir(dir); err != nil {
		t.Fatalf("interrupted restore: %v", err)
	}
}

// TestOperatorKeyAdministersWithoutSigningIn: --operator-key sends the node's operator key, read
// from its file, in place of a token.
func TestOperatorKeyAdministersWithoutSigningIn(t *testing.T) {
	t.Setenv("GOVGRID_TOKEN", "v1.claims.sig")
	key := filepath.Join(t.TempDir(), "operator.key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, addr := newFakeNode(t, map[string]fakeReply{
		"POST /v1/site/retire": {http.StatusOK, `{"retired":true,"reason":"撤并"}`},
	})
	if out, err := runGovgrid("site", "retire", "--reason", "撤并", "--operator-key", key, "--addr", addr); err != nil {
		t.Fatalf("retire: %v (output %q)", err, out)
	}
	if f.auths[0] != "Operator 0123456789abcdef0123456789abcdef" {
		t.Errorf("Authorization %q", f.auths[0])
	}
	if _, err := runGovgrid("site", "reinstate", "--operator-key", filepath.Join(t.TempDir(), "none"), "--addr", addr); err == nil || !strings.Contains(err.Error(), "--operator-key") {
		t.Errorf("a missing key file: %v", err)
	}
}
