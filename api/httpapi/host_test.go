package httpapi

import (
	"net/http"
	"net/http/httptest"
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
