package web

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestConsoleFilesAreServed(t *testing.T) {
	h := Handler()
	for path, want := range map[string]string{
		"/":             "政务服务网格",
		"/console.js":   "/v1/cases/${encodeURIComponent(number)}/${move}",
		"/console.css":  "font-family",
		"/catalog.html": "办事指南",
		"/catalog.js":   "/v1/catalog/items/",
		"/i18n.js":      "One-time notice",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d, body lacks %q", path, rec.Code, want)
		}
	}
}
