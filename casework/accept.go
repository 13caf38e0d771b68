package casework

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Acceptance is what the site leader decided for a new case before proposing it: its number,
// the time, the site and the hash of the citizen's query code.
type Acceptance struct {
	Number        string
	Site          string
	At            time.Time
	QueryCodeHash string
}

// Accept opens a case from a valid submission. It is deterministic: the same submission and
// acceptance give the same case.
func Accept(s *Submission, a Acceptance) (*Case, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	c := &Case{
		Number:        a.Number,
		Kind:          s.Kind,
		ItemCode:      s.ItemCode,
		Title:         s.Title,
		Description:   s.Description,
		Applicant:     *s.Applicant,
		Materials:     append([]Material{}, s.Materials...),
		Status:        StatusSubmitted,
		HolderSite:    a.Site,
		OriginSite:    a.Site,
		DecideTier:    s.DecideTier,
		CollectSite:   s.CollectSite,
		QueryCodeHash: a.QueryCodeHash,
		RequestID:     s.RequestID,
		CreatedAt:     a.At,
	}
	c.appendEvent(Event{Type: EventSubmitted, At: a.At, Site: a.Site, Actor: s.Actor, ToStatus: StatusSubmitted})
	return c, nil
}

// FormatNumber builds a case number: <site>-<yyyymmdd>-<6-digit sequence>.
func FormatNumber(site, day string, seq uint32) string {
	return fmt.Sprintf("%s-%s-%06d", site, day, seq)
}

// ParseNumber splits a case number into its site, day (yyyymmdd) and sequence. Site codes may
// themselves hold '-', so the number is split from the right.
func ParseNumber(n string) (site, day string, seq uint32, err error) {
	i := strings.LastIndexByte(n, '-')
	if i <= 0 {
		return "", "", 0, fmt.Errorf("casework: %q is not a case number", n)
	}
	j := strings.LastIndexByte(n[:i], '-')
	if j <= 0 {
		return "", "", 0, fmt.Errorf("casework: %q is not a case number", n)
	}
	site, day, seqText := n[:j], n[j+1:i], n[i+1:]
	if len(day) != 8 || len(seqText) != 6 {
		return "", "", 0, fmt.Errorf("casework: %q is not a case number", n)
	}
	if _, err := time.Parse("20060102", day); err != nil {
		return "", "", 0, fmt.Errorf("casework: %q has no valid date", n)
	}
	v, err := strconv.ParseUint(seqText, 10, 32)
	if err != nil {
		return "", "", 0, fmt.Errorf("casework: %q has no valid sequence", n)
	}
	return site, day, uint32(v), nil
}

// HashQueryCode hashes a citizen's query code, salted with the submission's request id so that
// equal codes on two cases hash differently. The code itself is never stored or logged.
func HashQueryCode(requestID, code string) string {
	sum := sha256.Sum256([]byte(requestID + "\x00" + code))
	return hex.EncodeToString(sum[:])
}

// CheckQueryCode reports whether code is the query code issued for c.
func (c *Case) CheckQueryCode(code string) bool {
	want := HashQueryCode(c.RequestID, code)
	return subtle.ConstantTimeCompare([]byte(want), []byte(c.QueryCodeHash)) == 1
}
