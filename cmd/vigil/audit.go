package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/auditchain"
	"github.com/vigilhq/vigil/internal/broker"
	"github.com/vigilhq/vigil/internal/clientsec"
	"github.com/vigilhq/vigil/internal/cliflag"
)

const auditUsage = `Usage:
  vigil audit verify [--brokers B] [--partition N] [--key-file FILE]
                     [--anchors FILE] [--save-anchors FILE] [client flags]

verify reads the audit topic _vigil.audit from its start (read_committed)
up to its end when it starts, recomputes each partition's hash chain
(docs/security.md, "Audit trail") and prints per partition the records
checked, the offset the chain starts at, its head (last offset and link:
record them elsewhere to detect a cut-off tail later) and every break.
--save-anchors writes those heads to a file (a line "PARTITION OFFSET
LINK" each) when every chain holds; keep it off the cluster, and give it
to a later run as --anchors: the record at each anchored offset must
still carry its link, which catches a cut-off tail and a log rewritten
with a fresh chain. Exit status 0 when every chain holds, 1 otherwise.
Reading the topic needs Read on _vigil.audit.
`

// auditMain is `vigil audit verify`.
func auditMain(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if ok, code := cliflag.SubcommandHelp(args, auditUsage, stdout, stderr); !ok {
		return code
	}
	if args[0] != "verify" {
		cliflag.Errorf(stderr, "vigil audit", "unknown subcommand %q: want verify", args[0])
		return cliflag.ExitUsage
	}
	fs := flag.NewFlagSet("vigil audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", envOr(getenv, "VIGIL_BROKERS", "127.0.0.1:9092"), "comma-separated seed brokers (VIGIL_BROKERS)")
	part := fs.Int("partition", -1, "verify only this partition (-1: all)")
	keyFile := fs.String("key-file", "", "the brokers' --audit-chain-key-file, for a keyed chain (vigil.chain.hmac)")
	anchorsFile := fs.String("anchors", "", "heads recorded by an earlier --save-anchors: each must still be in its partition's chain")
	saveAnchors := fs.String("save-anchors", "", "write every partition's head to this file when every chain holds")
	every := fs.Duration("progress", 5*time.Second, "how often a progress line goes to stderr")
	timeout := fs.Duration("timeout", 30*time.Second, "give up when the brokers answer nothing for this long")
	sec := clientsec.Register(fs, getenv)
	if ok, code := cliflag.Parse(fs, args[1:], stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		cliflag.Errorf(stderr, fs.Name(), "unexpected argument %q", fs.Arg(0))
		return cliflag.ExitUsage
	}
	var key []byte
	if *keyFile != "" {
		var err error
		if key, err = auditchain.LoadKey(*keyFile); err != nil {
			fmt.Fprintf(stderr, "%s: --key-file: %v\n", fs.Name(), err)
			return 1
		}
	}
	var anchors map[int32]anchorLine
	if *anchorsFile != "" {
		var err error
		if anchors, err = readAnchors(*anchorsFile); err != nil {
			fmt.Fprintf(stderr, "%s: --anchors: %v\n", fs.Name(), err)
			return 1
		}
	}
	opts, code := clientOptions(stderr, fs.Name(), sec)
	if code != 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	v := auditVerify{
		opts:     append([]kgo.Opt{kgo.SeedBrokers(splitList(*brokers)...), kgo.ClientID("vigil-audit-verify")}, opts...),
		key:      key,
		anchors:  anchors,
		only:     int32(*part),
		every:    *every,
		timeout:  *timeout,
		progress: stderr,
	}
	parts, err := v.run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return 1
	}
	if !printAudit(stdout, parts, key != nil) {
		return 1
	}
	if *saveAnchors != "" {
		if err := writeAnchors(*saveAnchors, parts); err != nil {
			fmt.Fprintf(stderr, "%s: --save-anchors: %v\n", fs.Name(), err)
			return 1
		}
	}
	return 0
}

