package casework

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var shanghai = time.FixedZone("CST", 8*3600)

func testAcceptance() Acceptance {
	return Acceptance{
		Number:        "cd-dgdj-ngj-20261125-000042",
		Site:          "cd-dgdj-ngj",
		At:            time.Date(2026, 11, 25, 9, 30, 15, 123456789, shanghai),
		QueryCodeHash: HashQueryCode("req-1", "123456"),
	}
}

func mustAccept(t *testing.T) *Case {
	t.Helper()
	c, err := Accept(validSubmission(), testAcceptance())
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	return c
}

func isHex64(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32
}

func TestAccept(t *testing.T) {
	s := validSubmission()
	a := testAcceptance()
	c, err := Accept(s, a)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	want := &Case{
		Number:        a.Number,
		Kind:          s.Kind,
		ItemCode:      s.ItemCode,
		Title:         s.Title,
		Description:   s.Description,
		Applicant:     *s.Applicant,
		Materials:     s.Materials,
		Status:        StatusSubmitted,
		HolderSite:    a.Site,
		OriginSite:    a.Site,
		DecideTier:    s.DecideTier,
		Version:       1,
		QueryCodeHash: a.QueryCodeHash,
		RequestID:     s.RequestID,
		CreatedAt:     a.At,
		UpdatedAt:     a.At,
		History:       c.History, // checked below
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Accept =\n %+v\nwant\n %+v", c, want)
	}
	if len(c.History) != 1 {
		t.Fatalf("history has %d events, want 1", len(c.History))
	}
	e := c.History[0]
	if e.Seq != 1 || e.Type != EventSubmitted || !e.At.Equal(a.At) || e.Site != a.Site ||
		e.Actor != s.Actor || e.Note != "" || e.FromStatus != "" || e.ToStatus != StatusSubmitted || e.PrevHash != "" {
		t.Errorf("submitted event = %+v", e)
	}
	if !isHex64(e.Hash) {
		t.Errorf("event hash %q is not 64 hex characters", e.Hash)
	}
	if c.LastHash() != e.Hash {
		t.Errorf("LastHash = %q, want %q", c.LastHash(), e.Hash)
	}
	if err := c.VerifyHistory(); err != nil {
		t.Errorf("VerifyHistory: %v", err)
	}
	if c.QueryCode != "" {
		t.Errorf("Accept set QueryCode %q; only the answer to the submitter carries it", c.QueryCode)
	}
}

func TestAcceptRefusesInvalid(t *testing.T) {
	s := validSubmission()
	s.Applicant = nil
	s.Title = ""
	c, err := Accept(s, testAcceptance())
	if c != nil {
		t.Errorf("Accept returned a case for an invalid submission: %+v", c)
	}
	if got, want := fieldsOf(t, err), []string{"applicant", "title"}; !reflect.DeepEqual(got, want) {
		t.Errorf("fields = %q, want %q", got, want)
	}
}

func TestAcceptCopiesInput(t *testing.T) {
	s := validSubmission()
	c, err := Accept(s, testAcceptance())
	if err != nil {
		t.Fatal(err)
	}
	s.Materials[0].Name = "changed"
	s.Applicant.Name = "changed"
	if c.Materials[0].Name == "changed" || c.Applicant.Name == "changed" {
		t.Errorf("the case shares memory with the submission: %+v", c)
	}
}

func TestAcceptDeterministic(t *testing.T) {
	for i := 0; i < 3; i++ {
		a, err := Accept(validSubmission(), testAcceptance())
		if err != nil {
			t.Fatal(err)
		}
		b, err := Accept(validSubmission(), testAcceptance())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("two Accepts of the same input differ:\n%+v\n%+v", a, b)
		}
	}
	// The hash depends on the instant, not on the zone it is written in.
	a1 := testAcceptance()
	a2 := a1
	a2.At = a1.At.UTC()
	c1, _ := Accept(validSubmission(), a1)
	c2, _ := Accept(validSubmission(), a2)
	if c1.LastHash() != c2.LastHash() {
		t.Errorf("the same instant in two zones hashes differently")
	}
	// ...and any change to the input changes it.
	a3 := a1
	a3.At = a1.At.Add(time.Nanosecond)
	c3, _ := Accept(validSubmission(), a3)
	if c3.LastHash() == c1.LastHash() {
		t.Errorf("a different time gave the same hash")
	}
	s := validSubmission()
	s.Actor = "clerk-08"
	c4, _ := Accept(s, a1)
	if c4.LastHash() == c1.LastHash() {
		t.Errorf("a different actor gave the same hash")
	}
}

