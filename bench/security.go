package bench

// The security comparison (`vigil bench produce --security-protocol
// SASL_SSL`, issue 18): what TLS and SASL cost the produce path, as the
// max-rate throughput over a secure listener relative to a PLAINTEXT
// listener of the same broker, measured in the same minutes.
//
//   - One in-process broker with two listeners: PLAINTEXT and the protocol
//     asked for (SSL, SASL_PLAINTEXT or SASL_SSL). TLS uses a throwaway CA
//     and server certificate (tls.go); SASL a user created through the
//     Kafka API (AlterUserScramCredentials) over PLAINTEXT, with only the
//     mechanism asked for enabled.
//   - The max-rate phase of Run ([b]) with the same producer settings
//     (newBenchProducer), over each listener in turn, in the paired method
//     of paired.go: Rounds pairs, the first of each pair alternating
//     (plain first in odd rounds, secure first in even ones), a fresh
//     topic per run on a settled, fsynced broker, medians, per-pair ratios
//     and the process's CPU per MB.
//   - Judged: secure / plain of the medians >= TargetSecureRatio. Not
//     judged with the WAL without fsync (NoWALSync), a diagnostic as in
//     Run.
//
// It needs the in-process broker: against --brokers it would need each
// broker's PLAINTEXT and secure listener, a user able to create users or
// one given, and the CA, which the flags do not carry; it is refused.

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/clientsec"
	"github.com/vigilhq/vigil/internal/config"
)

// Defaults and the target of the security comparison.
const (
	DefaultSASLMechanism = "SCRAM-SHA-512"
	TargetSecureRatio    = 0.85 // median secure MB/s >= TargetSecureRatio x median PLAINTEXT MB/s
)

// benchUser is the SASL user the comparison creates.
const benchUser = "vigil-bench"

// SecurityResult holds the figures of the security comparison.
type SecurityResult struct {
	Protocol  string // the secure listener's
	Mechanism string // SASL mechanism; "" for SSL
	TLS       string // the negotiated TLS version and cipher suite; "" without TLS
	Rounds    []SecurityRound

	PlainMedianMBps, SecureMedianMBps float64
	// The medians of the runs' process CPU per MB, in milliseconds; zero
	// where CPU time is not known.
	PlainMedianCPUPerMB, SecureMedianCPUPerMB float64
	Ratio                                     float64 // SecureMedianMBps / PlainMedianMBps
}

// SecurityRound is one pair of runs.
type SecurityRound struct {
	SecureFirst   bool
	Plain, Secure SecurityRun
	Ratio         float64 // Secure.MBps / Plain.MBps
}

// SecurityRun is one max-rate run over one listener.
type SecurityRun struct {
	Protocol string
	MaxRateRun
	// Handshake is a fresh client's first round trip over the listener:
	// dial, TLS handshake, ApiVersions, SASL exchange, Metadata. It is the
	// per-connection cost, outside the throughput.
	Handshake time.Duration
}

// Pass reports whether the target holds.
func (r *SecurityResult) Pass() bool { return r.Ratio >= TargetSecureRatio }

// checkSecurity validates the security options and reports whether they
// ask for the security comparison.
func checkSecurity(o Options) (bool, error) {
	switch strings.ToUpper(o.SecurityProtocol) {
	case "", config.Plaintext:
		if o.SASLMechanism != "" || o.Rounds != 0 {
			return false, errors.New("--sasl-mechanism and --rounds apply to --security-protocol SSL, SASL_PLAINTEXT or SASL_SSL")
		}
		return false, nil
	case config.SSL, config.SASLPlaintext, config.SASLSSL:
	default:
		return false, fmt.Errorf("--security-protocol %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", o.SecurityProtocol)
	}
	switch {
	case len(o.Brokers) > 0:
		return false, fmt.Errorf("--security-protocol %s runs against the in-process broker only: the comparison needs a PLAINTEXT and a %s listener of the same brokers, a SASL user and the CA their certificates chain to, which --brokers does not give; run it without --brokers",
			strings.ToUpper(o.SecurityProtocol), strings.ToUpper(o.SecurityProtocol))
	case o.PacedRate > 0:
		return false, errors.New("--paced-rate: the security comparison runs the max-rate phase only")
	case o.Rounds < 0:
		return false, errors.New("--rounds must be at least 1")
	}
	l := config.Listener{Protocol: strings.ToUpper(o.SecurityProtocol)}
	switch m := strings.ToUpper(o.SASLMechanism); {
	case !l.SASL() && m != "":
		return false, fmt.Errorf("--sasl-mechanism with --security-protocol %s, which does not use SASL", l.Protocol)
	case !l.SASL(), m == "", m == "PLAIN", m == "SCRAM-SHA-256", m == "SCRAM-SHA-512":
	default:
		return false, fmt.Errorf("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", o.SASLMechanism)
	}
	return true, nil
}

