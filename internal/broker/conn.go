package broker

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/kwire"
	"github.com/vigilhq/vigil/internal/quota"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// header is a parsed request header (v1, or v2 for flexible requests).
type header struct {
	key      int16
	version  int16
	corrID   int32
	clientID string
}

// pending is one request in flight on a connection. Responses are written
// in request order; respond may block (a produce waiting for the WAL, a
// fetch long-polling), which holds back only later responses of the same
// connection, as in Kafka.
type pending struct {
	hdr     header
	respond func() kmsg.Response // nil: no response (acks=0 produce)
	start   time.Time            // when the frame was read
	handled time.Duration        // time the reader took to decode and handle it
	// isRaw: raw is a bare SASL token answering a v0 exchange's token,
	// written with only its length in front.
	raw   []byte
	isRaw bool
	// lingerClose: the connection closes after this answer, and only
	// failedAuthDelay later (a failed authentication).
	lingerClose bool
}

// conn serves one client connection: a reader goroutine that decodes
// frames and runs the ordering-sensitive part of each request (a produce
// assigns its offsets here, so pipelined produces keep their order) and a
// writer goroutine that completes responses in order.
type conn struct {
	b        *Broker
	nc       net.Conn
	listener config.Listener
	log      *slog.Logger
	ctx      context.Context
	cancel   context.CancelFunc

	// Set by ApiVersions v3+ (KIP-511), for logs.
	softwareName, softwareVersion string

	// mutedUntil (Unix ns) is when the reader may read the next request of
	// a client over its quota (KIP-219: answer at once, then stop reading).
	mutedUntil atomic.Int64

	// auth is who the client is; only the reader goroutine uses it.
	auth authState
	// api is the name of the request being decoded, for denial reports.
	api string
	// quotaUser is the principal's name, for quotas metered on the writer
	// goroutine too (auth is the reader's alone).
	quotaUser atomic.Pointer[string]
	// closing, set while a request is handled, ends the connection once
	// that request's answer is written.
	closing error

	// catchingUp: the writer's last answer was read from segment objects,
	// so this connection is a replay's, and the writer serves its next
	// request at the lower catch-up priority. Only the writer uses it.
	catchingUp bool
}

// tlsHandshakeTimeout bounds a TLS handshake, so a client that connects
// and says nothing does not hold a goroutine for ever.
const tlsHandshakeTimeout = 10 * time.Second

