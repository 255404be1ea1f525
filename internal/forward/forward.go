// Package forward is the broker-to-broker link: a broker that answers a
// client for a partition another broker leads (zone-aware routing) sends
// the request on to the leader over it.
//
// There is one TCP connection per peer broker, dialed lazily by that
// peer's writer goroutine. Requests are written in the order they are
// submitted and Kafka answers a connection's requests in order, so
// pipelined produces of one client connection reach the leader, and are
// answered, in their order (idempotent producers depend on it). Requests
// and responses are encoded with kmsg.
package forward

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/kwire"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrClosed is returned for calls submitted after Close or pending at it.
var ErrClosed = errors.New("forward: closed")

// Config configures a Pool.
type Config struct {
	// ClientID is sent in every forwarded request. It must not name a
	// zone, so that the leader never forwards a forwarded request again.
	ClientID string
	// DialTimeout bounds a connection attempt (default 3 s).
	DialTimeout time.Duration
	// Dial, if set, connects to a peer and passes its listener's security
	// protocol (TLS, SASL) before requests are sent; the default dials
	// plain TCP to addr.
	Dial func(ctx context.Context, id int32, addr string) (net.Conn, error)
	// Bytes, if set, is told of every frame written to or read from a
	// peer, with its size including the 4-byte length.
	Bytes func(peer int32, n int)
	// MaxQueued bounds the requests waiting to be written to one peer
	// (default 1024); beyond it Submit fails at once instead of blocking
	// the client connection's reader.
	MaxQueued int
}

// Pool holds the links to every peer.
type Pool struct {
	cfg Config
	fmt *kmsg.RequestFormatter

	mu     sync.Mutex
	closed bool
	peers  map[int32]*peer
	wg     sync.WaitGroup
}

// New builds a pool; links are dialed when first used.
func New(cfg Config) *Pool {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 3 * time.Second
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = 1024
	}
	if cfg.Dial == nil {
		cfg.Dial = func(ctx context.Context, _ int32, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	return &Pool{cfg: cfg, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID(cfg.ClientID)), peers: map[int32]*peer{}}
}

// Call is one submitted request.
type Call struct {
	req  kmsg.Request
	done chan struct{}
	resp kmsg.Response
	err  error
	p    *peer
	// noResp: an acks=0 produce, which Kafka never answers.
	noResp bool
}

func (c *Call) finish(resp kmsg.Response, err error) {
	c.resp, c.err = resp, err
	close(c.done)
}

// Wait returns the response, or an error once the link failed or ctx
// ended. A call that times out closes its link: answers come in order,
// so every later call on it would wait behind the stuck one anyway.
func (c *Call) Wait(ctx context.Context) (kmsg.Response, error) {
	select {
	case <-c.done:
		return c.resp, c.err
	default:
	}
	select {
	case <-c.done:
		return c.resp, c.err
	case <-ctx.Done():
		err := fmt.Errorf("forward: no answer from broker %d: %w", c.p.id, ctx.Err())
		c.p.breakLink(c, err)
		return nil, err
	}
}

// Submit queues req (its version set) for the broker id at addr and
// returns at once. The request is written after every request submitted
// earlier for the same peer. An acks=0 produce completes when written.
func (p *Pool) Submit(id int32, addr string, req kmsg.Request) *Call {
	c := &Call{req: req, done: make(chan struct{})}
	if pr, ok := req.(*kmsg.ProduceRequest); ok && pr.Acks == 0 {
		c.noResp = true
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.finish(nil, ErrClosed)
		return c
	}
	pe := p.peers[id]
	if pe == nil || pe.addr != addr {
		if pe != nil {
			// The peer moved (restarted elsewhere): retire the old link
			// once its queue is written.
			close(pe.queue)
		}
		pe = &peer{pool: p, id: id, addr: addr, queue: make(chan *Call, p.cfg.MaxQueued)}
		p.peers[id] = pe
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			pe.writeLoop()
		}()
	}
	c.p = pe
	select {
	case pe.queue <- c:
		p.mu.Unlock()
	default:
		p.mu.Unlock()
		c.finish(nil, fmt.Errorf("forward: %d requests already queued for broker %d", p.cfg.MaxQueued, id))
	}
	return c
}

// Close fails every pending call, closes every link and waits for their
// goroutines.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for _, pe := range p.peers {
		close(pe.queue)
		pe.breakLink(nil, ErrClosed)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// peer is the link to one broker.
type peer struct {
	pool  *Pool
	id    int32
	addr  string
	queue chan *Call // closed when the peer is retired or the pool closes

	mu       sync.Mutex
	nc       net.Conn // nil: not connected
	inflight []inflight
	corrID   int32
	dead     bool // closed pool: fail instead of dialing
}

type inflight struct {
	corrID int32
	call   *Call
}