// anchorLine is one head of an anchors file.
type anchorLine struct {
	offset int64
	link   auditchain.Link
}

// readAnchors reads lines "PARTITION OFFSET LINK"; blank lines and lines
// starting with # are skipped.
func readAnchors(path string) (map[int32]anchorLine, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[int32]anchorLine{}
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var p int32
		var a anchorLine
		var link string
		var ok bool
		if n, _ := fmt.Sscan(line, &p, &a.offset, &link); n == 3 {
			a.link, ok = auditchain.ParseLink([]byte(link))
		}
		if !ok {
			return nil, fmt.Errorf("%s:%d: want PARTITION OFFSET LINK (64 hex digits), got %q", path, i+1, line)
		}
		out[p] = a
	}
	return out, nil
}

func writeAnchors(path string, parts []*auditchain.Partition) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s heads, %s: PARTITION OFFSET LINK\n", broker.AuditTopic, time.Now().UTC().Format(time.RFC3339))
	for _, p := range parts {
		if p.HeadOffset >= 0 {
			fmt.Fprintf(&b, "%d %d %s\n", p.ID, p.HeadOffset, p.Head)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// auditVerify reads the audit topic and recomputes its chains.
type auditVerify struct {
	opts     []kgo.Opt
	key      []byte
	anchors  map[int32]anchorLine
	only     int32 // -1: every partition
	every    time.Duration
	timeout  time.Duration
	progress io.Writer
}

func (v *auditVerify) run(ctx context.Context) ([]*auditchain.Partition, error) {
	const topic = broker.AuditTopic
	adm, err := kgo.NewClient(v.opts...)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	lctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	ka := kadm.NewClient(adm)
	starts, err := ka.ListStartOffsets(lctx, topic)
	if err == nil {
		err = starts.Error()
	}
	var ends kadm.ListedOffsets
	if err == nil {
		ends, err = ka.ListEndOffsets(lctx, topic)
		if err == nil {
			err = ends.Error()
		}
	}
	if err != nil {
		return nil, readError(err, lctx)
	}
	want := map[int32]kgo.Offset{}
	end := map[int32]int64{}
	var ids []int32
	starts.Each(func(o kadm.ListedOffset) {
		if v.only >= 0 && o.Partition != v.only {
			return
		}
		e, _ := ends.Lookup(topic, o.Partition)
		ids = append(ids, o.Partition)
		if e.Offset > o.Offset {
			want[o.Partition] = kgo.NewOffset().At(o.Offset)
			end[o.Partition] = e.Offset
		}
	})
	if len(ids) == 0 {
		if v.only >= 0 {
			return nil, fmt.Errorf("%s has no partition %d", topic, v.only)
		}
		return nil, fmt.Errorf("%s has no partitions", topic)
	}
	slices.Sort(ids)
	h := auditchain.NewHasher(v.key)
	parts := map[int32]*auditchain.Partition{}
	out := make([]*auditchain.Partition, len(ids))
	for i, id := range ids {
		parts[id] = auditchain.NewPartition(id, h)
		if a, ok := v.anchors[id]; ok {
			parts[id].Expect(a.offset, a.link)
		}
		out[i] = parts[id]
	}
	if err := v.read(ctx, want, end, parts); err != nil {
		return nil, err
	}
	for _, p := range out {
		p.Finish()
	}
	return out, nil
}

// read feeds each partition's records from want up to end to parts.
func (v *auditVerify) read(ctx context.Context, want map[int32]kgo.Offset, end map[int32]int64, parts map[int32]*auditchain.Partition) error {
	const topic = broker.AuditTopic
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(slices.Clone(v.opts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: want}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	shown := time.Now()
	var total int64
	left := len(want)
	quiet := time.Now()
	for left > 0 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue
			}
			return readError(fmt.Errorf("partition %d: %w", fe.Partition, fe.Err), ctx)
		}
		n := 0
		fetches.EachRecord(func(r *kgo.Record) {
			p := parts[r.Partition]
			if r.Offset >= end[r.Partition] || p == nil {
				return // written after the verifier started
			}
			n++
			p.Add(r.Offset, r.Key, r.Value, headersOf(r.Headers))
			if r.Offset == end[r.Partition]-1 {
				left--
				cl.PauseFetchPartitions(map[string][]int32{topic: {r.Partition}})
			}
		})
		total += int64(n)
		if n > 0 {
			quiet = time.Now()
		} else if time.Since(quiet) > v.timeout {
			return fmt.Errorf("no record of %s for %s with %d partitions unfinished: are the brokers up?", topic, v.timeout, left)
		}
		if time.Since(shown) >= v.every {
			shown = time.Now()
			fmt.Fprintf(v.progress, "vigil audit verify: %d records checked, %d of %d partitions left\n", total, left, len(want))
		}
	}
	return nil
}

