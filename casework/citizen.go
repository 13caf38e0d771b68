package casework

import (
	"strings"
	"time"
	"unicode/utf8"
)

// CitizenView is what the citizen who holds a case's query code sees of it: where it is and what
// happened to it, without staff notes, the staff's names, or anything of the applicant that the
// code's bearer could not already know (name, ID number and phone masked).
type CitizenView struct {
	Number     string `json:"number"`
	Kind       Kind   `json:"kind"`
	ItemCode   string `json:"item_code,omitempty"`
	Title      string `json:"title"`
	Status     Status `json:"status"`
	HolderSite string `json:"holder_site"`
	// InTransitTo names the site the case is on its way to, while it travels.
	InTransitTo string          `json:"in_transit_to,omitempty"`
	Applicant   Applicant       `json:"applicant"`
	Materials   []string        `json:"materials"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Timeline    []CitizenMoment `json:"timeline"`
	// Missing is the one-time notice of a supplement request (一次性告知): every material still to
	// be handed in, while the case waits for them.
	Missing []string `json:"missing,omitempty"`
	// Decision (approved, denied) once decided; CollectSite is where to collect the certificate.
	Decision    string `json:"decision,omitempty"`
	CollectSite string `json:"collect_site"`
	// Seal is the decision's certificate, signed by the deciding site (it names the applicant
	// masked, as here).
	Seal *Seal `json:"seal,omitempty"`
}

// CitizenMoment is one event of a case as the citizen sees it: what, when and where.
type CitizenMoment struct {
	Type     EventType `json:"type"`
	At       time.Time `json:"at"`
	Site     string    `json:"site"`
	ToStatus Status    `json:"to_status"`
	ToSite   string    `json:"to_site,omitempty"`
}

// CitizenView is c as its citizen sees it.
func (c *Case) CitizenView() CitizenView {
	v := CitizenView{
		Number: c.Number, Kind: c.Kind, ItemCode: c.ItemCode, Title: c.Title, Status: c.Status,
		HolderSite: c.HolderSite, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		Applicant: Applicant{Name: MaskName(c.Applicant.Name), IDNumber: MaskIDNumber(c.Applicant.IDNumber), Phone: MaskPhone(c.Applicant.Phone)},
		Materials: make([]string, len(c.Materials)), Timeline: make([]CitizenMoment, len(c.History)),
		Missing: c.Missing, Decision: c.Decision, CollectSite: c.CollectionSite(), Seal: c.Seal,
	}
	if c.Transit != nil {
		v.InTransitTo = c.Transit.To
	}
	for i, m := range c.Materials {
		v.Materials[i] = m.Name
	}
	for i, e := range c.History {
		v.Timeline[i] = CitizenMoment{Type: e.Type, At: e.At, Site: e.Site, ToStatus: e.ToStatus, ToSite: e.ToSite}
	}
	return v
}

// MaskName keeps a name's first character (the family name, for most Chinese names): 张*, 欧阳**.
func MaskName(s string) string {
	n := utf8.RuneCountInString(s)
	if n <= 1 {
		return strings.Repeat("*", n)
	}
	keep := 1
	if n >= 4 { // a compound family name (欧阳, 司马), or a long name: keep two
		keep = 2
	}
	size := 0
	for range keep {
		_, w := utf8.DecodeRuneInString(s[size:])
		size += w
	}
	return s[:size] + strings.Repeat("*", n-keep)
}

// MaskPhone keeps a phone number's first three and last four digits: 139****0001.
func MaskPhone(s string) string {
	if len(s) < 8 {
		return strings.Repeat("*", len(s))
	}
	return s[:3] + strings.Repeat("*", len(s)-7) + s[len(s)-4:]
}
