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
//     (newBenchProducer), over each listener in turn: Rounds pairs, the
//     first of each pair alternating (plain first in odd rounds, secure
//     first in even ones), so a drift of the shared machine during the
//     invocation falls on both sides alike.
//   - Every run gets a fresh topic, created before it and deleted after it,
//     and starts once the broker's upload backlog has drained and its files
//     are fsynced: each run starts from the same state (empty partitions,
//     nothing of the previous run left to upload or to write back from the
//     page cache) and the disk does not fill up over the rounds. Reusing
//     one topic would make later runs append to a longer log than earlier
//     ones, a difference the interleaving would mostly, but not exactly,
//     cancel.
//   - Judged: secure / plain of the medians >= TargetSecureRatio. Each
//     pair's ratio is printed too, for the spread. Not judged with the WAL
//     without fsync (NoWALSync), a diagnostic as in Run.
//   - CPU: the process's CPU time per MB produced, per run. The broker and
//     the client share the process, so it is their sum; a CPU profile of a
//     run (the admin listener's /debug/pprof/profile) splits it.
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
	"io/fs"
	"os"
	"path/filepath"
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
	DefaultRounds        = 5
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
	Protocol   string
	MBps       float64
	RecsPerSec float64
	Acked      int // records acknowledged
	Errors     int64
	FirstError error
	Latency    Latencies
	Elapsed    time.Duration // first record sent to last acknowledgement
	CPU        time.Duration // the process's (broker and client) during the run
	// Handshake is a fresh client's first round trip over the listener:
	// dial, TLS handshake, ApiVersions, SASL exchange, Metadata. It is the
	// per-connection cost, outside the throughput.
	Handshake time.Duration
}

// CPUPerMB is the process's CPU milliseconds per MB produced (0: unknown).
func (r SecurityRun) CPUPerMB() float64 {
	if r.CPU <= 0 || r.MBps <= 0 {
		return 0
	}
	return r.CPU.Seconds() * 1000 / (r.MBps * r.Elapsed.Seconds())
}

