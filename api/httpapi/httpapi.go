// Package httpapi serves govgrid's HTTP/JSON API (snake_case JSON, /v1/...). It decodes and
// checks requests, calls the node through small interfaces, and encodes answers and errors.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/catalog"
	"github.com/govgrid/govgrid/sitestate"
)

// MaxBodyBytes is the largest request body accepted; larger ones get 413.
const MaxBodyBytes = 1 << 20

// NodeInfo is what the operational endpoints need from the node.
type NodeInfo interface {
	// Ready reports whether the node serves (its site has a leader), and why not.
	Ready() (bool, string)
	// Members is the gossip view of the grid; Sites the site tree as this node knows it.
	Members() *api.MembersView
	Sites() *api.SitesView
	// LeaveAsync starts leaving the site and the grid for good; the node stops when done.
	LeaveAsync()
	// SetRetired retires this node's site (it refuses incoming handoffs) or reinstates it.
	SetRetired(ctx context.Context, retired bool, reason string) error
}

// ConfigService is what the configuration endpoints need from the node.
type ConfigService interface {
	// Configuration is the site's documents in force; ConfigDoc the one in force at path, or
	// a not-found error.
	Configuration() (*api.ConfigView, error)
	ConfigDoc(path string) (*sitestate.ConfigDoc, error)
	// PutConfig changes (or, with del, removes) a document this site owns.
	PutConfig(ctx context.Context, path string, value json.RawMessage, del bool) (*sitestate.ConfigDoc, error)
}

// Config wires a Handler.
type Config struct {
	Cases api.CaseService
	Node  NodeInfo
	// ConfigDocs serves /v1/config; nil serves none.
	ConfigDocs ConfigService
	// Catalog serves /v1/catalog; nil serves none.
	Catalog CatalogService
	// Auth serves /v1/auth, /v1/accounts and /v1/audit, and lets administrators' tokens
	// change the catalogue and the configuration; nil serves none.
	Auth AuthService
	// Audit receives who did what (sign-ins, reads of whole records, changes); nil records
	// nothing.
	Audit AuditSink
	// Seal serves /v1/seal/keys and the cases' certificates; nil serves none.
	Seal SealService
	// Backups serves /v1/snapshot; nil serves none.
	Backups BackupService
	// Hosts, if set, are the names (and addresses) the Host header may carry; empty: any.
	Hosts []string
	// JoinTokens serves /v1/join-tokens (the district's join tokens, for administrators); nil
	// serves none.
	JoinTokens JoinTokens
	// Revocations serves /v1/certificates (revoked node identities); nil serves none.
	Revocations Revocations
	// Keyring serves /v1/keyring (the node's gossip keys, for administrators); nil serves none.
	Keyring KeyringService
	Metrics http.Handler
	// Console serves the web console at /; nil serves none.
	Console http.Handler
	Logger  *slog.Logger
	// Pprof serves net/http/pprof under /debug/pprof/ (operators only: it exposes internals).
	Pprof bool
	// WriteTimeout bounds a write's wait for commit.
	WriteTimeout time.Duration
	// Location is the grid's time zone: a listing's from and to dates are days there.
	// Asia/Shanghai when nil.
	Location *time.Location
}

