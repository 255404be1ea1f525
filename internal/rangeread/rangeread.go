// Package rangeread is reading a time range of retained history: which
// offsets of each partition hold the records of [from, to), and the
// progress line a long read writes to stderr. `vigil hunt` (rules over
// the range) and `vigil export --from --to` (a backfill into a sink)
// share it, so both find their ranges and report progress alike.
//
// A range is found with ListOffsets by timestamp: each partition's first
// offset at or after from and the first at or after to (the end offset
// when there is none). Timestamps need not be monotonic inside a
// partition, so a reader still checks each record's timestamp against the
// range and counts those outside it; the offsets only bound the read.
package rangeread

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Range is one partition's offsets to read: [Start, End).
type Range struct {
	Topic      string
	Partition  int32
	Start, End int64
}

// Len is the number of offsets in the range.
func (r Range) Len() int64 { return r.End - r.Start }

// Step moves a partition's read position, next (the first offset of its
// range not read yet), past a record at off of a range ending at end.
// in says the record is inside the range and not seen before (the caller
// uses it); done that the partition is now read to its end (the caller
// stops fetching it); read is how many of the range's offsets it passed.
// A record at or past end ends the range too: the range's last offsets
// may be gone (removed by the cleaner), and then no record reaches end-1.
func Step(next *int64, end, off int64) (in, done bool, read int64) {
	if off < *next || *next >= end {
		return false, false, 0
	}
	to := min(off+1, end)
	read, *next = to-*next, to
	return off < end, to >= end, read
}

// Find lists, per partition of the topics, the offsets that hold [from,
// to); partitions with nothing in the range are left out. A topic that
// does not exist or cannot be read is an error naming it.
func Find(ctx context.Context, adm *kadm.Client, topics []string, from, to time.Time) ([]Range, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	first, err := adm.ListOffsetsAfterMilli(ctx, from.UnixMilli(), topics...)
	if err != nil {
		return nil, fmt.Errorf("list offsets by timestamp: %w", err)
	}
	last, err := adm.ListOffsetsAfterMilli(ctx, to.UnixMilli(), topics...)
	if err != nil {
		return nil, fmt.Errorf("list offsets by timestamp: %w", err)
	}
	var out []Range
	var missing []string
	first.Each(func(o kadm.ListedOffset) {
		if o.Partition < 0 || o.Err != nil {
			missing = append(missing, o.Topic)
			return
		}
		e, ok := last.Lookup(o.Topic, o.Partition)
		if !ok || e.Err != nil || e.Offset <= o.Offset {
			return
		}
		out = append(out, Range{Topic: o.Topic, Partition: o.Partition, Start: o.Offset, End: e.Offset})
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("topics not found or not readable: %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// Progress writes "NAME: N events, BYTES, P% of the range, ..., R
// events/s, ETA D" lines, at most one per Every. The percentage counts
// offsets (Done against Total), which is what ListOffsets can tell ahead.
type Progress struct {
	W     io.Writer // nil: no lines
	Name  string    // the line's prefix ("hunt", "export es")
	Total int64     // offsets in the range
	Every time.Duration

	start, last time.Time
}

// NewProgress starts the clock of a progress line.
func NewProgress(w io.Writer, name string, total int64, every time.Duration) *Progress {
	if every <= 0 {
		every = time.Second
	}
	return &Progress{W: w, Name: name, Total: total, Every: every, start: time.Now()}
}

// Elapsed is the time since NewProgress.
func (p *Progress) Elapsed() time.Duration { return time.Since(p.start) }

// Update writes a line if Every has passed since the last: done offsets
// of Total, events and bytes read; extra (such as "37 findings, ") goes
// after the percentage.
func (p *Progress) Update(done, events, bytes int64, extra string) {
	if p.W == nil {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < p.Every {
		return
	}
	p.last = now
	el := now.Sub(p.start)
	pct := 100.0
	if p.Total > 0 {
		pct = 100 * float64(done) / float64(p.Total)
	}
	eta := "?"
	if done > 0 && p.Total > done {
		eta = (time.Duration(float64(el) * float64(p.Total-done) / float64(done))).Round(time.Second).String()
	}
	fmt.Fprintf(p.W, "%s: %d events, %s, %.1f%% of the range, %s%.0f events/s, ETA %s\n",
		p.Name, events, Bytes(bytes), pct, extra, Rate(events, el), eta)
}

// Rate is n per second over el.
func Rate(n int64, el time.Duration) float64 { return float64(n) / max(el.Seconds(), 1e-3) }

// Bytes formats a byte count for a person: "1.1 GiB", "37.2 MiB".
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