// Cores is the CPU the process used during the run, in cores.
func (r SecurityRun) Cores() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return r.CPU.Seconds() / r.Elapsed.Seconds()
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
		if _, err := bb.settle(ctx); err != nil {
			return r, err
		}
		if err := syncTree(bb.dataDir); err != nil {
			return r, err
		}
		resp, err := adm.CreateTopic(ctx, int32(o.Partitions), 1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return r, fmt.Errorf("create topic %s: %w", topic, err)
		}
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			adm.DeleteTopics(dctx, topic)
		}()
		if r.Handshake, err = handshake(ctx, addr, opts); err != nil {
			return r, fmt.Errorf("%s: %w", r.Protocol, err)
		}
		cl, err := newBenchProducer(ctx, o, []string{addr}, topic, acks, opts...)
		if err != nil {
			return r, fmt.Errorf("%s: %w", r.Protocol, err)
		}
		cpu0 := cpuTime()
		rec, elapsed, err := produceMax(ctx, cl, o.Duration, o.RecordBytes)
		if cpu1 := cpuTime(); cpu0 > 0 {
			r.CPU = cpu1 - cpu0
		}
		cl.Close()
		if err != nil {
			return r, fmt.Errorf("%s: %w", r.Protocol, err)
		}
		r.Acked, r.Errors, r.FirstError = len(rec.samples), rec.errs, rec.firstEr
		if r.Acked == 0 {
			return r, fmt.Errorf("%s run: no record acknowledged (first error: %v)", r.Protocol, rec.firstEr)
		}
		r.Latency = summarize(rec.samples)
		r.Elapsed = elapsed
		r.MBps = float64(rec.bytes) / elapsed.Seconds() / 1e6
		r.RecsPerSec = float64(r.Acked) / elapsed.Seconds()
		return r, nil
	}

	fmt.Fprintf(out, "\n[a] max rate over PLAINTEXT and %s, interleaved\n", proto)
	for i := range rounds {
		rd := SecurityRound{SecureFirst: i%2 == 1}
		for j, secure := range []bool{rd.SecureFirst, !rd.SecureFirst} {
			r, err := run(i+1, secure)
			if err != nil {
				return nil, err
			}
			if secure {
				rd.Secure = r
			} else {
				rd.Plain = r
			}
			label := "        "
			if j == 0 {
				label = fmt.Sprintf("round %-2d", i+1)
			}
			printSecurityRun(out, label, r)
		}
		rd.Ratio = rd.Secure.MBps / rd.Plain.MBps
		fmt.Fprintf(out, "    %8s  ratio %s / PLAINTEXT %.2f\n", "", proto, rd.Ratio)
		res.Rounds = append(res.Rounds, rd)
	}

	var plainMBps, secureMBps, plainCPU, secureCPU, pairs []float64
	for _, rd := range res.Rounds {
		plainMBps = append(plainMBps, rd.Plain.MBps)
		secureMBps = append(secureMBps, rd.Secure.MBps)
		plainCPU = append(plainCPU, rd.Plain.CPUPerMB())
		secureCPU = append(secureCPU, rd.Secure.CPUPerMB())
		pairs = append(pairs, rd.Ratio)
	}
	res.PlainMedianMBps, res.SecureMedianMBps = median(plainMBps), median(secureMBps)
	res.PlainMedianCPUPerMB, res.SecureMedianCPUPerMB = median(plainCPU), median(secureCPU)
	res.Ratio = res.SecureMedianMBps / res.PlainMedianMBps

	fmt.Fprintf(out, "\n[b] medians of %s each\n", plural(rounds, "run"))
	fmt.Fprintf(out, "    %-16s  %6.1f MB/s  (runs %s; CPU %s)\n", config.Plaintext+":", res.PlainMedianMBps, fmtMBps1(plainMBps), fmtCPUPerMB(res.PlainMedianCPUPerMB))
	fmt.Fprintf(out, "    %-16s  %6.1f MB/s  (runs %s; CPU %s)\n", proto+":", res.SecureMedianMBps, fmtMBps1(secureMBps), fmtCPUPerMB(res.SecureMedianCPUPerMB))
	slices.Sort(pairs)
	fmt.Fprintf(out, "    ratio of medians:  %.2f  (pairs %.2f to %.2f, median %.2f)\n", res.Ratio, pairs[0], pairs[len(pairs)-1], median(pairs))
	if res.PlainMedianCPUPerMB > 0 {
		d := res.SecureMedianCPUPerMB - res.PlainMedianCPUPerMB
		fmt.Fprintf(out, "    CPU per MB:        %s %+.2f ms/MB (%+.0f%%) over PLAINTEXT, the broker's and the client's together\n",
			proto, d, 100*d/res.PlainMedianCPUPerMB)
	}

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
	fmt.Fprintf(out, "    %s  %-14s %6.1f MB/s  %7.0f records/s  p99 %10s  CPU %s  %.2f cores  handshake %s",
		label, r.Protocol, r.MBps, r.RecsPerSec, fmtDur(r.Latency.P99), fmtCPUPerMB(r.CPUPerMB()), r.Cores(), fmtDur(r.Handshake))
	if r.Errors > 0 {
		fmt.Fprintf(out, "  errors %d (first: %v)", r.Errors, r.FirstError)
	}
	fmt.Fprintln(out)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func fmtCPUPerMB(v float64) string {
	if v <= 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.2f ms/MB", v)
}

func fmtMBps1(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(parts, ", ")
}

// median of v (the mean of the middle two for an even count); 0 if empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
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

// syncTree fsyncs every file under dir, so that the next run does not
// share the disk with the write-back of the previous runs' dirty pages.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil // a file removed meanwhile (an upload's WAL file, a deleted topic's object)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		return f.Sync()
	})
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
