package node_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
)

// TestQueryCodeIsMACedUnderTheGridSecret (issue 15.6): a case keeps its citizen's code as "h1:"
// + its HMAC under the grid secret, which is in no site's state. The holding site checks the code
// with the secret, and so does the parent answering from its mirror once the holder is gone; a
// wrong code fails at both. What travels up (the mirrors, a site's export) carries the MAC, never
// the bare salted hash anyone could try the 10^6 codes against, and no node's state holds the
// secret.
func TestQueryCodeIsMACedUnderTheGridSecret(t *testing.T) {
	g := testgrid.New(t, fourSites)
	secret := g.CA().Secret
	if len(secret) != 32 {
		t.Fatalf("the test grid's CA has a grid secret of %d bytes", len(secret))
	}
	district, township := g.WaitLeader("cd"), g.WaitLeader("cd-dgdj")
	ngj := g.WaitLeader("cd-dgdj-ngj")
	waitRegistered(t, g, district, map[string]string{"cd-dgdj": "cd", "cd-dgdj-ngj": "cd-dgdj", "cd-dgdj-bgj": "cd-dgdj"}, 20*time.Second)

	c := submitDecided(t, ngj, 1, "") // decided and held at ngj
	stored, err := ngj.State().GetCase(c.Number)
	if err != nil {
		t.Fatal(err)
	}
	mac := casework.QueryCodeMAC(secret, stored.RequestID, c.QueryCode)
	legacy := casework.HashQueryCode(stored.RequestID, c.QueryCode)
	if stored.QueryCodeHash != mac || !strings.HasPrefix(stored.QueryCodeHash, casework.QueryCodeMACPrefix) {
		t.Fatalf("stored query_code_hash %q, want the MAC %q", stored.QueryCodeHash, mac)
	}
	wrongCode := fmt.Sprintf("%06d", (atoi(c.QueryCode)+1)%1_000_000)

	// At the holding site.
	if code, body := citizenGet(t, ngj.Addrs().HTTP, c.Number, c.QueryCode); code != http.StatusOK {
		t.Fatalf("the right code at the holder: %d %s", code, body)
	}
	if code, body := citizenGet(t, ngj.Addrs().HTTP, c.Number, wrongCode); code != http.StatusNotFound {
		t.Fatalf("a wrong code at the holder: %d %s", code, body)
	}

	// The mirrors above carry the MAC, not the legacy hash; the district's (above the parent)
	// not the code either.
	g.Eventually(30*time.Second, func() error {
		for _, n := range []*node.Node{township, district} {
			rec, err := n.State().MirrorCase(c.Number)
			if err != nil {
				return fmt.Errorf("%s's mirror: %v", n.Name(), err)
			}
			if rec.Case.Version < stored.Version {
				return fmt.Errorf("%s's mirror is at version %d", n.Name(), rec.Case.Version)
			}
		}
		return nil
	})
	for _, n := range []*node.Node{township, district} {
		rec, err := n.State().MirrorCase(c.Number)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Case.QueryCodeHash != mac {
			t.Errorf("%s's mirror keeps %q, want the MAC", n.Name(), rec.Case.QueryCodeHash)
		}
		b, _ := json.Marshal(rec)
		if bytes.Contains(b, []byte(legacy)) {
			t.Errorf("%s's mirror record holds the legacy hash of the code: %s", n.Name(), b)
		}
	}
	// The export a restore reads (the parent's records of the site) carries the MAC only.
	exp, err := township.State().ExportSite("cd-dgdj-ngj")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(exp)
	if !bytes.Contains(b, []byte(mac)) || bytes.Contains(b, []byte(legacy)) {
		t.Errorf("the township's export of ngj: MAC present %v (want true), legacy hash present %v (want false)",
			bytes.Contains(b, []byte(mac)), bytes.Contains(b, []byte(legacy)))
	}
	// No node's state holds the secret (nor, where a value is plain, the legacy hash).
	for _, n := range []*node.Node{ngj, township, district} {
		kv, err := n.State().ExportState()
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range kv {
			for what, s := range map[string][]byte{
				"the grid secret": secret, "the grid secret in base64": []byte(base64.StdEncoding.EncodeToString(secret)),
				"the grid secret in hex": []byte(hex.EncodeToString(secret)), "the legacy hash": []byte(legacy),
			} {
				if bytes.Contains(v, s) {
					t.Errorf("%s's state %q holds %s", n.Name(), k, what)
				}
			}
		}
	}

	// The holder gone, the parent answers from its mirror, checking the code with the secret.
	g.Kill(ngj.Name())
	if code, body := citizenGet(t, township.Addrs().HTTP, c.Number, c.QueryCode); code != http.StatusOK {
		t.Fatalf("the right code at the parent, the holder down: %d %s", code, body)
	} else {
		var v casework.CitizenView
		if err := json.Unmarshal([]byte(body), &v); err != nil || v.Number != c.Number || v.HolderSite != "cd-dgdj-ngj" {
			t.Fatalf("the view from the parent's mirror: %v %s", err, body)
		}
	}
	if code, body := citizenGet(t, township.Addrs().HTTP, c.Number, wrongCode); code != http.StatusNotFound {
		t.Fatalf("a wrong code at the parent: %d %s", code, body)
	}
}
