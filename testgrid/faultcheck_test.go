package testgrid_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/testgrid"
)

// TestFeedStatusHonest reads a child's feed as a parent serves it and checks what Honest makes
// of it: the fields issue 10 asks for must be served, and an unknown lag must be null.
func TestFeedStatusHonest(t *testing.T) {
	now := time.Date(2026, 11, 28, 17, 6, 0, 0, time.UTC)
	const heard = `"heard_at":"2026-11-28T17:05:58Z"`
	for _, tc := range []struct {
		name, feed string
		want       string // in Honest's error; "" for none
	}{
		{"caught up", `{"cursor":4,"head":4,"lag_known":true,"lag_entries":0,"lag_seconds":0,` + heard + `,"stream_up":true}`, ""},
		{"unknown lag, null", `{"cursor":4,"head":4,"lag_known":false,"lag_entries":null,` + heard + `,"stream_up":false}`, ""},
		{"unknown lag, absent", `{"cursor":4,"head":4,"lag_known":false,` + heard + `,"stream_up":false}`, ""},
		{"an older node", `{"cursor":4,"head":4,"lag_entries":0,"lag_seconds":0}`, "lacks stream_up, lag_known"},
		{"null flags", `{"cursor":4,"head":4,"lag_known":null,` + heard + `,"stream_up":true}`, "lacks lag_known"},
		{"unknown lag given as 0", `{"cursor":4,"head":4,"lag_known":false,"lag_entries":0,"lag_seconds":0,` + heard + `,"stream_up":false}`, "must be null"},
		{"known lag not heard lately", `{"cursor":4,"head":4,"lag_known":true,"lag_entries":0,"lag_seconds":0,"heard_at":"2026-11-28T17:05:00Z","stream_up":true}`, "last heard 1m0s ago"},
		{"known lag without one", `{"cursor":4,"head":4,"lag_known":true,` + heard + `,"stream_up":true}`, "gives none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := func(path string) (int, []byte, error) {
				if path != "/v1/sites" {
					t.Fatalf("GET %s", path)
				}
				return http.StatusOK, []byte(`{"sites":[{"site":"cd-dgdj"},{"site":"cd-dgdj-ngj","feed":` + tc.feed + `}]}`), nil
			}
			f, err := testgrid.ChildFeed(parent, "cd-dgdj-ngj")
			if err != nil {
				t.Fatal(err)
			}
			if f.String() != tc.feed {
				t.Errorf("String() = %s, want the feed as served", f)
			}
			err = f.Honest(now)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Honest: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Honest: %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if _, err := testgrid.ChildFeed(func(string) (int, []byte, error) {
		return http.StatusOK, []byte(`{"sites":[{"site":"cd-dgdj-ngj"}]}`), nil
	}, "cd-dgdj-ngj"); err == nil || !strings.Contains(err.Error(), "no feed") {
		t.Errorf("a site without a feed: %v", err)
	}
}
