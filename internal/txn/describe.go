package txn

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Describe is DescribeTransactions for ids this coordinator may serve
// (Kafka's handleDescribeTransactions): an unknown id, or one being
// expired, is TRANSACTIONAL_ID_NOT_FOUND.
func (c *Coordinator) Describe(ids []string) []kmsg.DescribeTransactionsResponseTransactionState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]kmsg.DescribeTransactionsResponseTransactionState, 0, len(ids))
	for _, id := range ids {
		s := kmsg.NewDescribeTransactionsResponseTransactionState()
		s.TransactionalID = id
		m := c.txns[id]
		switch {
		case id == "":
			s.ErrorCode = kerr.InvalidRequest.Code
		case c.checkLocked(id) != 0:
			s.ErrorCode = c.checkLocked(id)
		case m == nil || m.state == Dead:
			s.ErrorCode = kerr.TransactionalIDNotFound.Code
		default:
			s.State = m.state.String()
			s.TimeoutMillis = m.timeoutMs
			s.StartTimestamp = m.start
			s.ProducerID, s.ProducerEpoch = m.pid, m.epoch
			for _, tp := range m.parts.sorted() {
				if n := len(s.Topics); n == 0 || s.Topics[n-1].Topic != tp.Topic {
					t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
					t.Topic = tp.Topic
					s.Topics = append(s.Topics, t)
				}
				last := &s.Topics[len(s.Topics)-1]
				last.Partitions = append(last.Partitions, tp.Partition)
			}
		}
		out = append(out, s)
	}
	return out
}

// List is ListTransactions over this coordinator's ids (Kafka's
// listTransactionStates): states and pids filter when not empty (a state
// filter of only unknown names matches nothing; UnknownStates names them
// for the response), minDurationMs (v1, KIP-994) when not negative keeps
// the transactions that started more than that long ago. Ids being expired
// are left out. Sorted by transactional id.
func (c *Coordinator) List(states []string, pids []int64, minDurationMs int64) []kmsg.ListTransactionsResponseTransactionState {
	want := map[State]bool{}
	for _, name := range states {
		if s, ok := StateNamed(name); ok {
			want[s] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.loaded {
		return nil
	}
	nowMs := c.nowMs()
	var out []kmsg.ListTransactionsResponseTransactionState
	for _, id := range slices.Sorted(maps.Keys(c.txns)) {
		m := c.txns[id]
		switch {
		case m.state == Dead:
		case len(pids) > 0 && !slices.Contains(pids, m.pid):
		case len(states) > 0 && !want[m.state]:
		case minDurationMs >= 0 && nowMs-m.start <= minDurationMs:
		default:
			s := kmsg.NewListTransactionsResponseTransactionState()
			s.TransactionalID, s.ProducerID, s.TransactionState = id, m.pid, m.state.String()
			out = append(out, s)
		}
	}
	return out
}

// UnknownStates returns the filter names that are no transaction state
// (ListTransactionsResponse.UnknownStateFilters).
func UnknownStates(states []string) []string {
	var out []string
	for _, name := range states {
		if _, ok := StateNamed(name); !ok {
			out = append(out, name)
		}
	}
	return out
}
