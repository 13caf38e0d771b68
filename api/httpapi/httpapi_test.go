package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/api/apitest"
	"github.com/govgrid/govgrid/api/httpapi"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
)

const validBody = `{"kind":"application","item_code":"QT-0010","title":"居住证办理",
"applicant":{"name":"张三","id_number":"63010219900101123X","phone":"13800138000"},
"materials":[{"name":"身份证复印件","pages":2}]}`

type env struct {
	cases *apitest.Cases
	node  *fakeNode
	h     http.Handler
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{cases: apitest.NewCases(), node: &fakeNode{ready: true}}
	e.h = httpapi.New(httpapi.Config{Cases: e.cases, Node: e.node})
	return e
}

func (e *env) do(method, target string, body io.Reader, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// errorBody is an error answer, with the helpers the tests use.
type errorBody api.ErrorBody

// decodeError checks that rec is a JSON error answer with the given status and returns it.
func decodeError(t *testing.T, rec *httptest.ResponseRecorder, status int) errorBody {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	var b errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("error body %q is not JSON: %v", rec.Body, err)
	}
	if b.Error.Code == "" || b.Error.Message == "" {
		t.Errorf("error body without code or message: %s", rec.Body)
	}
	return b
}

func (b errorBody) fields() []string {
	var out []string
	for _, f := range b.Error.Fields {
		out = append(out, f.Field)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func decodeMap(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", rec.Body, err)
	}
	return m
}

func TestSubmitCaseCreated(t *testing.T) {
	e := newEnv(t)
	rec := e.do("POST", "/v1/cases", strings.NewReader(validBody))
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d, want 201; body %s", rec.Code, rec.Body)
	}
	if got, want := rec.Header().Get("Location"), "/v1/cases/"+apitest.Number; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	m := decodeMap(t, rec)
	for k, want := range map[string]any{
		"number": apitest.Number, "status": "submitted", "holder_site": apitest.Site, "origin_site": apitest.Site,
		"query_code": apitest.QueryCode, "kind": "application", "item_code": "QT-0010", "version": 1.0,
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	for _, k := range []string{"query_code_hash", "request_id"} {
		if _, ok := m[k]; ok {
			t.Errorf("the answer shows %s: %s", k, rec.Body)
		}
	}
	if h, _ := m["history"].([]any); len(h) != 1 {
		t.Errorf("history = %v, want one event", m["history"])
	}
	// The answer decodes into a case whose history verifies.
	var c casework.Case
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyHistory(); err != nil {
		t.Errorf("VerifyHistory on the answer: %v", err)
	}
	subs := e.cases.Calls().Submits
	if len(subs) != 1 {
		t.Fatalf("SubmitCase called %d times, want 1", len(subs))
	}
	sub := subs[0]
	if sub.Kind != casework.KindApplication || sub.Title != "居住证办理" || sub.Applicant == nil ||
		sub.Applicant.IDNumber != "63010219900101123X" || len(sub.Materials) != 1 || sub.Materials[0].Pages != 2 {
		t.Errorf("the service got %+v", sub)
	}
	if sub.RequestID != "" {
		t.Errorf("request_id %q without an Idempotency-Key", sub.RequestID)
	}
}

func TestSubmitCaseIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	rec := e.do("POST", "/v1/cases", strings.NewReader(validBody), "Idempotency-Key", "key-123")
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d; body %s", rec.Code, rec.Body)
	}
	if got := e.cases.Calls().Submits[0].RequestID; got != "key-123" {
		t.Errorf("request_id = %q, want the Idempotency-Key", got)
	}
	if strings.Contains(rec.Body.String(), "key-123") {
		t.Errorf("the answer shows the request id: %s", rec.Body)
	}

	// A request_id in the body wins over the header.
	body := strings.Replace(validBody, `"kind"`, `"request_id":"body-id","kind"`, 1)
	rec = e.do("POST", "/v1/cases", strings.NewReader(body), "Idempotency-Key", "key-123")
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d; body %s", rec.Code, rec.Body)
	}
	if got := e.cases.Calls().Submits[1].RequestID; got != "body-id" {
		t.Errorf("request_id = %q, want the body's", got)
	}

	// The header is validated like the field.
	rec = e.do("POST", "/v1/cases", strings.NewReader(validBody), "Idempotency-Key", strings.Repeat("k", casework.MaxRequestID+1))
	b := decodeError(t, rec, http.StatusBadRequest)
	if got := b.fields(); !reflect.DeepEqual(got, []string{"request_id"}) {
		t.Errorf("fields %q, want request_id", got)
	}
	if n := len(e.cases.Calls().Submits); n != 2 {
		t.Errorf("SubmitCase called %d times, want 2", n)
	}
}

