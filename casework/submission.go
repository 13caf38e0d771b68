package casework

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on the size of a submission's fields, in characters (runes) unless said otherwise.
const (
	MaxTitle       = 200
	MaxDescription = 4000
	MaxName        = 100
	MaxMaterials   = 50
	MaxItemCode    = 64
	MaxRequestID   = 128
	MaxActor       = 64
)

// Submission is what a window clerk or grid worker hands in to open a case.
type Submission struct {
	Kind        Kind       `json:"kind"`
	ItemCode    string     `json:"item_code"`
	Title       string     `json:"title"`
	Description string     `json:"description,omitempty"`
	Applicant   *Applicant `json:"applicant"`
	Materials   []Material `json:"materials"`
	DecideTier  string     `json:"decide_tier,omitempty"`
	// CollectSite is where the applicant will collect the certificate (一站式领证); empty: the
	// site that takes the case in.
	CollectSite string `json:"collect_site,omitempty"`
	// RequestID, when set, makes the submission idempotent: a retry with the same ID answers
	// with the case the first attempt created.
	RequestID string `json:"request_id,omitempty"`
	Actor     string `json:"actor,omitempty"`
}

// FieldError names one invalid field of a request and why it is invalid.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// FieldErrors is every problem found in one request; it is an error when not empty.
type FieldErrors []FieldError

func (fe FieldErrors) Error() string {
	parts := make([]string, len(fe))
	for i, e := range fe {
		parts[i] = e.Field + ": " + e.Reason
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

func (fe *FieldErrors) add(field, format string, args ...any) {
	*fe = append(*fe, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// Validate checks s and returns every problem found, or nil. It checks form only: whether the
// item exists in the catalogue is the catalogue's business.
func (s *Submission) Validate() error {
	var fe FieldErrors
	if !s.Kind.Valid() {
		fe.add("kind", "must be %q or %q", KindApplication, KindGrievance)
	}
	checkText(&fe, "item_code", s.ItemCode, MaxItemCode, s.Kind == KindApplication)
	if s.ItemCode != "" && !isCode(s.ItemCode) {
		fe.add("item_code", "may hold only letters, digits, '-', '_' and '.'")
	}
	checkText(&fe, "title", s.Title, MaxTitle, true)
	checkText(&fe, "description", s.Description, MaxDescription, false)
	checkText(&fe, "request_id", s.RequestID, MaxRequestID, false)
	checkText(&fe, "actor", s.Actor, MaxActor, false)
	checkText(&fe, "collect_site", s.CollectSite, MaxItemCode, false)
	if s.CollectSite != "" && !isCode(s.CollectSite) {
		fe.add("collect_site", "must be a site code")
	}
	switch s.DecideTier {
	case "", "community", "township", "district":
	default:
		fe.add("decide_tier", "must be community, township or district")
	}
	if s.Applicant == nil {
		fe.add("applicant", "is required")
	} else {
		checkText(&fe, "applicant.name", s.Applicant.Name, MaxName, true)
		if r := idNumberProblem(s.Applicant.IDNumber); r != "" {
			fe.add("applicant.id_number", "%s", r)
		}
		if !isPhone(s.Applicant.Phone) {
			fe.add("applicant.phone", "must be a mobile (11 digits) or landline number")
		}
	}
	if len(s.Materials) > MaxMaterials {
		fe.add("materials", "at most %d", MaxMaterials)
	}
	for i, m := range s.Materials {
		checkText(&fe, fmt.Sprintf("materials[%d].name", i), m.Name, MaxName, true)
		if m.Digest != "" && !isHexDigest(m.Digest) {
			fe.add(fmt.Sprintf("materials[%d].digest", i), "must be a hex SHA-256 (64 characters)")
		}
		if m.Pages < 0 || m.Pages > 10000 {
			fe.add(fmt.Sprintf("materials[%d].pages", i), "must be between 0 and 10000")
		}
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

func checkText(fe *FieldErrors, field, v string, max int, required bool) {
	switch {
	case !utf8.ValidString(v):
		fe.add(field, "is not valid UTF-8")
	case required && strings.TrimSpace(v) == "":
		fe.add(field, "is required")
	case len(v) > max && utf8.RuneCountInString(v) > max: // a rune takes a byte at least
		fe.add(field, "is longer than %d characters", max)
	}
}

func isCode(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

// isPhone accepts an 11-digit mainland mobile number or a landline such as 0971-8123456.
func isPhone(s string) bool {
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '-' && i > 0:
		default:
			return false
		}
	}
	if len(s) == 11 && s[0] == '1' && digits == 11 {
		return true
	}
	return s != "" && s[0] == '0' && digits >= 10 && digits <= 12
}

// idNumberProblem checks the form of a resident identity card number (居民身份证号码): 17
// digits and a check character (digit or X) with a real birth date in it. The check character's
// checksum is not enforced: counters meet old and hand-copied numbers, and refusing a resident
// over a copying slip the clerk can fix later does more harm than good.
func idNumberProblem(s string) string {
	if len(s) != 18 {
		return "must be 18 characters"
	}
	for i := 0; i < 17; i++ {
		if s[i] < '0' || s[i] > '9' {
			return "must be 17 digits followed by a digit or X"
		}
	}
	if c := s[17]; !(c >= '0' && c <= '9' || c == 'X' || c == 'x') {
		return "must be 17 digits followed by a digit or X"
	}
	birth, err := time.Parse("20060102", s[6:14])
	if err != nil || birth.Year() < 1900 {
		return "has no valid birth date"
	}
	return ""
}

// MaskIDNumber hides the middle of an identity card number for lists and logs (6301**********1234).
func MaskIDNumber(s string) string {
	if len(s) < 10 {
		return strings.Repeat("*", len(s))
	}
	return s[:4] + strings.Repeat("*", len(s)-8) + s[len(s)-4:]
}
