package e2e

// Real clients against vigil's security (issue 18): SASL (PLAIN,
// SCRAM-SHA-256/512, OAUTHBEARER) over SASL_PLAINTEXT and SASL_SSL, mutual
// TLS with the certificate subject as the ACL principal, and KIP-368
// re-authentication, each driven by the client libraries users run: kcat
// and confluent-kafka (librdkafka), kafka-python, sarama, KafkaJS and
// franz-go. The scripts the non-Go clients run are in testdata/security.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/golang-jwt/jwt/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/xdg-go/scram"

	"github.com/vigilhq/vigil/internal/certs/certstest"
)

// secureBroker is a vigil process serving a PLAINTEXT listener (for
// setting users and ACLs up) beside security listeners, with the CA that
// signed its certificate.
type secureBroker struct {
	*broker
	ca *certstest.CA
	// addr is each listener's address by protocol.
	addr map[string]string
}

// startSecureBroker starts vigil with a PLAINTEXT listener and one
// listener of each protocol given (SASL_PLAINTEXT, SASL_SSL, SSL), a
// server certificate of ca for 127.0.0.1 when one of them is TLS, and
// extra flags. startBroker passes --listen with the PLAINTEXT address and
// waits on it; the whole --listen list given after it takes its place (the
// last of a repeated flag wins).
func startSecureBroker(t *testing.T, ca *certstest.CA, protocols []string, extra ...string) *secureBroker {
	t.Helper()
	sb := &secureBroker{ca: ca, addr: map[string]string{"PLAINTEXT": freeAddr(t)}}
	listen := []string{"PLAINTEXT://" + sb.addr["PLAINTEXT"]}
	tlsNeeded := false
	for _, p := range protocols {
		sb.addr[p] = freeAddr(t)
		listen = append(listen, p+"://"+sb.addr[p])
		tlsNeeded = tlsNeeded || strings.HasSuffix(p, "SSL")
	}
	args := []string{"--listen", strings.Join(listen, ",")}
	if tlsNeeded {
		pair := sb.ca.Server("vigil-e2e")
		args = append(args, "--tls-cert", pair.Cert, "--tls-key", pair.Key)
	}
	sb.broker = startBroker(t, sb.addr["PLAINTEXT"], t.TempDir(), append(args, extra...)...)
	// The listeners open together; check each, so a failure names it.
	for p, addr := range sb.addr {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("%s listener %s: %v", p, addr, err)
		}
		c.Close()
	}
	return sb
}

// adminClient is a franz-go client on the PLAINTEXT listener.
func (sb *secureBroker) adminClient(t *testing.T) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.addr["PLAINTEXT"]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// addSCRAMUsers gives each user both SCRAM credentials (PLAIN checks
// against them too), through the Kafka API on the PLAINTEXT listener.
func (sb *secureBroker) addSCRAMUsers(t *testing.T, users map[string]string) {
	t.Helper()
	var ups []kadm.UpsertSCRAM
	for u, p := range users {
		for _, m := range []kadm.ScramMechanism{kadm.ScramSha256, kadm.ScramSha512} {
			ups = append(ups, kadm.UpsertSCRAM{User: u, Mechanism: m, Iterations: 4096, Password: p})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := sb.adminClient(t).AlterUserSCRAMs(ctx, nil, ups)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("add SCRAM users: %v", err)
	}
}

// authenticated counts the broker's log lines of a successful
// authentication of principal with mechanism, by client address.
func (sb *secureBroker) authenticated(principal, mechanism string) map[string]int {
	// slog's text handler quotes a value with '=' or a space in it (a
	// certificate subject).
	who := "(?:" + regexp.QuoteMeta(principal) + "|" + regexp.QuoteMeta(strconv.Quote(principal)) + ")"
	re := regexp.MustCompile(`msg=authenticated remote=(\S+) .*\bprincipal=` + who + ` mechanism=` + regexp.QuoteMeta(mechanism) + `(?:\s|$)`)
	byRemote := map[string]int{}
	for _, m := range re.FindAllStringSubmatch(sb.log(), -1) {
		byRemote[m[1]]++
	}
	return byRemote
}

// requireAuthenticated fails the test unless the broker logged a
// successful authentication of principal with mechanism: the client
// really authenticated, and as whom.
func (sb *secureBroker) requireAuthenticated(t *testing.T, principal, mechanism string) {
	t.Helper()
	if len(sb.authenticated(principal, mechanism)) == 0 {
		t.Fatalf("the broker logged no authentication of %s with %s:\n%s", principal, mechanism, sb.logTail(40))
	}
}

// runFail runs a command that must fail and returns its outputs; it fails
// the test if the command succeeds.
func runFail(t *testing.T, timeout time.Duration, name string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err == nil {
		t.Fatalf("%s %s succeeded; it should have failed\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "),
			truncate(o.String(), 4000), truncate(e.String(), 4000))
	}
	return o.String(), e.String()
}

