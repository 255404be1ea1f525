package admincli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kerr"
)

// printer writes either aligned tables for people or one JSON document per
// command for scripts; every command produces both from the same rows.
type printer struct {
	w    io.Writer
	json bool
}

func newPrinter(w io.Writer, asJSON bool) *printer { return &printer{w: w, json: asJSON} }

// table writes header and rows aligned in columns.
func (p *printer) table(header []string, rows [][]string) error {
	header, rows = dropEmptyErrors(header, rows)
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// dropEmptyErrors leaves out a trailing ERROR column that has nothing in
// it: most runs have no errors, and the column would only widen the table.
func dropEmptyErrors(header []string, rows [][]string) ([]string, [][]string) {
	last := len(header) - 1
	if last < 0 || header[last] != "ERROR" {
		return header, rows
	}
	for _, r := range rows {
		if len(r) > last && r[last] != "" {
			return header, rows
		}
	}
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = r[:min(len(r), last)]
	}
	return header[:last], out
}

// line writes one line of prose between tables.
func (p *printer) line(format string, args ...any) error {
	if _, err := fmt.Fprintf(p.w, format+"\n", args...); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func (p *printer) encode(v any) error {
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// errText prefers the broker's own message (it names the topic or group)
// over kerr's generic description, keeping the Kafka code in front:
// "TOPIC_ALREADY_EXISTS: topic "x" already exists".
func errText(err error, msg string) string {
	if err == nil {
		return ""
	}
	var ke *kerr.Error
	if msg != "" && errors.As(err, &ke) && err == error(ke) {
		return ke.Message + ": " + msg
	}
	if msg != "" {
		return err.Error() + ": " + msg
	}
	return err.Error()
}

// errCode is the Kafka error name for JSON consumers, or "" when err is
// not a Kafka error.
func errCode(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return ""
}

func itoa[T ~int | ~int16 | ~int32 | ~int64](v T) string { return strconv.FormatInt(int64(v), 10) }

func joinInts[T ~int32](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = itoa(v)
	}
	return strings.Join(s, ",")
}

// offsetText shows "-" for the -1 that Kafka uses for "none".
func offsetText(o int64) string {
	if o < 0 {
		return "-"
	}
	return itoa(o)
}

// sizeText is a byte count for people, one table cell without spaces:
// "-" when unknown, else in the largest binary unit that keeps it at 1 or
// more ("512B", "1.5KiB").
func sizeText(n int64) string {
	if n < 0 {
		return "-"
	}
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	f, i := float64(n)/1024, 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f%ciB", f, units[i])
}

// jsonErr is the error shape in JSON output: the Kafka code for matching,
// the full text for reading.
type jsonErr struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
}

func newJSONErr(err error, msg string) *jsonErr {
	if err == nil {
		return nil
	}
	return &jsonErr{Code: errCode(err), Message: errText(err, msg)}
}

// answerError is one item's error in a kadm answer: nil on success, and a
// "no answer" error when the cluster said nothing about the item.
func answerError(answered bool, err error, msg, kind string) *jsonErr {
	if !answered {
		return newJSONErr(fmt.Errorf("no answer for this %s", kind), "")
	}
	return newJSONErr(err, msg)
}

// describeAll writes items as one JSON array, or each as a block of text
// separated by blank lines.
func describeAll[T any](p *printer, items []T, text func(T) error) error {
	if p.json {
		return p.encode(items)
	}
	for i, it := range items {
		if i > 0 {
			p.line("")
		}
		if err := text(it); err != nil {
			return err
		}
	}
	return nil
}
