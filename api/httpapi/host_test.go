package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHostHeaderIsChecked: with names configured, another Host gets 421 and changes nothing;
// the configured names and loopback are answered.
func TestHostHeaderIsChecked(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := checkHost([]string{"gov.cd.example", "10.20.0.11"}, ok)
	for host, want := range map[string]int{
		"gov.cd.example":      http.StatusNoContent,
		"GOV.cd.example:8443": http.StatusNoContent,
		"10.20.0.11:8080":     http.StatusNoContent,
		"127.0.0.1:8080":      http.StatusNoContent,
		"[::1]:8080":          http.StatusNoContent,
		"attacker.example":    http.StatusMisdirectedRequest,
		"10.20.0.12:8080":     http.StatusMisdirectedRequest,
	} {
		req := httptest.NewRequest("POST", "/v1/cases", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %s: %d, want %d", host, rec.Code, want)
		}
	}
	if checkHost(nil, ok) == nil {
		t.Fatal("no names: no handler")
	}
}

// TestStateChangesNeedJSON: a body of a form a page of another site could post is refused (415)
// and reaches no handler; JSON, no type, curl's default from a non-browser, CSV to the import and
// a backup to the restore pass; reads pass whatever they carry.
func TestStateChangesNeedJSON(t *testing.T) {
	reached := false
	h := requireJSON(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true; w.WriteHeader(http.StatusNoContent) }))
	for _, tc := range []struct {
		method, path, ct string
		browser          bool
		want             int
	}{
		{"POST", "/v1/cases", "application/json", true, http.StatusNoContent},
		{"POST", "/v1/cases", "application/json; charset=utf-8", true, http.StatusNoContent},
		{"POST", "/v1/cases", "", false, http.StatusNoContent},
		{"POST", "/v1/cases", "application/x-www-form-urlencoded", false, http.StatusNoContent},
		{"POST", "/v1/cases", "application/x-www-form-urlencoded", true, http.StatusUnsupportedMediaType},
		{"POST", "/v1/cases", "text/plain", false, http.StatusUnsupportedMediaType},
		{"PUT", "/v1/config/x", "multipart/form-data; boundary=b", false, http.StatusUnsupportedMediaType},
		{"POST", "/v1/catalog/import", "text/csv", true, http.StatusNoContent},
		{"POST", "/v1/cases", "text/csv", false, http.StatusUnsupportedMediaType},
		{"POST", "/v1/snapshot/restore", "application/octet-stream", false, http.StatusNoContent},
		{"GET", "/v1/cases", "text/plain", true, http.StatusNoContent},
	} {
		reached = false
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}"))
		if tc.ct != "" {
			req.Header.Set("Content-Type", tc.ct)
		}
		if tc.browser {
			req.Header.Set("Origin", "https://elsewhere.example")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want || reached != (tc.want == http.StatusNoContent) {
			t.Errorf("%s %s %q (browser %v): %d, reached %v; want %d", tc.method, tc.path, tc.ct, tc.browser, rec.Code, reached, tc.want)
		}
	}
}
