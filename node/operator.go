package node

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// OperatorKeyFile is the file in a node's data directory that holds its operator key: a random
// secret that lets whoever can read the data directory (the service's user on the node's host:
// a nightly backup from cron, `govgrid leave` when a machine is retired) administer this node
// from its own host without a person's token, which lives 8 hours. It grants nothing new: the
// reader of the data directory reads every case in it already. It is taken only from the node's
// own host (loopback, or the address the node listens on), only for the node's own
// administration (backups, leave, retire, reinstate, configuration and catalogue), never for
// cases, and each use is in the audit trail as "operator@<the address asked>".
const OperatorKeyFile = "operator.key"

// loadOperatorKey reads the node's operator key, making it (mode 0600) on the first start.
func (n *Node) loadOperatorKey() error {
	path := n.DataPath(OperatorKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return err
		}
		b = []byte(hex.EncodeToString(k) + "\n")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return fmt.Errorf("writing the operator key: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("reading the operator key: %w", err)
	}
	n.operatorKey = strings.TrimSpace(string(b))
	if len(n.operatorKey) < 32 {
		return fmt.Errorf("%s is too short: remove it and a new one is made at start", path)
	}
	return nil
}

// OperatorKeyMatches says whether key is this node's operator key.
func (n *Node) OperatorKeyMatches(key string) bool {
	return n.operatorKey != "" && subtle.ConstantTimeCompare([]byte(key), []byte(n.operatorKey)) == 1
}