// New returns the HTTP handler of a node.
func New(cfg Config) http.Handler {
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Location == nil {
		cfg.Location = casework.GridLocation()
	}
	s := &server{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", s.health)
	mux.HandleFunc("GET /v1/members", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, cfg.Node.Members()) })
	mux.HandleFunc("GET /v1/sites", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, cfg.Node.Sites()) })
	mux.HandleFunc("POST /v1/agent/leave", s.leave)
	mux.HandleFunc("POST /v1/cases", s.staff(s.submitCase))
	mux.HandleFunc("GET /v1/cases", s.staff(s.listCases))
	mux.HandleFunc("GET /v1/cases/{number}", s.getCase)
	for _, m := range []casework.Move{casework.MoveEscalate, casework.MoveHandDown, casework.MoveReturn, casework.MoveRelay} {
		mux.HandleFunc("POST /v1/cases/{number}/"+string(m), s.staff(func(w http.ResponseWriter, r *http.Request) { s.moveCase(w, r, m) }))
	}
	mux.HandleFunc("GET /v1/cases/{number}/steps", s.staff(s.stepsFor))
	for _, st := range casework.Steps {
		mux.HandleFunc("POST /v1/cases/{number}/"+string(st), s.staff(func(w http.ResponseWriter, r *http.Request) { s.stepCase(w, r, st) }))
	}
	if cfg.Catalog != nil {
		s.routeCatalog(mux)
	}
	if cfg.Seal != nil {
		s.routeSeal(mux)
	}
	if cfg.Auth != nil {
		s.routeAuth(mux)
	}
	if cfg.ConfigDocs != nil {
		mux.HandleFunc("GET /v1/config", s.staff(s.getConfig))
		mux.HandleFunc("GET /v1/config/{path...}", s.staff(s.getConfig))
		mux.HandleFunc("PUT /v1/config/{path...}", func(w http.ResponseWriter, r *http.Request) { s.putConfig(w, r, false) })
		mux.HandleFunc("DELETE /v1/config/{path...}", func(w http.ResponseWriter, r *http.Request) { s.putConfig(w, r, true) })
	}
	if cfg.JoinTokens != nil {
		s.routeJoinTokens(mux)
	}
	if cfg.Keyring != nil {
		s.routeKeyring(mux)
	}
	if cfg.Backups != nil {
		mux.HandleFunc("GET /v1/snapshot", s.saveBackup)
		mux.HandleFunc("POST /v1/snapshot/restore", s.restoreBackup)
	}
	mux.HandleFunc("POST /v1/site/retire", func(w http.ResponseWriter, r *http.Request) { s.retire(w, r, true) })
	mux.HandleFunc("POST /v1/site/reinstate", func(w http.ResponseWriter, r *http.Request) { s.retire(w, r, false) })
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	if cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	}
	if cfg.Console != nil {
		mux.Handle("GET /", cfg.Console)
	}
	return secureHeaders(checkHost(cfg.Hosts, requireJSON(mux)))
}

// requireJSON refuses a request that changes state with a body that is not JSON (415): a form a
// page of another site could post (multipart/form-data, text/plain), and curl's default form type
// when it comes from a browser (an Origin or Sec-Fetch-Site header). Bearer tokens, never cookies,
// already keep a cross-site page from acting as anyone; this keeps such a page from even reaching
// a handler. Allowed: application/json and *+json, no content type, curl's default from a
// non-browser (the contract's `curl -d` lines), CSV to the catalogue's import and a backup to the
// restore.
func requireJSON(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions || r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		ct := r.Header.Get("Content-Type")
		media, _, _ := mime.ParseMediaType(ct)
		fromBrowser := r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != ""
		switch {
		case ct == "", media == "application/json", strings.HasSuffix(media, "+json"),
			media == "application/x-www-form-urlencoded" && !fromBrowser,
			media == "text/csv" && r.URL.Path == "/v1/catalog/import",
			media == "application/octet-stream" && r.URL.Path == "/v1/snapshot/restore":
			h.ServeHTTP(w, r)
		default:
			writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
				fmt.Sprintf("a request that changes state sends JSON (Content-Type: application/json), not %q", ct), nil)
		}
	})
}

// checkHost refuses a request whose Host header is none of hosts (421 Misdirected Request), so
// that a page of another site cannot reach the console by DNS rebinding. No hosts: any. A
// loopback address is always accepted (the node's own host administers it).
func checkHost(hosts []string, h http.Handler) http.Handler {
	if len(hosts) == 0 {
		return h
	}
	allowed := map[string]bool{}
	for _, name := range hosts {
		allowed[strings.ToLower(name)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hst, _, err := net.SplitHostPort(host); err == nil {
			host = hst
		}
		host = strings.ToLower(strings.Trim(host, "[]"))
		if ip := net.ParseIP(host); allowed[host] || ip != nil && ip.IsLoopback() {
			h.ServeHTTP(w, r)
			return
		}
		writeJSON(w, http.StatusMisdirectedRequest, map[string]any{"error": map[string]string{
			"code": "misdirected", "message": fmt.Sprintf("host %q is not a name of this node (--http-hosts)", r.Host)}})
	})
}

// contentSecurityPolicy is the console's: its own scripts and styles only (inline styles for the
// printable pages), nothing from outside, never framed.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// secureHeaders sets the security headers on every answer: the console's CSP, no framing, no
// content sniffing, no referrer (a case number in a URL stays on the node).
func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

type server struct{ cfg Config }

