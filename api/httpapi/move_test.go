package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/govgrid/govgrid/api/apitest"
	"github.com/govgrid/govgrid/api/httpapi"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
)

// doFrom is e.do with the request coming from remote (host:port).
func (e *env) doFrom(remote, method, target string, body io.Reader) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, body)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

func moveTarget(number string, m casework.Move) string {
	return "/v1/cases/" + number + "/" + string(m)
}

func TestMoveCaseAccepted(t *testing.T) {
	tests := []struct {
		name string
		move casework.Move
		body string
		want casework.Departure // what the service gets
		to   string             // where the answer's transit goes
	}{
		{"escalate with an opinion", casework.MoveEscalate, `{"reason":"超出本级权限","actor":"clerk-07"}`,
			casework.Departure{Move: casework.MoveEscalate, Reason: "超出本级权限", Actor: "clerk-07"}, apitest.Parent},
		{"escalate naming the parent", casework.MoveEscalate, `{"to_site":"cd-dgdj","reason":"r"}`,
			casework.Departure{Move: casework.MoveEscalate, To: "cd-dgdj", Reason: "r"}, "cd-dgdj"},
		{"handdown with instructions", casework.MoveHandDown, `{"to_site":"cd-dgdj-ngj-a","instructions":"三日内办结","actor":"lead-2"}`,
			casework.Departure{Move: casework.MoveHandDown, To: "cd-dgdj-ngj-a", Reason: "三日内办结", Actor: "lead-2"}, "cd-dgdj-ngj-a"},
		{"handdown with reason", casework.MoveHandDown, `{"to_site":"cd-dgdj-ngj-a","reason":"请核实"}`,
			casework.Departure{Move: casework.MoveHandDown, To: "cd-dgdj-ngj-a", Reason: "请核实"}, "cd-dgdj-ngj-a"},
		{"return with a reason", casework.MoveReturn, `{"to_site":"cd-dgdj-ngj-b","reason":"材料不全","actor":"clerk-09"}`,
			casework.Departure{Move: casework.MoveReturn, To: "cd-dgdj-ngj-b", Reason: "材料不全", Actor: "clerk-09"}, "cd-dgdj-ngj-b"},
		{"relay with nothing", casework.MoveRelay, `{}`,
			casework.Departure{Move: casework.MoveRelay}, apitest.Parent},
		{"empty strings", casework.MoveRelay, `{"to_site":"","reason":"","instructions":"","actor":""}`,
			casework.Departure{Move: casework.MoveRelay}, apitest.Parent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			rec := e.do("POST", moveTarget(apitest.Number, tt.move), strings.NewReader(tt.body))
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status %d, want 202; body %s", rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			calls := e.cases.Calls().Moves
			if len(calls) != 1 {
				t.Fatalf("MoveCase called %d times, want 1", len(calls))
			}
			if calls[0].Number != apitest.Number || !reflect.DeepEqual(calls[0].Departure, tt.want) {
				t.Errorf("the service got %q %+v, want %q %+v", calls[0].Number, calls[0].Departure, apitest.Number, tt.want)
			}
			if !calls[0].Deadline {
				t.Errorf("MoveCase ran without the write timeout")
			}

			m := decodeMap(t, rec)
			for _, k := range []string{"query_code_hash", "request_id"} {
				if _, ok := m[k]; ok {
					t.Errorf("the answer shows %s: %s", k, rec.Body)
				}
			}
			var c casework.Case
			if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
				t.Fatal(err)
			}
			if c.Number != apitest.Number || c.HolderSite != apitest.Site || c.Version != 2 {
				t.Errorf("answer %s", rec.Body)
			}
			wantTransit := casework.Transit{HandoffID: casework.HandoffID(apitest.Number, 2), To: tt.to, Move: tt.move}
			if c.Transit == nil {
				t.Fatalf("the answer has no transit: %s", rec.Body)
			}
			if got := *c.Transit; got.HandoffID != wantTransit.HandoffID || got.To != wantTransit.To ||
				got.Move != wantTransit.Move || !got.Since.Equal(apitest.At.Add(3600e9)) {
				t.Errorf("transit %+v, want %+v", got, wantTransit)
			}
			last := c.History[len(c.History)-1]
			if last.FromSite != apitest.Site || last.ToSite != tt.to || last.Note != tt.want.Reason || last.Actor != tt.want.Actor {
				t.Errorf("last event %+v", last)
			}
			if err := c.VerifyHistory(); err != nil {
				t.Errorf("VerifyHistory on the answer: %v", err)
			}
		})
	}
}