func TestSubmitCaseRejected(t *testing.T) {
	withField := func(old, new string) string {
		if !strings.Contains(validBody, old) {
			panic(old)
		}
		return strings.Replace(validBody, old, new, 1)
	}
	tests := []struct {
		name   string
		body   string
		status int
		code   string
		fields []string
	}{
		{"missing applicant", `{"kind":"grievance","title":"路灯不亮"}`, 400, "invalid", []string{"applicant"}},
		{"null applicant", withField(`"applicant":{"name":"张三","id_number":"63010219900101123X","phone":"13800138000"}`, `"applicant":null`),
			400, "invalid", []string{"applicant"}},
		{"several bad fields", `{"kind":"x","title":"","decide_tier":"nation",
			"applicant":{"name":"","id_number":"123","phone":"abc"},
			"materials":[{"name":"a","digest":"zz","pages":-1}]}`,
			400, "invalid", []string{"applicant.id_number", "applicant.name", "applicant.phone", "decide_tier",
				"kind", "materials[0].digest", "materials[0].pages", "title"}},
		{"application without item code", withField(`"item_code":"QT-0010",`, ``), 400, "invalid", []string{"item_code"}},
		{"bad birth date", withField(`63010219900101123X`, `63010219901301123X`), 400, "invalid", []string{"applicant.id_number"}},
		{"malformed JSON", `{"kind":"application",`, 400, "invalid", nil},
		{"not an object", `["kind"]`, 400, "invalid", nil},
		{"wrong type", withField(`"pages":2`, `"pages":"2"`), 400, "invalid", nil},
		{"pages overflow", withField(`"pages":2`, `"pages":1e30`), 400, "invalid", nil},
		{"unknown field", withField(`"kind"`, `"priority":"high","kind"`), 400, "invalid", nil},
		{"unknown nested field", withField(`"phone"`, `"email":"a@b.c","phone"`), 400, "invalid", nil},
		{"query code hash smuggled in", withField(`"kind"`, `"query_code_hash":"00","kind"`), 400, "invalid", nil},
		{"empty body", ``, 400, "invalid", nil},
		{"whitespace body", " \n\t ", 400, "invalid", nil},
		{"JSON null", `null`, 400, "invalid", []string{"applicant", "kind", "title"}},
		{"two objects", validBody + validBody, 400, "invalid", nil},
		{"trailing garbage", validBody + " x", 400, "invalid", nil},
		{"too large", `{"title":"` + strings.Repeat("a", httpapi.MaxBodyBytes) + `"}`, 413, "too_large", nil},
		{"too large after a valid prefix", strings.Replace(validBody, `"title":"居住证办理"`,
			`"title":"居住证办理","description":"`+strings.Repeat("b", httpapi.MaxBodyBytes)+`"`, 1), 413, "too_large", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			rec := e.do("POST", "/v1/cases", strings.NewReader(tt.body), "Content-Type", "application/json")
			b := decodeError(t, rec, tt.status)
			if b.Error.Code != tt.code {
				t.Errorf("code %q, want %q", b.Error.Code, tt.code)
			}
			if got := b.fields(); !reflect.DeepEqual(got, tt.fields) {
				t.Errorf("fields %q, want %q; body %s", got, tt.fields, rec.Body)
			}
			if loc := rec.Header().Get("Location"); loc != "" {
				t.Errorf("Location %q on an error", loc)
			}
			if n := e.cases.Calls().Len(); n != 0 {
				t.Errorf("the service was called %d times for a refused request", n)
			}
		})
	}
}

