package ingest

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

// TestFrameReader covers RFC 6587 octet counting and LF framing mixed on
// one stream, lines that start with digits, and oversize frames of both
// kinds (consumed and reported, reading continues).
func TestFrameReader(t *testing.T) {
	big := strings.Repeat("x", 100)
	in := "5 <1>ab" + // octet-counted
		"<2>lf line\n" +
		"\n\r\n" + // blank separators
		"123abc not counted\n" +
		"110 " + big + "0123456789" + // octet-counted, over max (64)
		big + "\n" + // LF, over max
		"10 <3>counted" +
		"<4>last without LF"
	fr := &frameReader{r: bufio.NewReaderSize(strings.NewReader(in), 16), max: 64}
	var got []string
	for {
		f, err := fr.next()
		var big *errOversize
		switch {
		case errors.As(err, &big):
			got = append(got, "OVERSIZE:"+strconv.Itoa(big.size))
			continue
		case errors.Is(err, io.EOF):
		case err != nil:
			t.Fatalf("next: %v", err)
		default:
			got = append(got, string(f))
			continue
		}
		break
	}
	want := []string{"<1>ab", "<2>lf line", "123abc not counted", "OVERSIZE:110", "OVERSIZE:100", "<3>counted", "<4>last without LF"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("frames\n got %q\nwant %q", got, want)
	}
}
