// Package config holds the broker's configuration and loads it from, in
// increasing precedence: defaults, a YAML file (--config), VIGIL_*
// environment variables, and command-line flags.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/internal/cliflag"
)

// Broker is the configuration of `vigil serve`.
type Broker struct {
	// Listen and Advertised are the flags as given: comma-separated
	// [PROTOCOL://]host:port lists. Listeners is what Load made of them.
	Listen      string
	Advertised  string
	Listeners   []Listener
	AdminListen string // host:port of the admin HTTP listener (/metrics, /healthz, /readyz); "" disables it
	// AdminTokenFile holds the bearer token the admin listener asks for
	// (docs/security.md); AdminTLS serves it over TLS with --tls-cert.
	AdminTokenFile string
	AdminTLS       bool
	DataDir        string
	ObjectStore    string // URL or path; default DataDir/objects
	// S3AccessKeyID and S3SecretAccessKey are explicit credentials of an
	// s3:// object store (both or neither); without them the AWS chain
	// (AWS_* environment, ~/.aws files, instance role) is used.
	S3AccessKeyID     string
	S3SecretAccessKey Secret
	// Metadata is where the metadata store lives: "" for the embedded
	// bbolt file DataDir/meta.db, or etcd://host:port[,host:port...][/prefix].
	Metadata string
	// Etcd's TLS (a CA bundle for the members' certificates, a client
	// certificate for --client-cert-auth) and login, for a secured etcd.
	EtcdCA, EtcdCert, EtcdKey string
	EtcdUsername              string
	EtcdPasswordFile          string
	// S3CA is a PEM bundle an https S3 endpoint is verified against.
	S3CA     string
	WAL      string // "file" or "object"; "" picks file alone, object in a cluster
	LogLevel string
	NodeID   int32
	Zone     string        // this broker's zone, matched against a client's "zone=" in client.id
	LeaseTTL time.Duration // cluster membership lease; partitions move this long after a broker dies

	WALFlushInterval time.Duration // object WAL: longest a produce waits for its chunk to be put
	WALFlushBytes    int64         // object WAL: put a chunk early once this many bytes wait

	AutoCreateTopics  bool
	DefaultPartitions int32
	RetentionMs       int64
	RetentionBytes    int64
	MaxMessageBytes   int32
	MaxRequestBytes   int32 // socket.request.max.bytes
	FetchMaxBytes     int32 // fetch.max.bytes: the most a fetch response carries
	// MaxConnectionCreationRate is max.connection.creation.rate: new
	// connections per second the broker accepts on all its Kafka
	// listeners together (0: unlimited).
	MaxConnectionCreationRate int32

	// CompressionType is the default compression.type of topics: producer
	// (batches stored as produced) or a codec batches are recompressed to.
	CompressionType string

	WALSync        bool
	UploadInterval time.Duration
	SegmentBytes   int64
	TailCacheBytes int64 // per partition, uploaded batches kept in memory for tail reads
	// TableCommitInterval is how long records wait at most before a
	// lakehouse table commits them (internal/table).
	TableCommitInterval time.Duration
	// TableOrphanAge is how old a table file named by no snapshot (a
	// failed commit's) must be before it is deleted.
	TableOrphanAge time.Duration

	ReadCacheBytes  int64 // memory for cached blocks of segment objects (catch-up reads)
	ReadWorkers     int32 // concurrent object reads of catch-up fetches
	ReadAheadBlocks int32 // 1 MiB blocks prefetched past each catch-up read

	// Catch-up fetches are paced to what the tail path can spare
	// (internal/catchup): the rate never drops below CatchupMinRate and
	// never rises above CatchupMaxRate (0: no ceiling), and a paced
	// answer carries at most CatchupChunkBytes of object data.
	CatchupPacing     bool
	CatchupMinRate    int64 // bytes/s
	CatchupMaxRate    int64 // bytes/s
	CatchupChunkBytes int32
	// The tail path is unhealthy, and the rate halved, after an interval
	// with a WAL commit slower than CatchupCommitLimit (0: 5 ms, or 10
	// flush intervals with the object WAL) or a p99 wait for a CPU longer
	// than CatchupSchedLimit.
	CatchupCommitLimit time.Duration
	CatchupSchedLimit  time.Duration
	// CatchupNice is the nice value a connection's writer takes while it
	// answers a replay (0: none), whether or not pacing is on.
	CatchupNice int32

	// The telemetry ingest service run inside the broker process (all
	// empty: off); `vigil ingest` runs the same service on its own.
	IngestSyslogTCP string
	IngestSyslogUDP string
	IngestHTTP      string
	IngestHECToken  string
	// IngestSyslogFraming is the TCP syslog framing (auto, octet-counted,
	// newline); IngestHTTPTokenFile holds the bearer token of the HTTP
	// endpoints, and IngestHTTPInsecure lets a non-loopback HTTP listener
	// run without one.
	IngestSyslogFraming string
	IngestHTTPTokenFile string
	IngestHTTPInsecure  bool

	CompactTargetBytes int64 // largest object compaction builds; 0: no compaction

	RetentionCheckInterval time.Duration // log.retention.check.interval.ms
	ObjectDeleteDelay      time.Duration // how long an unreferenced object stays for reads in flight

	OffsetsPartitions     int32         // partitions of __consumer_offsets, fixed at its creation
	GroupInitialRebalance time.Duration // group.initial.rebalance.delay.ms
	GroupMinSession       time.Duration // group.min.session.timeout.ms
	OffsetsSnapshot       int64         // snapshot an offsets partition beyond 2 x live records + this
	OffsetsRetention      time.Duration // offsets.retention.minutes
	OffsetsRetentionCheck time.Duration // offsets.retention.check.interval.ms

	GroupConsumerSession   time.Duration // group.consumer.session.timeout.ms (KIP-848 groups)
	GroupConsumerHeartbeat time.Duration // group.consumer.heartbeat.interval.ms (KIP-848 groups)

	TransactionPartitions     int32         // partitions of __transaction_state, fixed at its creation
	TransactionMaxTimeout     time.Duration // transaction.max.timeout.ms
	TransactionalIDExpiration time.Duration // transactional.id.expiration.ms
	TransactionAbortInterval  time.Duration // transaction.abort.timed.out.transaction.cleanup.interval.ms

	Security Security
}

