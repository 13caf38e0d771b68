package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/api/httpapi"
	"github.com/govgrid/govgrid/sitestate"
)

// fakeKeyring is an httpapi.KeyringService: it records the keys it is given and refuses to
// remove the primary, as the node does.
type fakeKeyring struct {
	keys  [][]byte // primary first
	calls []string
}

func (f *fakeKeyring) GossipKeys() *api.KeyringView {
	v := &api.KeyringView{Node: "n1", Encrypted: len(f.keys) > 0, Keys: []api.KeyView{}}
	for i, k := range f.keys {
		v.Keys = append(v.Keys, api.KeyView{Fingerprint: api.KeyFingerprint(k), Primary: i == 0})
	}
	return v
}

func (f *fakeKeyring) InstallGossipKey(k []byte) (*api.KeyringView, error) {
	f.calls = append(f.calls, "install")
	f.keys = append(f.keys, k)
	return f.GossipKeys(), nil
}

func (f *fakeKeyring) UseGossipKey(k []byte) (*api.KeyringView, error) {
	f.calls = append(f.calls, "use")
	return f.GossipKeys(), nil
}

func (f *fakeKeyring) RemoveGossipKey(k []byte) (*api.KeyringView, error) {
	f.calls = append(f.calls, "remove")
	if bytes.Equal(k, f.keys[0]) {
		return nil, sitestate.Errorf(sitestate.CodeConflict, "it is the primary key")
	}
	return f.GossipKeys(), nil
}

// TestKeyringRoutes: the keyring endpoints are an administrator's (here, without accounts, the
// node's own host), list fingerprints and never a key, answer 400 for a key that is not
// base64 of 16, 24 or 32 bytes (before the node sees it) and pass the node's 409 on.
func TestKeyringRoutes(t *testing.T) {
	old, next := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 16)
	kr := &fakeKeyring{keys: [][]byte{old}}
	h := httpapi.New(httpapi.Config{Node: &fakeNode{ready: true}, Keyring: kr})
	do := func(method, path, body, remote string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	const local = "127.0.0.1:40000"
	key := func(k []byte) string { return `{"key":"` + base64.StdEncoding.EncodeToString(k) + `"}` }

	decodeError(t, do("GET", "/v1/keyring", "", "192.0.2.1:1234"), http.StatusForbidden)
	decodeError(t, do("POST", "/v1/keyring/install", key(next), "192.0.2.1:1234"), http.StatusForbidden)

	rec := do("GET", "/v1/keyring", "", local)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /v1/keyring: %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), base64.StdEncoding.EncodeToString(old)) {
		t.Fatalf("the key itself is in the answer: %s", rec.Body)
	}
	var v api.KeyringView
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || !v.Encrypted || len(v.Keys) != 1 || !v.Keys[0].Primary ||
		v.Keys[0].Fingerprint != api.KeyFingerprint(old) || !strings.HasPrefix(v.Keys[0].Fingerprint, "sha256:") {
		t.Fatalf("keyring %s (%v)", rec.Body, err)
	}

	for _, tc := range []struct{ body, field string }{
		{`{"key":"not base64!"}`, "base64"},
		{`{"key":"` + base64.StdEncoding.EncodeToString([]byte("short")) + `"}`, "16, 24 or 32 bytes"},
		{`{"key":""}`, "required"},
		{`{}`, "required"},
	} {
		for _, op := range []string{"install", "use", "remove"} {
			b := decodeError(t, do("POST", "/v1/keyring/"+op, tc.body, local), http.StatusBadRequest)
			if raw, _ := json.Marshal(b); !strings.Contains(string(raw), tc.field) {
				t.Errorf("%s %s: %s, want it to say %q", op, tc.body, raw, tc.field)
			}
		}
	}
	decodeError(t, do("POST", "/v1/keyring/install", `{"key":"x","extra":1}`, local), http.StatusBadRequest)
	if len(kr.calls) != 0 {
		t.Fatalf("bad requests reached the node: %v", kr.calls)
	}

	rec = do("POST", "/v1/keyring/install", key(next), local)
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &v) != nil || len(v.Keys) != 2 {
		t.Fatalf("install: %d %s", rec.Code, rec.Body)
	}
	if rec := do("POST", "/v1/keyring/use", key(next), local); rec.Code != http.StatusOK {
		t.Fatalf("use: %d %s", rec.Code, rec.Body)
	}
	b := decodeError(t, do("POST", "/v1/keyring/remove", key(old), local), http.StatusConflict)
	if !strings.Contains(b.Error.Message, "primary") {
		t.Errorf("removing the primary: %+v", b.Error)
	}
	if strings.Join(kr.calls, ",") != "install,use,remove" {
		t.Errorf("node calls %v", kr.calls)
	}
}