// handshakeTLS completes the handshake before the first request, so the
// connection knows its client certificate's principal (an SSL listener's
// principal; on SASL_SSL, SASL names it instead).
func (c *conn) handshakeTLS(tc *tls.Conn) error {
	ctx, cancel := context.WithTimeout(c.ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 || c.listener.SASL() {
		return nil
	}
	p, err := c.b.sslMapper.FromCertificate(certs[0])
	if err != nil {
		return err
	}
	c.setPrincipal(p)
	c.log = c.log.With("principal", p)
	c.authEvent("SSL", true, "")
	return nil
}

// mute stops reading requests from this connection for d.
func (c *conn) mute(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := c.mutedUntil.Load()
		if cur >= until || c.mutedUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// maxInFlight bounds pipelined requests per connection, so a client that
// never reads its responses cannot make the broker buffer without limit.
const maxInFlight = 64

func (c *conn) serve() {
	defer c.nc.Close()
	defer c.cancel()
	if tc, ok := c.nc.(*tls.Conn); ok {
		if err := c.handshakeTLS(tc); err != nil {
			c.log.Warn("closing connection: TLS handshake failed", "err", err)
			c.authEvent("SSL", false, err.Error())
			return
		}
	}
	queue := make(chan pending, maxInFlight)
	writerDone := make(chan struct{})
	go c.writeLoop(queue, writerDone)
	err := c.readLoop(queue)
	// The client is gone (or broke the protocol): stop long polls now
	// rather than holding their goroutines until max wait expires.
	c.cancel()
	close(queue)
	<-writerDone
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.log.Debug("connection closed")
	default:
		c.log.Warn("closing connection", "err", err)
	}
}

func (c *conn) readLoop(queue chan<- pending) error {
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var sizeBuf [4]byte
	for {
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		minSize := int32(8) // a request header
		if c.auth.raw {
			minSize = 0 // a bare SASL token
		}
		if size < minSize || size > c.b.cfg.MaxRequestBytes {
			return fmt.Errorf("request frame of %d bytes is outside [8, %d] (socket.request.max.bytes)", size, c.b.cfg.MaxRequestBytes)
		}
		// A fresh buffer per frame: produced batches are kept by reference
		// in the partition logs, so the frame must not be reused.
		frame := make([]byte, size)
		if _, err := io.ReadFull(r, frame); err != nil {
			return fmt.Errorf("truncated request frame (wanted %d bytes): %w", size, err)
		}
		// A throttled client's next request waits here, after it was read:
		// a fetch's throttle is decided on the writer goroutine while this
		// one may already be reading the next frame.
		if d := time.Until(time.Unix(0, c.mutedUntil.Load())); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-c.ctx.Done():
				t.Stop()
				return c.ctx.Err()
			}
		}
		start := time.Now()
		var p pending
		var err error
		if c.auth.raw {
			p, err = c.rawToken(frame)
		} else {
			p, err = c.decode(frame)
		}
		if err != nil {
			return err
		}
		p.start = start
		if c.b.quotas.Enforces(quota.RequestPercentage) {
			p.handled = time.Since(start)
		}
		p.lingerClose = c.closing != nil
		c.b.countClient(p.hdr.clientID, 4+len(frame))
		select {
		case queue <- p:
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
		if c.closing != nil {
			return c.closing
		}
	}
}

// closeAfter ends the connection once the answer of the request being
// handled is written (and failedAuthDelay has passed).
func (c *conn) closeAfter(err error) {
	if c.closing == nil {
		c.closing = err
	}
}

// decode parses one frame and dispatches it. An error closes the
// connection: Kafka answers an unknown API or unsupported version (other
// than ApiVersions) and a malformed body by disconnecting.
func (c *conn) decode(frame []byte) (pending, error) {
	var h header
	h.key = int16(binary.BigEndian.Uint16(frame[0:]))
	h.version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.corrID = int32(binary.BigEndian.Uint32(frame[4:]))
	body := frame[8:]
	if len(body) < 2 {
		return pending{}, errors.New("request header truncated before client id")
	}
	idLen := int16(binary.BigEndian.Uint16(body))
	body = body[2:]
	if idLen > 0 {
		if int(idLen) > len(body) {
			return pending{}, errors.New("request header truncated in client id")
		}
		h.clientID = string(body[:idLen])
		body = body[idLen:]
	}
	req := kmsg.RequestForKey(h.key)
	if req == nil {
		return pending{}, fmt.Errorf("unknown API key %d (correlation id %d)", h.key, h.corrID)
	}
	api, ok := c.b.apis[h.key]
	if !ok || h.version < api.min || h.version > api.max {
		if h.key == kmsg.ApiVersions.Int16() {
			// KIP-511: answer UNSUPPORTED_VERSION in a v0 body listing what
			// we support, so the client can retry at a version we know.
			resp := c.b.unsupportedApiVersions()
			h.version = 0
			return pending{hdr: h, respond: func() kmsg.Response { return resp }}, nil
		}
		return pending{}, fmt.Errorf("unsupported %s version %d (correlation id %d)", kmsg.NameForKey(h.key), h.version, h.corrID)
	}
	if err := c.gate(h.key); err != nil {
		return pending{}, err
	}
	c.api = kmsg.NameForKey(h.key)
	req.SetVersion(h.version)
	if req.IsFlexible() {
		var err error
		if body, err = kwire.SkipTags(body); err != nil {
			return pending{}, fmt.Errorf("%s request header: %w", kmsg.NameForKey(h.key), err)
		}
	}
	if err := req.ReadFrom(body); err != nil {
		return pending{}, fmt.Errorf("malformed %s v%d request: %w", kmsg.NameForKey(h.key), h.version, err)
	}
	return pending{hdr: h, respond: api.handle(c, h, req)}, nil
}

