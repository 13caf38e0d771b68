package replication

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/govgrid/govgrid/internal/atomicfile"
)

// Encryption at rest (replication/DESIGN.md, "Encryption at rest"). One master key of 32 bytes
// (Config.EncryptionKey) is never used directly: each use gets its own key, derived with
// HKDF-SHA256 from the master key, the data directory's salt and a label:
//
//	state   badger's own encryption (AES-256-CTR; badger rotates its data keys under it)
//	log     the Data and Extensions of each Raft log entry, AES-256-GCM
//	snap    the snapshot stream, chunked AES-256-GCM (streamCipher)
//	check   an HMAC that says which key a data directory was encrypted with
//
// <data-dir>/encryption.json records that a data directory is encrypted: its salt and the
// check. A directory with that file opens only with the same key; one without it, only without
// a key (unless it is empty: a new one is encrypted from the start).

// EncryptionKeySize is the size of the master key.
const EncryptionKeySize = 32

// ErrEncryptionKey is wrapped by every refusal to open a data directory with the key given
// (another key, none for an encrypted directory, or one for a directory written in the clear).
var ErrEncryptionKey = errors.New("replication: encryption key does not fit the data directory")

// encryptionFile is the file in the data directory that says it is encrypted.
const encryptionFile = "encryption.json"

// NewEncryptionKey returns a new random master key, and how it is written to a key file.
func NewEncryptionKey() (key []byte, file []byte, err error) {
	key = make([]byte, EncryptionKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, nil, err
	}
	return key, []byte(base64.StdEncoding.EncodeToString(key) + "\n"), nil
}

// ParseEncryptionKey reads a key file's contents: the 32-byte key in standard base64 (44
// characters), with surrounding white space allowed.
func ParseEncryptionKey(file []byte) ([]byte, error) {
	text := strings.TrimSpace(string(file))
	if text == "" {
		return nil, errors.New("the file is empty; it must hold a 32-byte key in base64 (govgrid keygen encryption makes one)")
	}
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, errors.New("the file does not hold base64 text; it must hold a 32-byte key in base64 (govgrid keygen encryption makes one)")
	}
	if len(key) != EncryptionKeySize {
		return nil, fmt.Errorf("the key is %d bytes; it must be %d bytes, in base64 (govgrid keygen encryption makes one)", len(key), EncryptionKeySize)
	}
	return key, nil
}

// LoadEncryptionKey reads a key file (ParseEncryptionKey).
func LoadEncryptionKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseEncryptionKey(b)
}

// dataKeys are the keys derived for one data directory; nil for a directory in the clear.
type dataKeys struct {
	state []byte // badger's key (AES-256)
	log   cipher.AEAD
	snap  []byte // the snapshot streams' key, from which each stream's own key is derived
}

// encryptionRecord is encryption.json.
type encryptionRecord struct {
	Version int    `json:"version"`
	Salt    []byte `json:"salt"`
	Check   []byte `json:"check"`
	Note    string `json:"note,omitempty"`
}

func deriveKey(master, salt []byte, label string) []byte {
	k, err := hkdf.Key(sha256.New, master, salt, "govgrid "+label+" v1", 32)
	if err != nil {
		panic(err) // only for lengths HKDF-SHA256 cannot give
	}
	return k
}

func keyCheck(master, salt []byte) []byte {
	m := hmac.New(sha256.New, deriveKey(master, salt, "check"))
	m.Write([]byte("govgrid data directory key check"))
	return m.Sum(nil)
}

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // keys here are always 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// openEncryption checks the key against the data directory and returns the directory's keys
// (nil without a key). A new (empty) directory given a key is marked encrypted here, before
// anything else is written in it.
func openEncryption(dataDir string, master []byte) (*dataKeys, error) {
	if master != nil && len(master) != EncryptionKeySize {
		return nil, fmt.Errorf("replication: the encryption key is %d bytes, not %d", len(master), EncryptionKeySize)
	}
	path := filepath.Join(dataDir, encryptionFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if master == nil {
			return nil, nil
		}
		if hasData(dataDir) {
			return nil, fmt.Errorf("%w: %s holds data written without encryption; an encryption key cannot be added to it "+
				"(start without the key, or move the directory aside and let the node be replicated to again)", ErrEncryptionKey, dataDir)
		}
		rec := encryptionRecord{Version: 1, Salt: make([]byte, 32),
			Note: "this data directory is encrypted; the node needs its key (--encryption-key-file) to open it"}
		if _, err := rand.Read(rec.Salt); err != nil {
			return nil, err
		}
		rec.Check = keyCheck(master, rec.Salt)
		out, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := atomicfile.Write(path, append(out, '\n'), 0o640); err != nil {
			return nil, fmt.Errorf("replication: %w", err)
		}
		return newDataKeys(master, rec.Salt), nil
	case err != nil:
		return nil, fmt.Errorf("replication: %w", err)
	}
	var rec encryptionRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Version != 1 || len(rec.Salt) == 0 || len(rec.Check) == 0 {
		return nil, fmt.Errorf("replication: %s is damaged or of an unknown version", path)
	}
	if master == nil {
		return nil, fmt.Errorf("%w: %s is encrypted and no encryption key was given", ErrEncryptionKey, dataDir)
	}
	if !hmac.Equal(keyCheck(master, rec.Salt), rec.Check) {
		return nil, fmt.Errorf("%w: %s was encrypted with another key", ErrEncryptionKey, dataDir)
	}
	return newDataKeys(master, rec.Salt), nil
}

func newDataKeys(master, salt []byte) *dataKeys {
	return &dataKeys{
		state: deriveKey(master, salt, "state"),
		log:   newGCM(deriveKey(master, salt, "raft log")),
		snap:  deriveKey(master, salt, "snapshot"),
	}
}

// hasData reports whether a data directory already holds a log, a state or a snapshot.
func hasData(dataDir string) bool {
	if HasLog(dataDir) {
		return true
	}
	for _, d := range []string{"state", "snapshots"} {
		if entries, err := os.ReadDir(filepath.Join(dataDir, d)); err == nil && len(entries) > 0 {
			return true
		}
	}
	return false
}