func (s *server) health(w http.ResponseWriter, r *http.Request) {
	ok, why := s.cfg.Node.Ready()
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting", "reason": why})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// leave makes the node leave for good, for an administrator (see administer).
func (s *server) leave(w http.ResponseWriter, r *http.Request) {
	by, ok := s.administer(w, r)
	if !ok {
		return
	}
	s.audit(r, by, sitestate.AuditSiteChanged, "leave", "the node leaves the grid")
	s.cfg.Node.LeaveAsync()
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "leaving"})
}

// moveCase commits a move at the holder and answers 202: the case is locked, in transit, and
// its delivery to the target follows (exactly once, however long the link is down).
func (s *server) moveCase(w http.ResponseWriter, r *http.Request, m casework.Move) {
	number := r.PathValue("number")
	if _, _, _, err := casework.ParseNumber(number); err != nil {
		s.writeError(w, casework.FieldErrors{{Field: "number", Reason: "is not a case number (<site>-<yyyymmdd>-<6 digits>)"}})
		return
	}
	var req api.MoveRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Reason != "" && req.Instructions != "" {
		s.writeError(w, casework.FieldErrors{{Field: "instructions", Reason: "give reason or instructions, not both"}})
		return
	}
	// The node writes the signed-in caller as the move's actor, whatever the request says.
	d := casework.Departure{Move: m, To: req.ToSite, Actor: req.Actor, Reason: req.Reason + req.Instructions}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	c, err := s.cfg.Cases.MoveCase(ctx, number, d)
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, c.Public())
}

// stepsFor answers the steps the caller may take on a case now, here.
func (s *server) stepsFor(w http.ResponseWriter, r *http.Request) {
	ans, err := s.cfg.Cases.StepsFor(r.Context(), r.PathValue("number"))
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// stepCase takes a step of a case's life at the holder and answers the case (200).
func (s *server) stepCase(w http.ResponseWriter, r *http.Request, st casework.Step) {
	number := r.PathValue("number")
	if _, _, _, err := casework.ParseNumber(number); err != nil {
		s.writeError(w, casework.FieldErrors{{Field: "number", Reason: "is not a case number (<site>-<yyyymmdd>-<6 digits>)"}})
		return
	}
	var req api.StepRequest
	if r.ContentLength != 0 && !decodeBody(w, r, &req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	c, err := s.cfg.Cases.TakeStep(ctx, number, req.Request(st))
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c.Public())
}

// retire retires the node's site or reinstates it, for an administrator (see administer).
func (s *server) retire(w http.ResponseWriter, r *http.Request, retired bool) {
	by, ok := s.administer(w, r)
	if !ok {
		return
	}
	var req api.RetireRequest
	if r.ContentLength != 0 && !decodeBody(w, r, &req) {
		return
	}
	if retired && req.Reason == "" {
		s.writeError(w, casework.FieldErrors{{Field: "reason", Reason: "is required: sites sending cases here are told it"}})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	if err := s.cfg.Node.SetRetired(ctx, retired, req.Reason); err != nil {
		s.writeError(w, err)
		return
	}
	what := "reinstate"
	if retired {
		what = "retire"
	}
	s.audit(r, by, sitestate.AuditSiteChanged, what, req.Reason)
	writeJSON(w, http.StatusOK, api.RetireAnswer{Retired: retired, Reason: req.Reason})
}

// getConfig answers the whole configuration in force, or one document of it by path, to anyone
// signed in whose subtree this site is in.
func (s *server) getConfig(w http.ResponseWriter, r *http.Request) {
	if c := auth.FromContext(r.Context()); c != nil {
		if err := s.cfg.Auth.Authorize(c, auth.ActReadConfig); err != nil {
			s.writeError(w, err)
			return
		}
	}
	var v any
	var err error
	if path := r.PathValue("path"); path == "" {
		v, err = s.cfg.ConfigDocs.Configuration()
	} else {
		v, err = s.cfg.ConfigDocs.ConfigDoc(path)
	}
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// putConfig changes a document of this site's (the body is its JSON value) or removes it, for an
// administrator (see administer).
func (s *server) putConfig(w http.ResponseWriter, r *http.Request, del bool) {
	by, ok := s.administer(w, r)
	if !ok {
		return
	}
	path := r.PathValue("path")
	if err := sitestate.ValidateConfigPath(path); err != nil {
		s.writeError(w, casework.FieldErrors{{Field: "path", Reason: err.Error()}})
		return
	}
	var value json.RawMessage
	if !del {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, sitestate.MaxConfigValue))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("a document is at most %d bytes", sitestate.MaxConfigValue), nil)
			return
		case err != nil:
			s.writeError(w, err)
			return
		case !json.Valid(body):
			s.writeError(w, casework.FieldErrors{{Field: "body", Reason: "must be one JSON value: the document"}})
			return
		}
		value = body
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	doc, err := s.cfg.ConfigDocs.PutConfig(ctx, path, value, del)
	if err != nil {
		s.writeError(w, err)
		return
	}
	detail := fmt.Sprintf("version %d", doc.Version)
	if del {
		detail = "deleted"
	}
	s.audit(r, by, sitestate.AuditConfigChanged, path, detail)
	writeJSON(w, http.StatusOK, doc)
}