func TestSubmitCaseNoContentTypeNeeded(t *testing.T) {
	// curl -d sends application/x-www-form-urlencoded; the body is read as JSON anyway.
	e := newEnv(t)
	rec := e.do("POST", "/v1/cases", strings.NewReader(validBody), "Content-Type", "application/x-www-form-urlencoded")
	if rec.Code != http.StatusCreated {
		t.Errorf("status %d; body %s", rec.Code, rec.Body)
	}
}

// After the JSON object the body may hold only white space. json.Decoder.More reports false
// for a stray ']' or '}', so those slip through today.
func TestSubmitCaseTrailingBracket(t *testing.T) {
	var accepted []string
	for _, tail := range []string{"}", "]", "}}}", "] garbage"} {
		e := newEnv(t)
		rec := e.do("POST", "/v1/cases", strings.NewReader(validBody+tail))
		if rec.Code == http.StatusCreated {
			accepted = append(accepted, fmt.Sprintf("%q", tail))
			continue
		}
		decodeError(t, rec, http.StatusBadRequest)
		if n := e.cases.Calls().Len(); n != 0 {
			t.Errorf("tail %q: the service was called", tail)
		}
	}
	if len(accepted) > 0 {
		t.Errorf("a body with trailing %s after the object was accepted (201)", strings.Join(accepted, ", "))
	}
}

// A body whose JSON ends inside the limit but which goes on (white space) past it.
func TestSubmitCaseOversizedPadding(t *testing.T) {
	e := newEnv(t)
	body := validBody + strings.Repeat(" ", httpapi.MaxBodyBytes)
	rec := e.do("POST", "/v1/cases", strings.NewReader(body))
	switch rec.Code {
	case http.StatusRequestEntityTooLarge:
		decodeError(t, rec, http.StatusRequestEntityTooLarge)
		if n := e.cases.Calls().Len(); n != 0 {
			t.Errorf("the service was called for a refused body")
		}
	case http.StatusCreated:
		t.Errorf("a %d-byte body (valid JSON + padding) was accepted although MaxBodyBytes is %d",
			len(body), httpapi.MaxBodyBytes)
	default:
		t.Fatalf("status %d; body %s", rec.Code, rec.Body)
	}
}

func TestSubmitCaseServiceErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter bool
		fields     []string
	}{
		{"no leader", replication.ErrNoLeader, 503, "unavailable", true, nil},
		{"not leader", fmt.Errorf("forward: %w", replication.ErrNotLeader), 503, "unavailable", true, nil},
		{"closed", replication.ErrClosed, 503, "unavailable", true, nil},
		{"conflict", &sitestate.Error{Code: "conflict", Message: "request id reused for another case"}, 409, "conflict", false, nil},
		{"exhausted", &sitestate.Error{Code: sitestate.CodeExhausted, Message: "no more numbers today"}, 503, "exhausted", true, nil},
		{"refused by the FSM", &sitestate.Error{Code: sitestate.CodeInvalid, Message: "invalid request",
			Fields: casework.FieldErrors{{Field: "item_code", Reason: "unknown item"}}}, 400, "invalid", false, []string{"item_code"}},
		{"deadline", fmt.Errorf("propose: %w", context.DeadlineExceeded), 504, "timeout", false, nil},
		{"canceled", context.Canceled, 499, "canceled", false, nil},
		{"other", errors.New("disk on fire"), 500, "internal", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.cases.SubmitErr = tt.err
			rec := e.do("POST", "/v1/cases", strings.NewReader(validBody))
			b := decodeError(t, rec, tt.status)
			if b.Error.Code != tt.code {
				t.Errorf("code %q, want %q", b.Error.Code, tt.code)
			}
			if got := rec.Header().Get("Retry-After"); (got != "") != tt.retryAfter {
				t.Errorf("Retry-After %q, want present=%v", got, tt.retryAfter)
			}
			if got := b.fields(); !reflect.DeepEqual(got, tt.fields) {
				t.Errorf("fields %q, want %q", got, tt.fields)
			}
			if rec.Header().Get("Location") != "" {
				t.Errorf("Location on an error")
			}
			if tt.status == 500 && (strings.Contains(b.Error.Message, "disk on fire") || rec.Header().Get("X-Request-Id") == "" ||
				!strings.Contains(b.Error.Message, rec.Header().Get("X-Request-Id"))) {
				t.Errorf("a 500 answers %q (X-Request-Id %q): internal text, or no request id", b.Error.Message, rec.Header().Get("X-Request-Id"))
			}
		})
	}
}

