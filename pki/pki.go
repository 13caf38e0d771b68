// Package pki is the grid's certificate authority and the identities it vouches for: every node
// holds a certificate, signed by its grid's CA, whose URI names the grid, the site and the node
// (spiffe://<grid>/site/<site>/node/<node>). Nodes check each other by that identity, never by
// host name: village PCs are dialled by IP and renumbered without notice.
//
// Nothing here does I/O beyond the file helpers; the node decides who gets a certificate.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/govgrid/govgrid/internal/atomicfile"
)

// Identity is who a certificate speaks for.
type Identity struct {
	Grid, Site, Node string
}

// URI is the identity as a certificate's URI SAN: spiffe://<grid>/site/<site>/node/<node>.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: id.Grid, Path: "/site/" + id.Site + "/node/" + id.Node}
}

func (id Identity) String() string { return id.URI().String() }

// ParseIdentity reads the identity a certificate's URI SAN names.
func ParseIdentity(cert *x509.Certificate) (Identity, error) {
	for _, u := range cert.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
		if len(parts) == 4 && parts[0] == "site" && parts[2] == "node" && parts[1] != "" && parts[3] != "" && u.Host != "" {
			return Identity{Grid: u.Host, Site: parts[1], Node: parts[3]}, nil
		}
	}
	return Identity{}, errors.New("the certificate names no grid identity (a URI spiffe://<grid>/site/<site>/node/<node>)")
}

// CA is a grid's certificate authority: its certificate and, where it issues, its key.
type CA struct {
	Cert *x509.Certificate
	// Key is nil where the CA only verifies (every node but the issuing district's).
	Key crypto.Signer
	// Secret is the grid secret (GridSecretSize random bytes, file grid.secret): the key under
	// which sites MAC citizens' query codes (casework.QueryCodeMAC). It is in no site's Raft
	// state, so no snapshot, backup, mirror or export carries it. Nil for a CA made before the
	// secret existed, or where the CA directory holds no grid.secret.
	Secret []byte
}

// GridSecretSize is the length of the grid secret, in bytes.
const GridSecretSize = 32

// NewGridSecret draws a grid secret.
func NewGridSecret() []byte {
	b := make([]byte, GridSecretSize)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}

// EncodeGridSecret is the grid secret as its file holds it: standard base64, one line.
func EncodeGridSecret(secret []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString(secret) + "\n")
}

// ParseGridSecret reads a grid.secret file's bytes: base64 of GridSecretSize bytes (surrounding
// white space ignored).
func ParseGridSecret(b []byte) ([]byte, error) {
	secret, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("the grid secret is not base64: %w", err)
	}
	if len(secret) != GridSecretSize {
		return nil, fmt.Errorf("the grid secret is %d bytes, not %d", len(secret), GridSecretSize)
	}
	return secret, nil
}

// LoadGridSecret reads dir/grid.secret; a missing file is nil and no error.
func LoadGridSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, GridSecretFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	secret, err := ParseGridSecret(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return secret, nil
}

// WriteGridSecret writes secret into dir/grid.secret (mode 0600).
func WriteGridSecret(dir string, secret []byte) error {
	if len(secret) != GridSecretSize {
		return fmt.Errorf("the grid secret is %d bytes, not %d", len(secret), GridSecretSize)
	}
	return WriteFile(filepath.Join(dir, GridSecretFile), EncodeGridSecret(secret), 0o600)
}

// NewCA makes a CA for grid, valid for validity, with a new grid secret.
func NewCA(grid string, validity time.Duration) (*CA, error) {
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "govgrid CA " + grid, Organization: []string{grid}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: grid}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, Secret: NewGridSecret()}, nil
}

// Grid is the grid the CA serves (its URI's host).
func (ca *CA) Grid() string {
	for _, u := range ca.Cert.URIs {
		if u.Scheme == "spiffe" {
			return u.Host
		}
	}
	return ""
}

