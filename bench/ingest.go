package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/ingest"
	"github.com/vigilhq/vigil/internal/ocsf"
	"github.com/vigilhq/vigil/internal/parse"
)

// IngestOptions configures `vigil bench ingest`.
type IngestOptions struct {
	Brokers  []string      // empty: start an in-process broker on a temp dir
	Duration time.Duration // of each ingest phase
	Conns    int           // syslog TCP connections, and concurrent HTTP clients
	Batch    int           // events per HTTP POST
	Logger   *slog.Logger
	Out      io.Writer
}

// IngestRate is one measured run: Count events acknowledged by the broker
// over Elapsed (first send to last acknowledgement) and CPU (the whole
// process's user+system time over the same interval).
type IngestRate struct {
	Count       int64
	Elapsed     time.Duration
	CPU         time.Duration
	PerSec      float64
	PerCore     float64 // per CPU-second of the process (WallPerCore if unknown)
	WallPerCore float64 // PerSec / GOMAXPROCS
}

func newRate(n int64, elapsed, cpu time.Duration, cores int) IngestRate {
	r := IngestRate{Count: n, Elapsed: elapsed, CPU: cpu}
	if elapsed > 0 {
		r.PerSec = float64(n) / elapsed.Seconds()
	}
	r.WallPerCore = r.PerSec / float64(cores)
	r.PerCore = r.WallPerCore
	if cpu > 0 {
		r.PerCore = float64(n) / cpu.Seconds()
	}
	return r
}

// IngestPhase is one input path through the ingest service, and the raw
// produce of the same records beside it.
type IngestPhase struct {
	Name string
	// Sent is events the clients sent (syslog lines, or events in accepted
	// POSTs); Ingest.Count those the broker acknowledged.
	Sent         int64
	Ingest       IngestRate
	DeadLettered int64
	Lost         int64
	Refused      int64 // syslog: budget waits that failed; HTTP: 503s (resent)
	// Baseline is franz-go producing the same number of pre-built OCSF
	// records (the same values, keys, headers and topics), with the ingest
	// producer's settings.
	Baseline       IngestRate
	BaselineErrors int64
	ValueBytes     float64 // mean OCSF record value size
	Ratio          float64 // Ingest.PerCore / Baseline.PerCore
	WallRatio      float64 // Ingest.PerSec / Baseline.PerSec
}

// IngestResult is the outcome of RunIngest.
type IngestResult struct {
	Cores        int
	Syslog, HTTP IngestPhase
}

// ingestDrain bounds how long a phase waits for the broker to acknowledge
// what was sent.
const ingestDrain = 2 * time.Minute

