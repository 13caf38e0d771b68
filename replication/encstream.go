package replication

import (
	"bufio"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// An encrypted stream (snapshots at rest, a backup's temporary file) is chunked AES-256-GCM
// in the STREAM construction, with a key of its own for every stream (as Tink's streaming AEAD):
//
//	streamMagic, then a 32-byte random salt
//	chunks of streamChunk plaintext bytes (the last one shorter, possibly empty), each sealed
//	with AES-256-GCM (16-byte tag) under HKDF-SHA256(key, salt), nonce = uint64 BE chunk
//	number, 3 zero bytes, and 1 on the last chunk (0 on the others)
//
// The key being new for each stream, the nonces never repeat under one key; the chunk number
// stops chunks from being reordered, and the last-chunk flag stops a truncation at a chunk's
// end from going unnoticed. The length of the plaintext follows from the length of the stream
// (plainStreamSize), which Raft's snapshot meta needs.
const (
	streamMagic = "govgrid-aes256gcm-stream-v1\n"
	streamSalt  = 32
	streamChunk = 64 << 10
	streamTag   = 16
	streamHead  = len(streamMagic) + streamSalt
)

// ErrNotDecrypted is returned for an encrypted stream or log entry that does not decrypt: it
// was encrypted under another key, or it is damaged.
var ErrNotDecrypted = errors.New("replication: data does not decrypt with this encryption key (another key, or damaged data)")

func streamAEAD(key, salt []byte) cipher.AEAD {
	return newGCM(deriveKey(key, salt, "stream chunk"))
}

func streamNonce(n uint64, last bool) []byte {
	nonce := make([]byte, 12)
	binary.BigEndian.PutUint64(nonce, n)
	if last {
		nonce[11] = 1
	}
	return nonce
}

// plainStreamSize is the length of the plaintext of an encrypted stream of size bytes.
func plainStreamSize(size int64) int64 {
	body := size - int64(streamHead)
	if body < streamTag {
		return 0
	}
	chunks := (body + streamChunk + streamTag - 1) / (streamChunk + streamTag)
	return body - chunks*streamTag
}

// streamWriter encrypts what is written to it; Close seals the last chunk (it does not close
// the underlying writer).
type streamWriter struct {
	w      io.Writer
	aead   cipher.AEAD
	buf    []byte
	n      uint64
	plain  int64
	closed bool
	err    error
}

func newStreamWriter(w io.Writer, key []byte) (*streamWriter, error) {
	head := make([]byte, streamHead)
	copy(head, streamMagic)
	salt := head[len(streamMagic):]
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := w.Write(head); err != nil {
		return nil, err
	}
	return &streamWriter{w: w, aead: streamAEAD(key, salt), buf: make([]byte, 0, streamChunk+streamTag)}, nil
}

func (s *streamWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.closed {
		return 0, errors.New("replication: write to a closed encrypted stream")
	}
	written := 0
	for len(p) > 0 {
		if len(s.buf) == streamChunk {
			// More follows, so the full chunk is not the last.
			if s.err = s.seal(false); s.err != nil {
				return written, s.err
			}
		}
		k := min(len(p), streamChunk-len(s.buf))
		s.buf = append(s.buf, p[:k]...)
		p = p[k:]
		written += k
		s.plain += int64(k)
	}
	return written, nil
}

func (s *streamWriter) seal(last bool) error {
	out := s.aead.Seal(s.buf[:0], streamNonce(s.n, last), s.buf, nil)
	s.n++
	_, err := s.w.Write(out)
	s.buf = s.buf[:0]
	return err
}

// Close seals the last chunk.
func (s *streamWriter) Close() error {
	if s.err != nil || s.closed {
		return s.err
	}
	s.closed = true
	s.err = s.seal(true)
	return s.err
}

// streamReader decrypts an encrypted stream; it returns io.EOF only after the last chunk was
// authenticated.
type streamReader struct {
	r    *bufio.Reader
	aead cipher.AEAD
	in   []byte
	out  []byte // decrypted bytes not read yet
	n    uint64
	done bool
	err  error
}

// newStreamReader reads the stream's header; a stream that is not an encrypted one is refused.
func newStreamReader(r io.Reader, key []byte) (*streamReader, error) {
	br := bufio.NewReaderSize(r, streamChunk+streamTag+1)
	head := make([]byte, streamHead)
	if _, err := io.ReadFull(br, head); err != nil || string(head[:len(streamMagic)]) != streamMagic {
		return nil, fmt.Errorf("%w: not an encrypted stream", ErrNotDecrypted)
	}
	return &streamReader{r: br, aead: streamAEAD(key, head[len(streamMagic):]), in: make([]byte, streamChunk+streamTag)}, nil
}

func (s *streamReader) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if s.done {
			return 0, io.EOF
		}
		s.err = s.next()
	}
	k := copy(p, s.out)
	s.out = s.out[k:]
	return k, nil
}

func (s *streamReader) next() error {
	k, err := io.ReadFull(s.r, s.in)
	last := false
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		last = true
	case err != nil:
		return err
	default:
		if _, err := s.r.Peek(1); err == io.EOF {
			last = true
		} else if err != nil {
			return err
		}
	}
	if k < streamTag {
		return fmt.Errorf("%w: encrypted stream truncated", ErrNotDecrypted)
	}
	out, err := s.aead.Open(s.in[:0], streamNonce(s.n, last), s.in[:k], nil)
	if err != nil {
		return fmt.Errorf("%w: chunk %d", ErrNotDecrypted, s.n)
	}
	s.n++
	s.out = out
	s.done = last
	return nil
}