// Issue signs a node certificate for id and the public key pub, valid from now for validity
// (and never beyond the CA's own expiry). It serves both ends of a TLS connection.
func (ca *CA) Issue(id Identity, pub crypto.PublicKey, validity time.Duration) ([]byte, error) {
	if ca.Key == nil {
		return nil, errors.New("this CA holds no key: only the district's issuing nodes sign certificates")
	}
	if id.Grid != ca.Grid() {
		return nil, fmt.Errorf("the CA is grid %q's, not %q's", ca.Grid(), id.Grid)
	}
	if id.Site == "" || id.Node == "" || strings.ContainsAny(id.Site+id.Node, "/?#") {
		return nil, fmt.Errorf("identity %v: site and node must be plain names", id)
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: id.Node, OrganizationalUnit: []string{id.Site}, Organization: []string{id.Grid}},
		NotBefore:    now.Add(-Backdate), // clocks of village PCs drift
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{id.URI()},
	}
	return x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
}

// Backdate is how far before its issue a node certificate is valid from: clocks of village PCs
// drift. A certificate's life, for renewal, is from NotBefore+Backdate to NotAfter.
const Backdate = 5 * time.Minute

// RenewAt is when a node should renew cert: two thirds into its life.
func RenewAt(cert *x509.Certificate) time.Time {
	issued := cert.NotBefore.Add(Backdate)
	if issued.After(cert.NotAfter) {
		issued = cert.NotBefore
	}
	return issued.Add(cert.NotAfter.Sub(issued) * 2 / 3)
}

// Pin is the SHA-256 of the CA certificate, hex: a join token carries it so that a new node
// trusts the grid it redeems the token at without being given the CA's file first.
func Pin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Verify checks that chain[0] was signed by the CA (directly: node certificates hang under the
// grid's CA) and is valid now, and returns the identity it names, which must be of the CA's grid.
func (ca *CA) Verify(chain []*x509.Certificate, now time.Time) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, errors.New("no certificate presented")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return Identity{}, fmt.Errorf("the certificate is not the grid %q's: %w", ca.Grid(), err)
	}
	id, err := ParseIdentity(chain[0])
	if err != nil {
		return Identity{}, err
	}
	if id.Grid != ca.Grid() {
		return Identity{}, fmt.Errorf("the certificate names grid %q, not %q", id.Grid, ca.Grid())
	}
	return id, nil
}

// NewKey makes a node's or CA's private key (ECDSA P-256: every TLS stack speaks it).
func NewKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

// CertPEM encodes DER certificates as PEM.
func CertPEM(ders ...[]byte) []byte {
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return out
}

// KeyPEM encodes a private key as PKCS #8 PEM.
func KeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseCert reads the first certificate of a PEM file's bytes.
func ParseCert(pemBytes []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, pemBytes = pem.Decode(pemBytes)
		if b == nil {
			return nil, errors.New("no PEM certificate found")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// ParseKey reads a PEM private key (PKCS #8, or EC / PKCS #1 as openssl writes them).
func ParseKey(pemBytes []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("no PEM private key found")
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("the private key is not PKCS #8, EC or PKCS #1")
}

// The files of a CA directory and of a node's TLS directory (DATA_DIR/tls).
const (
	CACertFile   = "ca.pem"
	CAKeyFile    = "ca.key"
	NodeCertFile = "node.pem"
	NodeKeyFile  = "node.key"
	// GridSecretFile holds the grid secret (CA.Secret), base64 on one line, mode 0600: beside
	// the CA's files, and in every node's TLS directory.
	GridSecretFile = "grid.secret"
)

// LoadCA reads dir/ca.pem and, if present, dir/ca.key and dir/grid.secret.
func LoadCA(dir string) (*CA, error) {
	b, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	cert, err := ParseCert(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CACertFile), err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", filepath.Join(dir, CACertFile))
	}
	ca := &CA{Cert: cert}
	if ca.Secret, err = LoadGridSecret(dir); err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return ca, nil
	case err != nil:
		return nil, err
	}
	if ca.Key, err = ParseKey(kb); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CAKeyFile), err)
	}
	return ca, nil
}