func lookKcat(t *testing.T) string {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat not installed: apt-get install -y kcat (see .ci/install)")
	}
	return kcat
}

// linesFile writes n numbered lines to a file and returns its path and
// the lines.
func linesFile(t *testing.T, prefix string, n int) (string, []string) {
	t.Helper()
	var buf bytes.Buffer
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf("%s line %04d", prefix, i)
		buf.WriteString(lines[i] + "\n")
	}
	file := filepath.Join(t.TempDir(), "lines.txt")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, lines
}

// sameLines fails the test unless got (kcat's output) holds exactly want.
func sameLines(t *testing.T, got []byte, want []string) {
	t.Helper()
	gl := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	if len(gl) != len(want) {
		t.Fatalf("read %d lines back, want %d:\n%s", len(gl), len(want), truncate(string(got), 2000))
	}
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range gl {
		if count[l]--; count[l] < 0 {
			t.Fatalf("read %q back, which was not written (or twice)", l)
		}
	}
}

// TestSecurityKcat drives kcat (librdkafka) over SASL_SSL with
// SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN and over SASL_PLAINTEXT with
// PLAIN: metadata naming the listener's own address, lines produced and
// consumed back. A wrong password fails with librdkafka's SASL
// authentication error, and the broker keeps serving.
func TestSecurityKcat(t *testing.T) {
	t.Parallel()
	kcat := lookKcat(t)
	sb := startSecureBroker(t, certstest.NewCA(t, "vigil-e2e-ca"), []string{"SASL_PLAINTEXT", "SASL_SSL"})
	sb.addSCRAMUsers(t, map[string]string{"kcat-user": "kcat-secret"})

	conf := func(proto, mech, pass string) []string {
		args := []string{"-b", sb.addr[proto], "-X", "security.protocol=" + strings.ToLower(proto),
			"-X", "sasl.mechanisms=" + mech, "-X", "sasl.username=kcat-user", "-X", "sasl.password=" + pass}
		if proto == "SASL_SSL" {
			args = append(args, "-X", "ssl.ca.location="+sb.ca.File)
		}
		return args
	}
	for _, tc := range []struct{ proto, mech string }{
		{"SASL_SSL", "SCRAM-SHA-256"},
		{"SASL_SSL", "SCRAM-SHA-512"},
		{"SASL_SSL", "PLAIN"},
		{"SASL_PLAINTEXT", "PLAIN"},
	} {
		t.Run(tc.proto+"/"+tc.mech, func(t *testing.T) {
			topic := strings.ToLower("kcat-" + tc.proto + "-" + tc.mech)
			createTopic(t, sb.addr["PLAINTEXT"], topic, 2)
			args := conf(tc.proto, tc.mech, "kcat-secret")

			meta := string(runCmd(t, 20*time.Second, kcat, append(args, "-L", "-t", topic)...))
			for _, want := range []string{"broker 0 at " + sb.addr[tc.proto], `topic "` + topic + `" with 2 partitions:`} {
				if !strings.Contains(meta, want) {
					t.Fatalf("kcat -L lacks %q:\n%s", want, meta)
				}
			}
			file, lines := linesFile(t, tc.mech, 500)
			runCmd(t, 30*time.Second, kcat, append(args, "-P", "-t", topic, "-l", "-X", "acks=all", file)...)
			out := runCmd(t, 30*time.Second, kcat, append(args, "-C", "-t", topic, "-o", "beginning", "-e", "-q")...)
			sameLines(t, out, lines)
			sb.requireAuthenticated(t, "User:kcat-user", tc.mech)
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		_, stderr := runFail(t, 20*time.Second, kcat, append(conf("SASL_SSL", "PLAIN", "not-the-secret"), "-L", "-m", "2")...)
		// librdkafka reports the broker's SaslAuthenticate error message.
		for _, want := range []string{"SASL authentication error", "Authentication failed during authentication due to invalid credentials with SASL mechanism PLAIN"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("kcat's error lacks %q:\n%s", want, truncate(stderr, 4000))
			}
		}
		// The broker still serves the right password.
		runCmd(t, 20*time.Second, kcat, append(conf("SASL_SSL", "PLAIN", "kcat-secret"), "-L")...)
	})
}

