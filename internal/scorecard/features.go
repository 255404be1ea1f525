package scorecard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// compatibilityProbes are the functional probes of the features a
// security pipeline uses, in the order they run.
var compatibilityProbes = []namedProbe{
	{name: "produce/fetch round trip", needs: []int16{0, 1, 3, 19}, fn: probeRoundTrip},
	{name: "consumer group join/commit/resume", needs: []int16{0, 1, 8, 9, 10, 11, 12, 13, 14, 19}, fn: probeGroup},
	{name: "idempotent produce", needs: []int16{0, 2, 3, 19, 22}, fn: probeIdempotence},
	{name: "transactions", needs: []int16{0, 1, 10, 19, 22, 24, 26}, fn: probeTransactions},
	{name: "compaction", needs: []int16{0, 1, 19, 32}, fn: probeCompaction},
	{name: "time lookups", needs: []int16{0, 1, 2, 19}, fn: probeTimeLookups},
	{name: "quotas", needs: []int16{48}, fn: probeQuotas},
	{name: "ACLs", needs: []int16{29}, fn: probeACLs},
}

// createTopic creates a throwaway topic with one partition, booked for
// cleanup unless the cluster refused it.
func (r *run) createTopic(ctx context.Context, adm *kadm.Client, kind string, configs map[string]*string) (string, error) {
	return r.createTopicN(ctx, adm, kind, 1, configs)
}

// createTopicN creates a throwaway topic with the given partitions.
func (r *run) createTopicN(ctx context.Context, adm *kadm.Client, kind string, partitions int32, configs map[string]*string) (string, error) {
	topic := r.name(kind)
	resp, err := adm.CreateTopic(ctx, partitions, -1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	// A refusal in the answer means nothing was created; anything else
	// (a timeout, a lost connection) may have created it.
	var refused *kerr.Error
	if err == nil || !errors.As(err, &refused) {
		r.topics = append(r.topics, topic)
	}
	if err != nil {
		return topic, fmt.Errorf("create topic %s: %w", topic, err)
	}
	return topic, nil
}

// produce writes recs synchronously after booking them in the budget.
func (r *run) produce(ctx context.Context, cl *kgo.Client, recs ...*kgo.Record) error {
	size := 0
	for _, rec := range recs {
		size += len(rec.Key) + len(rec.Value)
		for _, h := range rec.Headers {
			size += len(h.Key) + len(h.Value)
		}
	}
	if err := r.budget.take(len(recs), size); err != nil {
		return err
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce %d records to %s: %w", len(recs), recs[0].Topic, err)
	}
	return nil
}

// readFrom reads partition 0 of topic from offset until stop says so
// (given everything read so far), or ctx ends.
func (r *run) readFrom(ctx context.Context, topic string, offset int64, stop func([]*kgo.Record) bool, extra ...kgo.Opt) ([]*kgo.Record, error) {
	opts := append([]kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(offset)}})}, extra...)
	cl, err := r.client(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return poll(ctx, cl, stop)
}

// poll collects records until stop holds. A fetch error that is not
// retried (authorization, for one) ends it.
func poll(ctx context.Context, cl *kgo.Client, stop func([]*kgo.Record) bool) ([]*kgo.Record, error) {
	var got []*kgo.Record
	for !stop(got) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return got, fmt.Errorf("read %d records, then: %w", len(got), err)
		}
		for _, fe := range fs.Errors() {
			if !kerr.IsRetriable(fe.Err) {
				return got, fmt.Errorf("fetch %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
			}
		}
		got = append(got, fs.Records()...)
	}
	return got, nil
}

func atLeast(n int) func([]*kgo.Record) bool {
	return func(got []*kgo.Record) bool { return len(got) >= n }
}

