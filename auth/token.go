package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A token is what a site gives someone who signed in there: "v1." + the claims as base64url
// JSON + "." + the site's ed25519 signature of those bytes, base64url. Any node of the site (they
// share the site's key through its Raft log) and any site beneath it (the key is published down
// as configuration) verifies it offline. It lives for TokenLife; signing out or a password change
// revokes it before that.

// TokenLife is how long a token is good for: a working day.
const TokenLife = 8 * time.Hour

// Claims is what a token says.
type Claims struct {
	// ID names the token, for revoking it.
	ID    string `json:"jti"`
	Grid  string `json:"grid"`
	User  string `json:"sub"`
	Name  string `json:"name"`
	Site  string `json:"site"`
	Roles []Role `json:"roles"`
	// Issuer is the site that signed the token (where its bearer signed in).
	Issuer    string    `json:"iss"`
	IssuedAt  time.Time `json:"iat"`
	ExpiresAt time.Time `json:"exp"`
}

// Has says whether the token's bearer has role r.
func (c *Claims) Has(r Role) bool {
	for _, x := range c.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// Errors of Verify.
var (
	ErrMalformedToken = errors.New("auth: not a token")
	ErrBadSignature   = errors.New("auth: the token's signature does not verify")
	ErrExpired        = errors.New("auth: the token has expired")
	ErrOtherGrid      = errors.New("auth: the token is of another grid")
	ErrUnknownIssuer  = errors.New("auth: the token's site is unknown here")
)

var b64url = base64.RawURLEncoding

// Sign makes a token of c with the site's key.
func Sign(c *Claims, key ed25519.PrivateKey) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	p := b64url.EncodeToString(payload)
	sig := ed25519.Sign(key, []byte("v1."+p))
	return "v1." + p + "." + b64url.EncodeToString(sig), nil
}

// Inspect returns a token's claims without verifying it (to find its issuer's key).
func Inspect(token string) (*Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return nil, ErrMalformedToken
	}
	payload, err := b64url.DecodeString(parts[1])
	if err != nil {
		return nil, ErrMalformedToken
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	c := new(Claims)
	if err := dec.Decode(c); err != nil {
		return nil, ErrMalformedToken
	}
	return c, nil
}

// Verify checks a token's signature with keyOf(issuer), its grid and its expiry at now, and
// returns its claims.
func Verify(token, grid string, now time.Time, keyOf func(issuer string) (ed25519.PublicKey, bool)) (*Claims, error) {
	c, err := Inspect(token)
	if err != nil {
		return nil, err
	}
	key, ok := keyOf(c.Issuer)
	if !ok {
		return nil, fmt.Errorf("%w (%s): sign in at your own site", ErrUnknownIssuer, c.Issuer)
	}
	i := strings.LastIndexByte(token, '.')
	sig, err := b64url.DecodeString(token[i+1:])
	if err != nil || len(key) != ed25519.PublicKeySize || !ed25519.Verify(key, []byte(token[:i]), sig) {
		return nil, ErrBadSignature
	}
	switch {
	case c.Grid != grid:
		return nil, ErrOtherGrid
	case !now.Before(c.ExpiresAt):
		return nil, ErrExpired
	}
	return c, nil
}