// Security is the security boundary of the Kafka listeners: TLS, SASL and
// the authorizer (docs/security.md).
type Security struct {
	TLSCert, TLSKey string // PEM files of an SSL or SASL_SSL listener, reread when they change
	// TLSClientCA is a PEM bundle of the CAs client certificates are
	// checked against (mTLS); TLSClientAuth is none, requested or required
	// (Kafka's ssl.client.auth; default required with a CA, else none).
	TLSClientCA   string
	TLSClientAuth string
	// SSLPrincipalMappingRules turns a client certificate's subject into
	// the principal's name, as Kafka's ssl.principal.mapping.rules.
	SSLPrincipalMappingRules string

	SASLMechanisms string // comma-separated: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER
	// OAUTHBEARER: the JWKS (file or https URL) tokens are checked
	// against, and the claims required of them.
	OAuthJWKS     string
	OAuthIssuer   string
	OAuthAudience string // comma-separated; one must be in the token's aud
	OAuthSubClaim string
	// ConnectionsMaxReauth is Kafka's connections.max.reauth.ms (KIP-368):
	// a SASL connection must authenticate again within it (0: never).
	ConnectionsMaxReauth time.Duration

	// InterBrokerProtocol is the listener protocol a broker connects to its
	// peers over (default: the first listener's); its SASL credentials
	// are these, and its TLS client certificate is TLSCert. The peers'
	// certificates are verified against InterBrokerCA (default:
	// TLSClientCA, else the system's).
	InterBrokerProtocol     string
	InterBrokerMechanism    string
	InterBrokerUsername     string
	InterBrokerPasswordFile string
	InterBrokerCA           string

	// The audit trail writes up to AuditRate events per second, AuditBurst
	// at once; what is held back is counted in summary events.
	AuditRate  int32
	AuditBurst int32
	// AuditChainKeyFile holds the key of the audit records' chain links
	// (HMAC-SHA256; empty: plain SHA-256). Every broker needs the same.
	AuditChainKeyFile string

	Authorizer                string // "acl" or "none"
	SuperUsers                string // ;-separated principals allowed everything
	AllowEveryoneIfNoACLFound bool
}

// Default returns the embedded defaults.
func Default() Broker {
	return Broker{
		Listen:              "127.0.0.1:9092",
		AdminListen:         "127.0.0.1:9644",
		DataDir:             "./data",
		LogLevel:            "info",
		IngestSyslogFraming: "auto",
		Security: Security{
			SASLMechanisms:           "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
			OAuthSubClaim:            "sub",
			Authorizer:               "none",
			InterBrokerMechanism:     "SCRAM-SHA-512",
			AuditRate:                200,
			AuditBurst:               2000,
			SSLPrincipalMappingRules: "DEFAULT",
		},
		LeaseTTL:            5 * time.Second,
		WALFlushInterval:    5 * time.Millisecond,
		WALFlushBytes:       4 << 20,
		AutoCreateTopics:    true,
		DefaultPartitions:   1,
		RetentionMs:         7 * 24 * time.Hour.Milliseconds(),
		RetentionBytes:      -1,
		MaxMessageBytes:     1048588,
		CompressionType:     "producer",
		MaxRequestBytes:     100 << 20,
		FetchMaxBytes:       8 << 20,
		WALSync:             true,
		UploadInterval:      100 * time.Millisecond, // S3: S3UploadInterval, see Load
		SegmentBytes:        4 << 20,                // S3: S3SegmentBytes
		TailCacheBytes:      4 << 20,
		TableCommitInterval: 30 * time.Second,
		TableOrphanAge:      24 * time.Hour,

		ReadCacheBytes:  256 << 20,
		ReadWorkers:     4,
		ReadAheadBlocks: 4,

		CatchupPacing:  true,
		CatchupMinRate: 8 << 20,
		// Measured with the incident benchmark on two cores: paced 1 MiB
		// answers replayed 114-134 MB/s against 71-89 MB/s for 8 MiB
		// ones, at the same cost to the detection group's p99.
		CatchupChunkBytes: 1 << 20,
		CatchupSchedLimit: 2 * time.Millisecond,
		CatchupNice:       19,

		CompactTargetBytes: 64 << 20,

		RetentionCheckInterval: time.Minute,
		ObjectDeleteDelay:      time.Minute,

		OffsetsPartitions:     16,
		GroupInitialRebalance: 3 * time.Second,
		GroupMinSession:       6 * time.Second,
		OffsetsSnapshot:       10000,
		OffsetsRetention:      7 * 24 * time.Hour,
		OffsetsRetentionCheck: 10 * time.Minute,

		GroupConsumerSession:   45 * time.Second,
		GroupConsumerHeartbeat: 5 * time.Second,

		TransactionPartitions:     16,
		TransactionMaxTimeout:     15 * time.Minute,
		TransactionalIDExpiration: 7 * 24 * time.Hour,
		TransactionAbortInterval:  10 * time.Second,
	}
}

