// Package ingest is `vigil ingest`: syslog (TCP, UDP, optionally TLS) and
// HTTP (JSON/NDJSON, Splunk HEC) listeners that parse telemetry into OCSF
// events (internal/parse) and produce them with franz-go, one topic per
// OCSF class, within a bounded memory budget.
package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/certs"
	"github.com/vigilhq/vigil/internal/ocsf"
	"github.com/vigilhq/vigil/internal/parse"
)

// Config configures the ingest service. Empty listener addresses disable
// that listener.
type Config struct {
	Brokers   []string
	SyslogTCP string
	SyslogUDP string
	HTTP      string
	// SyslogTLSCert and SyslogTLSKey, when both set, make the TCP syslog
	// listener speak TLS (RFC 5425 uses octet counting over TLS).
	SyslogTLSCert string
	SyslogTLSKey  string
	// SyslogFraming is how the TCP listener splits messages (default
	// auto; see Framing).
	SyslogFraming Framing
	// Files are log files to read (file.go); Follow keeps reading the
	// lines appended to them.
	Files  []string
	Follow bool
	// Topics maps class_uid to topic; classes missing take ocsf's default.
	Topics     map[int]string
	DeadLetter string
	// MemoryBudget bounds accepted bytes not yet acknowledged by the broker.
	MemoryBudget int64
	// MaxMessageBytes is the largest syslog message; longer ones are
	// dead-lettered (truncated).
	MaxMessageBytes int
	// MaxBodyBytes is the largest HTTP body (413 beyond).
	MaxBodyBytes int64
	// HTTPToken, if set, is the bearer token POST /v1/events requires
	// ("Authorization: Bearer TOKEN"); HTTPTLSCert/HTTPTLSKey serve the
	// HTTP listener over TLS, and HTTPClientCA requires client
	// certificates signed by it (mTLS). A listener on a non-loopback
	// address needs one of the two, or HTTPInsecure.
	HTTPToken               string
	HTTPTLSCert, HTTPTLSKey string
	HTTPClientCA            string
	HTTPInsecure            bool
	// ClientOpts are extra franz-go options of the producer (TLS, SASL).
	ClientOpts []kgo.Opt
	// HECToken is the token /services/collector requires; empty disables
	// the HEC endpoint.
	HECToken string
	// RetryAfter is what a 503 tells clients to wait.
	RetryAfter time.Duration
	// ShutdownTimeout bounds how long Close waits for the broker to take
	// what is buffered.
	ShutdownTimeout time.Duration
}

// DefaultConfig returns the defaults `vigil ingest` starts from.
func DefaultConfig() Config {
	return Config{
		Brokers:         []string{"127.0.0.1:9092"},
		DeadLetter:      "ingest.deadletter",
		MemoryBudget:    64 << 20,
		MaxMessageBytes: 64 << 10,
		MaxBodyBytes:    8 << 20,
		RetryAfter:      time.Second,
		SyslogFraming:   FramingAuto,
		ShutdownTimeout: 30 * time.Second,
	}
}

