package eventfile

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"
)

func scanAll(t *testing.T, in []byte) (docs []string, bad []Bad, err error) {
	t.Helper()
	err = Scan(bytes.NewReader(in), func(i int, d []byte) error {
		if i != len(docs) {
			t.Errorf("document index %d, want %d", i, len(docs))
		}
		docs = append(docs, string(d))
		return nil
	}, func(b Bad) { bad = append(bad, b) })
	return docs, bad, err
}

func TestScanLayouts(t *testing.T) {
	for _, c := range []struct {
		name    string
		in      string
		docs    []string
		badAt   []int // lines of the undecodable stretches
		comment string
	}{
		{name: "one document", in: `{"a": 1}`, docs: []string{`{"a": 1}`}},
		{name: "ndjson", in: "{\"a\":1}\n{\"b\":\"}{\"}\n\n{\"c\":[1,{\"d\":2}]}\n", docs: []string{`{"a":1}`, `{"b":"}{"}`, `{"c":[1,{"d":2}]}`}},
		{name: "pretty concatenated", in: "{\n  \"a\": {\n    \"b\": 1\n  }\n}\n{\n  \"c\": \"x\\\"}\"\n}\n", docs: []string{"{\n  \"a\": {\n    \"b\": 1\n  }\n}", "{\n  \"c\": \"x\\\"}\"\n}"}},
		{name: "two on a line", in: `{"a":1} {"b":2}`, docs: []string{`{"a":1}`, `{"b":2}`}},
		{name: "zeek tsv header and a bad line", in: "#separator \\x09\n#fields\tts\tuid\n{\"ts\":1}\nplain text line\n{\"ts\":2}\n", docs: []string{`{"ts":1}`, `{"ts":2}`}, badAt: []int{1, 2, 4}},
		{name: "ndjson line cut short", in: "{\"a\":1\n{\"b\":2}\n", docs: []string{`{"b":2}`}, badAt: []int{1}},
		{name: "cut off at the end", in: "{\"a\":1}\n{\"b\": ", docs: []string{`{"a":1}`}, badAt: []int{2}},
		{name: "balanced but invalid", in: "{\"a\" 1}\n{\"b\":2}", docs: []string{`{"b":2}`}, badAt: []int{1}},
		{name: "scalar", in: "42\n{\"b\":2}", docs: []string{`{"b":2}`}, badAt: []int{1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			docs, bad, err := scanAll(t, []byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(docs, "|") != strings.Join(c.docs, "|") {
				t.Errorf("documents %q, want %q", docs, c.docs)
			}
			var lines []int
			for _, b := range bad {
				lines = append(lines, b.Line)
			}
			if len(lines) != len(c.badAt) {
				t.Fatalf("bad stretches at lines %v (%v), want %v", lines, bad, c.badAt)
			}
			for i := range lines {
				if lines[i] != c.badAt[i] {
					t.Errorf("bad stretches at lines %v, want %v", lines, c.badAt)
				}
			}
		})
	}
}

func TestScanGzip(t *testing.T) {
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write([]byte("{\"a\":1}\n{\"a\":2}\n"))
	w.Close()
	docs, bad, err := scanAll(t, z.Bytes())
	if err != nil || len(docs) != 2 || len(bad) != 0 {
		t.Fatalf("gzip: docs %q, bad %v, err %v", docs, bad, err)
	}
}

func TestScanBinary(t *testing.T) {
	for name, in := range map[string][]byte{
		"nul":         []byte("ElfFile\x00\x01\x02{\"a\":1}"),
		"not utf8":    bytes.Repeat([]byte{0xff, 0xfe, 0x80}, 10),
		"evtx header": append([]byte("ElfFile\x00"), make([]byte, 100)...),
	} {
		if _, _, err := scanAll(t, in); !errors.Is(err, ErrBinary) {
			t.Errorf("%s: err %v, want ErrBinary", name, err)
		}
	}
	// A multi-byte rune cut by the peek window is still text.
	text := append(bytes.Repeat([]byte("{\"é\":1}\n"), 2000), []byte("{\"x\":\"é\"}")...)
	if docs, _, err := scanAll(t, text); err != nil || len(docs) != 2001 {
		t.Errorf("utf-8 text: %d docs, err %v", len(docs), err)
	}
}

func TestScanStopsOnCallbackError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := Scan(strings.NewReader("{}\n{}\n{}\n"), func(int, []byte) error { n++; return stop }, func(Bad) {})
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("err %v after %d documents", err, n)
	}
}