// TestSecurityKcatMutualTLS: kcat with a client certificate over an SSL
// listener that requires one, under the acl authorizer. The principal is
// User: and the certificate's subject in RFC 2253 form, so an ACL for
// that subject lets one certificate produce and consume; another
// certificate of the same CA is refused with TOPIC_AUTHORIZATION_FAILED,
// and so is the first once its ACL is deleted.
func TestSecurityKcatMutualTLS(t *testing.T) {
	t.Parallel()
	kcat := lookKcat(t)
	ca := certstest.NewCA(t, "vigil-e2e-ca")
	// PLAINTEXT's principal, User:ANONYMOUS, is the super user that sets
	// the ACLs up.
	sb := startSecureBroker(t, ca, []string{"SSL"}, "--tls-client-ca", ca.File,
		"--authorizer", "acl", "--super-users", "User:ANONYMOUS")
	const topic = "kcat-mtls"
	createTopic(t, sb.addr["PLAINTEXT"], topic, 1)
	writer := ca.Client(pkix.Name{CommonName: "writer", OrganizationalUnit: []string{"detect"}, Organization: []string{"Vigil"}})
	intruder := ca.Client(pkix.Name{CommonName: "intruder", OrganizationalUnit: []string{"detect"}, Organization: []string{"Vigil"}})
	const writerPrincipal = "User:CN=writer,OU=detect,O=Vigil" // Kafka's DEFAULT rule: X500Principal.getName()

	acl := kadm.NewACLs().Allow(writerPrincipal).Topics(topic).Operations(kadm.OpWrite, kadm.OpRead)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := sb.adminClient(t)
	if res, err := adm.CreateACLs(ctx, acl); err != nil || res[0].Err != nil {
		t.Fatalf("create ACL: %v %v", err, res)
	}

	args := func(p certstest.Pair) []string {
		return []string{"-b", sb.addr["SSL"], "-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + ca.File,
			"-X", "ssl.certificate.location=" + p.Cert, "-X", "ssl.key.location=" + p.Key}
	}
	file, lines := linesFile(t, "mtls", 200)
	runCmd(t, 30*time.Second, kcat, append(args(writer), "-P", "-t", topic, "-l", "-X", "acks=all", file)...)
	out := runCmd(t, 30*time.Second, kcat, append(args(writer), "-C", "-t", topic, "-o", "beginning", "-e", "-q")...)
	sameLines(t, out, lines)
	if len(sb.authenticated(writerPrincipal, "SSL")) == 0 {
		t.Errorf("the broker logged no SSL authentication of %s", writerPrincipal)
	}

	refused := func(who string, p certstest.Pair) {
		t.Helper()
		_, stderr := runFail(t, 30*time.Second, kcat, append(args(p), "-P", "-t", topic, "-l", "-X", "acks=all",
			"-X", "message.timeout.ms=5000", file)...)
		// librdkafka's text for TOPIC_AUTHORIZATION_FAILED.
		if !strings.Contains(stderr, "Delivery failed for message: Broker: Topic authorization failed") {
			t.Errorf("%s: kcat failed without TOPIC_AUTHORIZATION_FAILED:\n%s", who, truncate(stderr, 4000))
		}
	}
	refused("another certificate", intruder)

	// The ACL is what let the writer in: without it, it is refused too.
	res, err := adm.DeleteACLs(ctx, kadm.NewACLs().Allow(writerPrincipal).AllowHosts().Topics(topic).
		Operations(kadm.OpWrite, kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	deleted := 0
	for _, r := range res {
		err = errors.Join(err, r.Err)
		deleted += len(r.Deleted)
	}
	if err != nil || deleted != 2 {
		t.Fatalf("delete the writer's ACLs: %d deleted (want 2), %v", deleted, err)
	}
	refused("the writer without its ACL", writer)
}

// TestSecurityPython runs confluent-kafka (librdkafka) and kafka-python
// (Debian: 1.7.0 on librdkafka 2.0.2, and 2.0.2, which authenticates with
// SaslHandshake v0 and bare tokens) over SASL_SSL with SCRAM-SHA-512 and
// over SASL_PLAINTEXT with PLAIN: each produces, consumes in a group and
// commits (testdata/security/python_clients.py).
func TestSecurityPython(t *testing.T) {
	t.Parallel()
	for _, module := range []string{"kafka", "confluent_kafka"} {
		if out, err := exec.Command(python, "-c", "import "+module).CombinedOutput(); err != nil {
			t.Fatalf("%s cannot import %s (%v): %s; apt-get install -y python3-kafka python3-confluent-kafka (see .ci/install)", python, module, err, out)
		}
	}
	script, err := filepath.Abs(filepath.Join("testdata", "security", "python_clients.py"))
	if err != nil {
		t.Fatal(err)
	}
	sb := startSecureBroker(t, certstest.NewCA(t, "vigil-e2e-ca"), []string{"SASL_PLAINTEXT", "SASL_SSL"})
	sb.addSCRAMUsers(t, map[string]string{"py-user": "py-secret"})
	for _, client := range []string{"kafka-python", "confluent"} {
		for _, tc := range []struct{ proto, mech string }{{"SASL_SSL", "SCRAM-SHA-512"}, {"SASL_PLAINTEXT", "PLAIN"}} {
			t.Run(client+"/"+tc.proto+"/"+tc.mech, func(t *testing.T) {
				topic := strings.ToLower("py-" + client + "-" + tc.mech)
				createTopic(t, sb.addr["PLAINTEXT"], topic, 2)
				runScript(t, python, script, "roundtrip", client, sb.addr[tc.proto], tc.proto, tc.mech, "py-user", "py-secret", sb.ca.File, topic, "300")
				sb.requireAuthenticated(t, "User:py-user", tc.mech)
			})
		}
	}
}

// runScript runs a client script and logs what it printed; it fails the
// test with that output if the script fails.
func runScript(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v after %v (ctx: %v)\n%s", filepath.Base(name), strings.Join(args, " "), err,
			time.Since(start).Round(time.Millisecond), ctx.Err(), truncate(string(out), 20000))
	}
	t.Logf("%s (%v): %s", filepath.Base(args[0]), time.Since(start).Round(time.Millisecond), bytes.TrimSpace(out))
}

