package systems

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestReadinessProbes(t *testing.T) {
	answers := map[string]struct {
		status int
		body   string
	}{
		"/ok": {200, "ok"}, "/down": {503, "down"},
		"/healthy": {200, `{"health":"true"}`}, "/unhealthy": {200, `{"health":"false"}`}, "/sick": {503, `{"health":"true"}`},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.URL.Path]
		w.WriteHeader(a.status)
		w.Write([]byte(a.body))
	}))
	defer srv.Close()
	ctx, hc := context.Background(), srv.Client()
	defer hc.CloseIdleConnections()
	for path, want := range map[string]bool{"/ok": true, "/down": false} {
		if err := httpOK(ctx, hc, srv.URL+path); (err == nil) != want {
			t.Errorf("httpOK(%s) = %v", path, err)
		}
	}
	for path, want := range map[string]bool{"/healthy": true, "/unhealthy": false, "/sick": false} {
		if err := etcdHealthy(ctx, hc, srv.URL+path); (err == nil) != want {
			t.Errorf("etcdHealthy(%s) = %v", path, err)
		}
	}
	if err := httpOK(ctx, hc, "http://127.0.0.1:1/"); err == nil {
		t.Error("httpOK of a refused connection succeeded")
	}
}
