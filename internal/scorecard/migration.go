package scorecard

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// migrationProbes check what vigil mirror reads of a source cluster, in
// the terms of its reader (internal/mirror/read.go): topics and partition
// counts from Metadata, configs from DescribeConfigs, each partition's
// range from ListOffsets, its records from Fetch (at most v12, which
// names topics rather than topic ids) at read_uncommitted with control
// records kept, and the groups' committed offsets from OffsetFetch. The
// first probe writes what the others read.
var migrationProbes = []namedProbe{
	{name: "mirror: Metadata partition counts", needs: []int16{0, 3, 19}, fn: probeMirrorMetadata},
	{name: "mirror: DescribeConfigs of a topic", needs: []int16{32}, fn: probeMirrorConfigs},
	{name: "mirror: ListOffsets earliest/latest", needs: []int16{2}, fn: probeMirrorOffsets},
	{name: "mirror: Fetch v12 read_uncommitted", needs: []int16{1}, fn: probeMirrorFetch},
	{name: "mirror: transaction control batches", needs: []int16{1, 22, 24, 26}, fn: probeMirrorControl},
	{name: "mirror: OffsetFetch of committed offsets", needs: []int16{8, 9, 10}, fn: probeMirrorGroup},
}

// mirrorSetup is what the first migration probe wrote.
type mirrorSetup struct {
	topic string
	// data are the records written to each partition, with the offsets
	// their acknowledgements gave.
	data map[int32][]*kgo.Record
	// txn: on partition 0, after the data, a committed transaction then
	// an aborted one (committed and aborted hold their records).
	txn                bool
	committed, aborted []*kgo.Record
}

// ends are the end offsets the setup implies: the data, and on partition
// 0 each transaction's records and its control record.
func (m *mirrorSetup) ends() map[int32]int64 {
	out := map[int32]int64{}
	for p, recs := range m.data {
		out[p] = recs[len(recs)-1].Offset + 1
	}
	if m.txn {
		out[0] = m.aborted[len(m.aborted)-1].Offset + 2
	}
	return out
}

// errNoSetup is the later probes' answer when the first could not write.
var errNoSetup = errors.New("the Metadata probe could not write the records this check reads")

// probeMirrorMetadata creates a topic of several partitions, writes to
// each (and a committed and an aborted transaction to partition 0 when the
// cluster offers transactions), and checks Metadata lists the topic with
// its partition count and a leader for each.
func probeMirrorMetadata(ctx context.Context, r *run) (Status, string, error) {
	cl, err := r.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topic, err := r.createTopicN(ctx, adm, "mirror", mirrorPartitions, nil)
	if err != nil {
		return Fail, "", err
	}
	m := &mirrorSetup{topic: topic, data: map[int32][]*kgo.Record{}}
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var recs []*kgo.Record
	for p := range int32(mirrorPartitions) {
		for i := range mirrorPerPartition {
			rec := &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "host-%d", i%3),
				Value:     fmt.Appendf(nil, `{"class_uid":1007,"partition":%d,"seq":%d}`, p, i),
				Headers:   []kgo.RecordHeader{{Key: "source", Value: fmt.Appendf(nil, "edr-%d", i)}, {Key: "empty"}},
				Timestamp: base.Add(time.Duration(int(p)*mirrorPerPartition+i) * time.Millisecond)}
			m.data[p] = append(m.data[p], rec)
			recs = append(recs, rec)
		}
	}
	if err := r.produce(ctx, cl, recs...); err != nil {
		return Fail, "", err
	}
	detail := fmt.Sprintf("%d records written to each of %d partitions", mirrorPerPartition, mirrorPartitions)
	if r.versions.lacking([]int16{22, 24, 26}) == "" {
		if err := r.mirrorTxns(ctx, m); err != nil {
			return Fail, detail, err
		}
		detail += fmt.Sprintf(", a committed and an aborted transaction of %d records to partition 0", mirrorTxnRecords)
	} else {
		detail += "; no transaction written (the transaction APIs are not offered)"
	}
	r.mirror = m

	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return Fail, detail, fmt.Errorf("Metadata: %w", err)
	}
	td, ok := md.Topics[topic]
	switch {
	case !ok:
		return Fail, detail, fmt.Errorf("Metadata does not list %s", topic)
	case td.Err != nil:
		return Fail, detail, fmt.Errorf("Metadata of %s: %w", topic, td.Err)
	case len(td.Partitions) != mirrorPartitions:
		return Fail, detail, fmt.Errorf("Metadata lists %d partitions of %s, it was created with %d", len(td.Partitions), topic, mirrorPartitions)
	}
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return Fail, detail, fmt.Errorf("Metadata of %s/%d: leader %d, %v", topic, p.Partition, p.Leader, p.Err)
		}
	}
	return Pass, detail + fmt.Sprintf("; Metadata lists %s with its %d partitions, each with a leader", topic, mirrorPartitions), nil
}

