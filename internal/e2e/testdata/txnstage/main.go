// Command txnstage is one consume-transform-produce stage of TestTxnChain:
// a franz-go GroupTransactSession that reads a topic at read_committed in a
// consumer group, appends its tag to every record, writes the records to
// the next topic spread over its partitions, and commits the input offsets
// in the same transaction. It runs as a process of its own so the test can
// SIGKILL it (or SIGSTOP it to make a zombie) mid-transaction.
//
// Every transaction is reported on stdout, one line each, for the checker:
//
//	begin <txn>                        it began
//	ending <txn>                       End is called (the offsets, then EndTxn)
//	commit <txn> <records> <topic>     EndTxn committed it
//	abort <txn> <records> <topic>      it was aborted (on purpose, or the session had to)
//	uncertain <txn> <error>            End failed; the outcome is unknown, and the stage exits 3
//	dataloss <partition>: <error>      the fetch found records gone that it had read (franz-go's ErrDataLoss)
//	fetcherr <partition>: <error>      another fetch error, but the poll's own timeout
//
// The transaction's id (<txn>) and record count travel in the headers of
// each of its records ("txn", "txn-n"), so a reader can tell a torn
// transaction. Every --abort-every'th transaction is aborted on purpose
// with "ABORTED-" in front of its values: no read_committed reader may
// ever see one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	var (
		brokers    = flag.String("brokers", "", "seed broker")
		group      = flag.String("group", "", "consumer group")
		txnID      = flag.String("txn-id", "", "transactional.id")
		in         = flag.String("in", "", "topic read")
		out        = flag.String("out", "", "topic written")
		tag        = flag.String("tag", "", "appended to every value as |tag")
		partitions = flag.Int("partitions", 1, "partitions of --out")
		abortEvery = flag.Int("abort-every", 7, "abort every n'th transaction on purpose (0: never)")
		maxBatch   = flag.Int("max-batch", 20, "most records per transaction")
		linger     = flag.Duration("linger", 30*time.Millisecond, "longest random pause between producing and ending a transaction, so kills land inside transactions")
		session    = flag.Duration("session-timeout", 3*time.Second, "group session timeout")
		txnTimeout = flag.Duration("txn-timeout", 5*time.Second, "transaction.timeout.ms: the coordinator aborts a transaction open longer")
		readUncomm = flag.Bool("read-uncommitted", false, "read the input at read_uncommitted (breaks exactly-once; only to see the checker catch it)")
	)
	flag.Parse()

	iso := kgo.ReadCommitted()
	if *readUncomm {
		iso = kgo.ReadUncommitted()
	}
	logf, err := os.OpenFile(os.Getenv("TXNSTAGE_LOG"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		logf = os.Stderr
	}
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(*brokers),
		kgo.TransactionalID(*txnID),
		kgo.TransactionTimeout(*txnTimeout),
		kgo.ConsumerGroup(*group),
		kgo.ConsumeTopics(*in),
		kgo.FetchIsolationLevel(iso),
		kgo.RequireStableFetchOffsets(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(*session),
		kgo.HeartbeatInterval(*session/6),
		kgo.RebalanceTimeout(10*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.WithLogger(kgo.BasicLogger(logf, kgo.LogLevelInfo, func() string {
			return time.Now().Format("15:04:05.000 ") + *txnID + " pid " + strconv.Itoa(os.Getpid()) + " "
		})),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "txnstage:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	s := &stage{sess: sess, out: *out, tag: *tag, partitions: *partitions, abortEvery: *abortEvery, linger: *linger,
		prefix: fmt.Sprintf("%s@%d", *txnID, time.Now().UnixNano())}
	code := s.run(ctx, *maxBatch)
	sess.Close()
	os.Exit(code)
}

type stage struct {
	sess       *kgo.GroupTransactSession
	out, tag   string
	partitions int
	abortEvery int
	linger     time.Duration
	prefix     string // of the transaction ids: the transactional id and this process's start
	seq        int
}

// run copies batches until ctx ends (0) or a transaction's outcome is
// unknown (3).
func (s *stage) run(ctx context.Context, maxBatch int) int {
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := s.sess.PollRecords(pctx, maxBatch)
		cancel()
		fs.EachError(func(t string, p int32, err error) {
			var loss *kgo.ErrDataLoss
			switch {
			case errors.As(err, &loss):
				fmt.Printf("dataloss %s/%d: %v\n", t, p, err)
			case !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled):
				fmt.Printf("fetcherr %s/%d: %v\n", t, p, err)
			}
		})
		if fs.NumRecords() == 0 || ctx.Err() != nil {
			continue
		}
		if err := s.transact(fs); err != nil {
			fmt.Printf("uncertain %v\n", err)
			return 3
		}
	}
	return 0
}

// transact writes one polled batch in one transaction. Its records go
// round-robin over the output partitions, so a transaction of two records
// or more spans partitions and a torn one can be seen.
func (s *stage) transact(fs kgo.Fetches) error {
	s.seq++
	txn := fmt.Sprintf("%s#%d", s.prefix, s.seq)
	abort := s.abortEvery > 0 && s.seq%s.abortEvery == 0
	n := fs.NumRecords()
	if err := s.sess.Begin(); err != nil {
		return fmt.Errorf("%s: begin: %w", txn, err)
	}
	fmt.Printf("begin %s\n", txn)
	// A bounded context: End must not wait forever on a broker that is
	// down; the test restarts a stage that gives up.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		mu      sync.Mutex
		prodErr error
		i       int
	)
	fs.EachRecord(func(r *kgo.Record) {
		v := string(r.Value) + "|" + s.tag
		if abort {
			v = "ABORTED-" + v
		}
		rec := &kgo.Record{
			Topic:     s.out,
			Partition: int32((s.seq + i) % s.partitions),
			Key:       r.Key,
			Value:     []byte(v),
			Headers:   []kgo.RecordHeader{{Key: "txn", Value: []byte(txn)}, {Key: "txn-n", Value: []byte(strconv.Itoa(n))}},
		}
		i++
		s.sess.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				prodErr = errors.Join(prodErr, err)
				mu.Unlock()
			}
		})
	})
	time.Sleep(time.Duration(rand.Int64N(int64(s.linger) + 1)))
	// Flush before deciding: a record that failed aborts the transaction.
	if err := s.sess.Client().Flush(ctx); err != nil {
		return fmt.Errorf("%s: flush: %w", txn, err)
	}
	mu.Lock()
	failed := prodErr != nil
	mu.Unlock()
	fmt.Printf("ending %s\n", txn)
	committed, err := s.sess.End(ctx, kgo.TransactionEndTry(!abort && !failed))
	if err != nil {
		return fmt.Errorf("%s: end: %w", txn, err)
	}
	outcome := "abort"
	if committed {
		outcome = "commit"
	}
	fmt.Printf("%s %s %d %s\n", outcome, txn, n, s.out)
	return nil
}
