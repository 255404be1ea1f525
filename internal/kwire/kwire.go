// Package kwire holds the bits of Kafka framing that kmsg leaves to its
// caller and that both sides of Vigil's wire need: the broker parsing
// request headers and the forward link parsing response headers.
package kwire

import (
	"encoding/binary"
	"errors"
)

// SkipTags skips a tagged-field section (KIP-482) at the start of b and
// returns the rest.
func SkipTags(b []byte) ([]byte, error) {
	n, used := binary.Uvarint(b)
	if used <= 0 {
		return nil, errors.New("truncated tagged fields")
	}
	b = b[used:]
	for i := uint64(0); i < n; i++ {
		if _, used = binary.Uvarint(b); used <= 0 {
			return nil, errors.New("truncated tag")
		}
		b = b[used:]
		size, used := binary.Uvarint(b)
		if used <= 0 || uint64(len(b)-used) < size {
			return nil, errors.New("truncated tag value")
		}
		b = b[used+int(size):]
	}
	return b, nil
}