func TestMoveCaseRejected(t *testing.T) {
	tests := []struct {
		name   string
		number string
		body   string
		status int
		fields []string
	}{
		{"malformed number", "abc", `{}`, 400, []string{"number"}},
		{"bad date", "cd-20261325-000001", `{}`, 400, []string{"number"}},
		{"short sequence", "cd-20261125-0001", `{}`, 400, []string{"number"}},
		{"bad number and bad body", "abc", `{"x":1}`, 400, []string{"number"}},
		{"malformed JSON", apitest.Number, `{"reason":`, 400, nil},
		{"not an object", apitest.Number, `["reason"]`, 400, nil},
		{"wrong type", apitest.Number, `{"reason":1}`, 400, nil},
		{"unknown field", apitest.Number, `{"to":"cd-dgdj"}`, 400, nil},
		{"unknown field besides known ones", apitest.Number, `{"reason":"r","opinion":"o"}`, 400, nil},
		{"empty body", apitest.Number, ``, 400, nil},
		{"trailing garbage", apitest.Number, `{} x`, 400, nil},
		{"two objects", apitest.Number, `{}{}`, 400, nil},
		{"reason and instructions", apitest.Number, `{"to_site":"cd-dgdj-ngj-a","reason":"r","instructions":"i"}`, 400, []string{"instructions"}},
		{"too large", apitest.Number, `{"reason":"` + strings.Repeat("a", httpapi.MaxBodyBytes) + `"}`, 413, nil},
	}
	for _, tt := range tests {
		for _, m := range []casework.Move{casework.MoveEscalate, casework.MoveHandDown, casework.MoveReturn, casework.MoveRelay} {
			t.Run(tt.name+"/"+string(m), func(t *testing.T) {
				e := newEnv(t)
				rec := e.do("POST", moveTarget(tt.number, m), strings.NewReader(tt.body))
				b := decodeError(t, rec, tt.status)
				wantCode := "invalid"
				if tt.status == 413 {
					wantCode = "too_large"
				}
				if b.Error.Code != wantCode {
					t.Errorf("code %q, want %q", b.Error.Code, wantCode)
				}
				if got := b.fields(); !reflect.DeepEqual(got, tt.fields) {
					t.Errorf("fields %q, want %q; body %s", got, tt.fields, rec.Body)
				}
				if n := len(e.cases.Calls().Moves); n != 0 {
					t.Errorf("the service was called %d times for a refused request", n)
				}
			})
		}
	}
}