// RunIngest measures `vigil ingest` in process: (a) syslog lines over TCP
// and (b) NDJSON CloudTrail and Zeek events POSTed to /v1/events, each
// counted when the broker acknowledged the OCSF event, then a raw produce
// of the same records as the baseline.
func RunIngest(ctx context.Context, o IngestOptions) (*IngestResult, error) {
	if o.Duration <= 0 {
		return nil, errors.New("duration must be positive")
	}
	if o.Conns < 1 || o.Batch < 1 {
		return nil, errors.New("conns and batch must be at least 1")
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cores := runtime.GOMAXPROCS(0)

	// Topics of this run only, so a shared broker's OCSF topics are left
	// alone; the baseline writes to the same topics.
	prefix := "vigil-bench-ingest-" + time.Now().Format("20060102-150405.000") + "."
	topics := map[int]string{}
	names := []string{prefix + "deadletter"}
	for _, c := range ocsf.Classes() {
		topics[c.UID] = prefix + strings.TrimPrefix(c.Topic, "ocsf.")
		names = append(names, topics[c.UID])
	}
	syslogBuf, syslogFrames, syslogRecs, err := syslogLoad(topics)
	if err != nil {
		return nil, err
	}
	bodies, httpRecs, err := httpLoad(topics, o.Batch)
	if err != nil {
		return nil, err
	}

	bb, err := useBroker(ctx, o.Brokers, log, out)
	if err != nil {
		return nil, err
	}
	defer bb.stop()
	cfg := ingest.DefaultConfig()
	cfg.Brokers = bb.seeds
	cfg.SyslogTCP, cfg.HTTP, cfg.SyslogUDP = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.Topics, cfg.DeadLetter = topics, names[0]
	svc, err := ingest.Start(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := svc.Close(); err != nil {
			log.Warn("bench: ingest close", "err", err)
		}
		admCl, err := kgo.NewClient(kgo.SeedBrokers(bb.seeds...))
		if err != nil {
			return
		}
		defer admCl.Close()
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		kadm.NewClient(admCl).DeleteTopics(dctx, names...)
	}()
	fmt.Fprintf(out, "ingest:        in-process (internal/ingest, as `vigil ingest`) syslog tcp %s, http %s, memory budget %d MiB\n",
		svc.SyslogTCPAddr(), svc.HTTPAddr(), cfg.MemoryBudget>>20)
	fmt.Fprintf(out, "settings:      GOMAXPROCS %d, %s per phase, %d syslog connections, %d HTTP clients, %d events per POST\n",
		cores, o.Duration, o.Conns, o.Conns, o.Batch)
	fmt.Fprintf(out, "               producers: franz-go defaults as in ingest (acks=all, idempotent, snappy, linger 5ms), keyed by host\n")
	fmt.Fprintf(out, "               CPU time is the whole process (load generators, ingest, producer, in-process broker) until the broker's uploads are done\n")

	syslogDrive := func(d time.Duration) (int64, error) {
		return driveSyslog(ctx, svc.SyslogTCPAddr().String(), syslogBuf, syslogFrames, o.Conns, d)
	}
	httpDrive := func(d time.Duration) (int64, error) {
		return driveHTTP(ctx, "http://"+svc.HTTPAddr().String(), bodies, o.Batch, o.Conns, d)
	}
	// Warm up both paths (connections, metadata, every topic's leaders).
	for _, drive := range []func(time.Duration) (int64, error){syslogDrive, httpDrive} {
		if _, err := measureIngest(ctx, svc, bb, cores, 0, drive); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}

	res := &IngestResult{Cores: cores}
	run := func(p *IngestPhase, drive func(time.Duration) (int64, error), recs []*kgo.Record) error {
		if _, err := bb.settle(ctx); err != nil {
			return err
		}
		m, err := measureIngest(ctx, svc, bb, cores, o.Duration, drive)
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		p.Sent, p.Ingest, p.DeadLettered, p.Lost, p.Refused = m.sent, m.rate, m.dead, m.lost, m.refused
		if p.Baseline, p.BaselineErrors, err = produceRecords(ctx, bb, recs, p.Ingest.Count, cores); err != nil {
			return fmt.Errorf("%s baseline: %w", p.Name, err)
		}
		var vb int
		for _, r := range recs {
			vb += len(r.Value)
		}
		p.ValueBytes = float64(vb) / float64(len(recs))
		if p.Baseline.PerCore > 0 {
			p.Ratio = p.Ingest.PerCore / p.Baseline.PerCore
		}
		if p.Baseline.PerSec > 0 {
			p.WallRatio = p.Ingest.PerSec / p.Baseline.PerSec
		}
		return nil
	}
	res.Syslog.Name = "[a] syslog over TCP: sshd/sudo lines, RFC 5424 octet-counted and RFC 3164 LF-framed"
	if err := run(&res.Syslog, syslogDrive, syslogRecs); err != nil {
		return nil, err
	}
	printIngestPhase(out, res.Syslog, "lines")
	res.HTTP.Name = fmt.Sprintf("[b] HTTP: NDJSON CloudTrail and Zeek, %d events per POST /v1/events", o.Batch)
	if err := run(&res.HTTP, httpDrive, httpRecs); err != nil {
		return nil, err
	}
	printIngestPhase(out, res.HTTP, "events")

	fmt.Fprintf(out, "\nsummary (GOMAXPROCS %d): syslog %.0f lines/s per core (%.2f x raw produce), HTTP %.0f events/s per core (%.2f x raw produce); dead-lettered %d, lost %d\n",
		cores, res.Syslog.Ingest.PerCore, res.Syslog.Ratio, res.HTTP.Ingest.PerCore, res.HTTP.Ratio,
		res.Syslog.DeadLettered+res.HTTP.DeadLettered, res.Syslog.Lost+res.HTTP.Lost)
	return res, nil
}

func printIngestPhase(out io.Writer, p IngestPhase, unit string) {
	fmt.Fprintf(out, "\n%s\n", p.Name)
	fmt.Fprintf(out, "    %-24s %.0f %s/s (%d acknowledged by the broker of %d sent, in %s)\n",
		"through to the broker:", p.Ingest.PerSec, unit, p.Ingest.Count, p.Sent, p.Ingest.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "    %-24s %.0f %s/s (per CPU-second of the process, %s CPU; wall-clock / cores: %.0f)\n",
		"per core:", p.Ingest.PerCore, unit, p.Ingest.CPU.Round(time.Millisecond), p.Ingest.WallPerCore)
	fmt.Fprintf(out, "    %-24s %d dead-lettered, %d lost, %d refused\n", "accounting:", p.DeadLettered, p.Lost, p.Refused)
	fmt.Fprintf(out, "    %-24s %.0f records/s, %.0f per core (%d pre-built OCSF records of %.0f B mean, in %s, %s CPU",
		"baseline raw produce:", p.Baseline.PerSec, p.Baseline.PerCore, p.Baseline.Count, p.ValueBytes,
		p.Baseline.Elapsed.Round(time.Millisecond), p.Baseline.CPU.Round(time.Millisecond))
	if p.BaselineErrors > 0 {
		fmt.Fprintf(out, ", %d errors", p.BaselineErrors)
	}
	fmt.Fprintf(out, ")\n")
	fmt.Fprintf(out, "    %-24s %.2f x per core (%.2f x wall-clock)\n", "ingest / raw produce:", p.Ratio, p.WallRatio)
}

type ingestMeasure struct {
	sent, dead, lost, refused int64
	rate                      IngestRate
}

// measureIngest runs drive (which returns the events it sent) and waits until the service has accounted for every
// sent event as produced, dead-lettered or lost.
func measureIngest(ctx context.Context, svc *ingest.Service, bb *benchBroker, cores int, d time.Duration, drive func(time.Duration) (int64, error)) (ingestMeasure, error) {
	st := svc.Stats()
	p0, d0, l0, r0 := st.Produced.Load(), st.DeadLettered.Load(), st.Lost.Load(), st.Refused.Load()
	cpu0 := cpuTime()
	start := time.Now()
	sent, err := drive(d)
	if err != nil {
		return ingestMeasure{}, err
	}
	var m ingestMeasure
	for {
		m.dead, m.lost = st.DeadLettered.Load()-d0, st.Lost.Load()-l0
		produced := st.Produced.Load() - p0
		if produced+m.dead+m.lost >= sent {
			elapsed := time.Since(start)
			if _, err := bb.settle(ctx); err != nil {
				return m, err
			}
			m.rate = newRate(produced, elapsed, cpuTime()-cpu0, cores)
			break
		}
		if time.Since(start) > d+ingestDrain {
			return m, fmt.Errorf("only %d of %d events accounted for after %s", produced+m.dead+m.lost, sent, ingestDrain)
		}
		if err := ctx.Err(); err != nil {
			return m, err
		}
		time.Sleep(time.Millisecond)
	}
	m.sent = sent
	m.refused = st.Refused.Load() - r0
	return m, nil
}

// driveSyslog writes buf (frames syslog messages) over conns connections
// until d has passed (at least once each), whole buffers only.
func driveSyslog(ctx context.Context, addr string, buf []byte, frames, conns int, d time.Duration) (int64, error) {
	var sent atomic.Int64
	errs := make(chan error, conns)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for {
				if _, err := c.Write(buf); err != nil {
					errs <- err
					return
				}
				sent.Add(int64(frames))
				if !time.Now().Before(deadline) || ctx.Err() != nil {
					break
				}
			}
			// FIN after the last frame: the server reads everything first.
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return sent.Load(), <-errs
}

// driveHTTP POSTs bodies (each batch events: NDJSON, ?source= in the
// URL) from clients concurrent clients until d has passed. A 503 (the
// memory budget is full; the service counts it as refused) is followed by
// a resend of the same body.
func driveHTTP(ctx context.Context, base string, bodies []httpBody, batch, clients int, d time.Duration) (int64, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}}
	defer hc.CloseIdleConnections()
	var sent atomic.Int64
	errs := make(chan error, clients)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				b := bodies[i%len(bodies)]
				for {
					req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+b.path, bytes.NewReader(b.body))
					if err != nil {
						errs <- err
						return
					}
					req.Header.Set("Content-Type", "application/x-ndjson")
					resp, err := hc.Do(req)
					if err != nil {
						errs <- err
						return
					}
					reply, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusServiceUnavailable {
						time.Sleep(5 * time.Millisecond)
						continue
					}
					var r struct{ Events, Deadlettered int }
					if resp.StatusCode != http.StatusAccepted || json.Unmarshal(reply, &r) != nil || r.Events+r.Deadlettered != batch {
						errs <- fmt.Errorf("POST %s: %d %s", b.path, resp.StatusCode, bytes.TrimSpace(reply))
						return
					}
					sent.Add(int64(batch))
					break
				}
				if !time.Now().Before(deadline) || ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return sent.Load(), <-errs
}