func TestSubmitCaseWriteTimeout(t *testing.T) {
	cases := apitest.NewCases()
	cases.BlockSubmit = true
	h := httpapi.New(httpapi.Config{Cases: cases, Node: &fakeNode{ready: true}, WriteTimeout: 20 * time.Millisecond})
	start := time.Now()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/cases", strings.NewReader(validBody)))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the write took %v despite a 20ms WriteTimeout", d)
	}
	b := decodeError(t, rec, http.StatusGatewayTimeout)
	if b.Error.Code != "timeout" {
		t.Errorf("code %q", b.Error.Code)
	}
}

func TestGetCase(t *testing.T) {
	e := newEnv(t)
	stored := apitest.StoredCase(apitest.Number, "630102199001011234")
	e.cases.Put(stored)
	rec := e.do("GET", "/v1/cases/"+apitest.Number, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d; body %s", rec.Code, rec.Body)
	}
	m := decodeMap(t, rec)
	if m["number"] != apitest.Number || m["status"] != "submitted" || m["holder_site"] != apitest.Site {
		t.Errorf("body %s", rec.Body)
	}
	for _, k := range []string{"query_code_hash", "request_id", "query_code"} {
		if _, ok := m[k]; ok {
			t.Errorf("GET shows %s: %s", k, rec.Body)
		}
	}
	var c casework.Case
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
		t.Fatal(err)
	}
	if c.Applicant.IDNumber != "630102199001011234" {
		t.Errorf("a single case shows the full ID number to the clerk; got %q", c.Applicant.IDNumber)
	}
	if err := c.VerifyHistory(); err != nil {
		t.Errorf("VerifyHistory: %v", err)
	}
	if gets := e.cases.Calls().Gets; !slices.Equal(gets, []string{apitest.Number}) {
		t.Errorf("GetCase calls %q", gets)
	}
}

func TestGetCaseErrors(t *testing.T) {
	tests := []struct {
		name     string
		number   string
		err      error
		status   int
		code     string
		called   bool
		noLeader bool
	}{
		{"unknown", apitest.Number, nil, 404, "not_found", true, false},
		{"refused not found", apitest.Number, &sitestate.Error{Code: sitestate.CodeNotFound, Message: "no case " + apitest.Number}, 404, "not_found", true, false},
		{"wrapped not found", apitest.Number, fmt.Errorf("read: %w", sitestate.ErrNotFound), 404, "not_found", true, false},
		{"no leader", apitest.Number, replication.ErrNoLeader, 503, "unavailable", true, true},
		{"deadline", apitest.Number, context.DeadlineExceeded, 504, "timeout", true, false},
		{"malformed", "abc", nil, 400, "invalid", false, false},
		{"bad date", "cd-20261325-000001", nil, 400, "invalid", false, false},
		{"short sequence", "cd-20261125-0001", nil, 400, "invalid", false, false},
		{"escaped junk", url.PathEscape("cd-2026 1125-000001"), nil, 400, "invalid", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.cases.GetErr = tt.err
			rec := e.do("GET", "/v1/cases/"+tt.number, nil)
			b := decodeError(t, rec, tt.status)
			if b.Error.Code != tt.code {
				t.Errorf("code %q, want %q", b.Error.Code, tt.code)
			}
			if tt.status == 404 {
				// A refusal's own message is kept (it may name what is missing, such as a
				// site); a bare not-found says only that there is no such case.
				want := "no such case"
				var re *sitestate.Error
				if errors.As(tt.err, &re) {
					want = re.Message
				}
				if b.Error.Message != want {
					t.Errorf("404 message %q, want %q", b.Error.Message, want)
				}
			}
			if tt.status == 400 && !reflect.DeepEqual(b.fields(), []string{"number"}) {
				t.Errorf("fields %q, want number", b.fields())
			}
			if (rec.Header().Get("Retry-After") != "") != tt.noLeader {
				t.Errorf("Retry-After %q", rec.Header().Get("Retry-After"))
			}
			if n := len(e.cases.Calls().Gets); (n == 1) != tt.called {
				t.Errorf("GetCase called %d times, want called=%v", n, tt.called)
			}
		})
	}
}

