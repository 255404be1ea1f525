// Package auditchain is the hash chain over the audit trail's records
// (_vigil.audit): each record carries, in a header, a hash of the
// previous record's link in the same partition and of its own key, value
// and other headers, so that a record altered, removed from the middle or
// inserted after the fact breaks the chain where it happened. The trail
// (package audit) writes the links; Verifier recomputes them for `vigil
// audit verify`.
//
// A link is SHA-256, or HMAC-SHA256 under a key the brokers share, of
//
//	prev || field(key) || field(value) || u32(n) || n × (field(header name) || field(header value))
//
// where prev is the previous link's 32 bytes (32 zero bytes for the first
// record of a partition's chain), field(b) is b's length as a big-endian
// uint32 followed by b (a null and an empty field are both length 0), and
// the headers are the record's other headers, in record order. The header
// value is the link in lower-case hex.
package auditchain

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The record headers holding a link: Header when the chain is plain
// SHA-256, HeaderHMAC when it is keyed.
const (
	Header     = "vigil.chain"
	HeaderHMAC = "vigil.chain.hmac"
)

// MinKeyBytes is the shortest key accepted: a key is a secret only if it
// cannot be guessed.
const MinKeyBytes = 32

// Link is one link of a chain.
type Link [sha256.Size]byte

// Zero is the link the first record of a partition's chain follows.
var Zero Link

// String is the link as its header carries it.
func (l Link) String() string { return hex.EncodeToString(l[:]) }

// ParseLink reads a header value.
func ParseLink(s []byte) (Link, bool) {
	var l Link
	if len(s) != 2*len(l) {
		return l, false
	}
	if _, err := hex.Decode(l[:], s); err != nil {
		return l, false
	}
	return l, true
}

// Hasher computes links, plain or keyed. It is not safe for concurrent
// use.
type Hasher struct {
	keyed bool
	h     hash.Hash
	n     [4]byte
}

// NewHasher returns a hasher of plain SHA-256 links for a nil key, else
// of HMAC-SHA256 links under key.
func NewHasher(key []byte) *Hasher {
	if key == nil {
		return &Hasher{h: sha256.New()}
	}
	return &Hasher{keyed: true, h: hmac.New(sha256.New, bytes.Clone(key))}
}

// Keyed reports whether the links are HMACs.
func (c *Hasher) Keyed() bool { return c.keyed }

// HeaderName is the header the hasher's links go in.
func (c *Hasher) HeaderName() string {
	if c.keyed {
		return HeaderHMAC
	}
	return Header
}

// Link returns the link of a record following prev. Headers named Header
// or HeaderHMAC are not hashed (they hold the link).
func (c *Hasher) Link(prev Link, key, value []byte, headers []kmsg.Header) Link {
	c.h.Reset()
	c.h.Write(prev[:])
	c.field(key)
	c.field(value)
	n := 0
	for _, h := range headers {
		if !isLink(h.Key) {
			n++
		}
	}
	c.u32(n)
	for _, h := range headers {
		if !isLink(h.Key) {
			c.u32(len(h.Key))
			io.WriteString(c.h, h.Key)
			c.field(h.Value)
		}
	}
	var l Link
	c.h.Sum(l[:0])
	return l
}

// field hashes v as field(v): the value streams into the hash, never
// copied.
func (c *Hasher) field(v []byte) {
	c.u32(len(v))
	c.h.Write(v)
}

func (c *Hasher) u32(n int) {
	binary.BigEndian.PutUint32(c.n[:], uint32(n))
	c.h.Write(c.n[:])
}

func isLink(name string) bool { return name == Header || name == HeaderHMAC }

// Found returns the link a record's headers carry, under which header,
// and how many link headers it has: 0 for a record without one (written
// before the chain, or inserted), more than one is a break.
func Found(headers []kmsg.Header) (value []byte, name string, n int) {
	for _, h := range headers {
		if isLink(h.Key) {
			if n == 0 {
				value, name = h.Value, h.Key
			}
			n++
		}
	}
	return value, name, n
}

// LoadKey reads a chain key file: its first line (without the line end),
// at least MinKeyBytes long. Every broker, and the verifier, must read
// the same key.
func LoadKey(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit chain key: %w", err)
	}
	if i := bytes.IndexByte(raw, '\n'); i >= 0 {
		raw = raw[:i]
	}
	raw = bytes.TrimSuffix(raw, []byte("\r"))
	if len(raw) < MinKeyBytes {
		return nil, fmt.Errorf("audit chain key %s: %d bytes on its first line, want at least %d (e.g. head -c 32 /dev/urandom | base64)", path, len(raw), MinKeyBytes)
	}
	return raw, nil
}

// ErrNoKey is a keyed chain met by a verifier without the key.
var ErrNoKey = errors.New("the chain is keyed (HMAC-SHA256): its links can be checked only with the key")