func TestMoveCaseServiceErrors(t *testing.T) {
	transit := &casework.ConflictError{Reason: "case " + apitest.Number + " is in transit to cd-dgdj: it is locked until cd-dgdj takes or refuses it"}
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		msg        string
		fields     []string
		retryAfter bool
	}{
		{"in transit", transit, 409, "conflict", transit.Reason, nil, false},
		{"wrapped conflict", fmt.Errorf("depart: %w", transit), 409, "conflict", "depart: " + transit.Reason, nil, false},
		{"handed on", &sitestate.Error{Code: sitestate.CodeConflict, Message: "case " + apitest.Number + " was handed on to cd-dgdj: only the holder changes it"},
			409, "conflict", "case " + apitest.Number + " was handed on to cd-dgdj: only the holder changes it", nil, false},
		{"unknown site", &sitestate.Error{Code: sitestate.CodeNotFound, Message: "unknown site x"}, 404, "not_found", "unknown site x", nil, false},
		{"no such case", sitestate.ErrNotFound, 404, "not_found", "no such case", nil, false},
		{"wrapped no such case", fmt.Errorf("%w: case not here", sitestate.ErrNotFound), 404, "not_found", "no such case", nil, false},
		{"not a neighbour", &sitestate.Error{Code: sitestate.CodeInvalid, Message: "site x is not a child of " + apitest.Site}, 400, "invalid",
			"site x is not a child of " + apitest.Site, nil, false},
		{"refused fields", &sitestate.Error{Code: sitestate.CodeInvalid, Message: "invalid request",
			Fields: casework.FieldErrors{{Field: "reason", Reason: "is too long"}}}, 400, "invalid", "invalid request", []string{"reason"}, false},
		{"field errors", casework.FieldErrors{{Field: "to_site", Reason: "is required"}}, 400, "invalid", "", []string{"to_site"}, false},
		{"no leader", replication.ErrNoLeader, 503, "unavailable", "", nil, true},
		{"deadline", context.DeadlineExceeded, 504, "timeout", "", nil, false},
		{"other", errors.New("disk on fire"), 500, "internal", "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.cases.MoveErr = tt.err
			rec := e.do("POST", moveTarget(apitest.Number, casework.MoveHandDown), strings.NewReader(`{"to_site":"x","instructions":"i"}`))
			b := decodeError(t, rec, tt.status)
			if b.Error.Code != tt.code {
				t.Errorf("code %q, want %q", b.Error.Code, tt.code)
			}
			if tt.msg != "" && b.Error.Message != tt.msg {
				t.Errorf("message %q, want %q", b.Error.Message, tt.msg)
			}
			if got := b.fields(); !reflect.DeepEqual(got, tt.fields) {
				t.Errorf("fields %q, want %q", got, tt.fields)
			}
			if got := rec.Header().Get("Retry-After"); (got != "") != tt.retryAfter {
				t.Errorf("Retry-After %q, want present=%v", got, tt.retryAfter)
			}
			if n := len(e.cases.Calls().Moves); n != 1 {
				t.Errorf("MoveCase called %d times, want 1", n)
			}
		})
	}
}

func TestMoveCaseRoutes(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		method, target string
		status         int
	}{
		{"GET", moveTarget(apitest.Number, casework.MoveEscalate), http.StatusMethodNotAllowed},
		{"PUT", moveTarget(apitest.Number, casework.MoveReturn), http.StatusMethodNotAllowed},
		{"POST", "/v1/cases/" + apitest.Number + "/close", http.StatusNotFound},
		{"POST", "/v1/cases/" + apitest.Number + "/Escalate", http.StatusNotFound},
		{"POST", "/v1/cases/" + apitest.Number + "/escalate/again", http.StatusNotFound},
		{"GET", "/v1/site/retire", http.StatusMethodNotAllowed},
	} {
		if rec := e.do(tt.method, tt.target, strings.NewReader(`{}`)); rec.Code != tt.status {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.target, rec.Code, tt.status)
		}
	}
	if n := len(e.cases.Calls().Moves); n != 0 {
		t.Errorf("MoveCase called %d times", n)
	}
	if len(e.node.retires) != 0 {
		t.Errorf("SetRetired called %d times", len(e.node.retires))
	}
}

func TestRetireOnlyFromLoopback(t *testing.T) {
	for _, remote := range []string{"192.0.2.1:1234", "10.0.0.7:40000", "[2001:db8::1]:40000", "localhost:40000", "127.0.0.1"} {
		for _, target := range []string{"/v1/site/retire", "/v1/site/reinstate"} {
			e := newEnv(t)
			rec := e.doFrom(remote, "POST", target, strings.NewReader(`{"reason":"merged into cd-dgdj"}`))
			if b := decodeError(t, rec, http.StatusForbidden); b.Error.Code != "forbidden" {
				t.Errorf("%s from %s: code %q", target, remote, b.Error.Code)
			}
			if len(e.node.retires) != 0 {
				t.Errorf("%s from %s reached the node", target, remote)
			}
		}
	}
}