func TestListCasesFilter(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	tests := []struct {
		name  string
		query string
		want  sitestate.Filter
	}{
		{"none", "", sitestate.Filter{}},
		{"all fields",
			"status=submitted&kind=grievance&item_code=QT-0010&from=2026-11-25&to=2026-11-26&page_size=20&page_token=abc_-",
			sitestate.Filter{Status: "submitted", Kind: casework.KindGrievance, ItemCode: "QT-0010",
				From: time.Date(2026, 11, 25, 0, 0, 0, 0, shanghai), To: time.Date(2026, 11, 26, 0, 0, 0, 0, shanghai),
				Limit: 20, PageToken: "abc_-"}},
		{"RFC 3339 UTC", "from=2026-11-25T01:02:03Z",
			sitestate.Filter{From: time.Date(2026, 11, 25, 1, 2, 3, 0, time.UTC)}},
		{"RFC 3339 with offset and fraction", "to=" + url.QueryEscape("2026-11-25T08:00:00.5+08:00"),
			sitestate.Filter{To: time.Date(2026, 11, 25, 0, 0, 0, 5e8, time.UTC)}},
		{"kind application", "kind=application", sitestate.Filter{Kind: casework.KindApplication}},
		{"scope local", "scope=local&page_size=500", sitestate.Filter{Limit: sitestate.MaxPageSize}},
		{"page_size 1", "page_size=1", sitestate.Filter{Limit: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			rec := e.do("GET", "/v1/cases?"+tt.query, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d; body %s", rec.Code, rec.Body)
			}
			lists := e.cases.Calls().Lists
			if len(lists) != 1 {
				t.Fatalf("ListCases called %d times", len(lists))
			}
			got := lists[0]
			if !got.From.Equal(tt.want.From) || !got.To.Equal(tt.want.To) {
				t.Errorf("from/to = %v / %v, want %v / %v", got.From, got.To, tt.want.From, tt.want.To)
			}
			got.From, got.To, tt.want.From, tt.want.To = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("filter %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A listing's dates are days in the grid's zone: Config.Location, Asia/Shanghai when unset.
func TestListCasesLocation(t *testing.T) {
	for _, tt := range []struct {
		loc  *time.Location
		want time.Time
	}{
		{nil, time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC)},
		{time.UTC, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)},
		{time.FixedZone("X", -5*3600), time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)},
	} {
		cases := apitest.NewCases()
		h := httpapi.New(httpapi.Config{Cases: cases, Node: &fakeNode{ready: true}, Location: tt.loc})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/cases?from=2026-11-25&to=2026-11-25T12:00:00Z", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%v: status %d; body %s", tt.loc, rec.Code, rec.Body)
		}
		lists := cases.Calls().Lists
		if len(lists) != 1 || !lists[0].From.Equal(tt.want) {
			t.Errorf("%v: filters %+v, want from %v", tt.loc, lists, tt.want)
		}
	}
}

