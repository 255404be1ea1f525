package broker

import (
	"regexp"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/txn"
)

// handleListTransactions lists the transactions this broker coordinates
// (KIP-664; the admin client asks every broker), filtered by state,
// producer id, (v1+, KIP-994) duration and (v2+, KIP-1152) a regular
// expression the whole id matches, in RE2 syntax as Kafka's RE2/J
// (INVALID_REGULAR_EXPRESSION when it does not compile).
//
// Authorization, as Kafka's handleListTransactionsRequest: only the
// transactional ids the principal may Describe are listed, quietly.
func (b *Broker) handleListTransactions(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	resp.UnknownStateFilters = txn.UnknownStates(req.StateFilters)
	var pattern *regexp.Regexp
	if h.version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		var err error
		if pattern, err = regexp.Compile("^(?:" + *req.TransactionalIDPattern + ")$"); err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return func() kmsg.Response { return resp }
		}
	}
	minDuration := int64(-1)
	if h.version >= 1 {
		minDuration = req.DurationFilterMillis
	}
	for _, co := range b.txnsPtr.Load().All() {
		for _, st := range co.List(req.StateFilters, req.ProducerIDFilters, minDuration) {
			if (pattern == nil || pattern.MatchString(st.TransactionalID)) &&
				c.allowedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, st.TransactionalID) {
				resp.TransactionStates = append(resp.TransactionStates, st)
			}
		}
	}
	slices.SortFunc(resp.TransactionStates, func(x, y kmsg.ListTransactionsResponseTransactionState) int {
		return strings.Compare(x.TransactionalID, y.TransactionalID)
	})
	return func() kmsg.Response { return resp }
}