// probeRoundTrip writes records with keys, values, headers and
// timestamps, and reads them back from the start.
func probeRoundTrip(ctx context.Context, r *run) (Status, string, error) {
	cl, err := r.client()
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	topic, err := r.createTopic(ctx, kadm.NewClient(cl), "roundtrip", nil)
	if err != nil {
		return Fail, "", err
	}
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	var recs []*kgo.Record
	for i := range roundTripRecords {
		recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "host-%02d", i%7),
			Value:     fmt.Appendf(nil, `{"class_uid":3002,"seq":%d}`, i),
			Headers:   []kgo.RecordHeader{{Key: "source", Value: fmt.Appendf(nil, "probe-%d", i)}},
			Timestamp: base.Add(time.Duration(i) * time.Millisecond)})
	}
	start := time.Now()
	if err := r.produce(ctx, cl, recs...); err != nil {
		return Fail, "", err
	}
	wrote := time.Since(start)
	got, err := r.readFrom(ctx, topic, 0, atLeast(len(recs)))
	if err != nil {
		return Fail, fmt.Sprintf("wrote %d records, read back %d", len(recs), len(got)), err
	}
	for i, g := range got[:len(recs)] {
		w := recs[i]
		switch {
		case g.Offset != int64(i):
			return Fail, "", fmt.Errorf("record %d came back at offset %d", i, g.Offset)
		case !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value):
			return Fail, "", fmt.Errorf("record %d came back as key %q value %q, want %q %q", i, g.Key, g.Value, w.Key, w.Value)
		case len(g.Headers) != 1 || g.Headers[0].Key != "source" || !bytes.Equal(g.Headers[0].Value, w.Headers[0].Value):
			return Fail, "", fmt.Errorf("record %d came back with headers %v, want %v", i, g.Headers, w.Headers)
		case !g.Timestamp.Equal(w.Timestamp):
			return Fail, "", fmt.Errorf("record %d came back with timestamp %s, want %s", i, g.Timestamp, w.Timestamp)
		}
	}
	return Pass, fmt.Sprintf("%d records written (%s) and read back in order at offsets 0-%d with their keys, values, headers and timestamps",
		len(recs), wrote.Round(time.Millisecond), len(recs)-1), nil
}

// probeGroup has one member consume and commit, leave, and a second
// member of the same group resume where the first committed.
func probeGroup(ctx context.Context, r *run) (Status, string, error) {
	cl, err := r.client()
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topic, err := r.createTopic(ctx, adm, "group", nil)
	if err != nil {
		return Fail, "", err
	}
	var recs []*kgo.Record
	for i := range groupRecords {
		recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "group record %d", i)})
	}
	if err := r.produce(ctx, cl, recs...); err != nil {
		return Fail, "", err
	}
	group := r.name("group")
	r.groups = append(r.groups, group)
	member := func() (*kgo.Client, error) {
		return r.client(kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}

	start := time.Now()
	first, err := member()
	if err != nil {
		return Fail, "", err
	}
	got, err := poll(ctx, first, atLeast(groupCommitAt))
	if err != nil {
		first.Close()
		return Fail, "the first member did not receive its records", err
	}
	joined := time.Since(start)
	last := got[groupCommitAt-1]
	commit := map[string]map[int32]kgo.EpochOffset{topic: {0: {Epoch: last.LeaderEpoch, Offset: last.Offset + 1}}}
	var commitErr error
	first.CommitOffsetsSync(ctx, commit, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			commitErr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && commitErr == nil {
					commitErr = err
				}
			}
		}
	})
	first.Close() // leaves the group
	if commitErr != nil {
		return Fail, "", fmt.Errorf("commit offset %d: %w", groupCommitAt, commitErr)
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return Fail, "", fmt.Errorf("fetch the group's offsets: %w", err)
	}
	if o, ok := offs.Lookup(topic, 0); !ok || o.Err != nil || o.At != groupCommitAt {
		return Fail, "", fmt.Errorf("OffsetFetch gives %+v after a commit of %d", o, groupCommitAt)
	}

	start = time.Now()
	second, err := member()
	if err != nil {
		return Fail, "", err
	}
	defer second.Close()
	got, err = poll(ctx, second, atLeast(1))
	if err != nil {
		return Fail, "the second member received nothing", err
	}
	if got[0].Offset != groupCommitAt {
		return Fail, "", fmt.Errorf("the second member resumed at offset %d, the group committed %d", got[0].Offset, groupCommitAt)
	}
	return Pass, fmt.Sprintf("a member joined %s and received records (%s), committed offset %d (OffsetFetch agrees) and left; a second member resumed at offset %d (%s)",
		group, joined.Round(time.Millisecond), groupCommitAt, got[0].Offset, time.Since(start).Round(time.Millisecond)), nil
}

