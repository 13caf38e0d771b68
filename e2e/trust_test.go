package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/govgrid/govgrid/pki"
)

// The e2e grid's trust: one CA and one gossip key for every agent the tests start (grid "govgrid",
// the agents' default --grid), as an operator sets up with govgrid tls ca create.
// TestMain makes them (initTrust) before any test runs.
var (
	e2eCA        *pki.CA
	e2eGossipKey string
)

func initTrust() error {
	var err error
	if e2eCA, err = pki.NewCA("govgrid", 24*time.Hour); err != nil {
		return err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	e2eGossipKey = base64.StdEncoding.EncodeToString(key)
	return nil
}

// provision writes a certificate of the e2e CA for node name of site into dataDir/tls, as
// `govgrid tls cert create` does; a district node gets the CA's key too (it issues).
func provision(t *testing.T, dataDir, site, name string, district bool) {
	t.Helper()
	if err := pki.Provision(filepath.Join(dataDir, "tls"), e2eCA, pki.Identity{Grid: "govgrid", Site: site, Node: name}, 24*time.Hour, district); err != nil {
		t.Fatal(err)
	}
}

// provisionFromArgs provisions the agent args describe, when they name its node, site and data
// dir.
func provisionFromArgs(t *testing.T, args []string) {
	t.Helper()
	flags := map[string]string{}
	for i := 0; i+1 < len(args); i++ {
		flags[args[i]] = args[i+1]
	}
	if flags["--node"] == "" || flags["--site"] == "" || flags["--data-dir"] == "" {
		return
	}
	if _, err := os.Stat(filepath.Join(flags["--data-dir"], "tls", pki.NodeCertFile)); err == nil {
		return
	}
	provision(t, flags["--data-dir"], flags["--site"], flags["--node"], flags["--tier"] == "district")
}