// option binds one setting to its flag, YAML key and environment variable.
type option struct {
	name  string // flag name and YAML key
	usage string
	ptr   any
}

// s3Default is the default of a flag that differs with an s3:// object
// store (see Load), or "".
func s3Default(name string) string {
	switch name {
	case "upload-interval":
		return S3UploadInterval.String()
	case "segment-bytes":
		return fmt.Sprint(S3SegmentBytes)
	}
	return ""
}

func (c *Broker) options() []option {
	return []option{
		{"listen", "comma-separated listeners, each [PROTOCOL://]host:port with PROTOCOL one of PLAINTEXT (the default), SSL, SASL_PLAINTEXT, SASL_SSL", &c.Listen},
		{"advertised", "comma-separated host:port advertised to clients in Metadata, one per --listen entry in its order (default: the --listen addresses)", &c.Advertised},
		{"admin-listen", "host:port for /metrics, /healthz and /readyz (empty: off)", &c.AdminListen},
		{"admin-token-file", "file whose first line is the bearer token the admin listener asks for, on every path but /healthz and /readyz (and /metrics from the broker's own host); without it /debug/pprof/ answers only the broker's own host", &c.AdminTokenFile},
		{"admin-tls", "serve the admin listener over TLS with --tls-cert and --tls-key", &c.AdminTLS},
		{"data-dir", "directory for the WAL, metadata and (by default) objects", &c.DataDir},
		{"object-store", "object store: a directory, file:///abs/dir, or s3://bucket[/prefix][?endpoint=HOST:PORT&region=R&path_style=BOOL&tls=BOOL&create_bucket=BOOL&timeout=D] (default: DATA-DIR/objects)", &c.ObjectStore},
		{"s3-access-key-id", "access key id of an s3:// object store (default: the AWS credential chain: AWS_ACCESS_KEY_ID, ~/.aws, instance role)", &c.S3AccessKeyID},
		{"s3-secret-access-key", "secret access key of an s3:// object store; prefer VIGIL_S3_SECRET_ACCESS_KEY or the config file, since flags show in ps", &c.S3SecretAccessKey},
		{"s3-ca", "PEM CA bundle an https:// S3 endpoint's certificate is verified against (default: the system's)", &c.S3CA},
		{"etcd-ca", "PEM CA bundle the etcd members' certificates are verified against: speak TLS to etcd", &c.EtcdCA},
		{"etcd-cert", "PEM client certificate for etcd's --client-cert-auth (with --etcd-key)", &c.EtcdCert},
		{"etcd-key", "PEM private key of --etcd-cert", &c.EtcdKey},
		{"etcd-username", "etcd user, for an etcd with authentication enabled (with --etcd-password-file)", &c.EtcdUsername},
		{"etcd-password-file", "file whose first line is the etcd user's password", &c.EtcdPasswordFile},
		{"metadata", "metadata store: etcd://host:port[,host:port...][/prefix] (default: the embedded file DATA-DIR/meta.db)", &c.Metadata},
		{"wal", "write-ahead log kind: file (default alone) or object (default and required with --metadata etcd://)", &c.WAL},
		{"log-level", "debug, info, warn or error", &c.LogLevel},
		{"node-id", "this broker's node id, unique in a cluster", &c.NodeID},
		{"zone", "this broker's zone (clients naming a zone in client.id, e.g. \"app;zone=a\", are routed to brokers of that zone)", &c.Zone},
		{"lease-ttl", "cluster membership lease: a dead broker's partitions move this long after its last keepalive", &c.LeaseTTL},
		{"wal-flush-interval", "object WAL: longest an acknowledged produce waits before its WAL chunk is written", &c.WALFlushInterval},
		{"wal-flush-bytes", "object WAL: write a WAL chunk early once this many bytes wait", &c.WALFlushBytes},
		{"auto-create-topics", "create unknown topics on Metadata and Produce", &c.AutoCreateTopics},
		{"default-partitions", "partitions of an auto-created topic (num.partitions)", &c.DefaultPartitions},
		{"retention-ms", "default retention.ms of topics (-1: forever)", &c.RetentionMs},
		{"retention-bytes", "default retention.bytes of topics per partition (-1: unlimited)", &c.RetentionBytes},
		{"max-message-bytes", "default max.message.bytes of topics (largest record batch)", &c.MaxMessageBytes},
		{"compression-type", "default compression.type of topics: producer (store batches as the producer compressed them), or uncompressed, gzip, snappy, lz4 or zstd (recompress batches in another codec on produce)", &c.CompressionType},
		{"max-request-bytes", "largest request frame accepted (socket.request.max.bytes)", &c.MaxRequestBytes},
		{"max-connection-creation-rate", "new connections per second accepted on all Kafka listeners together; beyond it accepting waits (max.connection.creation.rate; 0: unlimited)", &c.MaxConnectionCreationRate},
		{"fetch-max-bytes", "most record bytes one fetch response carries, whatever the client asks (fetch.max.bytes; at least one batch is always returned)", &c.FetchMaxBytes},
		{"wal-sync", "fsync the WAL before acknowledging (turn off only for tests)", &c.WALSync},
		{"upload-interval", "how often WAL contents are uploaded as segment objects", &c.UploadInterval},
		{"segment-bytes", "upload early once this many bytes are waiting, and cut objects there (up to 8 times as large while the uploads are behind)", &c.SegmentBytes},
		{"tail-cache-bytes", "per-partition bytes of recent batches kept in memory for tail reads", &c.TailCacheBytes},
		{"table-commit-interval", "longest a record waits before the lakehouse table of its topic (vigil.table.enabled) commits it", &c.TableCommitInterval},
		{"table-orphan-age", "age at which a lakehouse table's files of failed commits (named by no snapshot) are deleted; younger ones may belong to a commit in flight", &c.TableOrphanAge},
		{"read-cache-bytes", "memory for cached 1 MiB blocks of segment objects, read by catch-up fetches", &c.ReadCacheBytes},
		{"read-workers", "concurrent object reads of catch-up fetches (tail reads come from memory and never wait for these)", &c.ReadWorkers},
		{"read-ahead-blocks", "1 MiB blocks prefetched past each catch-up read, with idle workers only", &c.ReadAheadBlocks},
		{"catchup-pacing", "pace catch-up fetches (reads of segment objects) to what live produces and tail reads leave: halved while WAL commits or goroutine scheduling are slow, raised while not", &c.CatchupPacing},
		{"catchup-min-rate", "bytes/s below which catch-up pacing never throttles", &c.CatchupMinRate},
		{"catchup-max-rate", "bytes/s above which catch-up fetches are never served (0: no ceiling)", &c.CatchupMaxRate},
		{"catchup-commit-limit", "catch-up pacing halves its rate after 100 ms with a WAL commit slower than this (0: 5ms, or 10 flush intervals with --wal object)", &c.CatchupCommitLimit},
		{"catchup-sched-limit", "catch-up pacing halves its rate after 100 ms in which the broker's goroutines waited longer than this for a CPU (p99)", &c.CatchupSchedLimit},
		{"catchup-nice", "nice value (0-19, 0: off) of the thread that answers a connection whose last answer was read from segment objects (a replay), so the kernel runs the tail path first (Linux)", &c.CatchupNice},
		{"catchup-chunk-bytes", "with catch-up pacing, most bytes of segment objects one fetch answer carries (a short burst of reading, copying and sending; the pace decides how often)", &c.CatchupChunkBytes},
		{"ingest-syslog-tcp", "run the ingest service in this process: syslog over TCP on this address (empty: off)", &c.IngestSyslogTCP},
		{"ingest-syslog-udp", "run the ingest service in this process: syslog over UDP on this address (empty: off)", &c.IngestSyslogUDP},
		{"ingest-http", "run the ingest service in this process: HTTP events and Splunk HEC on this address (empty: off)", &c.IngestHTTP},
		{"ingest-hec-token", "token of the in-process ingest service's HEC endpoint (empty: HEC off)", &c.IngestHECToken},
		{"ingest-syslog-framing", "TCP syslog framing of the in-process ingest service: auto, octet-counted or newline (docs/ingest.md)", &c.IngestSyslogFraming},
		{"ingest-http-token-file", "file whose first line is the bearer token the in-process ingest service's /v1/events, /v1/stats and /metrics require", &c.IngestHTTPTokenFile},
		{"ingest-http-insecure", "let anyone who reaches a non-loopback --ingest-http address post events", &c.IngestHTTPInsecure},
		{"compact-target-bytes", "merge runs of small segment objects of a partition into objects of up to this size, at each retention check (0: off)", &c.CompactTargetBytes},
		{"retention-check-interval", "how often retention and moved log starts delete whole segment objects", &c.RetentionCheckInterval},
		{"object-delete-delay", "how long a segment object no index entry refers to is kept for reads in flight before it is deleted", &c.ObjectDeleteDelay},
		{"offsets-partitions", "partitions of __consumer_offsets (used only when it is first created)", &c.OffsetsPartitions},
		{"group-initial-rebalance-delay", "how long the first rebalance of an empty group waits for more members", &c.GroupInitialRebalance},
		{"group-min-session-timeout", "smallest session timeout a group member may use", &c.GroupMinSession},
		{"group-consumer-session-timeout", "session timeout of consumer-protocol (KIP-848) group members, set by the coordinator", &c.GroupConsumerSession},
		{"group-consumer-heartbeat-interval", "heartbeat interval the coordinator gives consumer-protocol (KIP-848) group members", &c.GroupConsumerHeartbeat},
		{"offsets-snapshot-records", "snapshot a __consumer_offsets partition once it holds more than twice its live records plus this many", &c.OffsetsSnapshot},
		{"offsets-retention", "how long committed offsets outlive their group's last member (or, for a group that only commits, their commit)", &c.OffsetsRetention},
		{"offsets-retention-check-interval", "how often expired committed offsets, and those of deleted topics, are removed", &c.OffsetsRetentionCheck},
		{"transaction-state-partitions", "partitions of __transaction_state (used only when it is first created)", &c.TransactionPartitions},
		{"transaction-max-timeout", "longest transaction timeout a producer may ask for (transaction.max.timeout.ms)", &c.TransactionMaxTimeout},
		{"transactional-id-expiration", "how long a transactional id with no transaction outlives its last use (transactional.id.expiration.ms)", &c.TransactionalIDExpiration},
		{"transaction-abort-check-interval", "how often transactions past their timeout are looked for and aborted", &c.TransactionAbortInterval},
		{"tls-cert", "PEM certificate (chain) of the SSL and SASL_SSL listeners; reread when it changes", &c.Security.TLSCert},
		{"tls-key", "PEM private key of --tls-cert", &c.Security.TLSKey},
		{"tls-client-ca", "PEM CA bundle client certificates are verified against (mTLS: the principal is User:<subject>)", &c.Security.TLSClientCA},
		{"tls-client-auth", "client certificates: none, requested or required (ssl.client.auth; default: required with --tls-client-ca, else none)", &c.Security.TLSClientAuth},
		{"ssl-principal-mapping-rules", "Kafka's ssl.principal.mapping.rules: RULE:pattern/replacement/[LU], ..., DEFAULT, applied to a client certificate's subject", &c.Security.SSLPrincipalMappingRules},
		{"sasl-mechanisms", "SASL mechanisms of the SASL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (the last needs --sasl-oauthbearer-jwks)", &c.Security.SASLMechanisms},
		{"sasl-oauthbearer-jwks", "OAUTHBEARER: the JWKS tokens are verified against, a file (reread when it changes) or an https:// URL (refreshed)", &c.Security.OAuthJWKS},
		{"sasl-oauthbearer-issuer", "OAUTHBEARER: the iss a token must carry (empty: any)", &c.Security.OAuthIssuer},
		{"sasl-oauthbearer-audience", "OAUTHBEARER: comma-separated audiences, one of which a token's aud must name (empty: any)", &c.Security.OAuthAudience},
		{"sasl-oauthbearer-sub-claim", "OAUTHBEARER: the claim that names the principal", &c.Security.OAuthSubClaim},
		{"connections-max-reauth", "a SASL connection must authenticate again within this (KIP-368 connections.max.reauth.ms; 0: never); OAUTHBEARER sessions also end with their token", &c.Security.ConnectionsMaxReauth},
		{"authorizer", "none (every client may do everything) or acl (Kafka ACLs, managed with CreateAcls/DeleteAcls or vigil acls)", &c.Security.Authorizer},
		{"super-users", "semicolon-separated principals the acl authorizer allows everything, e.g. User:admin;User:broker", &c.Security.SuperUsers},
		{"inter-broker-protocol", "listener protocol brokers connect to each other over, to forward a zone's requests (default: the first --listen entry's); add the brokers' own principal to --super-users", &c.Security.InterBrokerProtocol},
		{"inter-broker-sasl-mechanism", "SASL mechanism a broker authenticates to its peers with, on a SASL inter-broker protocol", &c.Security.InterBrokerMechanism},
		{"inter-broker-sasl-username", "SASL user a broker authenticates to its peers as", &c.Security.InterBrokerUsername},
		{"inter-broker-sasl-password-file", "file whose first line is that user's password", &c.Security.InterBrokerPasswordFile},
		{"inter-broker-tls-ca", "PEM CA bundle the peers' certificates are verified against (default: --tls-client-ca, else the system's); a broker presents --tls-cert to its peers", &c.Security.InterBrokerCA},
		{"audit-rate", "events per second the audit trail (_vigil.audit) writes one by one; beyond, they are counted in one summary event per kind, principal and host each second", &c.Security.AuditRate},
		{"audit-burst", "events the audit trail writes at once above --audit-rate", &c.Security.AuditBurst},
		{"audit-chain-key-file", "file whose first line (at least 32 bytes) keys the audit records' hash chain with HMAC-SHA256, so that whoever can write the object store cannot forge it (empty: plain SHA-256); the same on every broker, and given to vigil audit verify --key-file", &c.Security.AuditChainKeyFile},
		{"allow-everyone-if-no-acl-found", "acl authorizer: allow access to a resource that no ACL names (allow.everyone.if.no.acl.found)", &c.Security.AllowEveryoneIfNoACLFound},
	}
}