// TestSecurityKafkaJS runs KafkaJS over SASL_SSL with SCRAM-SHA-256 and
// SCRAM-SHA-512 (testdata/security/kafkajs_sasl.js): produce, a consumer
// group that commits, and a wrong password refused.
func TestSecurityKafkaJS(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: apt-get install -y nodejs npm, then npm ci --prefix internal/e2e/testdata/kafkajs (see .ci/install)")
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kafkajs", "node_modules", "kafkajs", "package.json")); err != nil {
		t.Fatalf("KafkaJS is not installed (%v): npm ci --prefix internal/e2e/testdata/kafkajs (see .ci/install)", err)
	}
	sb := startSecureBroker(t, certstest.NewCA(t, "vigil-e2e-ca"), []string{"SASL_SSL"})
	sb.addSCRAMUsers(t, map[string]string{"js-user": "js-secret"})
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			topic := strings.ToLower("kafkajs-" + mech)
			createTopic(t, sb.addr["PLAINTEXT"], topic, 2)
			runScript(t, node, filepath.Join(dir, "security", "kafkajs_sasl.js"), sb.addr["SASL_SSL"], strings.ToLower(mech),
				"js-user", "js-secret", sb.ca.File, topic, "200")
			sb.requireAuthenticated(t, "User:js-user", mech)
		})
	}
}

// xdgSCRAM is sarama's SCRAMClient on xdg-go/scram, as sarama's own
// example wires it.
type xdgSCRAM struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (x *xdgSCRAM) Begin(user, pass, authzID string) error {
	c, err := x.hash.NewClient(user, pass, authzID)
	if err != nil {
		return err
	}
	x.conv = c.NewConversation()
	return nil
}

func (x *xdgSCRAM) Step(challenge string) (string, error) { return x.conv.Step(challenge) }
func (x *xdgSCRAM) Done() bool                            { return x.conv.Done() }

func certPool(t *testing.T, caFile string) *x509.CertPool {
	t.Helper()
	raw, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		t.Fatalf("no certificate in %s", caFile)
	}
	return pool
}

// saramaSCRAM is a sarama configuration authenticating with SCRAM (mech
// SCRAM-SHA-256 or SCRAM-SHA-512) at SaslHandshake version hs, over TLS
// if pool is set.
func saramaSCRAM(mech, user, pass string, hs int16, pool *x509.CertPool) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "vigil-e2e-sarama-sasl"
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Version = hs
	cfg.Net.SASL.User, cfg.Net.SASL.Password = user, pass
	hash := scram.SHA256
	cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
	if mech == "SCRAM-SHA-512" {
		hash = scram.SHA512
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
	}
	cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{hash: hash} }
	// sarama's rule: a v0 handshake comes first on the connection, so
	// ApiVersions may not (the broker answers ApiVersions before
	// authentication either way).
	cfg.ApiVersionsRequest = hs != sarama.SASLHandshakeV0
	if pool != nil {
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	return cfg
}