// mirrorTxns commits one transaction and aborts one on partition 0.
func (r *run) mirrorTxns(ctx context.Context, m *mirrorSetup) error {
	id := r.name("mirror")
	r.txnIDs = append(r.txnIDs, id)
	cl, err := r.client(kgo.TransactionalID(id), kgo.TransactionTimeout(r.cfg.ProbeTimeout), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	for _, commit := range []bool{true, false} {
		if err := cl.BeginTransaction(); err != nil {
			return fmt.Errorf("begin a transaction: %w", err)
		}
		var recs []*kgo.Record
		for i := range mirrorTxnRecords {
			recs = append(recs, &kgo.Record{Topic: m.topic, Partition: 0, Value: fmt.Appendf(nil, "txn commit=%t %d", commit, i)})
		}
		perr := r.produce(ctx, cl, recs...)
		end := kgo.TransactionEndTry(commit && perr == nil)
		if err := cl.EndTransaction(ctx, end); err != nil {
			return fmt.Errorf("end a transaction (commit %t): %w", bool(end), err)
		}
		if perr != nil {
			return perr
		}
		if commit {
			m.committed = recs
		} else {
			m.aborted = recs
		}
	}
	m.txn = true
	return nil
}

// probeMirrorConfigs asks DescribeConfigs for the topic's configs: the
// mirror creates its topics with the source's.
func probeMirrorConfigs(ctx context.Context, r *run) (Status, string, error) {
	if r.mirror == nil {
		return Undetermined, "", errNoSetup
	}
	cl, err := r.client()
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	cfgs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, r.mirror.topic)
	if err != nil {
		return Fail, "", fmt.Errorf("DescribeConfigs of %s: %w", r.mirror.topic, err)
	}
	rc, err := cfgs.On(r.mirror.topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return Fail, "", fmt.Errorf("DescribeConfigs of %s: %w", r.mirror.topic, err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		got[c.Key] = c.MaybeValue()
	}
	var seen []string
	for _, k := range []string{"cleanup.policy", "retention.ms", "retention.bytes", "max.message.bytes"} {
		if v, ok := got[k]; ok {
			seen = append(seen, k+"="+v)
		}
	}
	detail := fmt.Sprintf("DescribeConfigs of %s answered %d configs (%s)", r.mirror.topic, len(rc.Configs), strings.Join(seen, ", "))
	if _, ok := got["cleanup.policy"]; !ok {
		// A compacted source must be compacted on the destination too.
		return Fail, detail, errors.New("cleanup.policy is not described")
	}
	return Pass, detail, nil
}

// probeMirrorOffsets asks ListOffsets for each partition's earliest and
// latest offsets: the range the mirror copies.
func probeMirrorOffsets(ctx context.Context, r *run) (Status, string, error) {
	m := r.mirror
	if m == nil {
		return Undetermined, "", errNoSetup
	}
	cl, err := r.client()
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// A transaction's markers may be written after EndTxn answers (Kafka
	// writes them asynchronously), so a latest offset short of the
	// writes is asked again until the probe's limit.
	start := time.Now()
	for {
		got, short, err := listRange(ctx, adm, m)
		if err != nil {
			return Fail, "", err
		}
		if short == nil {
			slices.Sort(got)
			detail := "earliest and latest offsets as written (partition: earliest-latest " + strings.Join(got, ", ") + ")"
			if m.txn {
				detail += "; partition 0's latest counts the two control records"
			}
			if waited := time.Since(start); waited > 200*time.Millisecond {
				detail += fmt.Sprintf(" (the latest offsets reached them %s after the writes were acknowledged)", waited.Round(time.Millisecond))
			}
			return Pass, detail, nil
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return Fail, "", fmt.Errorf("%w, still after %s", short, time.Since(start).Round(time.Millisecond))
		}
	}
}

// listRange lists each partition's earliest and latest offsets. short is
// a latest offset below what the writes imply, which may still grow.
func listRange(ctx context.Context, adm *kadm.Client, m *mirrorSetup) (got []string, short, err error) {
	starts, err := adm.ListStartOffsets(ctx, m.topic)
	if err != nil {
		return nil, nil, fmt.Errorf("ListOffsets earliest: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, m.topic)
	if err != nil {
		return nil, nil, fmt.Errorf("ListOffsets latest: %w", err)
	}
	for p, want := range m.ends() {
		s, _ := starts.Lookup(m.topic, p)
		e, _ := ends.Lookup(m.topic, p)
		switch {
		case s.Err != nil || e.Err != nil:
			return nil, nil, fmt.Errorf("ListOffsets of %s/%d: %v, %v", m.topic, p, s.Err, e.Err)
		case s.Offset != 0:
			return nil, nil, fmt.Errorf("%s/%d: earliest offset %d, nothing was deleted", m.topic, p, s.Offset)
		case e.Offset > want:
			return nil, nil, fmt.Errorf("%s/%d: latest offset %d, the writes imply %d", m.topic, p, e.Offset, want)
		case e.Offset < want:
			short = fmt.Errorf("%s/%d: latest offset %d, the writes imply %d", m.topic, p, e.Offset, want)
		}
		got = append(got, fmt.Sprintf("%d: %d-%d", p, s.Offset, e.Offset))
	}
	return got, short, nil
}

// mirrorFetch reads a partition from offset 0 to end as the mirror does:
// Fetch at most v12 to the leader, read_uncommitted, control records
// kept, decoded by franz-go. It returns the records, the number of record
// batches and the Fetch version used.
func (r *run) mirrorFetch(ctx context.Context, cl *kgo.Client, leader, part int32, end int64) ([]*kgo.Record, int, int16, error) {
	var out []*kgo.Record
	batches := 0
	var version int16
	for offset := int64(0); offset < end; {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 500, 1, 1<<20
		req.IsolationLevel = 0 // read_uncommitted
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = r.mirror.topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = part, offset, 1<<20
		rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
		if err != nil {
			return out, batches, version, fmt.Errorf("Fetch %s/%d at %d: %w", r.mirror.topic, part, offset, err)
		}
		version = req.GetVersion()
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return out, batches, version, fmt.Errorf("Fetch %s/%d at %d: %w", r.mirror.topic, part, offset, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return out, batches, version, fmt.Errorf("Fetch %s/%d: the answer does not name the partition", r.mirror.topic, part)
		}
		p := &resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return out, batches, version, fmt.Errorf("Fetch %s/%d at %d: %w", r.mirror.topic, part, offset, err)
		}
		n, err := countBatches(p.RecordBatches)
		if err != nil {
			return out, batches, version, fmt.Errorf("Fetch %s/%d at %d: %w", r.mirror.topic, part, offset, err)
		}
		batches += n
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{KeepControlRecords: true, Offset: offset,
			IsolationLevel: kgo.ReadUncommitted(), Topic: r.mirror.topic, Partition: part}, p, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			return out, batches, version, fmt.Errorf("decode %s/%d at %d: %w", r.mirror.topic, part, offset, fp.Err)
		}
		if next == offset && p.HighWatermark > offset {
			return out, batches, version, fmt.Errorf("Fetch %s/%d at %d returned nothing below the high watermark %d", r.mirror.topic, part, offset, p.HighWatermark)
		}
		if next == offset {
			// A transaction marker not written yet: the high watermark
			// has not reached the end the writes imply.
			if !sleep(ctx, 100*time.Millisecond) {
				return out, batches, version, fmt.Errorf("Fetch %s/%d: the high watermark stayed at %d, the writes imply %d: %w", r.mirror.topic, part, p.HighWatermark, end, ctx.Err())
			}
			continue
		}
		out = append(out, fp.Records...)
		offset = next
	}
	return out, batches, version, nil
}

// countBatches counts the record batches of a fetch answer, each a
// magic 2 batch as the mirror copies them.
func countBatches(raw []byte) (int, error) {
	n := 0
	for len(raw) >= 17 {
		length := int(int32(binary.BigEndian.Uint32(raw[8:12])))
		if length < 5 || 12+length > len(raw) {
			break // a partial batch at the end of a full answer
		}
		if magic := raw[16]; magic != 2 {
			return n, fmt.Errorf("a batch of magic %d: the mirror copies record batches v2", magic)
		}
		n++
		raw = raw[12+length:]
	}
	return n, nil
}

// leaders maps the mirror topic's partitions to their leaders.
func (r *run) mirrorLeaders(ctx context.Context, cl *kgo.Client) (map[int32]int32, error) {
	md, err := kadm.NewClient(cl).Metadata(ctx, r.mirror.topic)
	if err != nil {
		return nil, fmt.Errorf("Metadata: %w", err)
	}
	td, ok := md.Topics[r.mirror.topic]
	if !ok || td.Err != nil {
		return nil, fmt.Errorf("Metadata of %s: %v", r.mirror.topic, td.Err)
	}
	out := map[int32]int32{}
	for p, pd := range td.Partitions {
		out[p] = pd.Leader
	}
	return out, nil
}

// fetchV12Client caps Fetch at v12 as the mirror's reader does: from v13
// on a fetch names topics by id.
func (r *run) fetchV12Client() (*kgo.Client, error) {
	v := kversion.Stable()
	v.SetMaxKeyVersion(kmsg.Fetch.Int16(), 12)
	return r.client(kgo.MaxVersions(v))
}

// probeMirrorFetch reads every partition as the mirror does and checks
// each record comes back at its offset with its key, value, headers and
// timestamp, in record batches v2.
func probeMirrorFetch(ctx context.Context, r *run) (Status, string, error) {
	m := r.mirror
	if m == nil {
		return Undetermined, "", errNoSetup
	}
	cl, err := r.fetchV12Client()
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	leaders, err := r.mirrorLeaders(ctx, cl)
	if err != nil {
		return Fail, "", err
	}
	ends := m.ends()
	batches, records := 0, 0
	var version int16
	for p := range int32(mirrorPartitions) {
		got, n, v, err := r.mirrorFetch(ctx, cl, leaders[p], p, ends[p])
		version = v
		if err != nil {
			return Fail, "", err
		}
		batches += n
		byOffset := map[int64]*kgo.Record{}
		for _, g := range got {
			byOffset[g.Offset] = g
		}
		records += len(got)
		for _, w := range m.data[p] {
			g, ok := byOffset[w.Offset]
			switch {
			case !ok:
				return Fail, "", fmt.Errorf("%s/%d: offset %d did not come back", m.topic, p, w.Offset)
			case !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value):
				return Fail, "", fmt.Errorf("%s/%d offset %d came back as key %q value %q, want %q %q", m.topic, p, w.Offset, g.Key, g.Value, w.Key, w.Value)
			case !sameHeaders(g.Headers, w.Headers):
				return Fail, "", fmt.Errorf("%s/%d offset %d came back with headers %v, want %v", m.topic, p, w.Offset, g.Headers, w.Headers)
			case !g.Timestamp.Equal(w.Timestamp):
				return Fail, "", fmt.Errorf("%s/%d offset %d came back with timestamp %s, want %s", m.topic, p, w.Offset, g.Timestamp, w.Timestamp)
			}
		}
	}
	return Pass, fmt.Sprintf("Fetch v%d at read_uncommitted from each partition's leader: %d records in %d record batches (v2), each data record at its offset with its key, value, headers and timestamp",
		version, records, batches), nil
}

