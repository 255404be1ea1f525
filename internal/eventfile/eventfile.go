// Package eventfile reads the JSON events of the files an analyst hands to
// offline detection: one document, NDJSON, or concatenated pretty-printed
// documents (as evtx_dump writes them), plain or gzip-compressed, under
// any file name (Zeek writes .log). What is not JSON is counted and
// skipped line by line rather than ending the file, so one bad line of a
// day's log does not hide the rest; binary files are recognised and
// skipped whole.
package eventfile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// MaxDocumentBytes bounds one document; a longer one is undecodable (and
// its bytes are skipped up to the next line), so a stray "{" cannot make
// the scanner hold a whole file.
const MaxDocumentBytes = 64 << 20

// ErrBinary is returned for input that is not text.
var ErrBinary = errors.New("binary content (not JSON text)")

// Bad describes input that was skipped: Line is where it started (1-based,
// in the decompressed text).
type Bad struct {
	Line   int
	Reason string
}

// Scan calls doc for each JSON document of r (the slice is valid only
// during the call; index counts documents from 0) and bad for each
// undecodable stretch. An error from doc stops the scan and is returned;
// so is a read error, or ErrBinary when r starts like a binary file.
func Scan(r io.Reader, doc func(index int, d []byte) error, bad func(Bad)) error {
	br := bufio.NewReaderSize(r, 256<<10)
	head, _ := br.Peek(8 << 10)
	if bytes.HasPrefix(head, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 256<<10)
		head, _ = br.Peek(8 << 10)
	}
	if isBinary(head) {
		return ErrBinary
	}
	s := scanner{r: br, doc: doc, bad: bad, line: 1}
	return s.run()
}

// isBinary is the usual heuristic (grep, git): a NUL byte, or text that is
// not UTF-8, in the first bytes.
func isBinary(head []byte) bool {
	if bytes.IndexByte(head, 0) >= 0 {
		return true
	}
	// The peeked bytes may end inside a multi-byte rune.
	for i := 0; i < len(head); {
		c, size := utf8.DecodeRune(head[i:])
		if c == utf8.RuneError && size == 1 && len(head)-i >= utf8.UTFMax {
			return true
		}
		i += size
	}
	return false
}

type scanner struct {
	r    *bufio.Reader
	doc  func(int, []byte) error
	bad  func(Bad)
	line int // line of the byte about to be read

	buf       []byte // the document being read
	startLine int
	depth     int
	inString  bool
	escaped   bool
	lineStart bool // the last byte read was a newline
	index     int
}

func (s *scanner) run() error {
	s.lineStart = true
	for {
		c, err := s.r.ReadByte()
		if err == io.EOF {
			if s.depth > 0 {
				s.reject("a document is cut off at the end of the input")
			}
			return nil
		}
		if err != nil {
			return err
		}
		atLineStart := s.lineStart
		s.lineStart = c == '\n'
		if s.depth == 0 {
			switch c {
			case ' ', '\t', '\r':
			case '\n':
				s.line++
			case '{', '[':
				s.begin(c)
			default:
				s.bad(Bad{Line: s.line, Reason: "not a JSON object or array"})
				if err := s.skipLine(); err != nil {
					return err
				}
			}
			continue
		}
		// NDJSON lines and pretty-printed documents both start at the first
		// column; inside a pretty-printed document nested values are
		// indented. So a "{" there means the previous line was cut short.
		if atLineStart && c == '{' && !s.inString {
			s.reject("a document is cut off before the next one starts")
			s.begin(c)
			continue
		}
		if err := s.add(c); err != nil {
			return err
		}
	}
}

func (s *scanner) begin(c byte) {
	s.buf = append(s.buf[:0], c)
	s.depth, s.inString, s.escaped, s.startLine = 1, false, false, s.line
}

func (s *scanner) add(c byte) error {
	s.buf = append(s.buf, c)
	switch {
	case c == '\n':
		s.line++
	case s.escaped:
		s.escaped = false
	case s.inString:
		switch c {
		case '\\':
			s.escaped = true
		case '"':
			s.inString = false
		}
	case c == '"':
		s.inString = true
	case c == '{' || c == '[':
		s.depth++
	case c == '}' || c == ']':
		s.depth--
		if s.depth == 0 {
			return s.finish()
		}
	}
	if len(s.buf) > MaxDocumentBytes {
		s.reject(fmt.Sprintf("a document is longer than %d bytes", MaxDocumentBytes))
		if c != '\n' {
			return s.skipLine()
		}
	}
	return nil
}

func (s *scanner) finish() error {
	d := bytes.TrimSpace(s.buf)
	if !json.Valid(d) {
		s.reject("invalid JSON")
		return nil
	}
	i := s.index
	s.index++
	return s.doc(i, d)
}

func (s *scanner) reject(reason string) {
	s.bad(Bad{Line: s.startLine, Reason: reason})
	s.depth, s.inString, s.escaped = 0, false, false
	s.buf = s.buf[:0]
}

// skipLine drops the rest of the current line.
func (s *scanner) skipLine() error {
	for {
		c, err := s.r.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if c == '\n' {
			s.line++
			s.lineStart = true
			return nil
		}
	}
}