// probeTransactions commits a transaction, aborts one, and commits a
// marker; a read_committed reader must see the first and the marker, and
// nothing of the aborted one.
func probeTransactions(ctx context.Context, r *run) (Status, string, error) {
	adminCl, err := r.client()
	if err != nil {
		return Fail, "", err
	}
	defer adminCl.Close()
	topic, err := r.createTopic(ctx, kadm.NewClient(adminCl), "txn", nil)
	if err != nil {
		return Fail, "", err
	}
	id := r.name("txn")
	r.txnIDs = append(r.txnIDs, id)
	cl, err := r.client(kgo.TransactionalID(id), kgo.TransactionTimeout(r.cfg.ProbeTimeout))
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	txn := func(label string, n int, end kgo.TransactionEndTry) error {
		if err := cl.BeginTransaction(); err != nil {
			return fmt.Errorf("begin the %s transaction: %w", label, err)
		}
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "%s %d", label, i)})
		}
		perr := r.produce(ctx, cl, recs...)
		if perr != nil {
			end = kgo.TryAbort
		}
		if err := cl.EndTransaction(ctx, end); err != nil {
			return fmt.Errorf("end the %s transaction: %w", label, err)
		}
		return perr
	}
	if err := txn("committed", txnRecords, kgo.TryCommit); err != nil {
		return Fail, "", err
	}
	if err := txn("aborted", txnRecords, kgo.TryAbort); err != nil {
		return Fail, "", err
	}
	if err := txn("marker", 1, kgo.TryCommit); err != nil {
		return Fail, "", err
	}
	isMarker := func(got []*kgo.Record) bool {
		return len(got) > 0 && bytes.HasPrefix(got[len(got)-1].Value, []byte("marker"))
	}
	got, err := r.readFrom(ctx, topic, 0, isMarker, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return Fail, fmt.Sprintf("read_committed saw %d records", len(got)), err
	}
	committed, aborted := 0, 0
	for _, g := range got {
		switch {
		case bytes.HasPrefix(g.Value, []byte("committed")):
			committed++
		case bytes.HasPrefix(g.Value, []byte("aborted")):
			aborted++
		}
	}
	detail := fmt.Sprintf("read_committed saw %d of %d committed records and %d of %d aborted ones before the committed marker",
		committed, txnRecords, aborted, txnRecords)
	if committed != txnRecords || aborted != 0 {
		return Fail, detail, errors.New("read_committed must show every committed record and no aborted one")
	}
	return Pass, detail, nil
}

// compactWait is how long the compaction probe watches for cleaning: it
// usually runs minutes later (on closed segments), so the probe reports
// what it saw rather than waiting for it.
const compactWait = 2 * time.Second

// probeCompaction creates a compacted topic, checks the config took,
// writes several versions of a few keys and reads them back, and
// watches briefly for cleaning.
func probeCompaction(ctx context.Context, r *run) (Status, string, error) {
	cl, err := r.client()
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	compact := "compact"
	topic, err := r.createTopic(ctx, adm, "compact", map[string]*string{"cleanup.policy": &compact})
	if err != nil {
		return Fail, "", err
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return Fail, "", fmt.Errorf("describe %s's configs: %w", topic, err)
	}
	rc, err := cfgs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return Fail, "", fmt.Errorf("describe %s's configs: %w", topic, err)
	}
	policy := "(not described)"
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" {
			policy = c.MaybeValue()
		}
	}
	if policy != "compact" {
		return Fail, "", fmt.Errorf("created with cleanup.policy=compact, DescribeConfigs says %s", policy)
	}
	var recs []*kgo.Record
	for v := range compactVersions {
		for k := range compactKeys {
			recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "key-%d", k), Value: fmt.Appendf(nil, "version %d", v)})
		}
	}
	if err := r.produce(ctx, cl, recs...); err != nil {
		return Fail, "", err
	}
	total := len(recs)
	hwm := func() (int64, error) {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return 0, fmt.Errorf("list %s's end offset: %w", topic, err)
		}
		o, _ := ends.Lookup(topic, 0)
		return o.Offset, o.Err
	}
	// Watch: re-read the whole log until fewer records than written come
	// back (cleaned) or the wait is over.
	var latest map[string]string
	var seen int
	start := time.Now()
	for {
		end, err := hwm()
		if err != nil {
			return Fail, "", err
		}
		got, err := r.readFrom(ctx, topic, 0, func(got []*kgo.Record) bool {
			return len(got) > 0 && got[len(got)-1].Offset >= end-1
		})
		if err != nil {
			return Fail, "", fmt.Errorf("read %s back: %w", topic, err)
		}
		latest = map[string]string{}
		for _, g := range got {
			latest[string(g.Key)] = string(g.Value)
		}
		seen = len(got)
		if seen < total || time.Since(start) >= compactWait || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	want := fmt.Sprintf("version %d", compactVersions-1)
	for k := range compactKeys {
		if v := latest[fmt.Sprintf("key-%d", k)]; v != want {
			return Fail, "", fmt.Errorf("key-%d reads %q, want its latest %q", k, v, want)
		}
	}
	if seen < total {
		return Pass, fmt.Sprintf("created with cleanup.policy=compact (DescribeConfigs agrees); %d records on %d keys; cleaned within %s: %d records left, the latest of every key kept",
			total, compactKeys, time.Since(start).Round(time.Millisecond), seen), nil
	}
	return Pass, fmt.Sprintf("created with cleanup.policy=compact (DescribeConfigs agrees); %d records on %d keys read back, the latest of every key last; no cleaning seen in %s of watching (it runs later, on closed segments)",
		total, compactKeys, time.Since(start).Round(100*time.Millisecond)), nil
}

