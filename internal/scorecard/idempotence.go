package scorecard

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// probeIdempotence gets a producer id and sends one batch as an
// idempotent producer's retry would: again with the same sequence (the
// broker must not store it twice) and then with a sequence gap (the
// broker must refuse it). franz-go's producer never sends either on
// purpose, so the batches are built here.
func probeIdempotence(ctx context.Context, r *run) (Status, string, error) {
	cl, err := r.client()
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topic, err := r.createTopic(ctx, adm, "idempotence", nil)
	if err != nil {
		return Fail, "", err
	}
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionTimeoutMillis = int32(r.cfg.ProbeTimeout.Milliseconds())
	ir, err := init.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(ir.ErrorCode)
	}
	if err != nil {
		return Fail, "", fmt.Errorf("InitProducerId: %w", err)
	}
	md, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return Fail, "", fmt.Errorf("metadata of %s: %w", topic, err)
	}
	td, ok := md[topic]
	if !ok || td.Err != nil || len(td.Partitions) == 0 {
		return Fail, "", fmt.Errorf("metadata of %s: %v", topic, td.Err)
	}
	leader := td.Partitions[0].Leader
	send := func(seq int32) (*kmsg.ProduceResponseTopicPartition, error) {
		batch := rawBatch(ir.ProducerID, ir.ProducerEpoch, seq, idempotentRecords)
		if err := r.budget.take(idempotentRecords, idempotentRecords*16); err != nil {
			return nil, err
		}
		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		req.TimeoutMillis = int32(r.cfg.ProbeTimeout.Milliseconds())
		// Topic for v12 and older, TopicID for v13 on.
		t := kmsg.NewProduceRequestTopic()
		t.Topic, t.TopicID = topic, td.ID
		p := kmsg.NewProduceRequestTopicPartition()
		p.Partition, p.Records = 0, batch
		t.Partitions = append(t.Partitions, p)
		req.Topics = append(req.Topics, t)
		resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
		if err != nil {
			return nil, fmt.Errorf("produce: %w", err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return nil, errors.New("produce: the response does not name the partition")
		}
		return &resp.Topics[0].Partitions[0], nil
	}
	first, err := send(0)
	if err != nil {
		return Fail, "", err
	}
	if err := kerr.ErrorForCode(first.ErrorCode); err != nil {
		return Fail, "", fmt.Errorf("the first batch: %w", err)
	}
	dup, err := send(0)
	if err != nil {
		return Fail, "", err
	}
	// Kafka answers a duplicate with the first write's offset (older
	// brokers with DUPLICATE_SEQUENCE_NUMBER); either way nothing new is
	// stored, which the end offset shows.
	dupErr := kerr.ErrorForCode(dup.ErrorCode)
	if dupErr != nil && !errors.Is(dupErr, kerr.DuplicateSequenceNumber) {
		return Fail, "", fmt.Errorf("the duplicate batch: %w", dupErr)
	}
	gap, err := send(idempotentRecords + 10)
	if err != nil {
		return Fail, "", err
	}
	gapErr := kerr.ErrorForCode(gap.ErrorCode)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return Fail, "", fmt.Errorf("end offset of %s: %w", topic, err)
	}
	end, _ := ends.Lookup(topic, 0)
	if end.Err != nil {
		return Fail, "", fmt.Errorf("end offset of %s: %w", topic, end.Err)
	}
	dupAnswer := "no error"
	if dupErr != nil {
		dupAnswer = dupErr.Error()
	}
	detail := fmt.Sprintf("producer id %d: a batch of %d at offset %d; the same batch again answered %s (offset %d); a sequence gap answered %v; end offset %d",
		ir.ProducerID, idempotentRecords, first.BaseOffset, dupAnswer, dup.BaseOffset, errText(gapErr), end.Offset)
	switch {
	case end.Offset != first.BaseOffset+idempotentRecords:
		return Fail, detail, fmt.Errorf("the end offset is %d, want %d: a duplicate or out-of-sequence batch was stored", end.Offset, first.BaseOffset+idempotentRecords)
	case !errors.Is(gapErr, kerr.OutOfOrderSequenceNumber):
		return Fail, detail, fmt.Errorf("a batch with a sequence gap answered %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", errText(gapErr))
	}
	return Pass, detail, nil
}

func errText(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// rawBatch is a record batch (magic 2) of n small records from an
// idempotent producer, first sequence seq, with its length and CRC.
func rawBatch(producerID int64, epoch int16, seq int32, n int) []byte {
	now := time.Now().UnixMilli()
	var records []byte
	for i := range n {
		rec := kmsg.Record{OffsetDelta: int32(i), Value: fmt.Appendf(nil, "idem %d", i)}
		// The length prefix is the varint of what follows it.
		body := rec.AppendTo(nil)[1:] // Length 0 encodes as one byte
		records = binary.AppendVarint(records, int64(len(body)))
		records = append(records, body...)
	}
	b := kmsg.RecordBatch{
		Magic: 2, LastOffsetDelta: int32(n - 1), FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: producerID, ProducerEpoch: epoch, FirstSequence: seq, NumRecords: int32(n), Records: records,
	}
	raw := b.AppendTo(nil)
	// Length counts from the partition leader epoch (byte 12) on; the
	// CRC-32C covers the attributes (byte 21) on.
	binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}
