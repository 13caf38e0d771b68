package api

import (
	"fmt"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/tier"
)

// ListRequest is a case listing as both front ends receive it, before it is checked: the HTTP
// query parameters and the gRPC ListCasesRequest fields, one for one.
type ListRequest struct {
	// Scope is local (the cases this site holds, the default) or subtree (its mirror).
	Scope    string
	Status   string
	Kind     string
	ItemCode string
	// Site and Tier select holders, in the subtree only.
	Site, Tier string
	From, To   time.Time
	// PageSize is 0 (DefaultPageSize) or 1 to MaxPageSize.
	PageSize  int
	PageToken string
}

// Check validates r and returns the filter it asks for and whether it lists the subtree, or every
// problem found at once as casework.FieldErrors.
func (r ListRequest) Check() (f sitestate.SubtreeFilter, subtree bool, err error) {
	var fe casework.FieldErrors
	add := func(field, reason string) { fe = append(fe, casework.FieldError{Field: field, Reason: reason}) }
	f.Filter = sitestate.Filter{
		Status: casework.Status(r.Status), Kind: casework.Kind(r.Kind), ItemCode: r.ItemCode,
		From: r.From, To: r.To, Limit: r.PageSize, PageToken: r.PageToken,
	}
	if f.Kind != "" && !f.Kind.Valid() {
		add("kind", "must be application or grievance")
	}
	switch r.Scope {
	case "", "local":
	case "subtree":
		subtree = true
	default:
		add("scope", "must be local or subtree")
	}
	if (r.Site != "" || r.Tier != "") && !subtree {
		add("scope", "site and tier filter the subtree: set scope to subtree")
	}
	if r.Tier != "" {
		if _, err := tier.Parse(r.Tier); err != nil {
			add("tier", "must be district, township or community")
		}
	}
	if r.Site != "" && tier.ValidateSiteCode(r.Site) != nil {
		add("site", "is not a site code")
	}
	if r.PageSize < 0 || r.PageSize > sitestate.MaxPageSize {
		add("page_size", fmt.Sprintf("must be 1 to %d (0 or absent: %d)", sitestate.MaxPageSize, sitestate.DefaultPageSize))
	}
	if !r.From.IsZero() && !r.To.IsZero() && !r.To.After(r.From) {
		add("to", "must be after from")
	}
	if len(fe) > 0 {
		return f, subtree, fe
	}
	f.Site, f.Tier = r.Site, r.Tier
	return f, subtree, nil
}