// TestSecuritySarama runs sarama over SASL_SSL with SCRAM-SHA-256 and
// SCRAM-SHA-512, with SaslHandshake v1 (SaslAuthenticate requests) and v0
// (bare tokens): a producer and a partition consumer. A wrong password is
// refused with SASL_AUTHENTICATION_FAILED.
func TestSecuritySarama(t *testing.T) {
	t.Parallel()
	sb := startSecureBroker(t, certstest.NewCA(t, "vigil-e2e-ca"), []string{"SASL_SSL"})
	sb.addSCRAMUsers(t, map[string]string{"sarama-user": "sarama-secret"})
	pool := certPool(t, sb.ca.File)
	addrs := []string{sb.addr["SASL_SSL"]}
	for _, tc := range []struct {
		mech string
		hs   int16
	}{
		{"SCRAM-SHA-256", sarama.SASLHandshakeV1},
		{"SCRAM-SHA-512", sarama.SASLHandshakeV1},
		{"SCRAM-SHA-512", sarama.SASLHandshakeV0},
	} {
		t.Run(fmt.Sprintf("%s/handshake-v%d", tc.mech, tc.hs), func(t *testing.T) {
			topic := fmt.Sprintf("sarama-%s-v%d", strings.ToLower(tc.mech), tc.hs)
			createTopic(t, sb.addr["PLAINTEXT"], topic, 1)
			cfg := saramaSCRAM(tc.mech, "sarama-user", "sarama-secret", tc.hs, pool)
			const n = 100
			producer, err := sarama.NewSyncProducer(addrs, cfg)
			if err != nil {
				t.Fatalf("sarama producer: %v", err)
			}
			msgs := make([]*sarama.ProducerMessage, n)
			for i := range msgs {
				msgs[i] = &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(fmt.Sprintf("sarama %d", i))}
			}
			if err := producer.SendMessages(msgs); err != nil {
				producer.Close()
				t.Fatalf("sarama produce: %v", err)
			}
			producer.Close()

			consumer, err := sarama.NewConsumer(addrs, cfg)
			if err != nil {
				t.Fatalf("sarama consumer: %v", err)
			}
			defer consumer.Close()
			pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
			if err != nil {
				t.Fatalf("consume partition: %v", err)
			}
			defer pc.Close()
			timeout := time.After(20 * time.Second)
			for i := 0; i < n; i++ {
				select {
				case m := <-pc.Messages():
					if want := fmt.Sprintf("sarama %d", i); string(m.Value) != want || m.Offset != int64(i) {
						t.Fatalf("read %q at offset %d, want %q at %d", m.Value, m.Offset, want, i)
					}
				case err := <-pc.Errors():
					t.Fatalf("consume: %v", err)
				case <-timeout:
					t.Fatalf("consumed %d of %d messages in 20s", i, n)
				}
			}
			sb.requireAuthenticated(t, "User:sarama-user", tc.mech)
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		cfg := saramaSCRAM("SCRAM-SHA-512", "sarama-user", "not-the-secret", sarama.SASLHandshakeV1, pool)
		cfg.Metadata.Retry.Max = 0
		cl, err := sarama.NewClient(addrs, cfg)
		if err == nil {
			cl.Close()
			t.Fatal("a wrong password was accepted")
		}
		if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
			t.Fatalf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
		}
	})
}

// jwtIssuer signs RS256 tokens with a key the broker trusts through a JWK
// Set file.
type jwtIssuer struct {
	key *rsa.PrivateKey
	kid string
}

const (
	testIssuer   = "https://idp.vigil.test"
	testAudience = "vigil-e2e"
)

func newJWTIssuer(t *testing.T, kid string) *jwtIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &jwtIssuer{key: key, kid: kid}
}

