package casework

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
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
//
// This is the legacy form, kept for cases accepted before the grid secret (QueryCodeMAC) and for
// states without one (tests, offline tools): anyone who holds the case (a mirror, an export, a
// backup) can try all 10^6 codes against it.
func HashQueryCode(requestID, code string) string {
	sum := sha256.Sum256([]byte(requestID + "\x00" + code))
	return hex.EncodeToString(sum[:])
}

// QueryCodeMACPrefix marks a stored query code value made by QueryCodeMAC (version 1:
// HMAC-SHA256 under the grid secret). A value without a known prefix is a legacy HashQueryCode.
const QueryCodeMACPrefix = "h1:"

// QueryCodeMAC is the stored form of a citizen's query code under the grid secret (issue 15.6):
// "h1:" + hex(HMAC-SHA256(secret, requestID + "\x00" + code)). The request id still makes equal
// codes differ between cases; the secret, which no site's Raft state holds, keeps whoever has a
// copy of the case (a mirror, a feed, an export, a backup) from trying the 10^6 codes offline.
func QueryCodeMAC(secret []byte, requestID, code string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(requestID + "\x00" + code))
	return QueryCodeMACPrefix + hex.EncodeToString(mac.Sum(nil))
}

// QueryCodeDigest is what a site stores for a new case's code: QueryCodeMAC under secret when
// the grid has one, the legacy HashQueryCode when secret is empty.
func QueryCodeDigest(secret []byte, requestID, code string) string {
	if len(secret) == 0 {
		return HashQueryCode(requestID, code)
	}
	return QueryCodeMAC(secret, requestID, code)
}

// CheckQueryCodeDigest reports whether code matches stored, the value kept for a case with the
// given request id: an "h1:" value by its MAC under secret (never without one), any other
// non-empty value as a legacy salted hash, so that cases accepted before the grid secret keep
// their codes. The comparison takes constant time.
func CheckQueryCodeDigest(secret []byte, stored, requestID, code string) bool {
	var want string
	switch {
	case stored == "":
		return false
	case strings.HasPrefix(stored, QueryCodeMACPrefix):
		if len(secret) == 0 {
			return false
		}
		want = QueryCodeMAC(secret, requestID, code)
	default:
		want = HashQueryCode(requestID, code)
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(stored)) == 1
}

// CheckQueryCode reports whether code is the query code issued for c, with secret the grid
// secret (see CheckQueryCodeDigest).
func (c *Case) CheckQueryCode(secret []byte, code string) bool {
	return CheckQueryCodeDigest(secret, c.QueryCodeHash, c.RequestID, code)
}

// QueryCodeSealPrefix marks a query code sealed under the grid secret (SealQueryCode).
const QueryCodeSealPrefix = "s1:"

// SealQueryCode is what a site keeps of a case's code so that it can answer a retried submission
// with it and a restored site can get it back from its parent: AES-256-GCM under a key derived from
// the grid secret, the nonce derived from the case number (each number seals one code, so the same
// bytes on every replica), the number as associated data. Without a secret: the code as it is.
func SealQueryCode(secret []byte, number, code string) string {
	if len(secret) == 0 || code == "" {
		return code
	}
	aead, nonce := queryCodeAEAD(secret, number)
	return QueryCodeSealPrefix + base64.RawStdEncoding.EncodeToString(aead.Seal(nil, nonce, []byte(code), []byte(number)))
}

// OpenQueryCode gives back the code SealQueryCode sealed for number; a value without the prefix
// (kept before codes were sealed, or on a grid without a secret) is the code itself.
func OpenQueryCode(secret []byte, number, stored string) (string, error) {
	rest, sealed := strings.CutPrefix(stored, QueryCodeSealPrefix)
	if !sealed {
		return stored, nil
	}
	if len(secret) == 0 {
		return "", errors.New("the query code is sealed under the grid secret, which this node lacks")
	}
	box, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("sealed query code: %w", err)
	}
	aead, nonce := queryCodeAEAD(secret, number)
	code, err := aead.Open(nil, nonce, box, []byte(number))
	if err != nil {
		return "", errors.New("the sealed query code does not open with this grid's secret")
	}
	return string(code), nil
}

func queryCodeAEAD(secret []byte, number string) (cipher.AEAD, []byte) {
	derive := func(label string) []byte {
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(label))
		return mac.Sum(nil)
	}
	block, err := aes.NewCipher(derive("govgrid query code seal v1"))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead, derive("govgrid query code nonce v1\x00" + number)[:aead.NonceSize()]
}