// produceRecords produces n records cycling over recs with a client set up
// as the ingest service's producer, and returns the rate to the last
// acknowledgement (CPU time: until the broker has uploaded them too).
func produceRecords(ctx context.Context, bb *benchBroker, recs []*kgo.Record, n int64, cores int) (IngestRate, int64, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(bb.seeds...),
		kgo.MaxBufferedRecords(1<<22),
		kgo.MaxBufferedBytes(int(ingest.DefaultConfig().MemoryBudget)), // ingest's memory budget
		kgo.ProducerLinger(5*time.Millisecond),
	)
	if err != nil {
		return IngestRate{}, 0, err
	}
	defer cl.Close()
	clone := func(r *kgo.Record) *kgo.Record {
		return &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
	}
	warm := map[string]bool{} // metadata and leaders of every topic
	for _, r := range recs {
		if !warm[r.Topic] {
			warm[r.Topic] = true
			if err := cl.ProduceSync(ctx, clone(r)).FirstErr(); err != nil {
				return IngestRate{}, 0, fmt.Errorf("warm-up produce to %s: %w", r.Topic, err)
			}
		}
	}
	var acked, failed atomic.Int64
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
		} else {
			acked.Add(1)
		}
	}
	cpu0 := cpuTime()
	start := time.Now()
	for i := int64(0); i < n && ctx.Err() == nil; i++ {
		cl.Produce(ctx, clone(recs[i%int64(len(recs))]), promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return IngestRate{}, 0, err
	}
	elapsed := time.Since(start)
	if _, err := bb.settle(ctx); err != nil {
		return IngestRate{}, 0, err
	}
	return newRate(acked.Load(), elapsed, cpuTime()-cpu0, cores), failed.Load(), nil
}

