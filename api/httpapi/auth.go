package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/sitestate"
)

// AuthService is what the sign-in and account endpoints need: the node implements it.
type AuthService interface {
	// Login signs user in at this site; client is the caller's address (failed sign-ins lock
	// an account and an address for a while).
	Login(ctx context.Context, user, password, client string) (*api.LoginAnswer, error)
	// Authenticate verifies a bearer token and returns its claims (the account's roles now).
	Authenticate(token string) (*auth.Claims, error)
	Logout(ctx context.Context, c *auth.Claims) error
	ChangePassword(ctx context.Context, by *auth.Claims, oldPassword, newPassword string) error
	// Bootstrap creates the grid's first administrator, once.
	Bootstrap(ctx context.Context) (*api.BootstrapAnswer, error)
	CreateAccount(ctx context.Context, by *auth.Claims, req api.AccountRequest) (*auth.Account, error)
	Accounts(by *auth.Claims) ([]auth.Account, error)
	// Authorize says whether c may take action a at this site (nil) or why not (a refusal
	// with code CodeForbidden): c's roles allow it, and this site is in c's subtree.
	Authorize(c *auth.Claims, a auth.Action) error
	// HasAccounts says whether any account is in force here: until the first (govgrid auth
	// bootstrap), the node's own host administers it.
	HasAccounts() bool
	// OperatorKeyMatches says whether key is the node's operator key (its data directory's
	// operator.key), which administers it from its own host.
	OperatorKeyMatches(key string) bool
	// AuditTrail is a page of the audit trail of site ("" for this one: each site keeps its
	// own), for the administrators and supervisors of that site and of those above it.
	AuditTrail(ctx context.Context, by *auth.Claims, site string, from uint64, limit int) (*sitestate.AuditPage, error)
}

// AuditSink records who did what; the node commits it to the site's audit trail.
type AuditSink interface {
	Audit(kind, user, client, subject, detail string)
}

// audit records an event of request r by c (nil: nobody signed in).
func (s *server) audit(r *http.Request, c *auth.Claims, kind, subject, detail string) {
	if s.cfg.Audit == nil {
		return
	}
	user := ""
	if c != nil {
		user = c.User
	}
	s.cfg.Audit.Audit(kind, user, clientAddr(r), subject, detail)
}

func (s *server) routeAuth(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/auth/login", s.login)
	mux.HandleFunc("POST /v1/auth/logout", s.logout)
	mux.HandleFunc("GET /v1/auth/whoami", s.whoami)
	mux.HandleFunc("POST /v1/auth/password", s.changePassword)
	mux.HandleFunc("POST /v1/auth/bootstrap", s.bootstrap)
	mux.HandleFunc("POST /v1/accounts", s.createAccount)
	mux.HandleFunc("GET /v1/accounts", s.listAccounts)
	mux.HandleFunc("GET /v1/audit", s.auditTrail)
}

// maxAuthBody bounds the body of a sign-in or account request.
const maxAuthBody = 64 << 10

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if !decodeBodyOf(w, r, &req, maxAuthBody) {
		return
	}
	if req.User == "" || req.Password == "" {
		s.writeError(w, casework.FieldErrors{{Field: "user", Reason: "user and password are required"}})
		return
	}
	a, err := s.cfg.Auth.Login(r.Context(), req.User, req.Password, clientAddr(r))
	if err != nil {
		if s.cfg.Audit != nil {
			s.cfg.Audit.Audit(sitestate.AuditSignInFailed, req.User, clientAddr(r), "", err.Error())
		}
		s.writeError(w, err)
		return
	}
	if s.cfg.Audit != nil {
		s.cfg.Audit.Audit(sitestate.AuditSignIn, a.User, clientAddr(r), "", "")
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, a)
}

// bearer returns the claims of the request's bearer token, or answers 401 and returns nil.
func (s *server) bearer(w http.ResponseWriter, r *http.Request) *auth.Claims {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="govgrid"`)
		s.writeError(w, sitestate.Errorf(sitestate.CodeUnauthorized, "sign in first: POST /v1/auth/login, then Authorization: Bearer <token>"))
		return nil
	}
	c, err := s.cfg.Auth.Authenticate(strings.TrimSpace(tok))
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="govgrid", error="invalid_token"`)
		s.writeError(w, err)
		return nil
	}
	return c
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	c := s.bearer(w, r)
	if c == nil {
		return
	}
	if err := s.cfg.Auth.Logout(r.Context(), c); err != nil {
		s.writeError(w, err)
		return
	}
	s.audit(r, c, sitestate.AuditSignOut, "", "")
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) whoami(w http.ResponseWriter, r *http.Request) {
	if c := s.bearer(w, r); c != nil {
		writeJSON(w, http.StatusOK, c)
	}
}

