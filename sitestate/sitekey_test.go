package sitestate

import (
	"bytes"
	"context"
	"testing"
)

// TestSiteKeyIsTheFirstCommitted: the first seed stays; a later one changes nothing; a seed of
// the wrong size is refused.
func TestSiteKeyIsTheFirstCommitted(t *testing.T) {
	s := newSite(t, "cd")
	if _, ok, err := s.st.SiteKey(); ok || err != nil {
		t.Fatalf("a new site has a key (%v)", err)
	}
	first := bytes.Repeat([]byte{1}, 32)
	if res := s.apply(cmdSiteKey, &siteKeyCommand{Seed: first}); res.Err != nil {
		t.Fatal(res.Err)
	}
	k1, ok, err := s.st.SiteKey()
	if !ok || err != nil {
		t.Fatalf("no key after it was committed (%v)", err)
	}
	before := s.export()
	if res := s.apply(cmdSiteKey, &siteKeyCommand{Seed: bytes.Repeat([]byte{2}, 32)}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := s.apply(cmdSiteKey, &siteKeyCommand{Seed: []byte{3}}); res.Err == nil || res.Err.Code != CodeInvalid {
		t.Fatalf("a short seed: %+v", res)
	}
	assertStateUnchanged(t, s, before)
	k2, _, _ := s.st.SiteKey()
	if !bytes.Equal(k1, k2) {
		t.Fatal("a second seed replaced the first")
	}
	if k, err := s.st.EnsureSiteKey(context.Background()); err != nil || !bytes.Equal(k, k1) {
		t.Fatalf("EnsureSiteKey with a key: %v", err)
	}
}