// writeJWKS writes the public key as a JWK Set and returns the file.
func (j *jwtIssuer) writeJWKS(t *testing.T) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	set := map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": j.kid,
		"n": b64(j.key.N.Bytes()), "e": b64(big.NewInt(int64(j.key.E)).Bytes()),
	}}}
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// token signs a JWT for sub issued at iat that expires at exp, with the
// issuer and audience the broker expects unless claims override them (a
// nil value leaves the claim out).
func (j *jwtIssuer) token(t *testing.T, sub string, iat, exp time.Time, claims jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "iss": testIssuer, "aud": testAudience, "iat": iat.Unix(), "exp": exp.Unix()}
	for k, v := range claims {
		if c[k] = v; v == nil {
			delete(c, k)
		}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = j.kid
	s, err := tok.SignedString(j.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// oauthFlags are the broker flags for OAUTHBEARER with jwks.
func oauthFlags(jwks string) []string {
	return []string{"--sasl-mechanisms", "OAUTHBEARER", "--sasl-oauthbearer-jwks", jwks,
		"--sasl-oauthbearer-issuer", testIssuer, "--sasl-oauthbearer-audience", testAudience}
}

// franzRoundTrip produces n records to topic with a franz-go client of
// opts and consumes them back.
func franzRoundTrip(t *testing.T, topic string, n int, opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("franz %d", i))}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("produce: %v", err)
	}
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records", got, n)
		}
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		got += fs.NumRecords()
	}
}

