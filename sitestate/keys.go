package sitestate

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/replication"
)

// The key layout of a site's state (one badger database per node, at <data-dir>/state). Every
// key of the state is listed here, and nowhere else. Values are JSON unless a big-endian
// integer is said; <seq BE> and <nanos BE> are 8-byte big-endian integers, so keys sort by them.
//
//	m/applied                               uint64: the last Raft index applied (written by replication)
//	c/<number>                              a held case (casework.Case)
//	q/<yyyymmdd>                            uint32: the last case sequence of that day
//	r/<request id>                          requestRecord: a submission applied (number, citizen's code, time)
//	t/<created nanos BE><number>            "": held cases by creation time
//	s/<status>\x00<created nanos BE><number> "": held cases by status and creation time
//	g/<site code>                           SiteRecord: the site registry (this site and beneath it)
//	o/<target site>\x00<handoff id>         OutboxEntry: handoffs not yet settled
//	p/<number>                              Stub: where a case this site handed on went
//	h/<handoff id>                          handoffRecord: handoffs this site refused as their target
//	m/retired                               RetiredState: present while the site is retired
//	m/feedseq                               uint64: the last sequence of this site's feed
//	f/<seq BE>                              feedRef: a feed entry (which case changed)
//	M/<number>                              storedMirror: the newest copy of a subtree case (s2-compressed JSON when it carries the case, mirrorcodec.go)
//	X/v/<number>                            mirrorMeta: that copy's version, status, creation time
//	X/t/<created nanos BE><number>          "": mirrored cases by creation time
//	X/s/<status>\x00<created nanos BE><number> "": mirrored cases by status
//	k/<child site>                          FeedCursor: how far a child's feed is mirrored
//	D/<owner site>\x00<path>                ConfigDoc: configuration flowing down the tree
//	m/cfgver/<owner site>                   uint64: the owner's highest change applied here
//	m/restored                              RestoreState: the site is being, or was, restored
//	m/sitekey                               the site's ed25519 key seed (32 bytes): it signs sign-in tokens
//	a/<seq BE>                              AuditEntry: the site's audit trail, hash-chained
//	m/audit                                 auditHead: the trail's last sequence and hash
//	j/<token id>                            JoinToken: a join token the district issued (its secret hashed)
var (
	keyApplied         = replication.KeyApplied
	prefixCase         = []byte("c/")
	prefixSequence     = []byte("q/")
	prefixRequest      = []byte("r/")
	prefixByTime       = []byte("t/")
	prefixByStatus     = []byte("s/")
	prefixSite         = []byte("g/")
	prefixOutbox       = []byte("o/")
	prefixStub         = []byte("p/")
	prefixHandoff      = []byte("h/")
	keyRetired         = []byte("m/retired")
	keyFeedSeq         = []byte("m/feedseq")
	prefixFeed         = []byte("f/")
	prefixMirror       = []byte("M/")
	prefixMirrorMeta   = []byte("X/v/")
	prefixMirrorTime   = []byte("X/t/")
	prefixMirrorStatus = []byte("X/s/")
	prefixCursor       = []byte("k/")
	prefixConfig       = []byte("D/")
	prefixConfigVer    = []byte("m/cfgver/")
	keyRestored        = []byte("m/restored")
	keySiteKey         = []byte("m/sitekey")
	prefixAudit        = []byte("a/")
	keyAuditHead       = []byte("m/audit")
	prefixJoinToken    = []byte("j/")
)

