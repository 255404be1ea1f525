package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/e2e/txncheck"
)

// loader writes the chain's input: ids in transactions of 2 to 12
// records spread over the partitions, with every 7th transaction
// aborted (records that are no ids, "ABORTED-load-...").
type loader struct {
	t          *testing.T
	chk        *txncheck.Checker
	cl         *kgo.Client
	partitions int
	seq        int
	rng        *rand.Rand

	mu sync.Mutex // held during each transaction
}

func newLoader(t *testing.T, chk *txncheck.Checker, addr string, partitions int) *loader {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("chain-loader"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(chainTopics[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	return &loader{t: t, chk: chk, cl: cl, partitions: partitions, rng: rand.New(rand.NewPCG(1, 2))}
}

func (l *loader) close() { l.cl.Close() }

// run writes ids 0..ids-1, a transaction every pace, until done or ctx
// ends. The harness injects no fault into a loader transaction, so an
// error is a failure.
func (l *loader) run(ctx context.Context, ids int, pace time.Duration) {
	for lo := 0; lo < ids && ctx.Err() == nil; {
		n, err := l.transact(ctx, lo, min(ids-lo, 2+l.rng.IntN(11)))
		if err != nil {
			l.t.Errorf("loader: %v", err)
			return
		}
		lo += n
		time.Sleep(pace)
	}
}

// transact writes ids lo..lo+n-1 in one transaction, or aborts one of n
// records, and returns how many ids it wrote.
func (l *loader) transact(ctx context.Context, lo, n int) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l.seq++
	abort := l.seq%7 == 0
	txn := fmt.Sprintf("load#%d", l.seq)
	if err := l.cl.BeginTransaction(); err != nil {
		return 0, fmt.Errorf("begin %s: %w", txn, err)
	}
	var recs []*kgo.Record
	for i := range n {
		v := fmt.Sprintf("id=%d", lo+i)
		if abort {
			v = fmt.Sprintf("ABORTED-load-%d-%d", l.seq, i)
		}
		recs = append(recs, &kgo.Record{
			Partition: int32((l.seq + i) % l.partitions),
			Key:       []byte(strconv.Itoa(lo + i)),
			Value:     []byte(v),
			Headers:   []kgo.RecordHeader{{Key: "txn", Value: []byte(txn)}, {Key: "txn-n", Value: []byte(strconv.Itoa(n))}},
		})
	}
	if err := l.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return 0, fmt.Errorf("produce %s: %w", txn, err)
	}
	if err := l.cl.EndTransaction(ctx, kgo.TransactionEndTry(!abort)); err != nil {
		return 0, fmt.Errorf("end %s: %w", txn, err)
	}
	if abort {
		l.chk.Aborted(txn)
		return 0, nil
	}
	l.chk.Committed(txn, chainTopics[0].Name, n)
	return n, nil
}