// franzMetadataErr is the error of one Metadata request by a franz-go
// client of opts, without retries.
func franzMetadataErr(opts ...kgo.Opt) error {
	cl, err := kgo.NewClient(append(opts, kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	return err
}

// TestSecurityFranzGo: franz-go with OAUTHBEARER over SASL_SSL, a JWT
// signed in the test (RS256) and checked against a JWK Set file; tokens
// that are expired, signed by another key or for another audience are
// refused with SASL_AUTHENTICATION_FAILED. Then mutual TLS: a client
// certificate's subject is the principal, and a client without one is
// refused.
func TestSecurityFranzGo(t *testing.T) {
	t.Parallel()
	t.Run("OAUTHBEARER", func(t *testing.T) {
		idp := newJWTIssuer(t, "vigil-e2e-key")
		sb := startSecureBroker(t, certstest.NewCA(t, "vigil-e2e-ca"), []string{"SASL_SSL"}, oauthFlags(idp.writeJWKS(t))...)
		createTopic(t, sb.addr["PLAINTEXT"], "franz-oauth", 2)
		tc := &tls.Config{RootCAs: certPool(t, sb.ca.File), MinVersion: tls.VersionTLS12}
		now := time.Now()
		with := func(token string) []kgo.Opt {
			return []kgo.Opt{kgo.SeedBrokers(sb.addr["SASL_SSL"]), kgo.DialTLSConfig(tc), kgo.SASL(oauth.Auth{Token: token}.AsMechanism())}
		}
		franzRoundTrip(t, "franz-oauth", 100, with(idp.token(t, "svc-detect", now, now.Add(10*time.Minute), nil))...)
		sb.requireAuthenticated(t, "User:svc-detect", "OAUTHBEARER")

		for name, token := range map[string]string{
			"expired":          idp.token(t, "svc-detect", now.Add(-time.Hour), now.Add(-10*time.Minute), nil),
			"another key":      newJWTIssuer(t, "vigil-e2e-key").token(t, "svc-detect", now, now.Add(10*time.Minute), nil),
			"another audience": idp.token(t, "svc-detect", now, now.Add(10*time.Minute), jwt.MapClaims{"aud": "someone-else"}),
			"another issuer":   idp.token(t, "svc-detect", now, now.Add(10*time.Minute), jwt.MapClaims{"iss": "https://evil.test"}),
			"without exp":      idp.token(t, "svc-detect", now, now, jwt.MapClaims{"exp": nil}),
		} {
			if err := franzMetadataErr(with(token)...); !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Errorf("%s token: %v, want SASL_AUTHENTICATION_FAILED", name, err)
			}
		}
	})

	t.Run("mTLS", func(t *testing.T) {
		ca := certstest.NewCA(t, "vigil-e2e-ca")
		sb := startSecureBroker(t, ca, []string{"SSL"}, "--tls-client-ca", ca.File)
		createTopic(t, sb.addr["PLAINTEXT"], "franz-mtls", 2)
		pair := ca.Client(pkix.Name{CommonName: "franz", Organization: []string{"Vigil"}})
		cert, err := tls.LoadX509KeyPair(pair.Cert, pair.Key)
		if err != nil {
			t.Fatal(err)
		}
		pool := certPool(t, ca.File)
		franzRoundTrip(t, "franz-mtls", 100, kgo.SeedBrokers(sb.addr["SSL"]),
			kgo.DialTLSConfig(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
		sb.requireAuthenticated(t, "User:CN=franz,O=Vigil", "SSL")

		err = franzMetadataErr(kgo.SeedBrokers(sb.addr["SSL"]), kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("a client without a certificate: %v, want the handshake refused for it", err)
		}
	})
}

// TestSecurityLibrdkafkaOAuth: librdkafka with OAUTHBEARER and a JWT the
// test signs. confluent-kafka hands it over from oauth_cb; kcat fetches it
// from a token endpoint with sasl.oauthbearer.method=oidc (client
// credentials, KIP-768) where librdkafka is built with it. librdkafka's
// built-in unsecured token (alg none) is refused.
func TestSecurityLibrdkafkaOAuth(t *testing.T) {
	t.Parallel()
	kcat := lookKcat(t)
	idp := newJWTIssuer(t, "vigil-e2e-key")
	sb := startSecureBroker(t, certstest.NewCA(t, "vigil-e2e-ca"), []string{"SASL_SSL"}, oauthFlags(idp.writeJWKS(t))...)
	saslSSL := []string{"-b", sb.addr["SASL_SSL"], "-X", "security.protocol=sasl_ssl", "-X", "ssl.ca.location=" + sb.ca.File,
		"-X", "sasl.mechanisms=OAUTHBEARER"}

	t.Run("confluent-kafka oauth_cb", func(t *testing.T) {
		if out, err := exec.Command(python, "-c", "import confluent_kafka").CombinedOutput(); err != nil {
			t.Fatalf("%s cannot import confluent_kafka (%v): %s; apt-get install -y python3-confluent-kafka (see .ci/install)", python, err, out)
		}
		script, err := filepath.Abs(filepath.Join("testdata", "security", "python_clients.py"))
		if err != nil {
			t.Fatal(err)
		}
		tokenFile := filepath.Join(t.TempDir(), "token")
		now := time.Now()
		if err := os.WriteFile(tokenFile, []byte(idp.token(t, "svc-python", now, now.Add(10*time.Minute), nil)), 0o600); err != nil {
			t.Fatal(err)
		}
		createTopic(t, sb.addr["PLAINTEXT"], "confluent-oauth", 2)
		runScript(t, python, script, "oauth", sb.addr["SASL_SSL"], sb.ca.File, "confluent-oauth", "200", tokenFile)
		sb.requireAuthenticated(t, "User:svc-python", "OAUTHBEARER")
	})

	t.Run("kcat unsecured token refused", func(t *testing.T) {
		_, stderr := runFail(t, 20*time.Second, kcat, append(saslSSL, "-X", "enable.sasl.oauthbearer.unsecure.jwt=true",
			"-X", "sasl.oauthbearer.config=principal=admin", "-L", "-m", "2")...)
		if !strings.Contains(stderr, "SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER") {
			t.Errorf("kcat with an unsecured token failed without the SASL error:\n%s", truncate(stderr, 4000))
		}
	})

	t.Run("kcat oidc", func(t *testing.T) {
		out, _ := exec.Command(kcat, "-V").CombinedOutput()
		if features := regexp.MustCompile(`builtin\.features=(\S+)`).FindSubmatch(out); features == nil || !strings.Contains(string(features[1]), "oidc") {
			t.Skipf("this kcat's librdkafka has no OIDC token fetcher (builtin.features lacks \"oidc\"; Debian builds librdkafka without libcurl): %s",
				bytes.TrimSpace(out[bytes.LastIndex(out, []byte("Version")):]))
		}
		const clientID, secret = "vigil-e2e-client", "client-secret"
		var fetched int
		tokenEndpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, pass, ok := r.BasicAuth()
			if err := r.ParseForm(); err != nil || r.Method != http.MethodPost || !ok || id != clientID || pass != secret ||
				r.PostForm.Get("grant_type") != "client_credentials" {
				http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
				return
			}
			fetched++
			now := time.Now()
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"access_token": idp.token(t, "svc-kcat", now, now.Add(10*time.Minute), nil),
				"token_type": "Bearer", "expires_in": 600})
		}))
		defer tokenEndpoint.Close()
		createTopic(t, sb.addr["PLAINTEXT"], "kcat-oidc", 1)
		args := append(saslSSL, "-X", "sasl.oauthbearer.method=oidc", "-X", "sasl.oauthbearer.token.endpoint.url="+tokenEndpoint.URL,
			"-X", "sasl.oauthbearer.client.id="+clientID, "-X", "sasl.oauthbearer.client.secret="+secret)
		file, lines := linesFile(t, "oidc", 100)
		runCmd(t, 30*time.Second, kcat, append(args, "-P", "-t", "kcat-oidc", "-l", "-X", "acks=all", file)...)
		sameLines(t, runCmd(t, 30*time.Second, kcat, append(args, "-C", "-t", "kcat-oidc", "-o", "beginning", "-e", "-q")...), lines)
		sb.requireAuthenticated(t, "User:svc-kcat", "OAUTHBEARER")
	})
}

