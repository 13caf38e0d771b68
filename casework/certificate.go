package casework

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The seal (电子印章): the deciding site signs its decision with its ed25519 key when it approves or
// denies a case. The signed document names what a certificate must (the case number, the item,
// the applicant's masked name, the decision, the date and the site) and nothing personal beyond
// the masked name, so it can be printed, photographed and checked by anyone holding the grid's
// public keys, offline.

// Certificate is the document a decision's seal signs.
type Certificate struct {
	// Version is 1: the signed bytes are SealPrefix and this document's JSON.
	Version   int    `json:"v"`
	Grid      string `json:"grid"`
	Number    string `json:"number"`
	ItemCode  string `json:"item_code"`
	ItemName  string `json:"item_name,omitempty"`
	Applicant string `json:"applicant"` // masked: 李*
	Decision  string `json:"decision"`
	// DecidedAt is the decision's time; DecidedOn its day in the grid's time zone.
	DecidedAt time.Time `json:"decided_at"`
	DecidedOn string    `json:"decided_on"`
	Site      string    `json:"site"`
}

// Seal is a decision's certificate with its site's signature.
type Seal struct {
	Certificate Certificate `json:"certificate"`
	// PublicKey is the signing site's key (which of its keys, if it has had several).
	PublicKey []byte `json:"public_key"`
	Signature []byte `json:"signature"`
}

// SealPrefix starts the bytes a seal signs: a token's signature (auth) covers other bytes, so the
// site's one key cannot be made to sign a certificate by signing a token, or the reverse.
const SealPrefix = "govgrid-certificate-v1\n"

// SignedBytes are the bytes the seal signs.
func (c *Certificate) SignedBytes() []byte {
	b, _ := json.Marshal(c) // a struct of strings, an int and a time: always encodes
	return append([]byte(SealPrefix), b...)
}

// CertificateOf is the certificate of c's decision, taken at site at at (day in loc).
func (c *Case) CertificateOf(grid, itemName, site string, at time.Time, loc *time.Location) Certificate {
	return Certificate{Version: 1, Grid: grid, Number: c.Number, ItemCode: c.ItemCode, ItemName: itemName,
		Applicant: MaskName(c.Applicant.Name), Decision: c.Decision, DecidedAt: at.UTC(),
		DecidedOn: at.In(loc).Format("2006-01-02"), Site: site}
}

// SealWith signs cert with the site's key. ed25519 is deterministic: every replica of the site
// that applies the decision makes the same seal.
func SealWith(cert Certificate, key ed25519.PrivateKey) *Seal {
	return &Seal{Certificate: cert, PublicKey: key.Public().(ed25519.PublicKey), Signature: ed25519.Sign(key, cert.SignedBytes())}
}

// KeyStatus is what a verifier knows of a site's key.
type KeyStatus int

// The states of a key.
const (
	KeyUnknown KeyStatus = iota
	KeyValid
	KeyRevoked
)

// Errors of Seal.Verify.
var (
	ErrSealForged     = errors.New("the seal's signature does not verify: the certificate was altered or not signed by that key")
	ErrSealUnknownKey = errors.New("the seal's key is not one of the grid's keys for that site")
	ErrSealRevoked    = errors.New("the seal's site key was revoked")
)

// Verify checks the seal against the grid's keys: keyOf says what is known of a site's key.
// A revoked key still verifies the signature (the error says it was revoked); an unknown key or a
// wrong signature does not.
func (s *Seal) Verify(grid string, keyOf func(site string, key []byte) KeyStatus) error {
	if s == nil {
		return errors.New("no seal")
	}
	if grid != "" && s.Certificate.Grid != grid {
		return fmt.Errorf("the certificate is of grid %q, not %q", s.Certificate.Grid, grid)
	}
	if len(s.PublicKey) != ed25519.PublicKeySize || !ed25519.Verify(s.PublicKey, s.Certificate.SignedBytes(), s.Signature) {
		return ErrSealForged
	}
	switch keyOf(s.Certificate.Site, s.PublicKey) {
	case KeyValid:
		return nil
	case KeyRevoked:
		return ErrSealRevoked
	}
	return ErrSealUnknownKey
}
