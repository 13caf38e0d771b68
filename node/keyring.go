package node

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/internal/atomicfile"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/hashicorp/memberlist"
)

// GossipKeyringFile, in the data dir, holds the keys gossip is encrypted with: a JSON array of
// base64 keys (16, 24 or 32 bytes each), the primary (the one that encrypts) first, the others
// only decrypt. The node reads it at start (it takes precedence over Config.GossipKey), writes
// it from Config.GossipKey when it is missing, and rewrites it on every change of its keyring,
// so that a restart after a rotation keeps the rotated keys.
const GossipKeyringFile = "gossip.keyring"

// WriteGossipKeyring writes keys, the primary first, as dataDir's gossip keyring (mode 0600),
// atomically: a temporary file synced, then renamed over the old one, then the directory synced.
func WriteGossipKeyring(dataDir string, keys [][]byte) error {
	if err := checkGossipKeys(keys); err != nil {
		return err
	}
	text := make([]string, len(keys))
	for i, k := range keys {
		text[i] = base64.StdEncoding.EncodeToString(k)
	}
	b, err := json.Marshal(text)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dataDir, GossipKeyringFile), append(b, '\n'), 0o600)
}

// ReadGossipKeyring reads dataDir's gossip keyring: its keys, the primary first. A missing file
// is an error that matches os.ErrNotExist; a file that is not a list of valid keys is an error
// that names the file.
func ReadGossipKeyring(dataDir string) ([][]byte, error) {
	path := filepath.Join(dataDir, GossipKeyringFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var text []string
	if err := json.Unmarshal(b, &text); err != nil {
		return nil, fmt.Errorf("%s is not a JSON array of base64 keys: %w", path, err)
	}
	keys := make([][]byte, len(text))
	for i, t := range text {
		if keys[i], err = base64.StdEncoding.DecodeString(t); err != nil {
			return nil, fmt.Errorf("%s: key %d is not base64: %w", path, i+1, err)
		}
	}
	if err := checkGossipKeys(keys); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// checkGossipKeys: at least one key, each of a size AES takes, none twice.
func checkGossipKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return errors.New("a gossip keyring holds at least one key (the primary)")
	}
	for i, k := range keys {
		if err := memberlist.ValidateKey(k); err != nil {
			return fmt.Errorf("key %d is %d bytes: a gossip key is 16, 24 or 32 bytes", i+1, len(k))
		}
		for _, o := range keys[:i] {
			if bytes.Equal(o, k) {
				return fmt.Errorf("key %d appears twice", i+1)
			}
		}
	}
	return nil
}

// KeyFingerprint names a gossip key without giving it away (api.KeyFingerprint).
func KeyFingerprint(key []byte) string { return api.KeyFingerprint(key) }

// gossipKeyring is the keyring a node starts gossip with: dataDir's file when there is one,
// else cfg.GossipKey (then written to the file), else none (gossip in the clear). from says
// which, for the log.
func gossipKeyring(cfg Config) (kr *memberlist.Keyring, from string, err error) {
	keys, err := ReadGossipKeyring(cfg.DataDir)
	switch {
	case err == nil:
		from = filepath.Join(cfg.DataDir, GossipKeyringFile)
	case !errors.Is(err, os.ErrNotExist):
		return nil, "", fmt.Errorf("gossip keyring: %w", err)
	case len(cfg.GossipKey) > 0:
		keys, from = [][]byte{cfg.GossipKey}, "--gossip-key"
		if err := WriteGossipKeyring(cfg.DataDir, keys); err != nil {
			return nil, "", fmt.Errorf("gossip keyring: saving --gossip-key: %w", err)
		}
	default:
		return nil, "", nil
	}
	kr, err = memberlist.NewKeyring(keys[1:], keys[0])
	if err != nil {
		return nil, "", fmt.Errorf("gossip keyring from %s: %w", from, err)
	}
	return kr, from, nil
}

