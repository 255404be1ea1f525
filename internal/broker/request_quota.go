package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// meterRequest counts the time a request took to handle against its
// client's request_percentage (KIP-124) and, over the quota, sets the
// response's throttle time (the larger of it and a byte-rate throttle, as
// Kafka answers the larger) and mutes the connection for as long.
//
// What is counted, in place of Kafka's request-handler and network
// thread time: the reader's decoding and handling of the request, and the
// writer's building of its answer, except for a produce's (which waits for
// the WAL) and a fetch's (which long-polls): waiting is not work. Encoding
// and writing the answer are not counted.
func (c *conn) meterRequest(p pending, resp kmsg.Response, answered time.Duration) {
	if c.b.quotas == nil || requestQuotaExempt(p.hdr.key) {
		return
	}
	spent := p.handled
	switch p.hdr.key {
	case kmsg.Produce.Int16(), kmsg.Fetch.Int16():
	default:
		spent += answered
	}
	d := c.b.quotas.RecordRequestTime(c.user(), p.hdr.clientID, spent, time.Now())
	if d <= 0 {
		return
	}
	throttleFor(c, resp, d)
}

// throttleFor raises resp's ThrottleTimeMs to d if it is shorter (Kafka
// answers the largest of the quotas' throttles) and mutes the connection
// for d.
func throttleFor(c *conn, resp kmsg.Response, d time.Duration) {
	if tr, ok := resp.(interface {
		kmsg.ThrottleResponse
		kmsg.SetThrottleResponse
	}); ok {
		if ms := int32(d / time.Millisecond); ms > 0 {
			if cur, _ := tr.Throttle(); ms > cur {
				tr.SetThrottle(ms)
			}
		}
	}
	c.mute(d)
}

// requestQuotaExempt: the requests Kafka neither meters nor throttles for
// request_percentage: the SASL exchange (handled by Kafka's network layer,
// before any quota applies) and inter-broker cluster actions.
func requestQuotaExempt(key int16) bool {
	switch key {
	case kmsg.SASLHandshake.Int16(), kmsg.SASLAuthenticate.Int16(), kmsg.WriteTxnMarkers.Int16():
		return true
	}
	return false
}