// pooledResponse is a response whose records lie in pooled arrays (a
// fetch's): the writer sizes its buffer by them and gives them back once
// the response is encoded.
type pooledResponse interface {
	recordBytes() int
	fromObjects() bool // some records were read from segment objects
	releaseBuffers()
}

func (c *conn) writeLoop(queue <-chan pending, done chan<- struct{}) {
	defer close(done)
	w := bufio.NewWriterSize(c.nc, 64<<10)
	var buf []byte
	broken := false
	for p := range queue {
		if p.isRaw {
			if !broken {
				buf = binary.BigEndian.AppendUint32(buf[:0], uint32(len(p.raw)))
				buf = append(buf, p.raw...)
				if _, err := w.Write(buf); err != nil || w.Flush() != nil {
					broken = true
				}
			}
			if p.lingerClose {
				time.Sleep(c.b.failedAuthDelay)
			}
			continue
		}
		if p.respond == nil {
			c.b.obs.Request(kmsg.NameForKey(p.hdr.key), time.Since(p.start))
			continue
		}
		if broken {
			// Its work is done; the answer is discarded, and its pooled
			// arrays go back.
			if pooled, ok := p.respond().(pooledResponse); ok {
				pooled.releaseBuffers()
			}
			continue
		}
		if c.catchingUp && c.b.catchupPrio != nil {
			c.b.catchupPrio.Do(func() { buf, broken = c.answer(p, buf, w) })
		} else {
			buf, broken = c.answer(p, buf, w)
		}
		if p.lingerClose {
			time.Sleep(c.b.failedAuthDelay)
		}
	}
	if !broken {
		w.Flush()
	}
}

// answer builds p's response, encodes it into buf and writes it; it
// returns buf for reuse and whether the connection broke.
func (c *conn) answer(p pending, buf []byte, w *bufio.Writer) ([]byte, bool) {
	// Timed only while some client has a request_percentage quota: an
	// answer is built on every request.
	var began time.Time
	if c.b.quotas.Enforces(quota.RequestPercentage) {
		began = time.Now()
	}
	resp := p.respond()
	if resp == nil {
		return buf, false
	}
	if !began.IsZero() {
		c.meterRequest(p, resp, time.Since(began))
	}
	resp.SetVersion(p.hdr.version)
	buf = buf[:0]
	pooled, isPooled := resp.(pooledResponse)
	c.catchingUp = isPooled && pooled.fromObjects()
	if isPooled {
		// One allocation of about the right size, not a run of
		// doublings that each copy what is encoded so far.
		buf = slices.Grow(buf, pooled.recordBytes()+4096)
	}
	buf = append(buf, 0, 0, 0, 0)
	buf = binary.BigEndian.AppendUint32(buf, uint32(p.hdr.corrID))
	// ApiVersions always answers with a v0 response header, so a
	// client that does not know our versions can still read it.
	if resp.IsFlexible() && p.hdr.key != kmsg.ApiVersions.Int16() {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	if isPooled {
		pooled.releaseBuffers() // encoded: its pooled arrays are free
	}
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	_, err := w.Write(buf)
	c.b.countClient(p.hdr.clientID, len(buf))
	if err == nil {
		// At once, even with more requests queued: the next one may be
		// a produce waiting for the WAL, and a pipelining client (five
		// in flight) keeps the queue from ever draining, so holding
		// this response until it does delays it by whole group commits.
		err = w.Flush()
	}
	c.b.obs.Request(kmsg.NameForKey(p.hdr.key), time.Since(p.start))
	if err != nil {
		// Unblock the reader too; remaining responses are discarded.
		c.cancel()
		c.nc.Close()
		return buf, true
	}
	return buf, false
}