func TestListCasesBadQuery(t *testing.T) {
	tests := []struct {
		query  string
		fields []string
	}{
		{"kind=complaint", []string{"kind"}},
		{"page_size=-1", []string{"page_size"}},
		{"page_size=501", []string{"page_size"}},
		{"page_size=ten", []string{"page_size"}},
		{"page_size=1.5", []string{"page_size"}},
		{"from=yesterday", []string{"from"}},
		{"from=2026-11-32", []string{"from"}},
		{"from=2026/11/25", []string{"from"}},
		{"to=2026-11-25T08:00:00+08:00", []string{"to"}}, // an unescaped '+' arrives as a space
		{"to=20261125", []string{"to"}},
		{"site=cd-dgdj-ngj", []string{"scope"}},
		{"scope=LOCAL", []string{"scope"}},
		{"kind=x&page_size=-1&from=x&to=y&scope=all", []string{"from", "kind", "page_size", "scope", "to"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			e := newEnv(t)
			rec := e.do("GET", "/v1/cases?"+tt.query, nil)
			b := decodeError(t, rec, http.StatusBadRequest)
			if b.Error.Code != "invalid" {
				t.Errorf("code %q", b.Error.Code)
			}
			if got := b.fields(); !reflect.DeepEqual(got, tt.fields) {
				t.Errorf("fields %q, want %q", got, tt.fields)
			}
			if n := e.cases.Calls().Len(); n != 0 {
				t.Errorf("the service was called %d times for a bad query", n)
			}
		})
	}
}