func headersOf(hs []kgo.RecordHeader) []kmsg.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]kmsg.Header, len(hs))
	for i, h := range hs {
		out[i] = kmsg.Header{Key: h.Key, Value: h.Value}
	}
	return out
}

// readError says what a failure to read the audit topic means.
func readError(err error, ctx context.Context) error {
	switch {
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		return fmt.Errorf("%w: reading the audit topic needs Read (and Describe) on the topic %s: vigil acls add --allow-principal User:NAME --operation Read --topic %s", err, broker.AuditTopic, broker.AuditTopic)
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("%w: no audit topic %s (a Vigil broker creates it when it starts)", err, broker.AuditTopic)
	case errors.As(err, new(*net.OpError)):
		return fmt.Errorf("cannot reach the brokers (is --brokers right, and are they up?): %w", err)
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer from the brokers: %w", err)
	}
	return err
}

// printAudit writes the report; it returns whether every chain holds.
func printAudit(w io.Writer, parts []*auditchain.Partition, keyed bool) bool {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tRECORDS\tCHAIN FROM\tHEAD OFFSET\tHEAD LINK\tSTATUS")
	ok := true
	var records, breaks int64
	for _, p := range parts {
		status := "intact"
		switch {
		case p.BreakCount > 0:
			status = plural(int(p.BreakCount), "break")
			if keyed && p.BreakCount == p.Linked && p.Linked > 1 {
				status += " (every link: the wrong --key-file?)"
			}
		case p.NeedKey > 0:
			status = "keyed: give --key-file"
		case p.Records == 0:
			status = "empty"
		case p.Start < 0:
			status = "no chain (records written before it)"
		}
		if !p.OK() {
			ok = false
		}
		from, headOff, head := "-", "-", "-"
		if p.Start >= 0 {
			from = fmt.Sprint(p.Start)
			headOff, head = fmt.Sprint(p.HeadOffset), p.Head.String()
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\n", p.ID, p.Records, from, headOff, head, status)
		records += p.Records
		breaks += p.BreakCount
	}
	tw.Flush()
	for _, p := range parts {
		for _, b := range p.Breaks {
			fmt.Fprintf(w, "break: partition %d offset %d: %s\n  expected %s\n  found    %s\n", p.ID, b.Offset, b.Reason, b.Expected, b.Found)
		}
		if more := p.BreakCount - int64(len(p.Breaks)); more > 0 {
			fmt.Fprintf(w, "break: partition %d: %d more\n", p.ID, more)
		}
		if p.NeedKey > 0 {
			fmt.Fprintf(w, "partition %d: %d links are keyed (HMAC-SHA256, vigil.chain.hmac): %v; give --key-file\n", p.ID, p.NeedKey, auditchain.ErrNoKey)
		}
	}
	if ok {
		fmt.Fprintf(w, "every chain holds: %d records in %d partitions\n", records, len(parts))
	} else {
		fmt.Fprintf(w, "the chains do not hold: %s over %d records\n", plural(int(breaks), "break"), records)
	}
	return ok
}
