package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

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
	// AdminHere says whether c is an administrator of this site (nil) or why not.
	AdminHere(c *auth.Claims) error
	// AuditTrail is a page of the site's audit trail, for administrators and supervisors.
	AuditTrail(by *auth.Claims, from uint64, limit int) (*sitestate.AuditPage, error)
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

// mayAdminister lets a change of the site's catalogue or configuration through: with a bearer
// token, when it is an administrator's of this site (returned); without one, from the node's own
// host (the rule before accounts, kept for the operator's shell on the node; nil claims).
func (s *server) mayAdminister(w http.ResponseWriter, r *http.Request, msg string) (*auth.Claims, bool) {
	if r.Header.Get("Authorization") == "" || s.cfg.Auth == nil {
		return nil, fromOwnHost(w, r, msg)
	}
	c := s.bearer(w, r)
	if c == nil {
		return nil, false
	}
	if err := s.cfg.Auth.AdminHere(c); err != nil {
		s.writeError(w, err)
		return nil, false
	}
	return c, true
}

// auditTrail: GET /v1/audit?from=&limit=, the site's audit trail, oldest first.
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
	page, err := s.cfg.Auth.AuditTrail(c, from, limit)
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// signedActor is who a request with a bearer token acts as ("王芳 (wang.fang)"), which an event
// records in place of the request's actor field; "" without a token (the case endpoints are not
// yet restricted to signed-in staff). A bad token answers 401 and ok is false.
func (s *server) signedActor(w http.ResponseWriter, r *http.Request) (actor string, ok bool) {
	if r.Header.Get("Authorization") == "" || s.cfg.Auth == nil {
		return "", true
	}
	c := s.bearer(w, r)
	if c == nil {
		return "", false
	}
	if a := c.Name + " (" + c.User + ")"; utf8.RuneCountInString(a) <= casework.MaxActor {
		return a, true
	}
	return c.User, true
}
