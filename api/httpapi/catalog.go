package httpapi

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/catalog"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/tier"
)

// CatalogService is what the catalogue endpoints need: the node implements it.
type CatalogService interface {
	// Catalog is the catalogue in force at this site.
	Catalog() (*catalog.Catalog, error)
	// ImportCatalog adds or replaces a validated file's departments and items.
	ImportCatalog(ctx context.Context, f *catalog.File) (*api.CatalogImport, error)
	// PutCatalogItem adds or replaces one item; DeleteCatalogItem removes one this site owns.
	PutCatalogItem(ctx context.Context, it catalog.Item) (*catalog.Entry, error)
	DeleteCatalogItem(ctx context.Context, code string) error
}

func (s *server) routeCatalog(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/catalog/items", s.searchCatalog)
	mux.HandleFunc("GET /v1/catalog/items/{code}", s.getCatalogItem)
	mux.HandleFunc("GET /v1/catalog/items/{code}/notice", s.getNotice)
	mux.HandleFunc("GET /v1/catalog/departments", s.getDepartments)
	mux.HandleFunc("GET /v1/catalog/export", s.exportCatalog)
	mux.HandleFunc("POST /v1/catalog/import", s.importCatalog)
	mux.HandleFunc("PUT /v1/catalog/items/{code}", s.putCatalogItem)
	mux.HandleFunc("DELETE /v1/catalog/items/{code}", s.deleteCatalogItem)
}

// catalogPage is the answer of a catalogue search.
type catalogPage struct {
	Items         []catalog.Entry `json:"items"`
	Total         int             `json:"total"`
	NextPageToken string          `json:"next_page_token,omitempty"`
}

// searchCatalog: GET /v1/catalog/items?q=&department=&tier=&mode=&type=&page_size=&page_token=
func (s *server) searchCatalog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var fe casework.FieldErrors
	query := catalog.Query{Text: q.Get("q"), Department: q.Get("department"), After: q.Get("page_token"), Limit: 50}
	if v := q.Get("tier"); v != "" {
		t, err := tier.Parse(v)
		if err != nil {
			fe = append(fe, casework.FieldError{Field: "tier", Reason: err.Error()})
		}
		query.Tier = t
	}
	if v := q.Get("mode"); v != "" {
		if query.Mode = catalog.Mode(v); !slices.Contains(catalog.Modes, query.Mode) {
			fe = append(fe, casework.FieldError{Field: "mode", Reason: "want immediate, promised, joint or reported"})
		}
	}
	if v := q.Get("type"); v != "" {
		if query.Type = catalog.ItemType(v); !slices.Contains(catalog.Types, query.Type) {
			fe = append(fe, casework.FieldError{Field: "type", Reason: "want administrative_licence, public_service or convenience_service"})
		}
	}
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			fe = append(fe, casework.FieldError{Field: "page_size", Reason: "1 to 500"})
		}
		query.Limit = n
	}
	if len(fe) > 0 {
		s.writeError(w, fe)
		return
	}
	cat, err := s.cfg.Catalog.Catalog()
	if err != nil {
		s.writeError(w, err)
		return
	}
	p := cat.Search(query)
	writeJSON(w, http.StatusOK, catalogPage{Items: p.Items, Total: p.Total, NextPageToken: p.Next})
}

func (s *server) catalogItem(w http.ResponseWriter, r *http.Request) (*catalog.Catalog, *catalog.Entry) {
	cat, err := s.cfg.Catalog.Catalog()
	if err != nil {
		s.writeError(w, err)
		return nil, nil
	}
	e, ok := cat.Item(r.PathValue("code"))
	if !ok {
		s.writeError(w, sitestate.Errorf(sitestate.CodeNotFound, "no item %s in the catalogue", catalog.NormalizeCode(r.PathValue("code"))))
		return nil, nil
	}
	return cat, e
}

func (s *server) getCatalogItem(w http.ResponseWriter, r *http.Request) {
	if _, e := s.catalogItem(w, r); e != nil {
		writeJSON(w, http.StatusOK, e)
	}
}

func (s *server) getNotice(w http.ResponseWriter, r *http.Request) {
	cat, e := s.catalogItem(w, r)
	if e == nil {
		return
	}
	n, _ := cat.Notice(e.Code)
	writeJSON(w, http.StatusOK, n)
}

func (s *server) getDepartments(w http.ResponseWriter, r *http.Request) {
	cat, err := s.cfg.Catalog.Catalog()
	if err != nil {
		s.writeError(w, err)
		return
	}
	depts := cat.Departments
	if depts == nil {
		depts = []catalog.Department{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"departments": depts})
}