func TestListCasesOutput(t *testing.T) {
	e := newEnv(t)
	a := apitest.StoredCase("cd-20261125-000002", "630102199001011234")
	b := apitest.StoredCase("cd-20261125-000001", "63010219850505432X")
	e.cases.Page = &sitestate.Page{Cases: []*casework.Case{a, b}, NextPageToken: "next-token"}
	rec := e.do("GET", "/v1/cases?page_size=2", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d; body %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, leak := range []string{"630102199001011234", "63010219850505432X", "history", "query_code_hash",
		"request_id", a.QueryCodeHash, a.History[0].Hash} {
		if strings.Contains(body, leak) {
			t.Errorf("the listing shows %q: %s", leak, body)
		}
	}
	var out struct {
		Cases         []map[string]any `json:"cases"`
		NextPageToken string           `json:"next_page_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.NextPageToken != "next-token" || len(out.Cases) != 2 {
		t.Fatalf("listing %s", body)
	}
	for i, want := range []struct{ number, id string }{
		{"cd-20261125-000002", "6301**********1234"}, {"cd-20261125-000001", "6301**********432X"},
	} {
		c := out.Cases[i]
		if c["number"] != want.number {
			t.Errorf("case %d number %v, want %s", i, c["number"], want.number)
		}
		app, _ := c["applicant"].(map[string]any)
		if app["id_number"] != want.id || app["name"] != "李四" {
			t.Errorf("case %d applicant %v", i, app)
		}
		if c["status"] != "submitted" || c["version"] != 1.0 {
			t.Errorf("case %d: %v", i, c)
		}
	}
	// The listing must not change what the service holds.
	if a.Applicant.IDNumber != "630102199001011234" || len(a.History) != 1 || a.QueryCodeHash == "" {
		t.Errorf("the listing changed the service's case: %+v", a)
	}

	// An empty page is an empty list, not null, and has no token.
	e.cases.Page = &sitestate.Page{}
	rec = e.do("GET", "/v1/cases", nil)
	if got := strings.TrimSpace(rec.Body.String()); got != `{"cases":[]}` {
		t.Errorf("empty listing %s", got)
	}
}

func TestListCasesServiceErrors(t *testing.T) {
	for err, status := range map[error]int{
		&sitestate.Error{Code: sitestate.CodeInvalid, Message: "page_token is not valid for this listing"}: 400,
		replication.ErrNoLeader: 503,
		errors.New("boom"):      500,
	} {
		e := newEnv(t)
		e.cases.ListErr = err
		rec := e.do("GET", "/v1/cases?page_token=zzz", nil)
		decodeError(t, rec, status)
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	rec := e.do("GET", "/v1/health", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if m := decodeMap(t, rec); m["status"] != "ok" {
		t.Errorf("body %s", rec.Body)
	}

	e.node.ready, e.node.why = false, "no leader elected yet"
	rec = e.do("GET", "/v1/health", nil)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	if m := decodeMap(t, rec); m["status"] != "starting" || m["reason"] != "no leader elected yet" {
		t.Errorf("body %s", rec.Body)
	}
}

func TestMembersAndSites(t *testing.T) {
	e := newEnv(t)
	rec := e.do("GET", "/v1/members", nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"name":"n1"`) {
		t.Errorf("members: %d %s", rec.Code, rec.Body)
	}
	var members api.MembersView
	if err := json.Unmarshal(rec.Body.Bytes(), &members); err != nil {
		t.Fatal(err)
	}
	if want := testMembers(); !reflect.DeepEqual(&members, want) {
		t.Errorf("members %+v, want %+v", members, want)
	}
	if !strings.Contains(rec.Body.String(), `"meta":{"s":"`+apitest.Site+`","t":"community"`) {
		t.Errorf("members without gossip's short keys under meta: %s", rec.Body)
	}
	rec = e.do("GET", "/v1/sites", nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"site":"`+apitest.Site+`"`) {
		t.Errorf("sites: %d %s", rec.Code, rec.Body)
	}
	var sites api.SitesView
	if err := json.Unmarshal(rec.Body.Bytes(), &sites); err != nil {
		t.Fatal(err)
	}
	if want := testSites(); !reflect.DeepEqual(&sites, want) {
		t.Errorf("sites %+v, want %+v", sites, want)
	}
	// The wire names the CLI and the console read (snake_case; gossip's short keys under meta).
	for _, field := range []string{`"lag_entries":2`, `"to_site":"cd"`, `"oldest_seconds":1.5`, `"registered":true`, `"health":"down"`} {
		if !strings.Contains(rec.Body.String(), field) {
			t.Errorf("sites lacks %s: %s", field, rec.Body)
		}
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		method, target string
		status         int
	}{
		{"DELETE", "/v1/cases/" + apitest.Number, http.StatusMethodNotAllowed},
		{"PUT", "/v1/cases", http.StatusMethodNotAllowed},
		{"GET", "/v1/nothing", http.StatusNotFound},
		{"GET", "/metrics", http.StatusNotFound}, // no Metrics handler configured
	} {
		if rec := e.do(tt.method, tt.target, nil); rec.Code != tt.status {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.target, rec.Code, tt.status)
		}
	}
	if n := e.cases.Calls().Len(); n != 0 {
		t.Errorf("the service was called")
	}
}

func FuzzSubmitCaseBody(f *testing.F) {
	f.Add([]byte(validBody))
	f.Add([]byte(``))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"kind":"grievance","title":"t","applicant":{"name":"n","id_number":"63010219900101123X","phone":"0971-8123456"}}`))
	f.Add([]byte(`{"kind":"application",`))
	f.Add([]byte(`{"unknown":1}`))
	f.Add([]byte(validBody + `]`))
	f.Add([]byte(`{"materials":[{"pages":99999999999999999999}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e := newEnv(t)
		rec := e.do("POST", "/v1/cases", bytes.NewReader(body))
		n := len(e.cases.Calls().Submits)
		switch rec.Code {
		case http.StatusCreated:
			if n != 1 {
				t.Fatalf("201 with %d service calls", n)
			}
			if rec.Header().Get("Location") != "/v1/cases/"+apitest.Number {
				t.Fatalf("201 without Location")
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if n != 0 {
				t.Fatalf("status %d but the service was called %d times", rec.Code, n)
			}
			var b errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error.Code == "" {
				t.Fatalf("status %d with a body that is not an error: %q", rec.Code, rec.Body)
			}
		default:
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
	})
}

func TestLeaveOnlyFromLoopback(t *testing.T) {
	e := newEnv(t)
	rec := e.do("POST", "/v1/agent/leave", nil) // httptest's remote address is 192.0.2.1
	decodeError(t, rec, http.StatusForbidden)
	if e.node.leaves != 0 {
		t.Fatal("a remote caller made the node leave")
	}
	req := httptest.NewRequest("POST", "/v1/agent/leave", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	rec = httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted || e.node.leaves != 1 {
		t.Fatalf("loopback leave: %d, leaves=%d", rec.Code, e.node.leaves)
	}
}

// TestOwnHostIsLoopbackOrTheNodesOwnAddress: a node bound to its host's address (a container, a
// systemd unit with --http-addr 10.0.0.5:8080) is reached from its own host at that address: a
// request from the address the connection arrived at is the node's own host's; another host's is not.
func TestOwnHostIsLoopbackOrTheNodesOwnAddress(t *testing.T) {
	e := newEnv(t)
	leave := func(remote, local string) int {
		req := httptest.NewRequest("POST", "/v1/agent/leave", nil)
		req.RemoteAddr = remote
		if local != "" {
			la, err := net.ResolveTCPAddr("tcp", local)
			if err != nil {
				t.Fatal(err)
			}
			req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, la))
		}
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := leave("10.0.0.7:40000", "10.0.0.5:8080"); code != http.StatusForbidden {
		t.Fatalf("from another host: %d", code)
	}
	if code := leave("10.0.0.5:40000", "10.0.0.5:8080"); code != http.StatusAccepted {
		t.Fatalf("from the node's own address: %d", code)
	}
	if code := leave("[::1]:40000", ""); code != http.StatusAccepted {
		t.Fatalf("over IPv6 loopback: %d", code)
	}
}

// TestSecurityHeaders: every answer forbids framing and sniffing and carries the console's CSP,
// which allows nothing from outside.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	rec := e.do("GET", "/v1/health", nil)
	h := rec.Header()
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "http") {
		t.Errorf("CSP %q", csp)
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers %v", h)
	}
}

func TestListSubtree(t *testing.T) {
	e := newEnv(t)
	c := apitest.StoredCase("cd-dgdj-ngj-20261125-000001", "63010219900101123X")
	e.cases.Page = &sitestate.Page{Cases: []*casework.Case{c}}
	var out api.SubtreePage
	rec := e.do("GET", "/v1/cases?scope=subtree&status=submitted&tier=community&site=cd-dgdj-ngj", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("subtree listing: %d %s", rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Cases) != 1 || out.Cases[0].Number != c.Number || out.Cases[0].Mirror.Origin != c.HolderSite || out.Cases[0].Mirror.DelaySeconds != 1 {
		t.Fatalf("subtree listing %+v", out)
	}
	if out.Cases[0].Applicant.IDNumber == c.Applicant.IDNumber || out.Cases[0].Applicant.Phone == c.Applicant.Phone {
		t.Fatal("identity number or phone not masked in a subtree listing")
	}
	calls := e.cases.Calls()
	if len(calls.Subtrees) != 1 || len(calls.Lists) != 0 {
		t.Fatalf("ListSubtree called %d times, ListCases %d, want ListSubtree once", len(calls.Subtrees), len(calls.Lists))
	}
	got := calls.Subtrees[0]
	if got.Status != "submitted" || got.Tier != "community" || got.Site != "cd-dgdj-ngj" {
		t.Fatalf("filter passed on: %+v", got)
	}
	for _, bad := range []string{"scope=everything", "tier=province&scope=subtree", "site=Bad_Site&scope=subtree", "tier=community"} {
		if rec := e.do("GET", "/v1/cases?"+bad, nil); rec.Code != http.StatusBadRequest {
			t.Errorf("GET /v1/cases?%s: %d, want 400", bad, rec.Code)
		}
	}
}