// PrintUsage writes the flags of `vigil serve`, with their defaults, to w.
func PrintUsage(name string, w io.Writer) {
	c := Default()
	fs, _, _ := c.flagSet(name)
	fs.SetOutput(w)
	fmt.Fprintf(w, "Usage: %s [flags]\n\nFlags (each also VIGIL_<NAME> in the environment, or a key of the --config file):\n", name)
	fs.PrintDefaults()
}

// flagSet binds every option of c to a flag.
func (c *Broker) flagSet(name string) (*flag.FlagSet, *string, []option) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	configPath := fs.String("config", "", "YAML config file (keys are the flag names)")
	opts := c.options()
	for _, o := range opts {
		switch p := o.ptr.(type) {
		case *string:
			fs.StringVar(p, o.name, *p, o.usage)
		case *Secret:
			fs.Func(o.name, o.usage, func(s string) error { return setValue(p, s) })
		case *bool:
			fs.BoolVar(p, o.name, *p, o.usage)
		case *int32:
			fs.Func(o.name, o.usage, func(s string) error { return setValue(p, s) })
			fs.Lookup(o.name).DefValue = fmt.Sprint(*p)
		case *int64:
			fs.Int64Var(p, o.name, *p, o.usage)
		case *time.Duration:
			fs.DurationVar(p, o.name, *p, o.usage)
		default:
			panic(fmt.Sprintf("config: option %s has unsupported type %T", o.name, p))
		}
		if d := s3Default(o.name); d != "" {
			// The flag package prints DefValue as "(default X)": the S3
			// default joins it there rather than a second "(default ...)".
			fs.Lookup(o.name).DefValue += "; " + d + " with an s3:// object store"
		}
	}
	return fs, configPath, opts
}