// writeLoop writes queued calls in order, dialing when not connected.
func (pe *peer) writeLoop() {
	var buf []byte
	for c := range pe.queue {
		nc, err := pe.connect()
		if err != nil {
			c.finish(nil, err)
			continue
		}
		pe.mu.Lock()
		if pe.nc != nc {
			// The link broke between connect and here.
			pe.mu.Unlock()
			c.finish(nil, fmt.Errorf("forward: link to broker %d broke", pe.id))
			continue
		}
		pe.corrID++
		corr := pe.corrID
		if !c.noResp {
			pe.inflight = append(pe.inflight, inflight{corr, c})
		}
		pe.mu.Unlock()
		buf = pe.pool.fmt.AppendRequest(buf[:0], c.req, corr)
		_, err = nc.Write(buf)
		if pe.pool.cfg.Bytes != nil && err == nil {
			pe.pool.cfg.Bytes(pe.id, len(buf))
		}
		if err != nil {
			pe.breakConn(nc, fmt.Errorf("forward: write to broker %d: %w", pe.id, err))
			if c.noResp {
				c.finish(nil, err)
			}
			continue
		}
		if c.noResp {
			c.finish(nil, nil)
		}
	}
	pe.breakLink(nil, ErrClosed)
}

// connect returns the live connection, dialing one (and starting its
// reader) if there is none.
func (pe *peer) connect() (net.Conn, error) {
	pe.mu.Lock()
	nc, dead := pe.nc, pe.dead
	pe.mu.Unlock()
	if dead {
		return nil, ErrClosed
	}
	if nc != nil {
		return nc, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pe.pool.cfg.DialTimeout)
	nc, err := pe.pool.cfg.Dial(ctx, pe.id, pe.addr)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("forward: dial broker %d at %s: %w", pe.id, pe.addr, err)
	}
	pe.mu.Lock()
	if pe.dead {
		pe.mu.Unlock()
		nc.Close()
		return nil, ErrClosed
	}
	pe.nc = nc
	pe.mu.Unlock()
	pe.pool.wg.Add(1)
	go func() {
		defer pe.pool.wg.Done()
		pe.readLoop(nc)
	}()
	return nc, nil
}

// breakLink closes the current connection, failing its calls with err;
// with a call, only if that call is still waiting on it. ErrClosed also
// stops future dials.
func (pe *peer) breakLink(c *Call, err error) {
	pe.mu.Lock()
	if errors.Is(err, ErrClosed) {
		pe.dead = true
	}
	if c != nil {
		found := false
		for _, f := range pe.inflight {
			if f.call == c {
				found = true
				break
			}
		}
		if !found {
			pe.mu.Unlock()
			// Not written yet (its writer is dialing) or already
			// answered: wait for the writer to settle it.
			go func() {
				select {
				case <-c.done:
				case <-time.After(pe.pool.cfg.DialTimeout + time.Second):
					pe.breakLink(nil, err)
				}
			}()
			return
		}
	}
	nc := pe.nc
	pe.mu.Unlock()
	if nc != nil {
		pe.breakConn(nc, err)
	}
}

// breakConn closes nc if it is still current and fails its in-flight
// calls.
func (pe *peer) breakConn(nc net.Conn, err error) {
	pe.mu.Lock()
	if pe.nc != nc {
		pe.mu.Unlock()
		return
	}
	pe.nc = nil
	failed := pe.inflight
	pe.inflight = nil
	pe.mu.Unlock()
	nc.Close()
	for _, f := range failed {
		f.call.finish(nil, err)
	}
}

// readLoop reads responses of nc in order and completes their calls.
func (pe *peer) readLoop(nc net.Conn) {
	r := bufio.NewReaderSize(nc, 64<<10)
	var sizeBuf [4]byte
	for {
		err := func() error {
			if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
				return err
			}
			size := binary.BigEndian.Uint32(sizeBuf[:])
			if size < 4 || size > 1<<30 {
				return fmt.Errorf("response frame of %d bytes", size)
			}
			frame := make([]byte, size)
			if _, err := io.ReadFull(r, frame); err != nil {
				return err
			}
			if pe.pool.cfg.Bytes != nil {
				pe.pool.cfg.Bytes(pe.id, int(size)+4)
			}
			corr := int32(binary.BigEndian.Uint32(frame))
			pe.mu.Lock()
			if pe.nc != nc || len(pe.inflight) == 0 || pe.inflight[0].corrID != corr {
				pe.mu.Unlock()
				return fmt.Errorf("unexpected response with correlation id %d", corr)
			}
			c := pe.inflight[0].call
			pe.inflight = pe.inflight[1:]
			pe.mu.Unlock()
			resp := c.req.ResponseKind()
			resp.SetVersion(c.req.GetVersion())
			body := frame[4:]
			if resp.IsFlexible() {
				// The v1 response header's tagged fields (never
				// ApiVersions here, whose header stays v0).
				var err error
				if body, err = kwire.SkipTags(body); err != nil {
					err = fmt.Errorf("forward: response header: %w", err)
					c.finish(nil, err)
					return err
				}
			}
			if err := resp.ReadFrom(body); err != nil {
				err = fmt.Errorf("forward: malformed %s response from broker %d: %w", kmsg.NameForKey(c.req.Key()), pe.id, err)
				c.finish(nil, err)
				return err
			}
			c.finish(resp, nil)
			return nil
		}()
		if err != nil {
			pe.breakConn(nc, fmt.Errorf("forward: read from broker %d: %w", pe.id, err))
			return
		}
	}
}