// threeEventCase is an accepted case with two more events, so tampering can be tried at the
// start, middle and end of a chain.
func threeEventCase(t *testing.T) *Case {
	t.Helper()
	c := mustAccept(t)
	at := c.CreatedAt
	c.appendEvent(Event{Type: "assigned", At: at.Add(time.Hour), Site: "cd-dgdj-ngj", Actor: "lead-1",
		Note: "to window 3", FromStatus: StatusSubmitted, ToStatus: "assigned"})
	c.appendEvent(Event{Type: "moved", At: at.Add(2 * time.Hour), Site: "cd-dgdj", Actor: "lead-2",
		Note: "escalated", FromStatus: "assigned", ToStatus: "escalated"})
	if err := c.VerifyHistory(); err != nil {
		t.Fatalf("VerifyHistory on an untouched chain: %v", err)
	}
	if c.Version != 3 || len(c.History) != 3 {
		t.Fatalf("version %d, %d events; want 3, 3", c.Version, len(c.History))
	}
	for i, e := range c.History {
		if e.Seq != uint64(i)+1 {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
		if i > 0 && e.PrevHash != c.History[i-1].Hash {
			t.Fatalf("event %d does not link to its predecessor", i)
		}
	}
	return c
}

func TestVerifyHistoryDetectsTampering(t *testing.T) {
	tampers := map[string]func(e *Event){
		"seq":             func(e *Event) { e.Seq += 10 },
		"type":            func(e *Event) { e.Type = "withdrawn" },
		"at":              func(e *Event) { e.At = e.At.Add(time.Nanosecond) },
		"site":            func(e *Event) { e.Site = "elsewhere" },
		"actor":           func(e *Event) { e.Actor += "x" },
		"actor cleared":   func(e *Event) { e.Actor = "" },
		"note":            func(e *Event) { e.Note = "forged" },
		"from_status":     func(e *Event) { e.FromStatus = "closed" },
		"to_status":       func(e *Event) { e.ToStatus = "closed" },
		"prev_hash":       func(e *Event) { e.PrevHash = strings.Repeat("0", 64) },
		"hash":            func(e *Event) { e.Hash = strings.Repeat("0", 64) },
		"hash case":       func(e *Event) { e.Hash = strings.ToUpper(e.Hash) },
		"actor into note": func(e *Event) { e.Note = e.Actor + e.Note; e.Actor = "" },
	}
	for name, tamper := range tampers {
		for i := 0; i < 3; i++ {
			c := threeEventCase(t)
			before := c.History[i]
			tamper(&c.History[i])
			if reflect.DeepEqual(before, c.History[i]) {
				continue // the tamper is a no-op on this event
			}
			err := c.VerifyHistory()
			var he *HistoryError
			if !errors.As(err, &he) {
				t.Errorf("%s on event %d: VerifyHistory = %v, want a HistoryError", name, i+1, err)
				continue
			}
			if he.Seq != c.History[i].Seq {
				t.Errorf("%s on event %d: error names event %d", name, i+1, he.Seq)
			}
			if !strings.HasPrefix(he.Error(), "casework: event ") {
				t.Errorf("error text %q", he.Error())
			}
		}
	}
}

func TestVerifyHistoryDetectsRemovalAndReordering(t *testing.T) {
	for i := 0; i < 2; i++ { // the first and the middle event
		c := threeEventCase(t)
		c.History = append(c.History[:i:i], c.History[i+1:]...)
		if err := c.VerifyHistory(); err == nil {
			t.Errorf("removing event %d went unnoticed", i+1)
		}
	}
	c := threeEventCase(t)
	c.History[1], c.History[2] = c.History[2], c.History[1]
	if err := c.VerifyHistory(); err == nil {
		t.Errorf("swapping events 2 and 3 went unnoticed")
	}
	c = threeEventCase(t)
	c.History = append(c.History, c.History[2])
	if err := c.VerifyHistory(); err == nil {
		t.Errorf("a duplicated event went unnoticed")
	}
	// Renumbering after a removal does not help: the links break.
	c = threeEventCase(t)
	c.History = append(c.History[:1:1], c.History[2])
	c.History[1].Seq = 2
	if err := c.VerifyHistory(); err == nil {
		t.Errorf("removing event 2 and renumbering went unnoticed")
	}
}

// Dropping the newest events leaves a shorter chain that is still internally consistent; only
// the case's Version (raised by one per event) can reveal it. VerifyHistory does not look at
// Version today, so this test skips (naming the gap) until it does, and then enforces it.
func TestVerifyHistoryDetectsTruncation(t *testing.T) {
	var gaps []string
	for _, keep := range []int{2, 1, 0} {
		c := threeEventCase(t)
		c.History = c.History[:keep]
		if err := c.VerifyHistory(); err == nil {
			gaps = append(gaps, fmt.Sprintf("cut to %d of 3 events (Version 3)", keep))
		}
	}
	c := mustAccept(t)
	c.History = nil
	if err := c.VerifyHistory(); err == nil {
		gaps = append(gaps, "an accepted case (Version 1) with its only event removed")
	}
	if len(gaps) > 0 {
		t.Errorf("VerifyHistory accepts a truncated history: %s",
			strings.Join(gaps, "; "))
	}
}

func TestNumberRoundTrip(t *testing.T) {
	tests := []struct {
		site, day string
		seq       uint32
		want      string
	}{
		{"cd-dgdj-ngj", "20261125", 42, "cd-dgdj-ngj-20261125-000042"},
		{"cd", "20261125", 1, "cd-20261125-000001"},
		{"x", "20240229", 0, "x-20240229-000000"},
		{"a-b-c-d-e", "19991231", 999999, "a-b-c-d-e-19991231-999999"},
		{"qh.xn_01", "20260101", 123456, "qh.xn_01-20260101-123456"},
	}
	for _, tt := range tests {
		got := FormatNumber(tt.site, tt.day, tt.seq)
		if got != tt.want {
			t.Errorf("FormatNumber(%q, %q, %d) = %q, want %q", tt.site, tt.day, tt.seq, got, tt.want)
		}
		site, day, seq, err := ParseNumber(got)
		if err != nil {
			t.Errorf("ParseNumber(%q): %v", got, err)
			continue
		}
		if site != tt.site || day != tt.day || seq != tt.seq {
			t.Errorf("ParseNumber(%q) = %q, %q, %d; want %q, %q, %d", got, site, day, seq, tt.site, tt.day, tt.seq)
		}
	}
}

func TestParseNumberRejects(t *testing.T) {
	for _, n := range []string{
		"",
		"-",
		"--",
		"cd",
		"cd-20261125",
		"20261125-000001",      // no site
		"-20261125-000001",     // empty site
		"cd--000001",           // empty day
		"cd-20261125-",         // empty sequence
		"cd-20261125-00001",    // 5-digit sequence
		"cd-20261125-0000001",  // 7-digit sequence
		"cd-2026112-000001",    // 7-digit day
		"cd-202611250-000001",  // 9-digit day
		"cd-20261325-000001",   // month 13
		"cd-20260230-000001",   // 30 February
		"cd-20250229-000001",   // not a leap year
		"cd-2026-11-25-000001", // dashed date
		"cd-20261125-00000a",   // letter in the sequence
		"cd-20261125-+00001",   // sign in the sequence
		"cd-20261125--00001",   // sign in the sequence
		"cd-20261125- 00001",   // space in the sequence
		"cd-+0261125-000001",   // sign in the year
		"cd-20261125-000001-",  // trailing hyphen
		"cd-20261125-000001\n", // trailing newline
		"cd-２０２６１１２５-000001",   // full-width digits
		"cd_20261125_000001",   // underscores
	} {
		if site, day, seq, err := ParseNumber(n); err == nil {
			t.Errorf("ParseNumber(%q) = %q, %q, %d; want an error", n, site, day, seq)
		} else if !strings.HasPrefix(err.Error(), "casework: ") {
			t.Errorf("ParseNumber(%q) error %q lacks the package prefix", n, err)
		}
	}
}

func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{
		"cd-dgdj-ngj-20261125-000042", "cd-20261125-000001", "x-20240229-999999",
		"-20261125-000001", "cd-20261125-00001", "cd-2026112-000001", "", "--", "a-b-c",
		"cd-20261125-+00001", "cd-00000101-000000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, n string) {
		site, day, seq, err := ParseNumber(n)
		if err != nil {
			return
		}
		if got := FormatNumber(site, day, seq); got != n {
			t.Fatalf("ParseNumber(%q) = %q, %q, %d, which formats as %q", n, site, day, seq, got)
		}
		if site == "" || len(day) != 8 || seq > 999999 {
			t.Fatalf("ParseNumber(%q) = %q, %q, %d", n, site, day, seq)
		}
		if _, err := time.Parse("20060102", day); err != nil {
			t.Fatalf("ParseNumber(%q) accepted day %q: %v", n, day, err)
		}
	})
}