// Service is a running ingest service.
type Service struct {
	cfg     Config
	log     *slog.Logger
	parsers *parse.Parsers
	cl      *kgo.Client
	budget  *Budget
	stats   *Stats
	pub     *publisher
	audit   *auditGrouper

	ctx    context.Context
	cancel context.CancelFunc

	tcpLn   net.Listener
	tlsCert *certs.Reloader // nil without --syslog-tls-cert
	udpConn *net.UDPConn
	httpLn  net.Listener
	httpSrv *http.Server

	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	filesDone chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Start opens the listeners and the producer. The topics are created if
// the broker is reachable; otherwise the broker's auto-creation makes them
// later.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Service, error) {
	def := DefaultConfig()
	if cfg.MemoryBudget <= 0 {
		cfg.MemoryBudget = def.MemoryBudget
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = def.MaxMessageBytes
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = def.MaxBodyBytes
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = def.RetryAfter
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = def.ShutdownTimeout
	}
	if cfg.DeadLetter == "" {
		cfg.DeadLetter = def.DeadLetter
	}
	if cfg.SyslogFraming == "" {
		cfg.SyslogFraming = FramingAuto
	}
	if _, err := ParseFraming(string(cfg.SyslogFraming)); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	topics := map[int]string{}
	for _, c := range ocsf.Classes() {
		topics[c.UID] = c.Topic
	}
	for uid, t := range cfg.Topics {
		topics[uid] = t
	}
	cfg.Topics = topics

	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.AllowAutoTopicCreation(),
		// The memory budget is the bound; kgo's own record cap must not
		// block Produce first (a Produce called from a promise would then
		// deadlock).
		kgo.MaxBufferedRecords(1 << 22),
		kgo.ProducerLinger(5 * time.Millisecond),
		// Key = host: the default partitioner hashes keys, so one host's
		// events keep their order in one partition.
	}, cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("ingest: producer: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Service{
		cfg: cfg, log: log, parsers: parse.New(), cl: cl,
		budget: NewBudget(cfg.MemoryBudget), stats: &Stats{},
		ctx: sctx, cancel: cancel, conns: map[net.Conn]struct{}{},
	}
	s.pub = &publisher{cl: cl, topics: topics, dlq: cfg.DeadLetter, budget: s.budget, stats: s.stats, log: log,
		// Never canceled: kgo fails buffered records whose context ends,
		// and accepted records must survive shutdown until Flush.
		ctx: context.WithoutCancel(ctx), now: time.Now}
	s.audit = newAuditGrouper(s.parsers, time.Second)
	s.ensureTopics(ctx)
	if err := s.listen(); err != nil {
		s.closeListeners()
		cl.Close()
		cancel()
		return nil, err
	}
	return s, nil
}

// ensureTopics creates the class and dead-letter topics with the broker's
// defaults, so the first events do not race topic auto-creation.
func (s *Service) ensureTopics(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	names := []string{s.cfg.DeadLetter}
	for _, t := range s.cfg.Topics {
		names = append(names, t)
	}
	resp, err := kadm.NewClient(s.cl).CreateTopics(ctx, -1, -1, nil, names...)
	if err != nil {
		s.log.Warn("could not create topics now; relying on broker auto-creation", "err", err)
		return
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			s.log.Warn("create topic", "topic", r.Topic, "err", r.Err)
		}
	}
}

// flushAudit publishes audit groups that waited long enough for more
// records.
func (s *Service) flushAudit() {
	defer s.wg.Done()
	t := time.NewTicker(s.audit.maxAge / 4)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			results, origins := s.audit.expired(now, false)
			for i := range results {
				if err := s.pub.publish(s.ctx, results[i], origins[i], true); err != nil {
					s.stats.Lost.Add(int64(len(results[i])))
				}
			}
		}
	}
}

// Reload is what SIGHUP does to a running service: it rereads the syslog
// TLS certificate now (it is also reread on a handshake a second after a
// change). Everything else is fixed at start and logged as such.
func (s *Service) Reload() {
	if s.tlsCert == nil {
		s.log.Info("reload: nothing to reload (no TLS certificate); listeners, topics and limits change only with a restart")
		return
	}
	changed, err := s.tlsCert.Reload()
	switch {
	case err != nil:
		s.log.Error("reload: syslog TLS certificate not reloaded; serving the previous one", "err", err)
	case changed:
		s.log.Info("reload: syslog TLS certificate reloaded", "cert", s.cfg.SyslogTLSCert)
	default:
		s.log.Info("reload: syslog TLS certificate unchanged", "cert", s.cfg.SyslogTLSCert)
	}
}