func TestRetireAndReinstate(t *testing.T) {
	tests := []struct {
		name   string
		remote string
		target string
		body   string
		want   retireCall
	}{
		{"retire", "127.0.0.1:40000", "/v1/site/retire", `{"reason":"merged into cd-dgdj"}`, retireCall{true, "merged into cd-dgdj", true}},
		{"retire over IPv6 loopback", "[::1]:40000", "/v1/site/retire", `{"reason":"撤并"}`, retireCall{true, "撤并", true}},
		{"retire from 127.0.0.2", "127.0.0.2:40000", "/v1/site/retire", `{"reason":"r"}`, retireCall{true, "r", true}},
		{"reinstate without a body", "127.0.0.1:40000", "/v1/site/reinstate", ``, retireCall{false, "", true}},
		{"reinstate with an empty object", "127.0.0.1:40000", "/v1/site/reinstate", `{}`, retireCall{false, "", true}},
		{"reinstate with a reason", "127.0.0.1:40000", "/v1/site/reinstate", `{"reason":"reopened"}`, retireCall{false, "reopened", true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			rec := e.doFrom(tt.remote, "POST", tt.target, strings.NewReader(tt.body))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, want 200; body %s", rec.Code, rec.Body)
			}
			if !reflect.DeepEqual(e.node.retires, []retireCall{tt.want}) {
				t.Errorf("SetRetired calls %+v, want [%+v]", e.node.retires, tt.want)
			}
			m := decodeMap(t, rec)
			if m["retired"] != tt.want.retired || m["reason"] != tt.want.reason {
				t.Errorf("body %s", rec.Body)
			}
		})
	}
}

func TestRetireRejected(t *testing.T) {
	tests := []struct {
		name   string
		target string
		body   string
		fields []string
	}{
		{"retire without a body", "/v1/site/retire", ``, []string{"reason"}},
		{"retire with an empty object", "/v1/site/retire", `{}`, []string{"reason"}},
		{"retire with an empty reason", "/v1/site/retire", `{"reason":""}`, []string{"reason"}},
		{"retire with bad JSON", "/v1/site/retire", `{"reason":`, nil},
		{"retire with an unknown field", "/v1/site/retire", `{"reason":"r","until":"2027"}`, nil},
		{"reinstate with an unknown field", "/v1/site/reinstate", `{"force":true}`, nil},
		{"reinstate with bad JSON", "/v1/site/reinstate", `x`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			rec := e.doFrom("127.0.0.1:40000", "POST", tt.target, strings.NewReader(tt.body))
			b := decodeError(t, rec, http.StatusBadRequest)
			if b.Error.Code != "invalid" {
				t.Errorf("code %q", b.Error.Code)
			}
			if got := b.fields(); !reflect.DeepEqual(got, tt.fields) {
				t.Errorf("fields %q, want %q", got, tt.fields)
			}
			if len(e.node.retires) != 0 {
				t.Errorf("SetRetired called for a refused request: %+v", e.node.retires)
			}
		})
	}
}

func TestRetireNodeErrors(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
	}{
		{replication.ErrNoLeader, 503},
		{&sitestate.Error{Code: sitestate.CodeConflict, Message: "already retired"}, 409},
		{&sitestate.Error{Code: sitestate.CodeInvalid, Message: "reason is too long"}, 400},
		{context.DeadlineExceeded, 504},
		{errors.New("boom"), 500},
	} {
		t.Run(tt.err.Error(), func(t *testing.T) {
			e := newEnv(t)
			e.node.retireErr = tt.err
			rec := e.doFrom("127.0.0.1:40000", "POST", "/v1/site/retire", strings.NewReader(`{"reason":"r"}`))
			decodeError(t, rec, tt.status)
			if len(e.node.retires) != 1 {
				t.Errorf("SetRetired called %d times, want 1", len(e.node.retires))
			}
		})
	}
}