func TestHashQueryCode(t *testing.T) {
	h := HashQueryCode("req-1", "123456")
	// Golden value: sha256("req-1\x00123456"). Stored cases depend on it; it must never change.
	if want := "ccdad16de25bd3e989094c15b69171950086355500f372bef025ed476f1a02cb"; h != want {
		t.Errorf("HashQueryCode = %s, want %s", h, want)
	}
	if HashQueryCode("req-1", "123456") != h {
		t.Errorf("HashQueryCode is not deterministic")
	}
	if HashQueryCode("req-2", "123456") == h {
		t.Errorf("the request id does not salt the hash")
	}
	if HashQueryCode("req-1", "123457") == h {
		t.Errorf("different codes share a hash")
	}
	if strings.Contains(h, "123456") {
		t.Errorf("the hash shows the code")
	}
	// The separator keeps the salt and the code apart.
	if HashQueryCode("req-11", "23456") == h {
		t.Errorf("moving a character from code to salt keeps the hash")
	}
}

func TestCheckQueryCode(t *testing.T) {
	c := mustAccept(t) // QueryCodeHash = HashQueryCode("req-1", "123456"), RequestID "req-1"
	if !c.CheckQueryCode(nil, "123456") {
		t.Errorf("the issued code does not check")
	}
	if !c.CheckQueryCode(testSecret, "123456") {
		t.Errorf("a legacy hash does not check once the grid has a secret")
	}
	for _, wrong := range []string{"", "12345", "1234567", "654321", "123456 ", "req-1"} {
		if c.CheckQueryCode(nil, wrong) {
			t.Errorf("CheckQueryCode(%q) = true", wrong)
		}
	}
	other := *c
	other.RequestID = "req-2"
	if other.CheckQueryCode(nil, "123456") {
		t.Errorf("the code checks against a case with another request id")
	}
	other = *c
	other.QueryCodeHash = ""
	if other.CheckQueryCode(nil, "123456") || other.CheckQueryCode(nil, "") || other.CheckQueryCode(testSecret, "") {
		t.Errorf("a case without a hash accepts a code")
	}
	other = *c
	other.QueryCodeHash = QueryCodeMAC(testSecret, "req-1", "123456")
	if !other.CheckQueryCode(testSecret, "123456") || other.CheckQueryCode(nil, "123456") {
		t.Errorf("a MACed code: checks %v with the secret (want true), %v without (want false)",
			other.CheckQueryCode(testSecret, "123456"), other.CheckQueryCode(nil, "123456"))
	}
}