// exportCatalog: GET /v1/catalog/export?format=json|csv, the catalogue in force as a file that
// import takes back.
func (s *server) exportCatalog(w http.ResponseWriter, r *http.Request) {
	format := catalog.Format(r.URL.Query().Get("format"))
	if format == "" {
		format = catalog.FormatJSON
	}
	if format != catalog.FormatJSON && format != catalog.FormatCSV {
		s.writeError(w, casework.FieldErrors{{Field: "format", Reason: "json or csv"}})
		return
	}
	cat, err := s.cfg.Catalog.Catalog()
	if err != nil {
		s.writeError(w, err)
		return
	}
	f := &catalog.File{Departments: cat.Departments, Items: make([]catalog.Item, len(cat.Items))}
	if f.Departments == nil {
		f.Departments = []catalog.Department{}
	}
	for i, e := range cat.Items {
		f.Items[i] = e.Item
	}
	if format == catalog.FormatCSV {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="catalog.csv"`)
		_ = catalog.WriteCSV(w, f)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = catalog.WriteJSON(w, f)
}

// importCatalog: POST /v1/catalog/import, a catalogue file as the body (text/csv for CSV, JSON
// otherwise). Every problem is answered at once, by line, and nothing is written.
func (s *server) importCatalog(w http.ResponseWriter, r *http.Request) {
	by, ok := s.administer(w, r)
	if !ok {
		return
	}
	format := catalog.FormatJSON
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "text/csv" {
		format = catalog.FormatCSV
	}
	body := http.MaxBytesReader(w, r.Body, catalog.MaxFileBytes)
	f, err := catalog.Read(body, format, s.knownDepartments())
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("a catalogue file is at most %d bytes", catalog.MaxFileBytes), nil)
		return
	}
	if err != nil {
		s.writeError(w, err)
		return
	}
	res, err := s.cfg.Catalog.ImportCatalog(r.Context(), f)
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.audit(r, by, sitestate.AuditCatalogChanged, "import", fmt.Sprintf("%d departments, %d items, %d documents changed", res.Departments, res.Items, res.Changed))
	writeJSON(w, http.StatusOK, res)
}

func (s *server) knownDepartments() map[string]bool {
	cat, err := s.cfg.Catalog.Catalog()
	if err != nil {
		return nil
	}
	return cat.DepartmentCodes()
}

// putCatalogItem: PUT /v1/catalog/items/{code}, the item as the body.
func (s *server) putCatalogItem(w http.ResponseWriter, r *http.Request) {
	by, ok := s.administer(w, r)
	if !ok {
		return
	}
	var it catalog.Item
	if !decodeBodyOf(w, r, &it, sitestate.MaxConfigValue) {
		return
	}
	if it.Code == "" {
		it.Code = r.PathValue("code")
	}
	if catalog.NormalizeCode(it.Code) != catalog.NormalizeCode(r.PathValue("code")) {
		s.writeError(w, casework.FieldErrors{{Field: "code", Reason: fmt.Sprintf("%q differs from the path's %q", it.Code, r.PathValue("code"))}})
		return
	}
	e, err := s.cfg.Catalog.PutCatalogItem(r.Context(), it)
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.audit(r, by, sitestate.AuditCatalogChanged, e.Code, fmt.Sprintf("put, version %d", e.Version))
	writeJSON(w, http.StatusOK, e)
}

func (s *server) deleteCatalogItem(w http.ResponseWriter, r *http.Request) {
	by, ok := s.administer(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Catalog.DeleteCatalogItem(r.Context(), r.PathValue("code")); err != nil {
		s.writeError(w, err)
		return
	}
	s.audit(r, by, sitestate.AuditCatalogChanged, catalog.NormalizeCode(r.PathValue("code")), "deleted")
	w.WriteHeader(http.StatusNoContent)
}

// problemFields turns a catalogue's problems into the fields of an error body, each field
// naming its line and item: "line 12: MZ-001: materials[0].name".
func problemFields(ps catalog.Problems) casework.FieldErrors {
	out := make(casework.FieldErrors, len(ps))
	for i, p := range ps {
		var b strings.Builder
		if p.Line > 0 {
			fmt.Fprintf(&b, "line %d: ", p.Line)
		}
		if p.Item != "" {
			fmt.Fprintf(&b, "%s: ", p.Item)
		}
		b.WriteString(p.Field)
		out[i] = casework.FieldError{Field: b.String(), Reason: p.Reason}
	}
	return out
}