func sameHeaders(a, b []kgo.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// probeMirrorControl reads partition 0 as the mirror does and checks the
// transactions' records and control records are there at read_uncommitted:
// the aborted records too (the mirror copies them, and the abort marker
// that hides them from read_committed readers).
func probeMirrorControl(ctx context.Context, r *run) (Status, string, error) {
	m := r.mirror
	switch {
	case m == nil:
		return Undetermined, "", errNoSetup
	case !m.txn:
		return Undetermined, "", errors.New("no transaction was written")
	}
	cl, err := r.fetchV12Client()
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	leaders, err := r.mirrorLeaders(ctx, cl)
	if err != nil {
		return Fail, "", err
	}
	got, _, _, err := r.mirrorFetch(ctx, cl, leaders[0], 0, m.ends()[0])
	if err != nil {
		return Fail, "", err
	}
	byOffset := map[int64]*kgo.Record{}
	for _, g := range got {
		byOffset[g.Offset] = g
	}
	for _, w := range append(append([]*kgo.Record{}, m.committed...), m.aborted...) {
		if g, ok := byOffset[w.Offset]; !ok || !bytes.Equal(g.Value, w.Value) {
			return Fail, "", fmt.Errorf("transactional record at offset %d did not come back at read_uncommitted", w.Offset)
		}
	}
	markers := []struct {
		at     int64
		commit bool
	}{{m.committed[len(m.committed)-1].Offset + 1, true}, {m.aborted[len(m.aborted)-1].Offset + 1, false}}
	for _, mk := range markers {
		g, ok := byOffset[mk.at]
		if !ok || !g.Attrs.IsControl() {
			return Fail, "", fmt.Errorf("no control record at offset %d, after the transaction's last record", mk.at)
		}
		if len(g.Key) < 4 || (binary.BigEndian.Uint16(g.Key[2:4]) == 1) != mk.commit {
			return Fail, "", fmt.Errorf("the control record at offset %d has key %x, want a %s marker", mk.at, g.Key, map[bool]string{true: "commit", false: "abort"}[mk.commit])
		}
	}
	return Pass, fmt.Sprintf("at read_uncommitted: %d committed and %d aborted transactional records at their offsets, a commit marker at %d and an abort marker at %d (control records kept)",
		len(m.committed), len(m.aborted), markers[0].at, markers[1].at), nil
}

// probeMirrorGroup commits offsets for a group as a consumer of the
// source would, and reads them back with OffsetFetch as the mirror does
// to copy them.
func probeMirrorGroup(ctx context.Context, r *run) (Status, string, error) {
	m := r.mirror
	if m == nil {
		return Undetermined, "", errNoSetup
	}
	cl, err := r.client()
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	group := r.name("mirror")
	r.groups = append(r.groups, group)
	commit := kadm.Offsets{}
	for p := range int32(mirrorPartitions) {
		commit.Add(kadm.Offset{Topic: m.topic, Partition: p, At: int64(p) + 3, LeaderEpoch: -1})
	}
	resp, err := adm.CommitOffsets(ctx, group, commit)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return Fail, "", fmt.Errorf("commit offsets of group %s (without members): %w", group, err)
	}
	got, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = got.Error()
	}
	if err != nil {
		return Fail, "", fmt.Errorf("OffsetFetch of group %s: %w", group, err)
	}
	for p := range int32(mirrorPartitions) {
		o, ok := got.Lookup(m.topic, p)
		if !ok || o.At != int64(p)+3 {
			return Fail, "", fmt.Errorf("OffsetFetch of group %s gives %s/%d at %+v, committed %d", group, m.topic, p, o, p+3)
		}
	}
	return Pass, fmt.Sprintf("offsets committed for group %s on %d partitions (no members, as an admin tool commits) and OffsetFetch gives them back", group, mirrorPartitions), nil
}