// testSecret is a grid secret for the tests: bytes 0..31.
var testSecret = func() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

func TestQueryCodeMAC(t *testing.T) {
	m := QueryCodeMAC(testSecret, "req-1", "123456")
	// Golden value: "h1:" + HMAC-SHA256(key 00..1f, "req-1\x00123456"). Stored cases depend on
	// it; it must never change (a new form takes a new prefix).
	if want := "h1:ab7c153d194e6f414f229886b794d0498b14717d2e9b1c5abbec5fe324627679"; m != want {
		t.Errorf("QueryCodeMAC = %s, want %s", m, want)
	}
	other := append([]byte(nil), testSecret...)
	other[0] ^= 1
	for _, tc := range []struct {
		name string
		got  string
	}{
		{"another request id", QueryCodeMAC(testSecret, "req-2", "123456")},
		{"another code", QueryCodeMAC(testSecret, "req-1", "123457")},
		{"another secret", QueryCodeMAC(other, "req-1", "123456")},
		{"a character moved from code to request id", QueryCodeMAC(testSecret, "req-11", "23456")},
		{"the legacy hash", QueryCodeMACPrefix + HashQueryCode("req-1", "123456")},
	} {
		if tc.got == m {
			t.Errorf("%s: the same MAC %s", tc.name, m)
		}
	}
	if strings.Contains(m, "123456") || strings.Contains(m, HashQueryCode("req-1", "123456")) {
		t.Errorf("the MAC shows the code or its legacy hash: %s", m)
	}
	if d := QueryCodeDigest(testSecret, "req-1", "123456"); d != m {
		t.Errorf("QueryCodeDigest with a secret = %s, want the MAC %s", d, m)
	}
	if d := QueryCodeDigest(nil, "req-1", "123456"); d != HashQueryCode("req-1", "123456") {
		t.Errorf("QueryCodeDigest without a secret = %s, want the legacy hash", d)
	}
}

