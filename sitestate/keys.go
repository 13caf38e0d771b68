package replication

import "encoding/binary"

// Key layout of a site's state database (one badger DB per node, at <data-dir>/state):
//
//	m/applied                          -> uint64 BE: the last Raft index applied
//	c/<number>                         -> a case, JSON
//	q/<yyyymmdd>                       -> uint32 BE: the last case sequence of that day
//	r/<request id>                     -> a case number: submissions already applied
//	t/<created nanos BE><number>       -> "": every case by creation time
//	s/<status>\x00<created nanos BE><number> -> "": cases by status and creation time
//	g/<site code>                      -> SiteRecord, JSON: the site registry
//	o/<target site>\x00<handoff id>    -> OutboxEntry, JSON: handoffs not yet settled
//	p/<number>                         -> Stub, JSON: where a case this site handed on went
//	h/<handoff id>                     -> handoffRecord, JSON: handoffs this site answered
//	m/retired                          -> RetiredState, JSON: present while the site is retired
//	m/feedseq                          -> uint64 BE: the last sequence of this site's feed
//	f/<seq BE>                         -> feedRef, JSON: a feed entry (which case changed)
//	M/<number>                         -> MirrorRecord, JSON: the newest copy of a subtree case
//	X/v/<number>                       -> mirrorMeta, JSON: its version, status, creation time
//	X/t/<created nanos BE><number>     -> "": mirrored cases by creation time
//	X/s/<status>\x00<created BE><number> -> "": mirrored cases by status
//	k/<child site>                     -> FeedCursor, JSON: how far a child's feed is mirrored
//	D/<owner site>\x00<path>           -> ConfigDoc, JSON: configuration flowing down the tree
//	m/cfgver/<owner site>              -> uint64 BE: the owner's highest change applied here
var (
	keyApplied     = []byte("m/applied")
	prefixCase     = []byte("c/")
	prefixSequence = []byte("q/")
	prefixRequest  = []byte("r/")
	prefixByTime   = []byte("t/")
	prefixByStatus = []byte("s/")
	prefixOutbox   = []byte("o/")
	prefixStub     = []byte("p/")
	prefixHandoff  = []byte("h/")
	keyRetired     = []byte("m/retired")
)

func outboxPrefix(to string) []byte { return concat(prefixOutbox, []byte(to), []byte{0}) }

func outboxKey(to, id string) []byte { return concat(outboxPrefix(to), []byte(id)) }

func stubKey(number string) []byte { return concat(prefixStub, []byte(number)) }

func handoffKey(id string) []byte { return concat(prefixHandoff, []byte(id)) }

func caseKey(number string) []byte { return concat(prefixCase, []byte(number)) }

func sequenceKey(day string) []byte { return concat(prefixSequence, []byte(day)) }

func requestKey(id string) []byte { return concat(prefixRequest, []byte(id)) }

func byTimeKey(nanos int64, number string) []byte {
	return concat(prefixByTime, u64(uint64(nanos)), []byte(number))
}

func byStatusPrefix(status string) []byte {
	return concat(prefixByStatus, []byte(status), []byte{0})
}

func byStatusKey(status string, nanos int64, number string) []byte {
	return concat(byStatusPrefix(status), u64(uint64(nanos)), []byte(number))
}

// numberFromIndexKey returns the case number at the end of a time or status index key.
func numberFromIndexKey(prefix, key []byte) string {
	return string(key[len(prefix)+8:])
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
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