// Load parses args (without the program and subcommand names) with env
// and an optional YAML file. It prints nothing: it returns flag.ErrHelp
// for -h (PrintUsage prints the flags) and an error for a bad flag.
func Load(name string, args []string, getenv func(string) string) (Broker, error) {
	c := Default()
	fs, configPath, opts := c.flagSet(name)
	if err := cliflag.ParseOnly(fs, args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	given := map[string]bool{} // by a flag, the file or the environment
	for k := range set {
		given[k] = true
	}

	// Flags were parsed into c already; file and env apply only to the
	// settings no flag named, so precedence holds without reparsing.
	if *configPath == "" {
		*configPath = getenv("VIGIL_CONFIG")
	}
	if *configPath != "" {
		raw, err := os.ReadFile(*configPath)
		if err != nil {
			return c, fmt.Errorf("read config file: %w", err)
		}
		var file map[string]any
		if err := yaml.Unmarshal(raw, &file); err != nil {
			return c, fmt.Errorf("parse config file %s: %w", *configPath, err)
		}
		known := map[string]option{}
		for _, o := range opts {
			known[o.name] = o
		}
		for k, v := range file {
			o, ok := known[k]
			if !ok {
				return c, fmt.Errorf("config file %s: unknown key %q", *configPath, k)
			}
			if set[k] || getenv(envName(k)) != "" {
				continue
			}
			if err := setValue(o.ptr, fmt.Sprint(v)); err != nil {
				return c, fmt.Errorf("config file %s: key %s: %w", *configPath, k, err)
			}
			given[k] = true
		}
	}
	for _, o := range opts {
		if set[o.name] {
			continue
		}
		if v := getenv(envName(o.name)); v != "" {
			if err := setValue(o.ptr, v); err != nil {
				return c, fmt.Errorf("environment %s: %w", envName(o.name), err)
			}
			given[o.name] = true
		}
	}
	if strings.HasPrefix(c.ObjectStore, "s3://") {
		// On S3 every upload is a PUT, paid for: fewer, larger ones. On a
		// local directory small frequent uploads keep the disk's queue
		// short beside the WAL's flushes (the produce benchmark's paced
		// p99 was lower in each of four interleaved pairs of runs, 4.1-4.7
		// ms against 5.0-8.5 ms with 250 ms and 16 MiB).
		if !given["upload-interval"] {
			c.UploadInterval = S3UploadInterval
		}
		if !given["segment-bytes"] {
			c.SegmentBytes = S3SegmentBytes
		}
	}
	return c, c.finish()
}

// Upload defaults with an S3 object store, where each upload is a paid
// PUT (see Load); vigil cost prices them.
const (
	S3UploadInterval = 250 * time.Millisecond
	S3SegmentBytes   = 16 << 20
)

func envName(flagName string) string {
	return "VIGIL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func setValue(ptr any, s string) error {
	switch p := ptr.(type) {
	case *string:
		*p = s
	case *Secret:
		*p = Secret(s)
	case *bool:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", s)
		}
		*p = v
	case *int32:
		v, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a 32-bit integer", s)
		}
		*p = int32(v)
	case *int64:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		*p = v
	case *time.Duration:
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (like 500ms or 2s)", s)
		}
		*p = v
	default:
		return fmt.Errorf("unsupported type %T", ptr)
	}
	return nil
}

