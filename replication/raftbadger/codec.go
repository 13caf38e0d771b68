package raftbadger

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

const (
	// logFormatV1 is the only log encoding version written and understood.
	logFormatV1 byte = 1

	// flagAppendedAt marks that an AppendedAt timestamp follows the payload.
	flagAppendedAt byte = 1 << 0

	// knownFlags holds every flag bit understood by decodeLog; entries with
	// other bits set are rejected so that a future format cannot be misread.
	knownFlags = flagAppendedAt

	// logHeaderLen is the length of the version and flags bytes.
	logHeaderLen = 2
)

// encodedLogSize returns the exact number of bytes appendLog adds for l.
func encodedLogSize(l *raft.Log) int {
	n := logHeaderLen +
		uvarintLen(l.Index) +
		uvarintLen(l.Term) +
		1 + // Type
		uvarintLen(uint64(len(l.Data))) + len(l.Data) +
		uvarintLen(uint64(len(l.Extensions))) + len(l.Extensions)
	if !l.AppendedAt.IsZero() {
		n += varintLen(l.AppendedAt.UnixNano())
	}
	return n
}

// encodeLog returns the version-1 binary encoding of l (see the package
// documentation for the layout).
func encodeLog(l *raft.Log) []byte {
	return appendLog(make([]byte, 0, encodedLogSize(l)), l)
}

// appendLog appends the encoding of l to dst and returns the extended slice.
func appendLog(dst []byte, l *raft.Log) []byte {
	var flags byte
	if !l.AppendedAt.IsZero() {
		flags |= flagAppendedAt
	}
	dst = append(dst, logFormatV1, flags)
	dst = binary.AppendUvarint(dst, l.Index)
	dst = binary.AppendUvarint(dst, l.Term)
	dst = append(dst, byte(l.Type))
	dst = binary.AppendUvarint(dst, uint64(len(l.Data)))
	dst = append(dst, l.Data...)
	dst = binary.AppendUvarint(dst, uint64(len(l.Extensions)))
	dst = append(dst, l.Extensions...)
	if flags&flagAppendedAt != 0 {
		dst = binary.AppendVarint(dst, l.AppendedAt.UnixNano())
	}
	return dst
}

// decodeLog decodes b into l, overwriting every field of l. Data and
// Extensions are copied (into one shared allocation), so b may be reused
// after decodeLog returns. Malformed input yields an error wrapping
// ErrCorruptLog; decodeLog never panics.
func decodeLog(b []byte, l *raft.Log) error {
	if len(b) < logHeaderLen {
		return fmt.Errorf("%w: %d bytes is too short", ErrCorruptLog, len(b))
	}
	if b[0] != logFormatV1 {
		return fmt.Errorf("%w: unknown format version %d", ErrCorruptLog, b[0])
	}
	flags := b[1]
	if flags&^knownFlags != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrCorruptLog, flags)
	}
	d := decoder{buf: b[logHeaderLen:]}
	index := d.uvarint("index")
	term := d.uvarint("term")
	typ := d.byte("type")
	dataLen := d.uvarint("data length")
	data := d.bytes(dataLen, "data")
	extLen := d.uvarint("extensions length")
	ext := d.bytes(extLen, "extensions")
	var appendedAt time.Time
	if flags&flagAppendedAt != 0 {
		appendedAt = time.Unix(0, d.varint("appended-at"))
	}
	if d.err != nil {
		return d.err
	}
	if len(d.buf) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorruptLog, len(d.buf))
	}

	// One allocation for both payloads; the three-index slices keep an
	// append to Data from overwriting Extensions.
	var dataCopy, extCopy []byte
	if total := len(data) + len(ext); total > 0 {
		payload := make([]byte, total)
		copy(payload, data)
		copy(payload[len(data):], ext)
		if len(data) > 0 {
			dataCopy = payload[:len(data):len(data)]
		}
		if len(ext) > 0 {
			extCopy = payload[len(data):]
		}
	}

	*l = raft.Log{
		Index:      index,
		Term:       term,
		Type:       raft.LogType(typ),
		Data:       dataCopy,
		Extensions: extCopy,
		AppendedAt: appendedAt,
	}
	return nil
}

// decoder reads fields from buf and records the first error; once err is
// set every further read returns a zero value.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(field string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or invalid %s", ErrCorruptLog, field)
	}
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail(field)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail(field)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) byte(field string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) < 1 {
		d.fail(field)
		return 0
	}
	v := d.buf[0]
	d.buf = d.buf[1:]
	return v
}

// bytes returns the next n bytes of buf without copying.
func (d *decoder) bytes(n uint64, field string) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.fail(field)
		return nil
	}
	v := d.buf[:n:n]
	d.buf = d.buf[n:]
	return v
}

// uvarintLen returns the length of the uvarint encoding of v.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// varintLen returns the length of the zig-zag varint encoding of v.
func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}