// keyringView lists the keyring's keys by fingerprint, the primary first.
func (g *gossip) keyringView(node string) *api.KeyringView {
	v := &api.KeyringView{Node: node, Keys: []api.KeyView{}}
	if g.keyring == nil {
		return v
	}
	primary := g.keyring.GetPrimaryKey()
	for _, k := range g.keyring.GetKeys() {
		v.Keys = append(v.Keys, api.KeyView{Fingerprint: KeyFingerprint(k), Primary: bytes.Equal(k, primary)})
	}
	v.Encrypted = len(v.Keys) > 0
	return v
}

// changeKeyring applies op to the keyring and saves the result: the file is written first, with
// the keys the keyring will hold, so that what runs is never ahead of what a restart reads.
func (g *gossip) changeKeyring(op string, key []byte) error {
	if err := memberlist.ValidateKey(key); err != nil {
		return sitestate.Errorf(sitestate.CodeInvalid, "the key is %d bytes: a gossip key is 16, 24 or 32 bytes (base64 in the request)", len(key))
	}
	if g.keyring == nil {
		return sitestate.Errorf(sitestate.CodeConflict, "gossip on this node is not encrypted (it started without --gossip-key or %s): there is no keyring to change; start the nodes with a key", GossipKeyringFile)
	}
	g.keyMu.Lock()
	defer g.keyMu.Unlock()
	keys := slices.Clone(g.keyring.GetKeys()) // the primary first; GetKeys gives memberlist's own slice
	at := -1
	for i, k := range keys {
		if bytes.Equal(k, key) {
			at = i
		}
	}
	var next [][]byte
	switch op {
	case "install":
		if at >= 0 {
			return nil
		}
		next = append(keys, key)
	case "use":
		if at < 0 {
			return sitestate.Errorf(sitestate.CodeConflict, "key %s is not installed on this node: install it (on every node) before making it primary", KeyFingerprint(key))
		}
		if at == 0 {
			return nil
		}
		next = append([][]byte{key}, keys[:at]...)
		next = append(next, keys[at+1:]...)
	case "remove":
		if at < 0 {
			return nil
		}
		if at == 0 {
			return sitestate.Errorf(sitestate.CodeConflict, "key %s is this node's primary key, which encrypts its gossip: make another key primary first (keyring use)", KeyFingerprint(key))
		}
		next = append(append([][]byte{}, keys[:at]...), keys[at+1:]...)
	default:
		return fmt.Errorf("unknown keyring operation %q", op)
	}
	if err := WriteGossipKeyring(g.dataDir, next); err != nil {
		return fmt.Errorf("saving the gossip keyring: %w", err)
	}
	var err error
	switch op {
	case "install":
		err = g.keyring.AddKey(key)
	case "use":
		err = g.keyring.UseKey(key)
	case "remove":
		err = g.keyring.RemoveKey(key)
	}
	if err != nil {
		return err
	}
	g.logger.Info("gossip keyring changed", "op", op, "key", KeyFingerprint(key), "keys", len(next),
		"primary", KeyFingerprint(next[0]))
	return nil
}

// GossipKeys lists this node's gossip keys by fingerprint (never the keys).
func (n *Node) GossipKeys() *api.KeyringView { return n.gossip.keyringView(n.cfg.Name) }

// InstallGossipKey adds key to this node's gossip keyring: it decrypts with it from now on.
func (n *Node) InstallGossipKey(key []byte) (*api.KeyringView, error) {
	return n.changeKeyring("install", key)
}

// UseGossipKey makes key, installed already, the primary: gossip is encrypted with it from now on.
func (n *Node) UseGossipKey(key []byte) (*api.KeyringView, error) { return n.changeKeyring("use", key) }

// RemoveGossipKey removes key from this node's gossip keyring; the primary cannot be removed.
func (n *Node) RemoveGossipKey(key []byte) (*api.KeyringView, error) {
	return n.changeKeyring("remove", key)
}

func (n *Node) changeKeyring(op string, key []byte) (*api.KeyringView, error) {
	if err := n.gossip.changeKeyring(op, key); err != nil {
		return nil, err
	}
	return n.GossipKeys(), nil
}