func TestCheckQueryCodeDigest(t *testing.T) {
	other := append([]byte(nil), testSecret...)
	other[31] ^= 0x80
	mac := QueryCodeMAC(testSecret, "req-1", "123456")
	legacy := HashQueryCode("req-1", "123456")
	for _, tc := range []struct {
		name      string
		secret    []byte
		stored    string
		requestID string
		code      string
		want      bool
	}{
		{"MAC, right code", testSecret, mac, "req-1", "123456", true},
		{"MAC, wrong code", testSecret, mac, "req-1", "654321", false},
		{"MAC, empty code", testSecret, mac, "req-1", "", false},
		{"MAC, other request id", testSecret, mac, "req-2", "123456", false},
		{"MAC, another grid's secret", other, mac, "req-1", "123456", false},
		{"MAC, no secret here", nil, mac, "req-1", "123456", false},
		{"MAC, empty secret here", []byte{}, mac, "req-1", "123456", false},
		{"MAC, upper-case hex", testSecret, "h1:" + strings.ToUpper(strings.TrimPrefix(mac, "h1:")), "req-1", "123456", false},
		{"MAC without its prefix", testSecret, strings.TrimPrefix(mac, "h1:"), "req-1", "123456", false},
		{"MAC, truncated", testSecret, mac[:len(mac)-2], "req-1", "123456", false},
		{"legacy, right code, no secret", nil, legacy, "req-1", "123456", true},
		{"legacy, right code, with a secret", testSecret, legacy, "req-1", "123456", true},
		{"legacy, wrong code", testSecret, legacy, "req-1", "123457", false},
		{"legacy, other request id", nil, legacy, "req-2", "123456", false},
		{"legacy with a MAC prefix", testSecret, "h1:" + legacy, "req-1", "123456", false},
		{"nothing stored", testSecret, "", "req-1", "123456", false},
		{"nothing stored, empty code", nil, "", "req-1", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CheckQueryCodeDigest(tc.secret, tc.stored, tc.requestID, tc.code); got != tc.want {
				t.Errorf("CheckQueryCodeDigest(%q, %q, %q) = %v, want %v", tc.stored, tc.requestID, tc.code, got, tc.want)
			}
		})
	}
}

func TestPublic(t *testing.T) {
	c := mustAccept(t)
	c.QueryCode = "123456"
	p := c.Public()
	if p.QueryCodeHash != "" || p.RequestID != "" {
		t.Errorf("Public kept the hash or its salt: %+v", p)
	}
	if p.QueryCode != "123456" || p.Number != c.Number || p.LastHash() != c.LastHash() {
		t.Errorf("Public dropped more than it should: %+v", p)
	}
	if c.QueryCodeHash == "" || c.RequestID == "" {
		t.Errorf("Public changed the original")
	}
}

func TestSealQueryCode(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	sealed := SealQueryCode(secret, "cd-20261203-000001", "135790")
	if !strings.HasPrefix(sealed, QueryCodeSealPrefix) || strings.Contains(sealed, "135790") {
		t.Fatalf("sealed %q", sealed)
	}
	if again := SealQueryCode(secret, "cd-20261203-000001", "135790"); again != sealed {
		t.Fatal("sealing is not the same on every replica")
	}
	for _, tc := range []struct {
		name, number, stored string
		secret               []byte
		want                 string
		ok                   bool
	}{
		{"opens", "cd-20261203-000001", sealed, secret, "135790", true},
		{"another case's number", "cd-20261203-000002", sealed, secret, "", false},
		{"another grid's secret", "cd-20261203-000001", sealed, bytes.Repeat([]byte{8}, 32), "", false},
		{"no secret", "cd-20261203-000001", sealed, nil, "", false},
		{"damaged", "cd-20261203-000001", sealed[:len(sealed)-2], secret, "", false},
		{"kept before sealing", "cd-20261203-000001", "135790", secret, "135790", true},
		{"no secret, not sealed", "cd-20261203-000001", SealQueryCode(nil, "x", "135790"), nil, "135790", true},
	} {
		got, err := OpenQueryCode(tc.secret, tc.number, tc.stored)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: %q, %v; want %q (ok %v)", tc.name, got, err, tc.want, tc.ok)
		}
	}
}