// runSecurity runs the security comparison of checked options.
func runSecurity(ctx context.Context, o Options, acks kgo.Acks, partitioner []kgo.Opt) (*Result, error) {
	listener := config.Listener{Protocol: strings.ToUpper(o.SecurityProtocol)}
	proto := listener.Protocol
	res := &SecurityResult{Protocol: proto}
	if listener.SASL() {
		res.Mechanism = cmp.Or(strings.ToUpper(o.SASLMechanism), DefaultSASLMechanism)
	}
	rounds := o.Rounds
	if rounds == 0 {
		rounds = DefaultRounds
	}
	out, log := outputs(o.Out, o.Logger)

	certDir, err := os.MkdirTemp("", "vigil-bench-tls-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(certDir)
	var certs benchCerts
	if listener.TLS() {
		if certs, err = writeBenchCerts(certDir); err != nil {
			return nil, fmt.Errorf("throwaway certificates: %w", err)
		}
	}
	bb, err := useBroker(ctx, nil, log, out, o.walConfig, func(c *config.Broker) {
		c.Listen = config.Plaintext + "://127.0.0.1:0," + proto + "://127.0.0.1:0"
		c.Advertised = ""
		c.Listeners = nil
		if listener.TLS() {
			c.Security.TLSCert, c.Security.TLSKey = certs.Cert, certs.Key
		}
		if listener.SASL() {
			c.Security.SASLMechanisms = res.Mechanism
		}
	})
	if err != nil {
		return nil, err
	}
	defer bb.stop()
	plainAddr := bb.srv.ListenerAddr(config.Plaintext).String()
	secureAddr := bb.srv.ListenerAddr(proto).String()

	admCl, err := kgo.NewClient(kgo.SeedBrokers(plainAddr))
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)

	// The secure client's options: the listener's protocol, as Vigil's
	// own commands pass it.
	sec := &clientsec.Config{Protocol: proto}
	if listener.TLS() {
		sec.CA = certs.CA
		if res.TLS, err = probeTLS(ctx, secureAddr, certs.CA); err != nil {
			return nil, err
		}
	}
	if listener.SASL() {
		pass, err := createBenchUser(ctx, adm)
		if err != nil {
			return nil, err
		}
		sec.Mechanism, sec.Username, sec.Password = res.Mechanism, benchUser, pass
	}
	secureOpts, err := sec.Opts()
	if err != nil {
		return nil, err
	}

	var secureDesc []string
	if res.TLS != "" {
		secureDesc = append(secureDesc, res.TLS+", a throwaway CA")
	}
	if res.Mechanism != "" {
		secureDesc = append(secureDesc, "SASL "+res.Mechanism+", user "+benchUser)
	}
	fmt.Fprintf(out, "listeners:     PLAINTEXT %s, %s %s (%s)\n", plainAddr, proto, secureAddr, strings.Join(secureDesc, "; "))
	fmt.Fprintf(out, "broker WAL:    %s\n", bb.walDesc)
	fmt.Fprintf(out, "settings:      duration %s per run, record %d B, %d partitions, acks=%s, linger %s, %d in flight/broker, no compression, %s partitioner\n",
		o.Duration, o.RecordBytes, o.Partitions, o.Acks, linger, maxInflight, partitionerName(o.Partitioner))
	fmt.Fprintf(out, "method:        the max-rate phase over each listener, %s, interleaved (the first of each pair alternates);\n", plural(rounds, "round"))
	fmt.Fprintf(out, "               a fresh topic per run, deleted after it; each run starts once the upload backlog has drained and the broker's files are fsynced\n")
	fmt.Fprintf(out, "               CPU is the process's, broker and client together, per MB produced\n")

	suffix := time.Now().Format("20060102-150405.000")
	run := func(round int, secure bool) (SecurityRun, error) {
		addr, opts, r := plainAddr, partitioner, SecurityRun{Protocol: config.Plaintext}
		if secure {
			addr, opts, r.Protocol = secureAddr, append(slices.Clone(partitioner), secureOpts...), proto
		}
		topic := fmt.Sprintf("vigil-bench-sec-%s-%d-%s", suffix, round, strings.ToLower(r.Protocol))
		drop, err := freshTopic(ctx, bb, adm, topic, o.Partitions)
		if err != nil {
			return r, err
		}
		defer drop()
		if r.Handshake, err = handshake(ctx, addr, opts); err != nil {
			return r, fmt.Errorf("%s: %w", r.Protocol, err)
		}
		cl, err := newBenchProducer(ctx, o, []string{addr}, topic, acks, atLeastOnce, opts...)
		if err != nil {
			return r, fmt.Errorf("%s: %w", r.Protocol, err)
		}
		defer cl.Close()
		r.MaxRateRun, err = timedRun(func() (*recorder, time.Duration, error) {
			return produceMax(ctx, cl, o.Duration, o.RecordBytes)
		})
		if err != nil {
			return r, fmt.Errorf("%s run: %w", r.Protocol, err)
		}
		return r, nil
	}

	fmt.Fprintf(out, "\n[a] max rate over PLAINTEXT and %s, interleaved\n", proto)
	rd := SecurityRound{}
	err = interleave(rounds, func(round int, secure bool, label string) error {
		r, err := run(round, secure)
		if err != nil {
			return err
		}
		if secure {
			rd.Secure = r
		} else {
			rd.Plain = r
		}
		printSecurityRun(out, label, r)
		return nil
	}, func(round int) {
		rd.SecureFirst = round%2 == 0
		rd.Ratio = rd.Secure.MBps / rd.Plain.MBps
		fmt.Fprintf(out, "    %8s  ratio %s / PLAINTEXT %.2f\n", "", proto, rd.Ratio)
		res.Rounds = append(res.Rounds, rd)
		rd = SecurityRound{}
	})
	if err != nil {
		return nil, err
	}

	var plain, secure []MaxRateRun
	for _, rd := range res.Rounds {
		plain = append(plain, rd.Plain.MaxRateRun)
		secure = append(secure, rd.Secure.MaxRateRun)
	}
	fmt.Fprintf(out, "\n[b] medians of %s each\n", plural(rounds, "run"))
	m := comparePairs(out, config.Plaintext, proto, "the broker's and the client's together", plain, secure)
	res.PlainMedianMBps, res.SecureMedianMBps = m.BaseMBps, m.CandMBps
	res.PlainMedianCPUPerMB, res.SecureMedianCPUPerMB = m.BaseCPUPerMB, m.CandCPUPerMB
	res.Ratio = m.Ratio

	fmt.Fprintf(out, "\ntargets\n")
	label := fmt.Sprintf("%s >= %.2f x PLAINTEXT:", proto, TargetSecureRatio)
	if o.NoWALSync {
		fmt.Fprintf(out, "    %-34s not judged  (WAL without fsync; ratio %.2f)\n", label, res.Ratio)
	} else {
		fmt.Fprintf(out, "    %-34s %s: ratio %.2f, target >= %.2f\n", label, passFail(res.Pass()), res.Ratio, TargetSecureRatio)
	}
	return &Result{Security: res}, nil
}

