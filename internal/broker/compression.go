package broker

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vigilhq/vigil/internal/batch"
)

// Broker-side compression, as Kafka 3.9 does it (LogValidator): a topic
// whose compression.type (by default the broker's --compression-type)
// names a codec has every produced batch in another codec rebuilt in that
// one before it is appended, so that the WAL, the segment objects and
// every fetch carry the topic's codec. The default, producer, keeps the
// produce path as it is: the batch is stored as the producer sent it.
//
//   - The codec alone decides: a batch already in the topic's codec is
//     stored as it came, whatever level its producer compressed at.
//   - A rebuilt batch keeps its base offset, producer id, epoch and base
//     sequence, the transactional bit, its record count and every
//     record's key, value, headers and timestamp (batch.Recompress).
//     Idempotence and transactions see the same batch, so a retry is
//     still recognised, and read_committed reads as before.
//   - Kafka checks max.message.bytes again on the rebuilt batch
//     (UnifiedLog.append): one that grew past it (recompressed to
//     uncompressed, say) is refused with MESSAGE_TOO_LARGE.
//   - Recompression runs on the connection's reader goroutine, after the
//     batch and its records were validated and before offsets are
//     assigned, so pipelined produces keep their order.

// recompression is the broker's recompressor and what it has done.
type recompression struct {
	r     *batch.Recompressor
	stats RecompressionStats
}

// RecompressionStats count the batches the produce path recompressed and
// their bytes, before and after (metrics).
type RecompressionStats struct {
	Batches, BytesIn, BytesOut atomic.Int64
}

// Recompression returns the broker's recompression counters.
func (b *Broker) Recompression() *RecompressionStats { return &b.recompress.stats }

// recompressBatch rebuilds h in the topic's codec t if its codec differs,
// checking the result against maxMessageBytes as Kafka does. A failure
// comes back as the partition's Kafka error and a message.
func (b *Broker) recompressBatch(h *batch.Header, t batch.Target, maxMessageBytes int64) (*kerr.Error, string) {
	if h.Compression() == t.Codec {
		return nil, ""
	}
	from, before := h.Compression(), len(h.Raw)
	if err := b.recompress.r.Recompress(h, t); err != nil {
		if errors.Is(err, batch.ErrCorrupt) {
			return kerr.CorruptMessage, err.Error()
		}
		return kerr.UnknownServerError, fmt.Sprintf("recompressing a %s batch as %s: %v", batch.CodecName(from), batch.CodecName(t.Codec), err)
	}
	s := &b.recompress.stats
	s.Batches.Add(1)
	s.BytesIn.Add(int64(before))
	s.BytesOut.Add(int64(len(h.Raw)))
	if int64(len(h.Raw)) > maxMessageBytes {
		return kerr.MessageTooLarge, fmt.Sprintf("record batch of %d bytes (%d as the producer sent it, in %s) exceeds max.message.bytes=%d once recompressed as %s (compression.type)",
			len(h.Raw), before, batch.CodecName(from), maxMessageBytes, batch.CodecName(t.Codec))
	}
	return nil, ""
}
