package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/rangeread"
)

// Backfill delivers the records of the job's topics whose timestamps are
// in [from, to) once, as a plain reader (no group, no commits: the live
// job's offsets are left alone), and returns when they are all delivered
// or dead-lettered. It reads as `vigil hunt` does (internal/rangeread), so
// old offsets are catch-up reads the broker paces. The documents get the
// ids a live job gives them, so a backfill over a range the live job
// already delivered rewrites nothing twice. Progress lines go to progress
// every progressEvery (nil: none).
func (j *Job) Backfill(ctx context.Context, from, to time.Time, progress io.Writer, progressEvery time.Duration) error {
	if !from.Before(to) {
		return fmt.Errorf("export %s: --from %s is not before --to %s", j.cfg.Name, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	base := append([]kgo.Opt{kgo.SeedBrokers(j.cfg.Brokers...), kgo.ClientID("vigil-export-backfill")}, j.cfg.ClientOpts...)
	acl, err := kgo.NewClient(base...)
	if err != nil {
		return err
	}
	defer acl.Close()
	adm := kadm.NewClient(acl)
	topics, err := j.backfillTopics(ctx, adm)
	if err != nil {
		return err
	}
	ranges, err := rangeread.Find(ctx, adm, topics, from, to)
	if err != nil {
		return fmt.Errorf("export %s: %w", j.cfg.Name, err)
	}
	var total int64
	want := map[string]map[int32]kgo.Offset{}
	left := map[tp]*rangeread.Range{}
	next := map[tp]int64{}
	for i := range ranges {
		r := &ranges[i]
		total += r.Len()
		if want[r.Topic] == nil {
			want[r.Topic] = map[int32]kgo.Offset{}
		}
		want[r.Topic][r.Partition] = kgo.NewOffset().At(r.Start)
		left[tp{r.Topic, r.Partition}] = r
		next[tp{r.Topic, r.Partition}] = r.Start
	}
	pr := rangeread.NewProgress(progress, "export "+j.cfg.Name, total, progressEvery)
	j.log.Info("backfill reading", "topics", topics, "partitions", len(ranges), "records", total,
		"from", from.Format(time.RFC3339), "to", to.Format(time.RFC3339))
	var done, read, bytes int64
	if total > 0 {
		// Control records (transaction markers) are kept only to see the
		// reader pass them: a range can end at a marker.
		rd, err := kgo.NewClient(append(base, kgo.ConsumePartitions(want), kgo.FetchMaxBytes(32<<20), kgo.KeepControlRecords())...)
		if err != nil {
			return err
		}
		defer rd.Close()
		for len(left) > 0 {
			f := rd.PollRecords(ctx, j.cfg.MaxPollRecords)
			if err := ctx.Err(); err != nil {
				return err
			}
			var ferr error
			f.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.Canceled) && ferr == nil {
					ferr = fmt.Errorf("export %s: fetch %s[%d]: %w", j.cfg.Name, t, p, err)
				}
			})
			if ferr != nil {
				return ferr
			}
			var batch []*kgo.Record
			f.EachRecord(func(r *kgo.Record) {
				k := tp{r.Topic, r.Partition}
				rg := left[k]
				if rg == nil {
					return
				}
				n := next[k]
				in, end, passed := rangeread.Step(&n, rg.End, r.Offset)
				next[k] = n
				done += passed
				if end {
					delete(left, k)
					rd.PauseFetchPartitions(map[string][]int32{r.Topic: {r.Partition}})
				}
				if !in || r.Attrs.IsControl() {
					return
				}
				read++
				bytes += int64(len(r.Value))
				if r.Timestamp.Before(from) || !r.Timestamp.Before(to) {
					j.outside.Add(1)
					return
				}
				batch = append(batch, r)
			})
			if len(batch) > 0 {
				if err := j.handle(ctx, batch); err != nil {
					return err
				}
				j.batches.Add(1)
			}
			pr.Update(done, read, bytes, fmt.Sprintf("%d delivered, %d dead-lettered, ", j.delivered.Load(), j.dead.Load()))
		}
	}
	if progress != nil {
		el := pr.Elapsed()
		st := j.Stats()
		fmt.Fprintf(progress, "export %s: done: %d events (%d outside the range's times), %s in %s (%.0f events/s), %d delivered, %d dead-lettered\n",
			j.cfg.Name, read, st.Outside, rangeread.Bytes(bytes), el.Round(time.Millisecond), rangeread.Rate(read, el), st.Delivered, st.DeadLettered)
	}
	return nil
}

// backfillTopics is the job's topic list, or the topics its regex
// matches now.
func (j *Job) backfillTopics(ctx context.Context, adm *kadm.Client) ([]string, error) {
	if j.cfg.TopicRegex == "" {
		return j.cfg.Topics, nil
	}
	re := regexp.MustCompile(j.cfg.TopicRegex)
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	td, err := adm.ListTopics(lctx)
	if err != nil {
		return nil, fmt.Errorf("export %s: list topics: %w", j.cfg.Name, err)
	}
	var out []string
	for _, t := range td.Names() {
		if re.MatchString(t) && t != j.cfg.DeadLetterTopic {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("export %s: no topic matches %q", j.cfg.Name, j.cfg.TopicRegex)
	}
	return out, nil
}