// fromOwnHost reports whether r comes from the node's own host (loopback), and answers 403
// with msg when it does not: the first account is created there, and the grid is administered
// from there until it exists.
func fromOwnHost(w http.ResponseWriter, r *http.Request, msg string) bool {
	if fromLoopback(r) {
		return true
	}
	writeError(w, http.StatusForbidden, "forbidden", msg, nil)
	return false
}

// fromLoopback says whether r came from the node's own host: over loopback, or from the very
// address the node listens on (a node bound to its host's address only, as in a container or
// behind systemd's address, is reached from its own host that way).
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	if err != nil || ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lhost, _, err := net.SplitHostPort(local.String())
	return err == nil && net.ParseIP(lhost).Equal(ip)
}

func (s *server) submitCase(w http.ResponseWriter, r *http.Request) {
	var sub casework.Submission
	if !decodeBody(w, r, &sub) {
		return
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" && sub.RequestID == "" {
		sub.RequestID = key
	}
	if err := sub.Validate(); err != nil {
		s.writeError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	c, err := s.cfg.Cases.SubmitCase(ctx, &sub)
	if err != nil {
		s.writeError(w, err)
		return
	}
	w.Header().Set("Location", "/v1/cases/"+c.Number)
	writeJSON(w, http.StatusCreated, c.Public())
}

func (s *server) getCase(w http.ResponseWriter, r *http.Request) {
	number := r.PathValue("number")
	if _, _, _, err := casework.ParseNumber(number); err != nil {
		s.writeError(w, casework.FieldErrors{{Field: "number", Reason: "is not a case number (<site>-<yyyymmdd>-<6 digits>)"}})
		return
	}
	if code, ok := queryCode(r); ok {
		v, err := s.cfg.Cases.CitizenView(r.Context(), number, code, clientAddr(r))
		if err != nil {
			s.writeError(w, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, v)
		return
	}
	s.staff(s.getWholeCase)(w, r)
}

// getWholeCase answers a member of staff the whole record of a case, and audits the read.
func (s *server) getWholeCase(w http.ResponseWriter, r *http.Request) {
	c, err := s.cfg.Cases.GetCase(r.Context(), r.PathValue("number"))
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.audit(r, auth.FromContext(r.Context()), sitestate.AuditRecordRead, c.Number, "")
	writeJSON(w, http.StatusOK, c.Public())
}

// queryCode is the citizen's query code of a request: the query_code parameter or the
// X-Query-Code header.
func queryCode(r *http.Request) (string, bool) {
	if r.URL.Query().Has("query_code") {
		return r.URL.Query().Get("query_code"), true
	}
	if v := r.Header.Get("X-Query-Code"); v != "" {
		return v, true
	}
	return "", false
}

// clientAddr is the address a request came from, without its port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *server) listCases(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := api.ListRequest{
		Scope: q.Get("scope"), Status: q.Get("status"), Kind: q.Get("kind"), ItemCode: q.Get("item_code"),
		Site: q.Get("site"), Tier: q.Get("tier"), PageToken: q.Get("page_token"),
	}
	var fe casework.FieldErrors
	for name, dst := range map[string]*time.Time{"from": &req.From, "to": &req.To} {
		if v := q.Get(name); v != "" {
			t, err := parseTime(v, s.cfg.Location)
			if err != nil {
				fe = append(fe, casework.FieldError{Field: name, Reason: "must be a date (2026-11-25) or an RFC 3339 time"})
			}
			*dst = t
		}
	}
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			fe = append(fe, casework.FieldError{Field: "page_size", Reason: fmt.Sprintf("must be a number, 1 to %d (0 or absent: %d)", sitestate.MaxPageSize, sitestate.DefaultPageSize)})
		}
		req.PageSize = n // its range is ListRequest.Check's, as for gRPC
	}
	f, subtree, err := req.Check()
	var more casework.FieldErrors
	if errors.As(err, &more) {
		fe = append(fe, more...)
	}
	if len(fe) > 0 {
		s.writeError(w, fe)
		return
	}
	if subtree {
		s.listSubtree(w, r, f)
		return
	}
	page, err := s.cfg.Cases.ListCases(r.Context(), f.Filter)
	if err != nil {
		s.writeError(w, err)
		return
	}
	out := api.CasePage{Cases: make([]api.CaseSummary, 0, len(page.Cases)), NextPageToken: page.NextPageToken}
	for _, c := range page.Cases {
		out.Cases = append(out.Cases, api.NewCaseSummary(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) listSubtree(w http.ResponseWriter, r *http.Request, f sitestate.SubtreeFilter) {
	page, err := s.cfg.Cases.ListSubtree(r.Context(), f)
	if err != nil {
		s.writeError(w, err)
		return
	}
	out := api.SubtreePage{Cases: make([]api.MirroredCase, 0, len(page.Records)), NextPageToken: page.NextPageToken}
	now := time.Now()
	for _, rec := range page.Records {
		out.Cases = append(out.Cases, api.MirroredCase{CaseSummary: api.NewCaseSummary(rec.Case), Mirror: api.MirrorInfo{
			Origin: rec.Origin, CommittedAt: rec.At, MirroredAt: rec.MirroredAt,
			DelaySeconds: rec.MirroredAt.Sub(rec.At).Seconds(), AgeSeconds: now.Sub(rec.MirroredAt).Seconds(),
		}})
	}
	writeJSON(w, http.StatusOK, out)
}

// parseTime accepts a day in the grid's zone or a full RFC 3339 time.
func parseTime(v string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.ParseInLocation("2006-01-02", v, loc)
}

// decodeBody reads a JSON body (whatever Content-Type says: curl sends a form type by default) of at most MaxBodyBytes into dst, refusing unknown fields. It
// writes the error answer itself and returns false when the body is unusable.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) bool {
	return decodeBodyOf(w, r, dst, MaxBodyBytes)
}

// decodeBodyOf is decodeBody for a body of at most limit bytes.
func decodeBodyOf(w http.ResponseWriter, r *http.Request, dst any, limit int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		// Read to the end: trailing garbage is an error, and so is padding past the limit.
		if _, terr := dec.Token(); terr != io.EOF {
			err = terr
			if err == nil {
				err = errors.New("more than one JSON value in the body")
			}
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is larger than %d bytes", limit), nil)
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, sitestate.CodeInvalid, "the body is empty: send a JSON object", nil)
	default:
		writeError(w, http.StatusBadRequest, sitestate.CodeInvalid, "the body is not valid JSON for this request: "+err.Error(), nil)
	}
	return false
}

func (s *server) writeError(w http.ResponseWriter, err error) {
	status, _, code := api.Status(err)
	var fields casework.FieldErrors
	var re *sitestate.Error
	var problems catalog.Problems
	switch {
	case errors.As(err, &fields):
	case errors.As(err, &problems):
		fields = problemFields(problems)
	case errors.As(err, &re):
		fields = re.Fields
	}
	msg := err.Error()
	if status == http.StatusNotFound && re == nil {
		msg = "no such case"
	}
	if status == http.StatusInternalServerError {
		// The text of an internal error is for the operator, not the caller: it goes to the
		// log under an id the answer names.
		id := api.NewRequestID()
		if s.cfg.Logger != nil {
			s.cfg.Logger.Error("request failed", "request_id", id, "error", err)
		}
		w.Header().Set("X-Request-Id", id)
		writeError(w, status, code, "internal error: request id "+id+" (the node's log has the details)", nil)
		return
	}
	if status >= 500 && s.cfg.Logger != nil {
		s.cfg.Logger.Warn("request failed", "status", status, "error", err)
	}
	writeError(w, status, code, msg, fields)
}

func writeError(w http.ResponseWriter, status int, code, msg string, fields casework.FieldErrors) {
	b := api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg, Fields: fields}}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