// record builds the record the ingest service produces for r.
func ingestRecord(r parse.Result, topics map[int]string) (*kgo.Record, error) {
	if r.Err != nil {
		return nil, fmt.Errorf("bench input does not parse: %v: %s", r.Err, r.Raw)
	}
	v, err := r.Event.Marshal()
	if err != nil {
		return nil, err
	}
	topic, ok := topics[r.Event.ClassUID()]
	if !ok {
		return nil, fmt.Errorf("bench input of class %d has no topic: %s", r.Event.ClassUID(), r.Raw)
	}
	return &kgo.Record{Topic: topic, Key: []byte(r.Host), Value: v, Headers: []kgo.RecordHeader{
		{Key: "source", Value: []byte(r.Source)},
		{Key: "class_uid", Value: []byte(strconv.Itoa(r.Event.ClassUID()))},
	}}, nil
}

// syslogFrameCount is how many messages one syslog buffer holds.
const syslogFrameCount = 480

// syslogLoad builds the syslog stream one connection writes in a loop:
// sshd and sudo messages from 16 hosts, RFC 5424 ones octet-counted and
// RFC 3164 ones LF-framed, and the records ingest makes of them.
func syslogLoad(topics map[int]string) ([]byte, int, []*kgo.Record, error) {
	kinds := []func(i int) string{
		func(i int) string {
			return fmt.Sprintf("<38>Nov 26 10:15:07 web-%d sshd[%d]: Failed password for root from 203.0.113.%d port %d ssh2", i%16, 2000+i, i%250, 40000+i)
		},
		func(i int) string {
			return fmt.Sprintf("<38>Nov 26 10:15:01 web-%d sshd[%d]: Accepted publickey for alice from 10.0.%d.5 port %d ssh2: ED25519 SHA256:Jx1k2p9yQvT8mZ3a", i%16, 2000+i, i%250, 50000+i)
		},
		func(i int) string {
			return fmt.Sprintf("<38>Nov 26 10:15:10 web-%d sshd[%d]: Invalid user oracle from 198.51.100.%d port %d", i%16, 2000+i, i%250, 40000+i)
		},
		func(i int) string {
			return fmt.Sprintf("<86>Nov 26 10:20:00 web-%d sshd[%d]: pam_unix(sshd:session): session closed for user alice", i%16, 2000+i)
		},
		func(i int) string {
			return fmt.Sprintf("<85>Nov 26 10:30:00 db-%d sudo:    alice : TTY=pts/%d ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart postgresql", i%16, i%8)
		},
		func(i int) string {
			return fmt.Sprintf("<85>Nov 26 10:31:00 db-%d sudo: pam_unix(sudo:auth): authentication failure; logname=eve uid=1001 euid=0 tty=/dev/pts/%d ruser=eve rhost=  user=eve", i%16, i%8)
		},
		func(i int) string {
			return fmt.Sprintf(`<86>1 2026-11-26T10:16:00.%03dZ web-%d sshd %d - [origin ip="10.0.0.%d"] Accepted password for bob from 10.0.0.6 port %d ssh2`, i%1000, i%16, 3000+i, i%250, 50000+i)
		},
		func(i int) string {
			return fmt.Sprintf("<85>1 2026-11-26T10:30:00.%03dZ db-%d sudo - - - alice : TTY=pts/%d ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u", i%1000, i%16, i%8)
		},
		func(i int) string {
			return fmt.Sprintf("<38>1 2026-11-26T10:15:07.%03dZ web-%d sshd %d - - Failed password for invalid user admin from 203.0.113.%d port %d ssh2", i%1000, i%16, 3000+i, i%250, 40000+i)
		},
	}
	p := parse.New()
	var buf bytes.Buffer
	var recs []*kgo.Record
	for i := range syslogFrameCount {
		line := kinds[i%len(kinds)](i)
		if strings.HasPrefix(line, "<") && strings.Contains(line[:6], ">1 ") {
			fmt.Fprintf(&buf, "%d %s", len(line), line) // RFC 5424, RFC 6587 octet counting
		} else {
			buf.WriteString(line + "\n") // RFC 3164, LF framing
		}
		results := p.Syslog([]byte(line), "127.0.0.1")
		if len(results) != 1 {
			return nil, 0, nil, fmt.Errorf("bench syslog line made %d events: %s", len(results), line)
		}
		r, err := ingestRecord(results[0], topics)
		if err != nil {
			return nil, 0, nil, err
		}
		recs = append(recs, r)
	}
	return buf.Bytes(), syslogFrameCount, recs, nil
}