func caseKey(number string) []byte       { return concat(prefixCase, []byte(number)) }
func joinTokenKey(id string) []byte      { return concat(prefixJoinToken, []byte(id)) }
func sequenceKey(day string) []byte      { return concat(prefixSequence, []byte(day)) }
func requestKey(id string) []byte        { return concat(prefixRequest, []byte(id)) }
func siteKey(code string) []byte         { return concat(prefixSite, []byte(code)) }
func outboxPrefix(to string) []byte      { return concat(prefixOutbox, []byte(to), []byte{0}) }
func outboxKey(to, id string) []byte     { return concat(outboxPrefix(to), []byte(id)) }
func stubKey(number string) []byte       { return concat(prefixStub, []byte(number)) }
func handoffKey(id string) []byte        { return concat(prefixHandoff, []byte(id)) }
func feedKey(seq uint64) []byte          { return concat(prefixFeed, u64(seq)) }
func mirrorKey(number string) []byte     { return concat(prefixMirror, []byte(number)) }
func mirrorMetaKey(number string) []byte { return concat(prefixMirrorMeta, []byte(number)) }
func cursorKey(child string) []byte      { return concat(prefixCursor, []byte(child)) }
func configPrefix(owner string) []byte   { return concat(prefixConfig, []byte(owner), []byte{0}) }
func configKey(owner, path string) []byte {
	return concat(configPrefix(owner), []byte(path))
}
func configVersionKey(owner string) []byte { return concat(prefixConfigVer, []byte(owner)) }

func byStatusPrefix(status string) []byte {
	return concat(prefixByStatus, []byte(status), []byte{0})
}

func mirrorStatusPrefix(status string) []byte {
	return concat(prefixMirrorStatus, []byte(status), []byte{0})
}

// timeIndexKey is <prefix><created nanos BE><number>: an entry of a by-time or by-status index.
func timeIndexKey(prefix []byte, nanos int64, number string) []byte {
	return concat(prefix, u64(uint64(nanos)), []byte(number))
}

// seqFromFeedKey is the sequence of a feed entry's key.
func seqFromFeedKey(key []byte) uint64 { return binary.BigEndian.Uint64(key[len(prefixFeed):]) }

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func u32(v uint32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, v)
	return b
}

func concat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// errMalformed marks a stored value that does not decode: the storage is damaged.
var errMalformed = errors.New("sitestate: malformed stored value")

// reader is what the getters need: a command's Tx while it applies, or a read view.
type reader interface {
	Get(key []byte) (value []byte, ok bool, err error)
}

// view adapts a badger read transaction to reader.
type view struct{ txn *badger.Txn }

func (v view) Get(key []byte) ([]byte, bool, error) {
	item, err := v.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	b, err := item.ValueCopy(nil)
	return b, err == nil, err
}

// getJSON decodes the value at key into v and reports whether it exists.
func getJSON(r reader, key []byte, v any) (bool, error) {
	b, ok, err := r.Get(key)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%w: %s: %v", errMalformed, key, err)
	}
	return true, nil
}

// putJSON encodes v at key.
func putJSON(tx *replication.Tx, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tx.Set(key, b)
	return nil
}

func getUint64(r reader, key []byte) (uint64, error) {
	b, ok, err := r.Get(key)
	if err != nil || !ok {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: %s holds %d bytes, not a uint64", errMalformed, key, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

func getUint32(r reader, key []byte) (uint32, error) {
	b, ok, err := r.Get(key)
	if err != nil || !ok {
		return 0, err
	}
	if len(b) != 4 {
		return 0, fmt.Errorf("%w: %s holds %d bytes, not a uint32", errMalformed, key, len(b))
	}
	return binary.BigEndian.Uint32(b), nil
}

// scanJSON decodes, in key order, every value under prefix into a T and hands it to visit,
// until visit returns false.
func scanJSON[T any](txn *badger.Txn, prefix []byte, visit func(*T) bool) error {
	return scan(txn, prefix, func(b []byte, v *T) error { return json.Unmarshal(b, v) }, visit)
}

// scan is scanJSON with the values decoded by decode.
func scan[T any](txn *badger.Txn, prefix []byte, decode func([]byte, *T) error, visit func(*T) bool) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		v := new(T)
		if err := it.Item().Value(func(b []byte) error { return decode(b, v) }); err != nil {
			return fmt.Errorf("%w: %s: %v", errMalformed, it.Item().Key(), err)
		}
		if !visit(v) {
			return nil
		}
	}
	return nil
}

// jsonUnmarshalOK decodes b into v and reports whether it could.
func jsonUnmarshalOK(b []byte, v any) bool { return json.Unmarshal(b, v) == nil }
