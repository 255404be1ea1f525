package ingest

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

// frames reads a stream with one framing, naming oversize, cut and bad
// frames instead of their bytes.
func frames(t *testing.T, mode Framing, in string, max int) []string {
	t.Helper()
	fr := &frameReader{r: bufio.NewReaderSize(strings.NewReader(in), 16), max: max, mode: mode}
	var got []string
	for {
		f, err := fr.next()
		var (
			big *errOversize
			cut *errCut
			bad *errBadFrame
		)
		switch {
		case errors.As(err, &big):
			got = append(got, "OVERSIZE:"+strconv.Itoa(big.size))
			continue
		case errors.As(err, &bad):
			got = append(got, "BAD:"+string(bad.line))
			continue
		case errors.As(err, &cut):
			got = append(got, "CUT:"+strconv.Itoa(cut.size)+":"+string(cut.got))
		case errors.Is(err, io.EOF):
		case err != nil:
			t.Fatalf("next: %v", err)
		default:
			got = append(got, string(f))
			continue
		}
		return got
	}
}

// TestFrameReader covers the three framings: RFC 6587 octet counting and
// LF framing mixed on one stream (auto), lines that start with digits and
// a space, oversize frames of both kinds (consumed and reported, reading
// continues), and a counted frame cut by the end of the stream.
func TestFrameReader(t *testing.T) {
	big := strings.Repeat("x", 100)
	for _, c := range []struct {
		name string
		mode Framing
		in   string
		want []string
	}{
		{"auto", FramingAuto,
			"5 <1>ab" + // octet-counted
				"<2>lf line\n" +
				"\n\r\n" + // blank separators
				"123abc not counted\n" +
				"404 not found is a line\n" + // digits and a space, but no PRI
				"110 <" + big[:99] + "0123456789" + // octet-counted, over max (64)
				big + "\n" + // LF, over max
				"10 <3>counted" +
				"<4>last without LF",
			[]string{"<1>ab", "<2>lf line", "123abc not counted", "404 not found is a line", "OVERSIZE:110", "OVERSIZE:100", "<3>counted", "<4>last without LF"}},
		// The bug of issue 19: a line that starts with digits and a space
		// swallowed the next one as its "count".
		{"auto, digits then a line", FramingAuto, "12 apples fell\nnext line\n", []string{"12 apples fell", "next line"}},
		{"newline", FramingNewline, "5 <1>ab\n12 <2>x\n", []string{"5 <1>ab", "12 <2>x"}},
		{"octet-counted", FramingOctetCounted, "5 hello3 <1>no length here\n4 <2>z", []string{"hello", "<1>", "BAD:no length here", "<2>z"}},
		{"cut at the end", FramingAuto, "5 <1>ab20 <2>only part", []string{"<1>ab", "CUT:20:<2>only part"}},
		{"cut oversize", FramingOctetCounted, "500 <1>" + big, []string{"CUT:500:<1>" + big}},
	} {
		if got := frames(t, c.mode, c.in, 64); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: frames\n got %q\nwant %q", c.name, got, c.want)
		}
	}
	for _, s := range []string{"", "auto", "octet-counted", "newline"} {
		if _, err := ParseFraming(s); err != nil {
			t.Errorf("ParseFraming(%q): %v", s, err)
		}
	}
	if _, err := ParseFraming("octet"); err == nil {
		t.Error("ParseFraming accepted octet")
	}
}