// WriteCA writes ca.pem and, if the CA has them, ca.key and grid.secret (both mode 0600) into
// dir.
func WriteCA(dir string, ca *CA) error {
	if err := WriteFile(filepath.Join(dir, CACertFile), CertPEM(ca.Cert.Raw), 0o644); err != nil {
		return err
	}
	if ca.Secret != nil {
		if err := WriteGridSecret(dir, ca.Secret); err != nil {
			return err
		}
	}
	if ca.Key == nil {
		return nil
	}
	kb, err := KeyPEM(ca.Key)
	if err != nil {
		return err
	}
	return WriteFile(filepath.Join(dir, CAKeyFile), kb, 0o600)
}

// NodeFiles is a node's TLS material as files: its CA, certificate and key, and the grid secret.
type NodeFiles struct {
	CA, Cert, Key []byte // PEM
	// Secret is the grid secret (raw bytes; nil: none is written).
	Secret []byte
}

// IssueFiles makes a key for id and a certificate from ca: what `govgrid tls cert create` and a
// join token's redemption hand a node.
func IssueFiles(ca *CA, id Identity, validity time.Duration) (NodeFiles, error) {
	key, err := NewKey()
	if err != nil {
		return NodeFiles{}, err
	}
	der, err := ca.Issue(id, key.Public(), validity)
	if err != nil {
		return NodeFiles{}, err
	}
	kb, err := KeyPEM(key)
	if err != nil {
		return NodeFiles{}, err
	}
	return NodeFiles{CA: CertPEM(ca.Cert.Raw), Cert: CertPEM(der), Key: kb, Secret: ca.Secret}, nil
}

// Provision writes into dir (a node's TLS directory) a new key and a certificate of ca for id,
// valid for validity, and, for a node that issues certificates (a district node), ca.key too:
// what `govgrid tls cert create` does, and every harness that sets nodes up by hand.
func Provision(dir string, ca *CA, id Identity, validity time.Duration, issuer bool) error {
	files, err := IssueFiles(ca, id, validity)
	if err != nil {
		return err
	}
	if err := WriteNode(dir, files); err != nil {
		return err
	}
	if issuer {
		return WriteCA(dir, ca)
	}
	return nil
}

// WriteNode writes a node's files into dir (DATA_DIR/tls): ca.pem, node.pem, node.key (0600)
// and, when f has it, grid.secret (0600).
func WriteNode(dir string, f NodeFiles) error {
	if err := WriteFile(filepath.Join(dir, CACertFile), f.CA, 0o644); err != nil {
		return err
	}
	if f.Secret != nil {
		if err := WriteGridSecret(dir, f.Secret); err != nil {
			return err
		}
	}
	if err := WriteFile(filepath.Join(dir, NodeKeyFile), f.Key, 0o600); err != nil {
		return err
	}
	return WriteFile(filepath.Join(dir, NodeCertFile), f.Cert, 0o644)
}

// LoadNode reads a node's certificate and key from dir, and checks them against ca.
func LoadNode(dir string, ca *CA) (tls.Certificate, Identity, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, NodeCertFile), filepath.Join(dir, NodeKeyFile))
	if err != nil {
		return tls.Certificate{}, Identity{}, err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return tls.Certificate{}, Identity{}, err
	}
	cert.Leaf = leaf
	if len(cert.Certificate) == 1 {
		// Send the CA along: a node redeeming a join token checks it against the token's pin.
		cert.Certificate = append(cert.Certificate, ca.Cert.Raw)
	}
	id, err := ca.Verify([]*x509.Certificate{leaf}, time.Now())
	if err != nil {
		return tls.Certificate{}, Identity{}, fmt.Errorf("%s: %w", filepath.Join(dir, NodeCertFile), err)
	}
	return cert, id, nil
}

// WriteFile writes data to path (its directory made if missing, 0700) so that a crash leaves the old
// file or the new one, never half of one (package atomicfile).
func WriteFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, data, mode)
}
