package httpapi

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/sitestate"
)

// KeyringService is what the gossip keyring endpoints need from the node: its gossip keys, by
// fingerprint, and their changes (each saved to the node's keyring file before it answers).
type KeyringService interface {
	GossipKeys() *api.KeyringView
	// InstallGossipKey adds a key that decrypts; UseGossipKey makes an installed key the one that
	// encrypts; RemoveGossipKey drops a key, never the primary (a refusal with CodeConflict).
	// A key of a wrong size is refused with CodeInvalid. Installing a key already there, or
	// removing one that is not, changes nothing.
	InstallGossipKey(key []byte) (*api.KeyringView, error)
	UseGossipKey(key []byte) (*api.KeyringView, error)
	RemoveGossipKey(key []byte) (*api.KeyringView, error)
}

// maxKeyBody bounds the body of a keyring change.
const maxKeyBody = 4 << 10

func (s *server) routeKeyring(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/keyring", s.listKeys)
	k := s.cfg.Keyring
	for op, f := range map[string]func([]byte) (*api.KeyringView, error){
		"install": k.InstallGossipKey, "use": k.UseGossipKey, "remove": k.RemoveGossipKey,
	} {
		mux.HandleFunc("POST /v1/keyring/"+op, func(w http.ResponseWriter, r *http.Request) { s.changeKeys(w, r, op, f) })
	}
}

// listKeys: GET /v1/keyring, for an administrator (see administer): the node's gossip keys by
// fingerprint.
func (s *server) listKeys(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.administer(w, r); !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, s.cfg.Keyring.GossipKeys())
}

// changeKeys: POST /v1/keyring/{install,use,remove} {"key":"<base64>"}, for an administrator.
// 200 with the keyring as it is now; 400 for a key that is not base64 of 16, 24 or 32 bytes;
// 409 for removing the primary or using a key not installed.
func (s *server) changeKeys(w http.ResponseWriter, r *http.Request, op string, f func([]byte) (*api.KeyringView, error)) {
	by, ok := s.administer(w, r)
	if !ok {
		return
	}
	var req api.KeyRequest
	if !decodeBodyOf(w, r, &req, maxKeyBody) {
		return
	}
	text := strings.TrimSpace(req.Key)
	if text == "" {
		s.writeError(w, casework.FieldErrors{{Field: "key", Reason: "is required: a gossip key, base64 of 16, 24 or 32 bytes"}})
		return
	}
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		s.writeError(w, casework.FieldErrors{{Field: "key", Reason: "is not base64 (standard, padded): " + err.Error()}})
		return
	}
	if n := len(key); n != 16 && n != 24 && n != 32 {
		s.writeError(w, casework.FieldErrors{{Field: "key", Reason: "is " + strconv.Itoa(n) + " bytes: a gossip key is 16, 24 or 32 bytes"}})
		return
	}
	v, err := f(key)
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.audit(r, by, sitestate.AuditSiteChanged, "gossip keyring", op+" "+api.KeyFingerprint(key))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, v)
}