type httpBody struct {
	path string // /v1/events?source=...&host=...
	body []byte
}

// httpLoad builds NDJSON bodies of batch events, alternately CloudTrail
// and Zeek, from 8 sensors, and the records ingest makes of them.
func httpLoad(topics map[int]string, batch int) ([]httpBody, []*kgo.Record, error) {
	calls := []struct{ source, name, params string }{
		{"ec2.amazonaws.com", "TerminateInstances", `{"instancesSet":{"items":[{"instanceId":"i-0abc%04d"}]}}`},
		{"s3.amazonaws.com", "GetObject", `{"bucketName":"logs-%d","key":"2026/11/26/app.log.gz"}`},
		{"iam.amazonaws.com", "CreateAccessKey", `{"userName":"svc-%d"}`},
		{"sts.amazonaws.com", "AssumeRole", `{"roleArn":"arn:aws:iam::111122223333:role/deploy-%d","roleSessionName":"ci"}`},
	}
	cloudtrail := func(i int) string {
		if i%5 == 4 {
			return fmt.Sprintf(`{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE%d","arn":"arn:aws:iam::111122223333:user/user%d","accountId":"111122223333","userName":"user%d"},"eventTime":"2026-11-26T07:%02d:%02dZ","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.%d","userAgent":"Mozilla/5.0 (X11; Linux x86_64)","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"Yes","LoginTo":"https://console.aws.amazon.com/"},"eventID":"e1a7c7f2-%08d","readOnly":false,"eventType":"AwsConsoleSignIn","recipientAccountId":"111122223333"}`,
				i, i%50, i%50, i/60%60, i%60, i%250, i)
		}
		c := calls[i%len(calls)]
		return fmt.Sprintf(`{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE%d","arn":"arn:aws:iam::111122223333:user/user%d","accountId":"111122223333","userName":"user%d"},"eventTime":"2026-11-26T07:%02d:%02dZ","eventSource":"%s","eventName":"%s","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.%d","userAgent":"aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0","requestParameters":%s,"responseElements":null,"requestID":"R%d","eventID":"e1a7c7f2-%08d","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333"}`,
			i, i%50, i%50, i/60%60, i%60, c.source, c.name, i%250, fmt.Sprintf(c.params, i%100), i, i)
	}
	zeek := func(i int) string {
		ts := fmt.Sprintf("1795676400.%06d", i%1000000)
		switch i % 4 {
		case 0:
			return fmt.Sprintf(`{"_path":"conn","ts":%s,"uid":"CHhAvVGS1D%07d","id.orig_h":"10.0.%d.%d","id.orig_p":%d,"id.resp_h":"93.184.216.%d","id.resp_p":443,"proto":"tcp","service":"ssl","duration":1.25,"orig_bytes":1200,"resp_bytes":48213,"conn_state":"SF","orig_pkts":12,"resp_pkts":40}`,
				ts, i, i%16, i%250, 30000+i%30000, i%250)
		case 1:
			return fmt.Sprintf(`{"_path":"dns","ts":%s,"uid":"C7nRzv1wVl%07d","id.orig_h":"10.0.%d.%d","id.orig_p":%d,"id.resp_h":"10.0.0.1","id.resp_p":53,"proto":"udp","trans_id":%d,"query":"host%d.example.net","qclass_name":"C_INTERNET","qtype_name":"A","rcode":0,"rcode_name":"NOERROR","answers":["203.0.113.%d"],"TTLs":[60.0]}`,
				ts, i, i%16, i%250, 30000+i%30000, i%65536, i%1000, i%250)
		case 2:
			return fmt.Sprintf(`{"_path":"http","ts":%s,"uid":"CdxC2v3ZjZ%07d","id.orig_h":"10.0.%d.%d","id.orig_p":%d,"id.resp_h":"203.0.113.%d","id.resp_p":80,"method":"GET","host":"cdn%d.example.net","uri":"/static/app-%d.js","user_agent":"curl/8.5.0","version":"1.1","status_code":200,"status_msg":"OK","request_body_len":0,"response_body_len":%d}`,
				ts, i, i%16, i%250, 30000+i%30000, i%250, i%10, i%1000, 512+i%4096)
		default:
			return fmt.Sprintf(`{"_path":"ssl","ts":%s,"uid":"CHhAvVGS1D%07d","id.orig_h":"10.0.%d.%d","id.orig_p":%d,"id.resp_h":"93.184.216.%d","id.resp_p":443,"version":"TLSv13","cipher":"TLS_AES_128_GCM_SHA256","server_name":"site%d.example.com","established":true}`,
				ts, i, i%16, i%250, 30000+i%30000, i%250, i%100)
		}
	}
	p := parse.New()
	var bodies []httpBody
	var recs []*kgo.Record
	n := 0
	for b := range 16 {
		source, gen := parse.SourceCloudTrail, cloudtrail
		if b%2 == 1 {
			source, gen = parse.SourceZeek, zeek
		}
		host := fmt.Sprintf("sensor-%d", b%8)
		var body bytes.Buffer
		for range batch {
			body.WriteString(gen(n))
			body.WriteByte('\n')
			n++
		}
		results := p.Body(source, body.Bytes(), host)
		if len(results) != batch {
			return nil, nil, fmt.Errorf("bench %s body of %d events made %d results", source, batch, len(results))
		}
		for _, r := range results {
			rec, err := ingestRecord(r, topics)
			if err != nil {
				return nil, nil, err
			}
			recs = append(recs, rec)
		}
		bodies = append(bodies, httpBody{path: "/v1/events?source=" + source + "&host=" + host, body: body.Bytes()})
	}
	return bodies, recs, nil
}
