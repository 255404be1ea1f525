package server

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/internal/group"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/txn"
)

// Transaction coordinators live like group coordinators: one per
// __transaction_state partition this broker leads (all of them on a
// single broker), loaded when it takes the partition over and closed
// before it hands the partition over, so the ids spread over the brokers
// as in Kafka and a broker's loss moves only its share. They are opened
// after the broker, whose marker writer they use: loading resumes the
// commits and aborts that were deciding when the last coordinator
// stopped.

// txnConfig is the coordinators' configuration from the broker's.
func (s *Server) txnConfig(parts []int32) txn.Config {
	return txn.Config{
		Partitions:    s.cfg.TransactionPartitions,
		Serve:         parts,
		MaxTimeout:    s.cfg.TransactionMaxTimeout,
		IDExpiration:  s.cfg.TransactionalIDExpiration,
		AbortInterval: s.cfg.TransactionAbortInterval,
		CoordinatorEpoch: func(p int32) int32 {
			if t := s.store.Topic(txn.StateTopic); t != nil && int(p) < len(t.Logs) {
				epoch, _ := t.Logs[p].Leader()
				return epoch
			}
			return 0
		},
		Logger: s.log,
	}
}

// producerIDs hands the coordinators producer ids from the metadata
// store, the same sequence idempotent producers draw from.
type producerIDs struct{ e *storage.Engine }

func (p producerIDs) Next(ctx context.Context) (int64, error) { return p.e.NewProducerID(ctx) }

// openTxn opens __transaction_state (creating it on first start) and
// loads a coordinator of its partitions parts from it.
func (s *Server) openTxn(ctx context.Context, parts []int32) (*txn.Coordinator, error) {
	cfg := s.txnConfig(parts)
	tlog, err := txn.OpenLog(ctx, s.store, cfg)
	if err != nil {
		return nil, err
	}
	co := txn.New(cfg, txn.Deps{
		Log:     tlog,
		IDs:     producerIDs{s.store},
		Markers: s.broker.Markers(),
		Topics:  s.store,
		OffsetsPartitionFor: func(groupID string) (int32, bool) {
			t := s.store.Topic(group.OffsetsTopic)
			if t == nil || len(t.Logs) == 0 {
				return 0, false
			}
			return group.PartitionFor(groupID, int32(len(t.Logs))), true
		},
	})
	if err := co.Load(ctx); err != nil {
		co.Close()
		return nil, fmt.Errorf("load transactions: %w", err)
	}
	return co, nil
}

// openAllTxns loads a single broker's coordinators, one per partition.
func (s *Server) openAllTxns(ctx context.Context) error {
	if _, err := txn.OpenLog(ctx, s.store, s.txnConfig(nil)); err != nil {
		return err
	}
	start := time.Now()
	n := int32(len(s.store.Topic(txn.StateTopic).Logs))
	byPart := make(map[int32]*txn.Coordinator, n)
	for p := range n {
		co, err := s.openTxn(ctx, []int32{p})
		if err != nil {
			for _, co := range byPart {
				co.Close()
			}
			return err
		}
		byPart[p] = co
	}
	s.txnMu.Lock()
	s.publishTxnsLocked(n, byPart)
	s.txnMu.Unlock()
	s.log.Info("transactions loaded", "state_partitions", n, "took", time.Since(start))
	return nil
}

// ensureTxnTopic creates __transaction_state if no broker has yet, so
// that its partitions get leaders.
func (s *Server) ensureTxnTopic(ctx context.Context) error {
	_, err := txn.OpenLog(ctx, s.store, s.txnConfig(nil))
	return err
}

// moveTxnCoordinators follows leadership of __transaction_state: a
// coordinator for each partition this broker now leads, none for the
// others.
func (s *Server) moveTxnCoordinators() {
	t := s.store.Topic(txn.StateTopic)
	if t == nil || s.broker == nil {
		return
	}
	led := s.store.Led()
	s.txnMu.Lock()
	defer s.txnMu.Unlock()
	if s.txnClosed {
		return
	}
	cur := s.txns.Map()
	next := make(map[int32]*txn.Coordinator, len(cur))
	var closing []*txn.Coordinator
	changed := false
	for p := range t.Logs {
		p := int32(p)
		_, leads := led[storage.Partition{Topic: txn.StateTopic, Partition: p}]
		co := cur[p]
		switch {
		case leads && co != nil:
			next[p] = co
		case leads:
			co, err := s.openTxn(context.Background(), []int32{p})
			if err != nil {
				s.log.Error("cannot load transactions after taking a __transaction_state partition over", "partition", p, "err", err)
				continue
			}
			next[p] = co
			changed = true
			s.log.Info("this broker now coordinates the transactions of a state partition", "partition", p)
		case co != nil:
			closing = append(closing, co)
			changed = true
			s.log.Info("this broker no longer coordinates the transactions of a state partition", "partition", p)
		}
	}
	if changed {
		s.publishTxnsLocked(int32(len(t.Logs)), next)
	}
	for _, co := range closing {
		co.Close()
	}
}

// releaseTxn drops a state partition's coordinator before the partition
// is handed over, so no transaction write races the hand-over.
func (s *Server) releaseTxn(p int32) {
	s.txnMu.Lock()
	defer s.txnMu.Unlock()
	cur := s.txns.Map()
	co := cur[p]
	if co == nil {
		return
	}
	delete(cur, p)
	s.publishTxnsLocked(s.txns.Partitions(), cur) // no request reaches co while it closes
	co.Close()
	s.log.Info("this broker no longer coordinates the transactions of a state partition", "partition", p)
}

// publishTxnsLocked installs byPart as the broker's coordinators.
func (s *Server) publishTxnsLocked(partitions int32, byPart map[int32]*txn.Coordinator) {
	s.txns = nil
	if len(byPart) > 0 {
		s.txns = txn.NewShards(partitions, byPart)
	}
	s.broker.SetTransactions(s.txns)
}

// closeTxns closes every coordinator and takes no more: their marker
// writers and last appends still reach the WAL and the group
// coordinators, so they stop before both.
func (s *Server) closeTxns() {
	s.txnMu.Lock()
	defer s.txnMu.Unlock()
	s.txnClosed = true
	for _, co := range s.txns.All() {
		co.Close()
	}
	s.txns = nil
	if s.broker != nil {
		s.broker.SetTransactions(nil)
	}
}
