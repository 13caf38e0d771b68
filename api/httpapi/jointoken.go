package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/sitestate"
)

// JoinTokens is what the join-token endpoints need: the district issues, lists and revokes
// tokens that admit new nodes to the grid (a node redeems one over gRPC for its certificate).
type JoinTokens interface {
	CreateJoinToken(ctx context.Context, by *auth.Claims, site string, ttl time.Duration, uses int) (*api.JoinToken, error)
	JoinTokens() ([]api.JoinToken, error)
	RevokeJoinToken(ctx context.Context, by *auth.Claims, id string) (*api.JoinToken, error)
}

// Revocations is what the certificate revocation endpoints need: the district revokes a node's
// identity; every site lists what reached it.
type Revocations interface {
	RevokeCertificate(ctx context.Context, by *auth.Claims, site, node, reason string) (*api.RevokedCertificate, error)
	RevokedCertificates() ([]api.RevokedCertificate, error)
}

func (s *server) routeJoinTokens(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/join-tokens", s.createJoinToken)
	mux.HandleFunc("GET /v1/join-tokens", s.listJoinTokens)
	mux.HandleFunc("DELETE /v1/join-tokens/{id}", s.revokeJoinToken)
	if s.cfg.Revocations != nil {
		mux.HandleFunc("POST /v1/certificates/revoke", s.revokeCertificate)
		mux.HandleFunc("GET /v1/certificates/revoked", s.revokedCertificates)
	}
}

// revokeCertificate: POST /v1/certificates/revoke {"site","node","reason"}, for an administrator
// at the district: the node's certificates are refused everywhere the revocation reaches.
func (s *server) revokeCertificate(w http.ResponseWriter, r *http.Request) {
	by, ok := s.administer(w, r)
	if !ok {
		return
	}
	var req struct {
		Site   string `json:"site"`
		Node   string `json:"node"`
		Reason string `json:"reason"`
	}
	if !decodeBodyOf(w, r, &req, maxKeyBody) {
		return
	}
	rc, err := s.cfg.Revocations.RevokeCertificate(r.Context(), by, req.Site, req.Node, req.Reason)
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.audit(r, by, sitestate.AuditTrustChanged, "certificate/"+rc.Site+"/"+rc.Node, "revoked: "+rc.Reason)
	writeJSON(w, http.StatusOK, rc)
}

// revokedCertificates: GET /v1/certificates/revoked, for an administrator: the revocations that
// reached this site.
func (s *server) revokedCertificates(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.administer(w, r); !ok {
		return
	}
	list, err := s.cfg.Revocations.RevokedCertificates()
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// createJoinToken: POST /v1/join-tokens {"site","ttl","uses"}, for an administrator at the
// district: 201 with the token, shown this once.
func (s *server) createJoinToken(w http.ResponseWriter, r *http.Request) {
	by, ok := s.administer(w, r)
	if !ok {
		return
	}
	req := api.JoinTokenRequest{TTL: "24h", Uses: 1}
	if !decodeBodyOf(w, r, &req, maxKeyBody) {
		return
	}
	var fe casework.FieldErrors
	if strings.TrimSpace(req.Site) == "" {
		fe = append(fe, casework.FieldError{Field: "site", Reason: `is required: the site a new node serves, or "*" for any site`})
	}
	ttl, err := time.ParseDuration(req.TTL)
	if err != nil {
		fe = append(fe, casework.FieldError{Field: "ttl", Reason: "is not a duration such as 24h or 30m"})
	}
	if len(fe) > 0 {
		s.writeError(w, fe)
		return
	}
	t, err := s.cfg.JoinTokens.CreateJoinToken(r.Context(), by, req.Site, ttl, req.Uses)
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.audit(r, by, sitestate.AuditTrustChanged, "join-token/"+t.ID, "issued for site "+t.Site)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, t)
}

// listJoinTokens: GET /v1/join-tokens, for an administrator at the district: every token, without
// its secret.
func (s *server) listJoinTokens(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.administer(w, r); !ok {
		return
	}
	ts, err := s.cfg.JoinTokens.JoinTokens()
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

// revokeJoinToken: DELETE /v1/join-tokens/{id}, for an administrator at the district.
func (s *server) revokeJoinToken(w http.ResponseWriter, r *http.Request) {
	by, ok := s.administer(w, r)
	if !ok {
		return
	}
	t, err := s.cfg.JoinTokens.RevokeJoinToken(r.Context(), by, r.PathValue("id"))
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.audit(r, by, sitestate.AuditTrustChanged, "join-token/"+t.ID, "revoked")
	writeJSON(w, http.StatusOK, t)
}
