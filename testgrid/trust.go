package testgrid

import (
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/govgrid/govgrid/pki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// ClientTLS returns a TLS configuration that presents a certificate of ca for id (a node of a
// grid, real or made up by a test) and accepts any server certificate: tests use it to knock on
// a node's peer ports as whoever they please.
func ClientTLS(t T, ca *pki.CA, id pki.Identity) *tls.Config {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatalf("key: %v", err)
	}
	der, err := ca.Issue(id, key.Public(), time.Hour)
	if err != nil {
		t.Fatalf("certificate for %v: %v", id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return &tls.Config{
		Certificates:       []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
		InsecureSkipVerify: true,
		NextProtos:         []string{"h2"},
	}
}

// PeerConn dials addr's gRPC as a node of this grid named by id (its certificate signed by the
// grid's CA); the connection closes when the test ends.
func (g *Grid) PeerConn(id pki.Identity, addr string) *grpc.ClientConn {
	g.t.Helper()
	if id.Grid == "" {
		id.Grid = g.spec.GridName
	}
	return DialTLS(g.t, addr, ClientTLS(g.t, g.ca, id))
}

// DialTLS opens a gRPC connection to addr with cfg; it closes when the test ends.
func DialTLS(t T, addr string, cfg *tls.Config) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