func (s *Service) listen() error {
	s.wg.Add(1)
	go s.flushAudit()
	if s.cfg.SyslogTCP != "" {
		ln, err := net.Listen("tcp", s.cfg.SyslogTCP)
		if err != nil {
			return fmt.Errorf("ingest: syslog tcp listener: %w", err)
		}
		if s.cfg.SyslogTLSCert != "" || s.cfg.SyslogTLSKey != "" {
			cert, err := certs.New(s.cfg.SyslogTLSCert, s.cfg.SyslogTLSKey, certs.Options{
				OnError: func(err error) {
					s.log.Error("syslog TLS certificate not reloaded; serving the previous one", "err", err)
				},
			})
			if err != nil {
				ln.Close()
				return fmt.Errorf("ingest: syslog tls: %w", err)
			}
			s.tlsCert = cert
			ln = tls.NewListener(ln, &tls.Config{GetCertificate: cert.GetCertificate, MinVersion: tls.VersionTLS12})
		}
		s.tcpLn = ln
		s.wg.Add(1)
		go s.serveSyslogTCP(ln)
	}
	if s.cfg.SyslogUDP != "" {
		addr, err := net.ResolveUDPAddr("udp", s.cfg.SyslogUDP)
		if err != nil {
			return fmt.Errorf("ingest: syslog udp address: %w", err)
		}
		c, err := net.ListenUDP("udp", addr)
		if err != nil {
			return fmt.Errorf("ingest: syslog udp listener: %w", err)
		}
		// A larger socket buffer absorbs bursts the kernel would otherwise
		// drop before we can count them.
		_ = c.SetReadBuffer(4 << 20)
		s.udpConn = c
		s.wg.Add(1)
		go s.serveSyslogUDP(c)
	}
	if s.cfg.HTTP != "" {
		ln, err := net.Listen("tcp", s.cfg.HTTP)
		if err != nil {
			return fmt.Errorf("ingest: http listener: %w", err)
		}
		if ln, err = s.guardHTTP(ln); err != nil {
			return err
		}
		s.httpLn = ln
		s.httpSrv = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http listener failed", "err", err)
			}
		}()
	}
	return s.startFiles()
}

// SyslogTCPAddr, SyslogUDPAddr and HTTPAddr return the bound addresses
// (nil when the listener is off).
func (s *Service) SyslogTCPAddr() net.Addr {
	if s.tcpLn == nil {
		return nil
	}
	return s.tcpLn.Addr()
}

func (s *Service) SyslogUDPAddr() net.Addr {
	if s.udpConn == nil {
		return nil
	}
	return s.udpConn.LocalAddr()
}

func (s *Service) HTTPAddr() net.Addr {
	if s.httpLn == nil {
		return nil
	}
	return s.httpLn.Addr()
}

// Stats returns the live counters.
func (s *Service) Stats() *Stats { return s.stats }

func (s *Service) closeListeners() {
	if s.tcpLn != nil {
		s.tcpLn.Close()
	}
	if s.udpConn != nil {
		s.udpConn.Close()
	}
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.httpSrv.Shutdown(ctx)
	} else if s.httpLn != nil {
		s.httpLn.Close()
	}
}

// Close stops accepting input, waits up to ShutdownTimeout for the broker
// to acknowledge what was accepted, then closes the producer. It returns an
// error when accepted input could not be written.
func (s *Service) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Service) close() error {
	s.closeListeners()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	// Wakes TCP readers waiting for budget; what they had read but not
	// reserved is counted as refused.
	s.cancel()
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	// Audit records still waiting for the rest of their event were
	// accepted: publish what there is.
	results, origins := s.audit.expired(time.Now(), true)
	for i := range results {
		if err := s.pub.publish(ctx, results[i], origins[i], true); err != nil {
			s.stats.Lost.Add(int64(len(results[i])))
		}
	}
	flushErr := s.cl.Flush(ctx)
	s.cl.Close() // fails what is still buffered; promises count it as lost
	snap := s.stats.Snapshot()
	s.log.Info("ingest stopped", "stats", snap)
	if flushErr != nil {
		return fmt.Errorf("ingest: flush at shutdown: %w (lost %d)", flushErr, s.stats.Lost.Load())
	}
	return nil
}
