package sigma

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// EachDocument calls fn for every JSON document in r: one document, NDJSON,
// or concatenated (pretty-printed) documents. fn gets the document's
// index and its bytes, valid only during the call.
func EachDocument(r io.Reader, fn func(i int, doc []byte) error) error {
	dec := json.NewDecoder(r)
	var raw json.RawMessage
	for i := 0; ; i++ {
		raw = raw[:0]
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("document %d: %w", i, err)
		}
		if err := fn(i, bytes.TrimSpace(raw)); err != nil {
			return err
		}
	}
}
