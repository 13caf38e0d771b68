package sitestate

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/tier"
)

// openSiteWithSecret is openSite for a site whose nodes hold the grid secret.
func openSiteWithSecret(t *testing.T, code string, tr tier.Tier, parent string, secret []byte) *site {
	t.Helper()
	s := &site{t: t, code: code, tier: tr, parent: parent}
	st, err := OpenLocal(Config{Site: code, Tier: tr, Parent: parent, Location: testLoc, Logger: slog.New(slog.DiscardHandler), QueryCodeSecret: secret}, t.TempDir(), s.clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s.st, s.local = st, st.b.(*replication.Local)
	s.idx = s.local.AppliedIndex()
	return s
}

// TestQueryCodeIsMACedUnderTheGridSecret: with the grid secret a new case keeps "h1:" + the MAC
// of its code, which checks only with the secret; the state (what snapshots, backups and
// exports hold) carries neither the secret nor the legacy salted hash, which anyone could try
// all codes against. Without a secret the legacy hash is kept, as before.
func TestQueryCodeIsMACedUnderTheGridSecret(t *testing.T) {
	secret := bytes.Repeat([]byte{0x5a}, 32)
	s := openSiteWithSecret(t, "cd-dgdj", tier.Township, "cd", secret)
	sub := testSubmission(1)
	a := s.apply(cmdSubmitCase, &submitCommand{Submission: sub, Site: s.code, Tier: s.tier, Parent: s.parent, QueryCode: "246810"})
	if a.Err != nil {
		t.Fatal(a.Err)
	}
	stored, err := s.st.GetCase(a.Case.Number)
	if err != nil {
		t.Fatal(err)
	}
	if want := casework.QueryCodeMAC(secret, sub.RequestID, "246810"); stored.QueryCodeHash != want {
		t.Fatalf("stored query_code_hash = %q, want the MAC %q", stored.QueryCodeHash, want)
	}
	if !stored.CheckQueryCode(secret, "246810") || stored.CheckQueryCode(secret, "246811") || stored.CheckQueryCode(nil, "246810") {
		t.Error("the stored MAC checks the right code only, and only with the secret")
	}
	legacy := casework.HashQueryCode(sub.RequestID, "246810")
	kv, err := s.st.b.ExportState()
	if err != nil {
		t.Fatal(err)
	}
	macSeen := false
	for k, v := range kv {
		macSeen = macSeen || bytes.Contains(v, []byte(stored.QueryCodeHash))
		if bytes.Contains(v, []byte(legacy)) {
			t.Errorf("state key %q holds the legacy hash of the code", k)
		}
		if bytes.Contains(v, secret) || bytes.Contains(v, []byte(base64.StdEncoding.EncodeToString(secret))) || bytes.Contains(v, []byte(hex.EncodeToString(secret))) {
			t.Errorf("state key %q holds the grid secret", k)
		}
	}
	if !macSeen { // else the scan above proves nothing: the values would be encoded otherwise
		t.Error("no state value holds the case's MAC in plain text")
	}
	// What the site keeps to answer a retry is the code sealed, never the code itself...
	for k, v := range kv {
		if bytes.Contains(v, []byte(`"246810"`)) {
			t.Errorf("state key %q holds the query code readable: %s", k, v)
		}
	}
	rec, ok, err := getRequestOf(s.st, sub.RequestID)
	if err != nil || !ok || !strings.HasPrefix(rec.QueryCode, casework.QueryCodeSealPrefix) {
		t.Fatalf("request record %+v (%v, %v): want the code sealed", rec, ok, err)
	}
	// ... and a retry still answers the code.
	again := s.apply(cmdSubmitCase, &submitCommand{Submission: sub, Site: s.code, Tier: s.tier, Parent: s.parent, QueryCode: "999999"})
	if !again.Duplicate || again.QueryCode != "246810" {
		t.Fatalf("a retried submission answered duplicate=%v code %q, want the first code", again.Duplicate, again.QueryCode)
	}

	plain := openSite(t, "cd-dgdj", tier.Township, "cd", t.TempDir())
	b := plain.apply(cmdSubmitCase, &submitCommand{Submission: sub, Site: plain.code, Tier: plain.tier, Parent: plain.parent, QueryCode: "246810"})
	if b.Err != nil {
		t.Fatal(b.Err)
	}
	if got, _ := plain.st.GetCase(b.Case.Number); got == nil || got.QueryCodeHash != legacy || !got.CheckQueryCode(secret, "246810") {
		t.Errorf("without a secret: stored %+v, want the legacy hash %s (which still checks on a grid with a secret)", got, legacy)
	}
}

// getRequestOf reads a request record from st.
func getRequestOf(st *State, id string) (*requestRecord, bool, error) {
	var rec *requestRecord
	var ok bool
	err := st.view(func(txn *badger.Txn) error {
		var err error
		rec, ok, err = getRequest(view{txn}, id)
		return err
	})
	return rec, ok, err
}
