package detect

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/sigma"
)

// Correlation state persistence.
//
// After each batch whose correlation state changed, the detector appends
// a snapshot of the whole state (sigma.Correlator.Snapshot, JSON) to the
// state topic, keyed by the consumer group, in the same ProduceSync as the
// batch's alerts. The offset commit that follows carries, in the metadata
// of every partition it commits, the snapshot's position
// ("vigil-state:<partition>:<offset>"). On start the detector reads the
// group's committed offsets, takes the newest position named (state
// records of one group share a partition, since they share a key), and
// restores that one record. So the restored state is exactly the state
// after the last committed batch: a crash between writing a snapshot and
// committing replays the uncommitted records into the previous snapshot,
// without counting them twice.

// maxStateBytes bounds one snapshot record, under the default
// max.message.bytes (1 MiB).
const maxStateBytes = 900 << 10

const statePrefix = "vigil-state:"

func stateMetadata(part int32, off int64) string {
	return statePrefix + strconv.Itoa(int(part)) + ":" + strconv.FormatInt(off, 10)
}

func parseStateMetadata(md string) (int32, int64, bool) {
	rest, ok := strings.CutPrefix(md, statePrefix)
	if !ok {
		return 0, 0, false
	}
	p, o, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, 0, false
	}
	part, err1 := strconv.ParseInt(p, 10, 32)
	off, err2 := strconv.ParseInt(o, 10, 64)
	if err1 != nil || err2 != nil || off < 0 {
		return 0, 0, false
	}
	return int32(part), off, true
}

// loadState finds the snapshot the group's last commit names and keeps it
// for the first correlator. A missing snapshot (none written yet, or
// removed by retention) starts empty; only a broker that cannot answer is
// an error.
func (d *Detector) loadState(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(d.pcl)
	offs, err := adm.FetchOffsets(ctx, d.cfg.Group)
	if err != nil {
		if errors.Is(err, kerr.GroupIDNotFound) {
			return nil
		}
		return fmt.Errorf("detect: read the group's committed offsets for the correlation state: %w", err)
	}
	found := false
	var part int32
	var off int64
	offs.Each(func(o kadm.OffsetResponse) {
		p, n, ok := parseStateMetadata(o.Metadata)
		if ok && (!found || n > off) {
			found, part, off = true, p, n
		}
	})
	if !found {
		return nil
	}
	d.statePart, d.stateOff = part, off
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(d.cfg.Brokers...),
		kgo.ClientID("vigil-detect"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{d.cfg.StateTopic: {part: kgo.NewOffset().At(off)}}),
	}, d.cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("detect: state client: %w", err)
	}
	defer cl.Close()
	for ctx.Err() == nil {
		f := cl.PollFetches(ctx)
		for _, fe := range f.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				d.log.Warn("reading correlation state", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
			}
		}
		for _, r := range f.Records() {
			if r.Offset < off {
				continue
			}
			if r.Offset > off || string(r.Key) != d.cfg.Group {
				// Retention removed the snapshot.
				d.log.Warn("correlation state record not found; windows start empty", "topic", d.cfg.StateTopic, "partition", part, "offset", off)
				return nil
			}
			d.pending = r.Value
			d.restored.Store(true)
			d.log.Info("correlation state read", "topic", d.cfg.StateTopic, "partition", part, "offset", off, "bytes", len(r.Value))
			return nil
		}
	}
	d.log.Warn("correlation state not read in time; windows start empty", "topic", d.cfg.StateTopic, "partition", part, "offset", off)
	return nil
}

// swapCorrelator makes the correlator of a new rule set, carrying over the
// windows of correlations whose definition did not change.
func (d *Detector) swapCorrelator(eng *sigma.Engine) {
	var from []byte
	switch {
	case d.corr != nil:
		from = d.corr.Snapshot()
	case d.pending != nil:
		from = d.pending
	}
	if eng.Stats().Correlations == 0 {
		if d.corr != nil {
			d.pending = from // kept in case correlations come back
		}
		d.corr = nil
		return
	}
	c := eng.NewCorrelator(d.cfg.MaxGroups)
	if from != nil {
		n, err := c.Restore(from)
		if err != nil {
			d.log.Warn("correlation state not restored; windows start empty", "err", err)
		} else {
			d.log.Info("correlation state restored", "correlations", n, "of", eng.Stats().Correlations, "groups", c.Groups())
		}
	}
	d.pending = nil
	d.corr = c
}