func printSecurityRun(out io.Writer, label string, r SecurityRun) {
	printRun(out, label, r.Protocol, r.MaxRateRun, "  handshake "+fmtDur(r.Handshake))
}

// createBenchUser creates benchUser with a random password, with both
// SCRAM mechanisms' credentials (PLAIN checks the password against them),
// and returns the password.
func createBenchUser(ctx context.Context, adm *kadm.Client) (string, error) {
	raw := make([]byte, 18)
	rand.Read(raw)
	pass := hex.EncodeToString(raw)
	var ups []kadm.UpsertSCRAM
	for _, m := range []kadm.ScramMechanism{kadm.ScramSha256, kadm.ScramSha512} {
		ups = append(ups, kadm.UpsertSCRAM{User: benchUser, Mechanism: m, Iterations: 4096, Password: pass})
	}
	res, err := adm.AlterUserSCRAMs(ctx, nil, ups)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return "", fmt.Errorf("create SASL user %s: %w", benchUser, err)
	}
	return pass, nil
}

// handshake times a fresh client's first request over a listener.
func handshake(ctx context.Context, addr string, opts []kgo.Opt) (time.Duration, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	start := time.Now()
	if err := cl.Ping(ctx); err != nil {
		return 0, fmt.Errorf("first request: %w", err)
	}
	return time.Since(start), nil
}

// probeTLS completes one TLS handshake with the listener and names what
// was negotiated, for the output.
func probeTLS(ctx context.Context, addr, caFile string) (string, error) {
	raw, err := os.ReadFile(caFile)
	if err != nil {
		return "", err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(raw)
	d := tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	defer c.Close()
	st := c.(*tls.Conn).ConnectionState()
	return tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite), nil
}