// TestSecurityReauthentication runs clients for 6 s (3 s with -short)
// against a broker whose SASL sessions last 2 s (--connections-max-reauth,
// KIP-368). sarama re-authenticates on its connection before its session
// ends. librdkafka before 2.2.0 (Debian's 2.0.2) has no KIP-368: the
// broker closes its connection at its first request after the session
// expired, as Kafka does, and confluent-kafka reconnects and delivers
// every message all the same.
func TestSecurityReauthentication(t *testing.T) {
	t.Parallel()
	run := 6 * time.Second
	if testing.Short() {
		run = 3 * time.Second
	}
	sb := startSecureBroker(t, certstest.NewCA(t, "vigil-e2e-ca"), []string{"SASL_PLAINTEXT"}, "--connections-max-reauth", "2s")
	sb.addSCRAMUsers(t, map[string]string{"sarama-user": "sarama-secret", "py-user": "py-secret"})
	expired := regexp.MustCompile(`msg="closing connection" remote=(\S+) .*expired at .* without re-authentication`)
	// sessions is how many 2 s sessions a client busy for d needs.
	sessions := func(d time.Duration) int { return int((d + 2*time.Second - 1) / (2 * time.Second)) }

	t.Run("sarama", func(t *testing.T) {
		createTopic(t, sb.addr["PLAINTEXT"], "reauth-sarama", 1)
		producer, err := sarama.NewSyncProducer([]string{sb.addr["SASL_PLAINTEXT"]},
			saramaSCRAM("SCRAM-SHA-512", "sarama-user", "sarama-secret", sarama.SASLHandshakeV1, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer producer.Close()
		n := 0
		for end := time.Now().Add(run); time.Now().Before(end); n++ {
			if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: "reauth-sarama", Value: sarama.StringEncoder(fmt.Sprint(n))}); err != nil {
				t.Fatalf("produce %d across re-authentications: %v", n, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// sarama's producer keeps one connection to the broker, and
		// authenticates again on it before each 2 s session ends; the
		// broker never has to close it.
		auths := sb.authenticated("User:sarama-user", "SCRAM-SHA-512")
		conn, most := "", 0
		for remote, c := range auths {
			if c > most {
				conn, most = remote, c
			}
		}
		if want := sessions(run); most < want {
			t.Errorf("sarama's connection authenticated %d times in %v, want at least %d (by connection: %v)", most, run, want, auths)
		}
		for _, m := range expired.FindAllStringSubmatch(sb.log(), -1) {
			if m[1] == conn {
				t.Errorf("the broker closed sarama's connection %s for a session it did not renew", conn)
			}
		}
		t.Logf("produced %d messages; authentications by connection: %v", n, auths)
	})

	t.Run("confluent-kafka", func(t *testing.T) {
		if out, err := exec.Command(python, "-c", "import confluent_kafka").CombinedOutput(); err != nil {
			t.Fatalf("%s cannot import confluent_kafka (%v): %s; apt-get install -y python3-confluent-kafka (see .ci/install)", python, err, out)
		}
		script, err := filepath.Abs(filepath.Join("testdata", "security", "python_clients.py"))
		if err != nil {
			t.Fatal(err)
		}
		createTopic(t, sb.addr["PLAINTEXT"], "reauth-confluent", 1)
		runScript(t, python, script, "reauth", sb.addr["SASL_PLAINTEXT"], "PLAIN", "py-user", "py-secret", "reauth-confluent", fmt.Sprint(run.Seconds()))
		auths := sb.authenticated("User:py-user", "PLAIN")
		total := 0
		for _, c := range auths {
			total += c
		}
		// The session is enforced on this client too: it authenticated
		// again (on the same connection or a new one) every 2 s.
		if want := sessions(run); total < want {
			t.Errorf("confluent-kafka authenticated %d times in %v, want at least %d (by connection: %v)", total, run, want, auths)
		}
		t.Logf("authentications by connection: %v; connections closed for an expired session: %d", auths, len(expired.FindAllString(sb.log(), -1)))
	})
}