// probeTimeLookups writes records a second apart and asks ListOffsets for
// the offsets of timestamps among them.
func probeTimeLookups(ctx context.Context, r *run) (Status, string, error) {
	cl, err := r.client()
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topic, err := r.createTopic(ctx, adm, "time", nil)
	if err != nil {
		return Fail, "", err
	}
	// An hour ago: inside any retention, and not in the future.
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var recs []*kgo.Record
	for i := range timeRecords {
		recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "at +%ds", i), Timestamp: base.Add(time.Duration(i) * time.Second)})
	}
	if err := r.produce(ctx, cl, recs...); err != nil {
		return Fail, "", err
	}
	checks := []struct {
		at   time.Time
		want int64
	}{
		{base, 0},
		{base.Add(10 * time.Second), 10},
		{base.Add(10*time.Second + 500*time.Millisecond), 11}, // between records: the next one
		{base.Add(time.Duration(timeRecords-1) * time.Second), timeRecords - 1},
	}
	for _, c := range checks {
		offs, err := adm.ListOffsetsAfterMilli(ctx, c.at.UnixMilli(), topic)
		if err != nil {
			return Fail, "", fmt.Errorf("ListOffsets at %s: %w", c.at.Format(time.RFC3339Nano), err)
		}
		o, ok := offs.Lookup(topic, 0)
		if !ok || o.Err != nil {
			return Fail, "", fmt.Errorf("ListOffsets at %s: partition 0: %v", c.at.Format(time.RFC3339Nano), o.Err)
		}
		if o.Offset != c.want {
			return Fail, "", fmt.Errorf("ListOffsets at %s (+%s) gives offset %d, want %d", c.at.Format(time.RFC3339Nano), c.at.Sub(base), o.Offset, c.want)
		}
	}
	return Pass, fmt.Sprintf("%d records a second apart; ListOffsets by timestamp gave the first record at or after each of %d times (the first, +10s, +10.5s, the last)",
		timeRecords, len(checks)), nil
}

// probeQuotas asks for every client quota.
func probeQuotas(ctx context.Context, r *run) (Status, string, error) {
	cl, err := r.client()
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeClientQuotasRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return Fail, "", fmt.Errorf("DescribeClientQuotas: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return Fail, "", fmt.Errorf("DescribeClientQuotas: %w%s", err, message(resp.ErrorMessage, err))
	}
	return Pass, fmt.Sprintf("DescribeClientQuotas answered: %d entities have quotas", len(resp.Entries)), nil
}

// probeACLs asks for every ACL: a cluster without an authorizer answers
// SECURITY_DISABLED, which scores the feature as missing.
func probeACLs(ctx context.Context, r *run) (Status, string, error) {
	resp, err := r.describeACLs(ctx)
	if err != nil {
		return Fail, "", err
	}
	switch err := kerr.ErrorForCode(resp.ErrorCode); {
	case err == nil:
		return Pass, fmt.Sprintf("DescribeAcls answered: %d bindings visible to %s", countBindings(resp), r.cfg.Principal), nil
	case errors.Is(err, kerr.SecurityDisabled):
		return Missing, "DescribeAcls: SECURITY_DISABLED" + message(resp.ErrorMessage, nil), nil
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return Pass, fmt.Sprintf("an authorizer answered DescribeAcls: %s may not describe the cluster (CLUSTER_AUTHORIZATION_FAILED)", r.cfg.Principal), nil
	default:
		return Fail, "", fmt.Errorf("DescribeAcls: %w%s", err, message(resp.ErrorMessage, err))
	}
}

// describeACLs asks for every binding.
func (r *run) describeACLs(ctx context.Context) (*kmsg.DescribeACLsResponse, error) {
	cl, err := r.client()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType = kmsg.ACLResourceTypeAny
	req.ResourcePatternType = kmsg.ACLResourcePatternTypeAny
	req.Operation = kmsg.ACLOperationAny
	req.PermissionType = kmsg.ACLPermissionTypeAny
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("DescribeAcls: %w", err)
	}
	return resp, nil
}

func countBindings(resp *kmsg.DescribeACLsResponse) int {
	n := 0
	for _, res := range resp.Resources {
		n += len(res.ACLs)
	}
	return n
}

// message is a response's error message, when it adds to the error code's
// own text.
func message(m *string, err error) string {
	if m == nil || *m == "" || (err != nil && strings.Contains(err.Error(), *m)) {
		return ""
	}
	return ": " + *m
}
