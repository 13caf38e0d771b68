package replication

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
)

// encryptedSnapshots keeps Raft's snapshots encrypted on disk (encstream.go) under the data
// directory's snapshot key. Raft and the state machine see the plaintext stream: a snapshot
// sent to a follower goes over Raft's transport as it would in the clear, and the follower
// encrypts it under its own key. meta.json holds no data and stays readable, with the size of
// the ciphertext; List and Open report the plaintext's, which Raft sends along with it.
type encryptedSnapshots struct {
	inner raft.SnapshotStore
	key   []byte
}

func (e *encryptedSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := e.inner.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	w, err := newStreamWriter(sink, e.key)
	if err != nil {
		sink.Cancel()
		return nil, err
	}
	return &encryptedSink{SnapshotSink: sink, w: w}, nil
}

func (e *encryptedSnapshots) List() ([]*raft.SnapshotMeta, error) {
	metas, err := e.inner.List()
	if err != nil {
		return nil, err
	}
	out := make([]*raft.SnapshotMeta, len(metas))
	for i, m := range metas {
		c := *m
		c.Size = plainStreamSize(m.Size)
		out[i] = &c
	}
	return out, nil
}

func (e *encryptedSnapshots) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := e.inner.Open(id)
	if err != nil {
		return nil, nil, err
	}
	r, err := newStreamReader(rc, e.key)
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	c := *meta
	c.Size = plainStreamSize(meta.Size)
	return &c, readCloser{r, rc}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

type encryptedSink struct {
	raft.SnapshotSink
	w *streamWriter
}

func (s *encryptedSink) Write(p []byte) (int, error) { return s.w.Write(p) }

func (s *encryptedSink) Close() error {
	if err := s.w.Close(); err != nil {
		s.SnapshotSink.Cancel()
		return err
	}
	return s.SnapshotSink.Close()
}

// encryptedLog keeps the Data and Extensions of each Raft log entry encrypted in the WAL, whose
// own format (raft-wal's binary codec) is unchanged: index, term, type and append time stay in
// the clear. raft-wal v0.4.1 accepts a codec of one's own (WithCodec) but writes every segment
// as its binary codec's and then refuses to reopen a segment whose codec differs from the one
// configured, so a custom codec cannot be reopened; encrypting the fields keeps its format.
//
// An encrypted field is 1 (version), a 12-byte nonce, the AES-256-GCM ciphertext and tag. The
// nonce is the field (1 data, 2 extensions) and the entry's index in 8 bytes, then 4 random
// bytes: the same nonce could come back only for an index written again (a follower's log
// truncated by a new leader) and then only once in 2^32 rewrites. The additional data binds
// the field to its entry (index, term, type), so fields cannot be moved between entries.
// Empty fields stay empty.
type encryptedLog struct {
	*wal.WAL
	aead cipher.AEAD
}

const (
	fieldData       = 1
	fieldExtensions = 2
	sealedVersion   = 1
)

func (e *encryptedLog) StoreLog(l *raft.Log) error { return e.StoreLogs([]*raft.Log{l}) }

func (e *encryptedLog) StoreLogs(logs []*raft.Log) error {
	// The callers' entries (Raft's log cache keeps them) are left as they are.
	sealed := make([]*raft.Log, len(logs))
	for i, l := range logs {
		c := *l
		var err error
		if c.Data, err = e.seal(l, fieldData, l.Data); err != nil {
			return err
		}
		if c.Extensions, err = e.seal(l, fieldExtensions, l.Extensions); err != nil {
			return err
		}
		sealed[i] = &c
	}
	return e.WAL.StoreLogs(sealed)
}

func (e *encryptedLog) GetLog(index uint64, l *raft.Log) error {
	if err := e.WAL.GetLog(index, l); err != nil {
		return err
	}
	var err error
	if l.Data, err = e.open(l, fieldData, l.Data); err != nil {
		return err
	}
	l.Extensions, err = e.open(l, fieldExtensions, l.Extensions)
	return err
}

func fieldAD(l *raft.Log, field byte) []byte {
	ad := make([]byte, 18)
	binary.BigEndian.PutUint64(ad, l.Index)
	binary.BigEndian.PutUint64(ad[8:], l.Term)
	ad[16], ad[17] = byte(l.Type), field
	return ad
}

func (e *encryptedLog) seal(l *raft.Log, field byte, plain []byte) ([]byte, error) {
	if len(plain) == 0 {
		return plain, nil
	}
	if l.Index >= 1<<56 {
		return nil, fmt.Errorf("replication: log index %d too large to encrypt", l.Index)
	}
	out := make([]byte, 1+12, 1+12+len(plain)+16)
	out[0] = sealedVersion
	nonce := out[1:13]
	binary.BigEndian.PutUint64(nonce, l.Index)
	nonce[0] = field
	if _, err := rand.Read(nonce[8:]); err != nil {
		return nil, err
	}
	return e.aead.Seal(out, nonce, plain, fieldAD(l, field)), nil
}

func (e *encryptedLog) open(l *raft.Log, field byte, sealed []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return sealed, nil
	}
	if len(sealed) < 1+12+16 || sealed[0] != sealedVersion {
		return nil, fmt.Errorf("%w: raft log entry %d is not encrypted", ErrNotDecrypted, l.Index)
	}
	plain, err := e.aead.Open(nil, sealed[1:13], sealed[13:], fieldAD(l, field))
	if err != nil {
		return nil, fmt.Errorf("%w: raft log entry %d", ErrNotDecrypted, l.Index)
	}
	return plain, nil
}