// finish validates and fills derived defaults.
func (c *Broker) finish() error {
	var errs []error
	if c.Advertised == "" {
		c.Advertised = c.Listen
	}
	var err error
	if c.Listeners, err = ParseListeners(c.Listen, c.Advertised); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Security.check(c.Listeners, c.AdminTLS)...)
	if c.WAL == "" {
		c.WAL = "file"
		if c.Metadata != "" {
			c.WAL = "object"
		}
	}
	switch c.WAL {
	case "file":
		if c.Metadata != "" {
			errs = append(errs, errors.New("--wal file with --metadata etcd://...: a broker of a cluster must write its WAL to the shared object store (--wal object), or the partitions it leads cannot be recovered by another broker when it dies"))
		}
	case "object":
		if c.NodeID < 0 {
			errs = append(errs, fmt.Errorf("--node-id %d: the object WAL keys its chunks by node id, which must not be negative", c.NodeID))
		}
	default:
		errs = append(errs, fmt.Errorf("--wal %q: must be file or object", c.WAL))
	}
	if c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("--lease-ttl %s: must be at least 1s", c.LeaseTTL))
	}
	if c.WALFlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("--wal-flush-interval %s: must be positive", c.WALFlushInterval))
	}
	if c.WALFlushBytes < 1024 {
		errs = append(errs, fmt.Errorf("--wal-flush-bytes %d: must be at least 1024", c.WALFlushBytes))
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	if c.ObjectStore == "" {
		c.ObjectStore = filepath.Join(c.DataDir, "objects")
	}
	if (c.S3AccessKeyID == "") != (c.S3SecretAccessKey == "") {
		errs = append(errs, errors.New("--s3-access-key-id and --s3-secret-access-key must be given together"))
	}
	if c.S3AccessKeyID != "" && !strings.HasPrefix(c.ObjectStore, "s3://") {
		errs = append(errs, fmt.Errorf("--s3-access-key-id and --s3-secret-access-key need an s3:// --object-store, not %q", c.ObjectStore))
	}
	if c.Metadata != "" {
		if _, _, err := ParseEtcdURL(c.Metadata); err != nil {
			errs = append(errs, fmt.Errorf("--metadata %q: %w", c.Metadata, err))
		}
	}
	if (c.EtcdCA != "" || c.EtcdCert != "" || c.EtcdUsername != "") && c.Metadata == "" {
		errs = append(errs, errors.New("--etcd-ca, --etcd-cert and --etcd-username need --metadata etcd://..."))
	}
	if (c.EtcdCert == "") != (c.EtcdKey == "") {
		errs = append(errs, errors.New("--etcd-cert and --etcd-key go together"))
	}
	if (c.EtcdUsername == "") != (c.EtcdPasswordFile == "") {
		errs = append(errs, errors.New("--etcd-username and --etcd-password-file go together"))
	}
	if c.DefaultPartitions < 1 {
		errs = append(errs, fmt.Errorf("--default-partitions %d: must be at least 1", c.DefaultPartitions))
	}
	if c.MaxMessageBytes < 1 {
		errs = append(errs, fmt.Errorf("--max-message-bytes %d: must be positive", c.MaxMessageBytes))
	}
	switch c.CompressionType {
	case "producer", "uncompressed", "gzip", "snappy", "lz4", "zstd":
	default:
		errs = append(errs, fmt.Errorf("--compression-type %q: must be producer, uncompressed, gzip, snappy, lz4 or zstd", c.CompressionType))
	}
	if c.FetchMaxBytes < 1024 {
		errs = append(errs, fmt.Errorf("--fetch-max-bytes %d: must be at least 1024", c.FetchMaxBytes))
	}
	if c.MaxConnectionCreationRate < 0 {
		errs = append(errs, fmt.Errorf("--max-connection-creation-rate %d: must be 0 (unlimited) or positive", c.MaxConnectionCreationRate))
	}
	if c.MaxRequestBytes < 1024 {
		errs = append(errs, fmt.Errorf("--max-request-bytes %d: must be at least 1024", c.MaxRequestBytes))
	}
	if c.ReadCacheBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("--read-cache-bytes %d: must be at least 1 MiB (one block)", c.ReadCacheBytes))
	}
	if c.ReadWorkers < 1 {
		errs = append(errs, fmt.Errorf("--read-workers %d: must be at least 1", c.ReadWorkers))
	}
	if c.ReadAheadBlocks < 0 {
		errs = append(errs, fmt.Errorf("--read-ahead-blocks %d: must not be negative", c.ReadAheadBlocks))
	}
	if c.CatchupMinRate < 1<<20 {
		errs = append(errs, fmt.Errorf("--catchup-min-rate %d: must be at least 1 MiB/s (1048576), or a replay may crawl", c.CatchupMinRate))
	}
	if c.CatchupCommitLimit < 0 {
		errs = append(errs, fmt.Errorf("--catchup-commit-limit %s: must not be negative", c.CatchupCommitLimit))
	}
	if c.CatchupSchedLimit < 100*time.Microsecond {
		errs = append(errs, fmt.Errorf("--catchup-sched-limit %s: must be at least 100µs (a healthy broker's goroutines wait about that long)", c.CatchupSchedLimit))
	}
	if c.CatchupNice < 0 || c.CatchupNice > 19 {
		errs = append(errs, fmt.Errorf("--catchup-nice %d: must be 0 (off) to 19", c.CatchupNice))
	}
	if c.CatchupChunkBytes < 1024 {
		errs = append(errs, fmt.Errorf("--catchup-chunk-bytes %d: must be at least 1024", c.CatchupChunkBytes))
	}
	if c.CatchupMaxRate != 0 && c.CatchupMaxRate < c.CatchupMinRate {
		errs = append(errs, fmt.Errorf("--catchup-max-rate %d: must be 0 (no ceiling) or at least --catchup-min-rate %d", c.CatchupMaxRate, c.CatchupMinRate))
	}
	if c.CompactTargetBytes < 0 {
		errs = append(errs, fmt.Errorf("--compact-target-bytes %d: must not be negative", c.CompactTargetBytes))
	}
	if c.RetentionCheckInterval <= 0 {
		errs = append(errs, fmt.Errorf("--retention-check-interval %s: must be positive", c.RetentionCheckInterval))
	}
	if c.ObjectDeleteDelay < 0 {
		errs = append(errs, fmt.Errorf("--object-delete-delay %s: must not be negative", c.ObjectDeleteDelay))
	}
	if c.UploadInterval <= 0 {
		errs = append(errs, fmt.Errorf("--upload-interval %s: must be positive", c.UploadInterval))
	}
	if c.TableCommitInterval <= 0 {
		errs = append(errs, fmt.Errorf("--table-commit-interval %s: must be positive", c.TableCommitInterval))
	}
	if c.TableOrphanAge < 2*c.TableCommitInterval {
		errs = append(errs, fmt.Errorf("--table-orphan-age %s: must be at least twice --table-commit-interval (%s), or the sweep could delete the files of a commit in flight", c.TableOrphanAge, c.TableCommitInterval))
	}
	if c.OffsetsPartitions < 1 {
		errs = append(errs, fmt.Errorf("--offsets-partitions %d: must be at least 1", c.OffsetsPartitions))
	}
	if c.GroupInitialRebalance < 0 {
		errs = append(errs, fmt.Errorf("--group-initial-rebalance-delay %s: must not be negative", c.GroupInitialRebalance))
	}
	if c.GroupMinSession <= 0 {
		errs = append(errs, fmt.Errorf("--group-min-session-timeout %s: must be positive", c.GroupMinSession))
	}
	if c.GroupConsumerHeartbeat <= 0 || c.GroupConsumerSession <= c.GroupConsumerHeartbeat {
		errs = append(errs, fmt.Errorf("--group-consumer-heartbeat-interval %s: must be positive and below --group-consumer-session-timeout %s", c.GroupConsumerHeartbeat, c.GroupConsumerSession))
	}
	if c.OffsetsSnapshot < 1 {
		errs = append(errs, fmt.Errorf("--offsets-snapshot-records %d: must be positive", c.OffsetsSnapshot))
	}
	if c.OffsetsRetention <= 0 {
		errs = append(errs, fmt.Errorf("--offsets-retention %s: must be positive", c.OffsetsRetention))
	}
	if c.OffsetsRetentionCheck <= 0 {
		errs = append(errs, fmt.Errorf("--offsets-retention-check-interval %s: must be positive", c.OffsetsRetentionCheck))
	}
	if c.TransactionPartitions < 1 {
		errs = append(errs, fmt.Errorf("--transaction-state-partitions %d: must be at least 1", c.TransactionPartitions))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"transaction-max-timeout", c.TransactionMaxTimeout}, {"transactional-id-expiration", c.TransactionalIDExpiration},
		{"transaction-abort-check-interval", c.TransactionAbortInterval}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("--%s %s: must be positive", d.name, d.v))
		}
	}
	if c.SegmentBytes < 1 {
		errs = append(errs, fmt.Errorf("--segment-bytes %d: must be positive", c.SegmentBytes))
	}
	return errors.Join(errs...)
}