func (s *server) changePassword(w http.ResponseWriter, r *http.Request) {
	c := s.bearer(w, r)
	if c == nil {
		return
	}
	var req struct {
		Old string `json:"old_password"`
		New string `json:"new_password"`
	}
	if !decodeBodyOf(w, r, &req, maxAuthBody) {
		return
	}
	if err := s.cfg.Auth.ChangePassword(r.Context(), c, req.Old, req.New); err != nil {
		s.writeError(w, err)
		return
	}
	s.audit(r, c, sitestate.AuditPasswordChanged, c.User, "")
	w.WriteHeader(http.StatusNoContent)
}

// bootstrap creates the first administrator; only from the node's own host, once.
func (s *server) bootstrap(w http.ResponseWriter, r *http.Request) {
	if !fromOwnHost(w, r, "the first account is created from the district node's own host (govgrid auth bootstrap)") {
		return
	}
	a, err := s.cfg.Auth.Bootstrap(r.Context())
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.audit(r, nil, sitestate.AuditBootstrap, a.User, "the first administrator")
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, a)
}

func (s *server) createAccount(w http.ResponseWriter, r *http.Request) {
	c := s.bearer(w, r)
	if c == nil {
		return
	}
	var req api.AccountRequest
	if !decodeBodyOf(w, r, &req, maxAuthBody) {
		return
	}
	a, err := s.cfg.Auth.CreateAccount(r.Context(), c, req)
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.audit(r, c, sitestate.AuditAccountCreated, a.User, fmt.Sprintf("site %s, roles %v", a.Site, a.Roles))
	writeJSON(w, http.StatusCreated, a)
}

func (s *server) listAccounts(w http.ResponseWriter, r *http.Request) {
	c := s.bearer(w, r)
	if c == nil {
		return
	}
	as, err := s.cfg.Auth.Accounts(c)
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": as})
}

// staff wraps a handler that needs a signed-in person: it answers 401 without a valid bearer
// token, and passes the token's claims on in the request's context (auth.NewContext), where the
// node finds them and decides what the person may do there. With no AuthService (a front end
// tested alone) it checks nothing.
func (s *server) staff(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r, ok := s.signedIn(w, r); ok {
			h(w, r)
		}
	}
}

// signedIn is r with its bearer token's claims in its context (see staff), or false once it
// answered 401.
func (s *server) signedIn(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	if s.cfg.Auth == nil {
		return r, true
	}
	c := s.bearer(w, r)
	if c == nil {
		return nil, false
	}
	return r.WithContext(auth.NewContext(r.Context(), c)), true
}

// administer lets a change of the site itself through (its configuration and catalogue, a
// backup or restore, leave, retire, reinstate): an administrator's token, of this site or one
// above it. Before the grid has its first account, nobody can hold one: then the node's own host
// (loopback) administers it, so that a district is set up, or restored from a backup, before
// `govgrid auth bootstrap`. The claims are nil in that case. And whoever holds the node's operator
// key (its data directory's operator.key: a nightly backup from cron) administers it from its own
// host; the claims then name "operator@<the address asked>".
func (s *server) administer(w http.ResponseWriter, r *http.Request) (*auth.Claims, bool) {
	if s.cfg.Auth == nil {
		return nil, fromOwnHost(w, r, "this is taken only from the node's own host")
	}
	if r.Header.Get("Authorization") == "" && !s.cfg.Auth.HasAccounts() {
		return nil, fromOwnHost(w, r, "the grid has no accounts yet: this is taken only from the node's own host until govgrid auth bootstrap")
	}
	if key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Operator "); ok {
		if !fromOwnHost(w, r, "the operator key is taken only from the node's own host") {
			return nil, false
		}
		if !s.cfg.Auth.OperatorKeyMatches(strings.TrimSpace(key)) {
			s.writeError(w, sitestate.Errorf(sitestate.CodeUnauthorized, "not this node's operator key"))
			return nil, false
		}
		return &auth.Claims{User: "operator@" + r.Host, Name: "operator"}, true
	}
	c := s.bearer(w, r)
	if c == nil {
		return nil, false
	}
	if err := s.cfg.Auth.Authorize(c, auth.ActAdminister); err != nil {
		s.writeError(w, err)
		return nil, false
	}
	return c, true
}

// auditTrail: GET /v1/audit?site=&from=&limit=, a site's audit trail (this one's by default, or
// one beneath it), oldest first.
func (s *server) auditTrail(w http.ResponseWriter, r *http.Request) {
	c := s.bearer(w, r)
	if c == nil {
		return
	}
	q := r.URL.Query()
	from, limit := uint64(1), 100
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			s.writeError(w, casework.FieldErrors{{Field: "from", Reason: "a sequence, from 1"}})
			return
		}
		from = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.writeError(w, casework.FieldErrors{{Field: "limit", Reason: "1 to 1000"}})
			return
		}
		limit = n
	}
	page, err := s.cfg.Auth.AuditTrail(r.Context(), c, q.Get("site"), from, limit)
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}
