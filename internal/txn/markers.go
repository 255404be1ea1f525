package txn

// Completing a transaction: Kafka's TransactionMarkerChannelManager, one
// goroutine per transaction instead of a send thread per broker, since
// Markers hides where the partitions are led.

// startMarkersLocked starts completing m, whose PrepareCommit/PrepareAbort
// is durable: its markers carry that state's producer id and epoch (with
// transaction version 2 the bumped one, which fences the old epoch on the
// partitions too), and ct is the completion appended once they are
// written. Called with c.mu held.
func (c *Coordinator) startMarkersLocked(m *txnMeta, ct *transit) {
	mk := Marker{ProducerID: m.pid, Epoch: m.epoch, Commit: m.state == PrepareCommit,
		CoordinatorEpoch: c.parts[c.partition(m.id)].epoch, TransactionVersion: int8(m.tv)}
	c.wg.Add(1)
	go c.completeTxn(m, mk, ct)
}

// completeTxn writes the markers until Markers.Write succeeds, then
// appends the completion until that is durable, backing off between
// attempts. It gives up only when the coordinator closes or the id is no
// longer this coordinator's (whoever loads it next resumes it). Kafka
// gives up the completion on NOT_COORDINATOR as well; here a storage
// error is retried, since no other broker may take the partition over.
func (c *Coordinator) completeTxn(m *txnMeta, mk Marker, ct *transit) {
	defer c.wg.Done()
	maxBackoff := 64 * c.cfg.MarkerBackoff
	backoff := c.cfg.MarkerBackoff
	wait := func() bool {
		ok := c.sleep(backoff)
		backoff = min(2*backoff, maxBackoff)
		return ok
	}
	for attempt := 1; ; attempt++ {
		c.mu.Lock()
		if c.closed || c.txns[m.id] != m {
			c.mu.Unlock()
			return
		}
		mk.Partitions = c.markerPartitionsLocked(m)
		c.mu.Unlock()
		if len(mk.Partitions) == 0 {
			break
		}
		err := c.markers.Write(c.ctx, mk)
		if err == nil {
			break
		}
		if c.ctx.Err() != nil {
			return
		}
		c.log.Warn("writing transaction markers failed; retrying", "transactional_id", m.id, "producer_id", mk.ProducerID,
			"epoch", mk.Epoch, "commit", mk.Commit, "partitions", len(mk.Partitions), "attempt", attempt, "err", err)
		if !wait() {
			return
		}
	}
	backoff = c.cfg.MarkerBackoff
	for {
		ch := make(chan int16, 1)
		c.mu.Lock()
		if c.closed || c.txns[m.id] != m {
			c.mu.Unlock()
			return
		}
		c.appendTransitLocked(m, ct, func(int16) bool { return true }, func(code int16) { ch <- code })
		c.mu.Unlock()
		if <-ch == 0 {
			c.log.Debug("transaction completed", "transactional_id", m.id, "state", ct.state)
			return
		}
		if !wait() {
			return
		}
	}
}

// markerPartitionsLocked is the transaction's partitions that still exist.
// A partition of a deleted topic is dropped from the transaction, as Kafka
// drops one whose leader it cannot find ("likely deleted already").
func (c *Coordinator) markerPartitionsLocked(m *txnMeta) []TopicPartition {
	var out []TopicPartition
	for _, tp := range m.parts.sorted() {
		if c.topics != nil && !c.topics.PartitionExists(tp.Topic, tp.Partition) {
			c.log.Info("transaction marker skipped: the partition no longer exists", "transactional_id", m.id,
				"topic", tp.Topic, "partition", tp.Partition)
			delete(m.parts, tp)
			continue
		}
		out = append(out, tp)
	}
	return out
}