// Secret is a setting that must not show in logs or error messages: it
// prints as "[redacted]" (also inside a %v of the whole config). string(s)
// is the value.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// DefaultEtcdPrefix is the key prefix of an etcd:// metadata URL without
// a path.
const DefaultEtcdPrefix = "/vigil/"

// ParseEtcdURL splits etcd://host:port[,host:port...][/prefix] into the
// endpoints and the key prefix (ending in "/"; DefaultEtcdPrefix if the
// URL has no path). Several Vigil clusters can share one etcd cluster
// under different prefixes, e.g. etcd://etcd1:2379,etcd2:2379/vigil/prod.
func ParseEtcdURL(s string) (endpoints []string, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "etcd://")
	if !ok {
		return nil, "", errors.New("must be an etcd://host:port[,host:port...][/prefix] URL (or empty for the embedded file)")
	}
	hosts, path, _ := strings.Cut(rest, "/")
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			return nil, "", fmt.Errorf("endpoint %q: %w", h, err)
		}
		if host == "" {
			return nil, "", fmt.Errorf("endpoint %q: missing host", h)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, "", fmt.Errorf("endpoint %q: bad port", h)
		}
		endpoints = append(endpoints, h)
	}
	prefix = DefaultEtcdPrefix
	if path = strings.Trim(path, "/"); path != "" {
		prefix = "/" + path + "/"
	}
	return endpoints, prefix, nil
}

// ParseLevel maps --log-level to a slog level.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: must be debug, info, warn or error", s)
	}
	return l, nil
}
