package server

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/vigilhq/vigil/internal/acl"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/sasl"
	"github.com/vigilhq/vigil/internal/security"
)

// The authorization matrix: for every API the broker serves (as its
// ApiVersions lists them), a principal holding exactly the ACLs Kafka
// requires succeeds, and one without gets Kafka's error code where Kafka
// puts it. Then the rules around it: DENY beats ALLOW, prefixed ACLs, the
// wildcard principal, hosts, super users, Metadata's filtering and
// auto-creation, allow.everyone.if.no.acl.found, KIP-679, and a consumer
// group holding the ACLs `kafka-acls --consumer` grants.

// authzEnv is a broker with the ACL authorizer, User:admin as its super
// user and a SASL_PLAINTEXT listener (PLAIN and SCRAM-SHA-256).
type authzEnv struct {
	ts    *testServer
	addr  string
	adm   *kadm.Client // as User:admin
	users map[string]bool
}

func startAuthzServer(t *testing.T, allowEveryone bool) *authzEnv {
	t.Helper()
	ts := startServer(t, t.TempDir(), func(c *config.Broker) {
		c.Listen = "SASL_PLAINTEXT://127.0.0.1:0"
		c.Advertised = ""
		c.Security.SASLMechanisms = "PLAIN,SCRAM-SHA-256"
		c.Security.Authorizer = "acl"
		c.Security.SuperUsers = "User:admin"
		c.Security.AllowEveryoneIfNoACLFound = allowEveryone
	})
	e := &authzEnv{ts: ts, addr: ts.srv.ListenerAddr(config.SASLPlaintext).String(), users: map[string]bool{}}
	e.adm = kadm.NewClient(e.client(t, "admin"))
	return e
}

func authzPassword(user string) string { return "pw-of-" + user }

// user makes sure user has a SCRAM credential (so PLAIN works), stored
// directly: creating users through the API needs a user first.
func (e *authzEnv) user(t *testing.T, user string) {
	t.Helper()
	if e.users[user] {
		return
	}
	cred, err := sasl.NewScramCredential(sasl.ScramSHA256, authzPassword(user), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ts.srv.security.AlterScram(context.Background(), []security.ScramChange{{User: user, Mechanism: sasl.ScramSHA256, Credential: &cred}}); err != nil {
		t.Fatal(err)
	}
	e.users[user] = true
}

// client is a franz-go client authenticated as user.
func (e *authzEnv) client(t *testing.T, user string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	e.user(t, user)
	base := []kgo.Opt{kgo.SeedBrokers(e.addr), kgo.SASL(plain.Auth{User: user, Pass: authzPassword(user)}.AsMechanism()),
		kgo.MetadataMinAge(100 * time.Millisecond), kgo.RetryTimeout(10 * time.Second)}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// conn is a raw connection authenticated as user (SASL PLAIN, v1).
func (e *authzEnv) conn(t *testing.T, user string) net.Conn {
	t.Helper()
	e.user(t, user)
	nc, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if code := saslPlain(t, nc, user, authzPassword(user)); code != 0 {
		t.Fatalf("authenticate %s: %v", user, kerr.ErrorForCode(code))
	}
	return nc
}

// saslPlain runs a v1 PLAIN exchange and returns the first error code.
func saslPlain(t *testing.T, nc net.Conn, user, pass string) int16 {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	if r := roundTrip(t, nc, hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		return r.ErrorCode
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version = 1
	au.SASLAuthBytes = []byte("\x00" + user + "\x00" + pass)
	return roundTrip(t, nc, au).(*kmsg.SASLAuthenticateResponse).ErrorCode
}

// grant stores ACLs; this broker applies them before it returns.
func (e *authzEnv) grant(t *testing.T, bs ...acl.Binding) {
	t.Helper()
	if err := e.ts.srv.security.CreateACLs(context.Background(), bs); err != nil {
		t.Fatalf("create ACLs %v: %v", bs, err)
	}
}

// aclEntry is one ACL: on a resource pattern, for a principal (the user's,
// unless it names a principal type), from a host ("" for any).
type aclEntry struct {
	rt      kmsg.ACLResourceType
	name    string
	prefix  bool
	op      kmsg.ACLOperation
	deny    bool
	host    string
	princpl string // "User:*" and the like; "" for the user's own
}

func (a aclEntry) binding(user string) acl.Binding {
	b := acl.Binding{ResourceType: a.rt, ResourceName: a.name, PatternType: kmsg.ACLResourcePatternTypeLiteral,
		Principal: "User:" + user, Host: "*", Operation: a.op, Permission: kmsg.ACLPermissionTypeAllow}
	if a.prefix {
		b.PatternType = kmsg.ACLResourcePatternTypePrefixed
	}
	if a.deny {
		b.Permission = kmsg.ACLPermissionTypeDeny
	}
	if a.host != "" {
		b.Host = a.host
	}
	if a.princpl != "" {
		b.Principal = a.princpl
	}
	return b
}

func (a aclEntry) String() string {
	perm := "ALLOW"
	if a.deny {
		perm = "DENY"
	}
	pattern := ""
	if a.prefix {
		pattern = " (prefixed)"
	}
	return fmt.Sprintf("%s %s on %s %s%s", perm, a.op, a.rt, a.name, pattern)
}

func (e *authzEnv) grantTo(t *testing.T, user string, as ...aclEntry) {
	t.Helper()
	var bs []acl.Binding
	for _, a := range as {
		bs = append(bs, a.binding(user))
	}
	if len(bs) > 0 {
		e.grant(t, bs...)
	}
}

func onTopic(name string, op kmsg.ACLOperation) aclEntry {
	return aclEntry{rt: kmsg.ACLResourceTypeTopic, name: name, op: op}
}

func onGroup(name string, op kmsg.ACLOperation) aclEntry {
	return aclEntry{rt: kmsg.ACLResourceTypeGroup, name: name, op: op}
}

func onCluster(op kmsg.ACLOperation) aclEntry {
	return aclEntry{rt: kmsg.ACLResourceTypeCluster, name: "kafka-cluster", op: op}
}

// matrixRow is one API of the matrix.
type matrixRow struct {
	key    kmsg.Key
	grants []aclEntry // exactly what the API needs, for the row's user
	setup  func(t *testing.T, e *authzEnv)
	req    func() kmsg.Request
	where  string                    // where the code is, for messages
	code   func(kmsg.Response) int16 // the code at where
	ok     *kerr.Error               // the allowed principal's code (nil: none)
	denied *kerr.Error               // the code of a principal without the ACLs
	// without[i]: the code of a principal holding every grant but grants[i]
	// (rows needing several ACLs).
	without []*kerr.Error
	check   func(t *testing.T, e *authzEnv, resp kmsg.Response, allowed bool)
	// raw replaces req/code for the SASL APIs: it runs on a new,
	// unauthenticated connection as user and returns the code.
	raw func(t *testing.T, e *authzEnv, user string) int16
}

func (r matrixRow) name() string { return kmsg.NameForKey(r.key.Int16()) }

// user is the row's principal: "mx-" and the API's name.
func (r matrixRow) user() string { return "mx-" + strings.ToLower(r.name()) }

func mxTopic(api string) string { return "mxt-" + strings.ToLower(api) }
func mxGroup(api string) string { return "mxg-" + strings.ToLower(api) }
func mxTxnID(api string) string { return "mxx-" + strings.ToLower(api) }

func onTxnID(name string, op kmsg.ACLOperation) aclEntry {
	return aclEntry{rt: kmsg.ACLResourceTypeTransactionalId, name: name, op: op}
}

// initTxnAsAdmin gives a transactional id a producer (epoch 0) as the
// super user and returns its producer id.
func (e *authzEnv) initTxnAsAdmin(t *testing.T, id string) int64 {
	t.Helper()
	return initTxn(t, e.conn(t, "admin"), id)
}

// initTxn is InitProducerId for a transactional id over nc: its producer
// id, at epoch 0.
func initTxn(t *testing.T, nc net.Conn, id string) int64 {
	t.Helper()
	r := versioned(kmsg.NewPtrInitProducerIDRequest(), 4)
	r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.TransactionTimeoutMillis = &id, -1, -1, 60000
	resp := roundTrip(t, nc, r).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 || resp.ProducerEpoch != 0 {
		t.Fatalf("InitProducerId of %s: %s, epoch %d", id, codeName(resp.ErrorCode), resp.ProducerEpoch)
	}
	return resp.ProducerID
}

// addPartitionAsAdmin adds a topic's partition 0 to a transaction.
func (e *authzEnv) addPartitionAsAdmin(t *testing.T, id string, pid int64, topic string) {
	t.Helper()
	addPartition(t, e.conn(t, "admin"), id, pid, topic)
}

func addPartition(t *testing.T, nc net.Conn, id string, pid int64, topic string) {
	t.Helper()
	r := versioned(kmsg.NewPtrAddPartitionsToTxnRequest(), 3)
	r.TransactionalID, r.ProducerID = id, pid
	r.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: topic, Partitions: []int32{0}}}
	if code := roundTrip(t, nc, r).(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("AddPartitionsToTxn of %s: %s", id, codeName(code))
	}
}

// versioned sets a request's version.
func versioned[R kmsg.Request](r R, v int16) R {
	r.SetVersion(v)
	return r
}

// commitAsAdmin creates a group holding an offset (for the group APIs).
func commitAsAdmin(t *testing.T, e *authzEnv, group, topic string) {
	t.Helper()
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 1, LeaderEpoch: -1})
	resp, err := e.adm.CommitOffsets(context.Background(), group, offs)
	if err != nil || resp.Error() != nil {
		t.Fatalf("commit as admin to %s: %v %v", group, err, resp.Error())
	}
}

func topicSetup(topics ...string) func(t *testing.T, e *authzEnv) {
	return func(t *testing.T, e *authzEnv) {
		createTopics(t, testCtx(t, 30*time.Second), e.adm, 1, nil, topics...)
	}
}

func authzMatrix() []matrixRow {
	const (
		read, write, create, del      = kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDelete
		alter, describe               = kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe
		describeConfigs, alterConfigs = kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs
		idempotentWrite               = kmsg.ACLOperationIdempotentWrite
	)
	topic, group, txnID := mxTopic, mxGroup, mxTxnID
	topicAuthz, groupAuthz, clusterAuthz := kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed, kerr.ClusterAuthorizationFailed
	txnAuthz := kerr.TransactionalIDAuthorizationFailed
	ids := map[string]int64{} // the producer id of each transactional row, from its setup

	// The topic id of each row naming its topic by id, from its setup.
	topicIDs := map[string][16]byte{}
	idSetup := func(api string) func(t *testing.T, e *authzEnv) {
		return func(t *testing.T, e *authzEnv) {
			topicSetup(topic(api))(t, e)
			topicIDs[api], _, _ = e.ts.srv.store.TopicInfo(topic(api))
		}
	}
	return []matrixRow{
		{
			key: kmsg.Produce, grants: []aclEntry{onTopic(topic("Produce"), write)}, setup: topicSetup(topic("Produce")),
			req:   func() kmsg.Request { return produceReq(topic("Produce"), 0, -1, makeBatch(1, 10)) },
			where: "topics[0].partitions[0]", denied: topicAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				if p := r.(*kmsg.ProduceResponse).Topics[0].Partitions[0]; (p.BaseOffset >= 0) != allowed {
					t.Errorf("base offset %d", p.BaseOffset)
				}
			},
		},
		{
			key: kmsg.Fetch, grants: []aclEntry{onTopic(topic("Fetch"), read)}, setup: topicSetup(topic("Fetch")),
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrFetchRequest(), 12)
				r.ReplicaID, r.MaxBytes, r.MinBytes, r.SessionEpoch = -1, 1<<20, 1, -1
				r.Topics = []kmsg.FetchRequestTopic{{Topic: topic("Fetch"), Partitions: []kmsg.FetchRequestTopicPartition{
					{Partition: 0, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1, LogStartOffset: -1, PartitionMaxBytes: 1 << 20}}}}
				return r
			},
			where: "topics[0].partitions[0]", denied: topicAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				if p := r.(*kmsg.FetchResponse).Topics[0].Partitions[0]; !allowed && p.HighWatermark != -1 {
					t.Errorf("refused partition's high watermark %d, want -1", p.HighWatermark)
				}
			},
		},
		{
			key: kmsg.ListOffsets, grants: []aclEntry{onTopic(topic("ListOffsets"), describe)}, setup: topicSetup(topic("ListOffsets")),
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrListOffsetsRequest(), 7)
				r.ReplicaID = -1
				r.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: topic("ListOffsets"),
					Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, Timestamp: -1}}}}
				return r
			},
			where: "topics[0].partitions[0]", denied: topicAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode },
		},
		{
			key: kmsg.Metadata, grants: []aclEntry{onTopic(topic("Metadata"), describe)}, setup: topicSetup(topic("Metadata")),
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrMetadataRequest(), 12)
				name := topic("Metadata")
				r.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
				r.IncludeTopicAuthorizedOperations = true
				return r
			},
			where: "topics[0]", denied: topicAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.MetadataResponse).Topics[0].ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				mt := r.(*kmsg.MetadataResponse).Topics[0]
				switch {
				case allowed && (len(mt.Partitions) != 1 || mt.AuthorizedOperations != 1<<describe):
					t.Errorf("allowed: %d partitions, authorized operations %b (want Describe only)", len(mt.Partitions), mt.AuthorizedOperations)
				case !allowed && (len(mt.Partitions) != 0 || mt.TopicID != [16]byte{} || mt.AuthorizedOperations != -2147483648):
					t.Errorf("refused topic disclosed: %+v", mt)
				}
			},
		},
		{
			key: kmsg.DescribeTopicPartitions, grants: []aclEntry{onTopic(topic("DescribeTopicPartitions"), describe)}, setup: topicSetup(topic("DescribeTopicPartitions")),
			req: func() kmsg.Request {
				r := kmsg.NewPtrDescribeTopicPartitionsRequest()
				r.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: topic("DescribeTopicPartitions")}}
				return r
			},
			where: "topics[0]", denied: topicAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeTopicPartitionsResponse).Topics[0].ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				dt := r.(*kmsg.DescribeTopicPartitionsResponse).Topics[0]
				switch {
				case allowed && (len(dt.Partitions) != 1 || dt.AuthorizedOperations != 1<<describe):
					t.Errorf("allowed: %d partitions, authorized operations %b (want Describe only)", len(dt.Partitions), dt.AuthorizedOperations)
				case !allowed && (len(dt.Partitions) != 0 || dt.TopicID != [16]byte{} || dt.AuthorizedOperations != -2147483648):
					t.Errorf("refused topic disclosed: %+v", dt)
				}
			},
		},
		{
			key: kmsg.OffsetForLeaderEpoch, grants: []aclEntry{onTopic(topic("OffsetForLeaderEpoch"), describe)}, setup: topicSetup(topic("OffsetForLeaderEpoch")),
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrOffsetForLeaderEpochRequest(), 4)
				r.ReplicaID = -1
				r.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: topic("OffsetForLeaderEpoch"),
					Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, LeaderEpoch: 0}}}}
				return r
			},
			where: "topics[0].partitions[0]", denied: topicAuthz,
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0].ErrorCode
			},
		},
		{
			key: kmsg.ApiVersions, // no authorization
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrApiVersionsRequest(), 3)
				r.ClientSoftwareName, r.ClientSoftwareVersion = "matrix", "1"
				return r
			},
			where: "error_code", code: func(r kmsg.Response) int16 { return r.(*kmsg.ApiVersionsResponse).ErrorCode },
		},
		{
			key: kmsg.SASLHandshake, // no authorization: it is how a client authenticates
			raw: func(t *testing.T, e *authzEnv, user string) int16 {
				nc, err := net.Dial("tcp", e.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				hs := kmsg.NewPtrSASLHandshakeRequest()
				hs.Version, hs.Mechanism = 1, "PLAIN"
				return roundTrip(t, nc, hs).(*kmsg.SASLHandshakeResponse).ErrorCode
			},
			where: "error_code",
		},
		{
			key: kmsg.SASLAuthenticate, // no authorization
			raw: func(t *testing.T, e *authzEnv, user string) int16 {
				e.user(t, user)
				nc, err := net.Dial("tcp", e.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				return saslPlain(t, nc, user, authzPassword(user))
			},
			where: "error_code",
		},
		{
			key: kmsg.CreateTopics, grants: []aclEntry{onTopic(topic("CreateTopics"), create)},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrCreateTopicsRequest(), 7)
				r.TimeoutMillis = 5000
				r.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: topic("CreateTopics"), NumPartitions: 1, ReplicationFactor: 1}}
				return r
			},
			where: "topics[0]", denied: topicAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				st := r.(*kmsg.CreateTopicsResponse).Topics[0]
				if !allowed {
					if st.ErrorMessage == nil || *st.ErrorMessage != "Authorization failed." {
						t.Errorf("refused: message %v", st.ErrorMessage)
					}
					if topicExists(t, e, topic("CreateTopics")) {
						t.Errorf("refused creation created the topic")
					}
					return
				}
				// Create without DescribeConfigs: no partition count,
				// replication factor or configs, the topic id still.
				if st.NumPartitions != -1 || st.ReplicationFactor != -1 || len(st.Configs) != 0 ||
					st.ConfigErrorCode != kerr.TopicAuthorizationFailed.Code || st.TopicID == [16]byte{} {
					t.Errorf("created without DescribeConfigs: %+v", st)
				}
			},
		},
		{
			key: kmsg.DeleteTopics, grants: []aclEntry{onTopic(topic("DeleteTopics"), del)}, setup: topicSetup(topic("DeleteTopics")),
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrDeleteTopicsRequest(), 6)
				name := topic("DeleteTopics")
				r.TimeoutMillis, r.Topics = 5000, []kmsg.DeleteTopicsRequestTopic{{Topic: &name}}
				return r
			},
			where: "topics[0]", denied: topicAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				if exists := topicExists(t, e, topic("DeleteTopics")); exists == allowed {
					t.Errorf("allowed %v: the topic exists: %v (%+v)", allowed, exists, r)
				}
			},
		},
		{
			key: kmsg.DeleteRecords, grants: []aclEntry{onTopic(topic("DeleteRecords"), del)}, setup: topicSetup(topic("DeleteRecords")),
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrDeleteRecordsRequest(), 2)
				r.TimeoutMillis = 5000
				r.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: topic("DeleteRecords"), Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 0}}}}
				return r
			},
			where: "topics[0].partitions[0]", denied: topicAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				if p := r.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]; !allowed && p.LowWatermark != -1 {
					t.Errorf("refused: low watermark %d", p.LowWatermark)
				}
			},
		},
		{
			key: kmsg.DescribeConfigs, grants: []aclEntry{onTopic(topic("DescribeConfigs"), describeConfigs)}, setup: topicSetup(topic("DescribeConfigs")),
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrDescribeConfigsRequest(), 4)
				r.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic("DescribeConfigs")}}
				return r
			},
			where: "resources[0]", denied: topicAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeConfigsResponse).Resources[0].ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				res := r.(*kmsg.DescribeConfigsResponse).Resources[0]
				if allowed != (len(res.Configs) > 0) || (!allowed && (res.ErrorMessage == nil || *res.ErrorMessage != "Topic authorization failed.")) {
					t.Errorf("allowed %v: %d configs, message %v", allowed, len(res.Configs), res.ErrorMessage)
				}
			},
		},
		{
			key: kmsg.AlterConfigs, grants: []aclEntry{onTopic(topic("AlterConfigs"), alterConfigs)}, setup: topicSetup(topic("AlterConfigs")),
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrAlterConfigsRequest(), 2)
				v := "3600000"
				r.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic("AlterConfigs"),
					Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: &v}}}}
				return r
			},
			where: "resources[0]", denied: topicAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode },
		},
		{
			key: kmsg.CreatePartitions, grants: []aclEntry{onTopic(topic("CreatePartitions"), alter)}, setup: topicSetup(topic("CreatePartitions")),
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrCreatePartitionsRequest(), 3)
				r.TimeoutMillis = 5000
				r.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: topic("CreatePartitions"), Count: 2}}
				return r
			},
			where: "topics[0]", denied: topicAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode },
		},
		{
			key: kmsg.IncrementalAlterConfigs, grants: []aclEntry{onTopic(topic("IncrementalAlterConfigs"), alterConfigs)},
			setup: topicSetup(topic("IncrementalAlterConfigs")),
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrIncrementalAlterConfigsRequest(), 1)
				v := "3600000"
				r.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic("IncrementalAlterConfigs"),
					Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: &v}}}}
				return r
			},
			where: "resources[0]", denied: topicAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode },
		},
		{
			// Kafka refuses no one DescribeCluster; the cluster's authorized
			// operations are 0 without Describe on it.
			key: kmsg.DescribeCluster, grants: []aclEntry{onCluster(describe)},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrDescribeClusterRequest(), 1)
				r.IncludeClusterAuthorizedOperations, r.EndpointType = true, 1
				return r
			},
			where: "error_code", code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeClusterResponse).ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				dc := r.(*kmsg.DescribeClusterResponse)
				want := int32(0)
				if allowed {
					want = 1 << describe
				}
				if dc.ClusterAuthorizedOperations != want || len(dc.Brokers) != 1 {
					t.Errorf("allowed %v: cluster authorized operations %b (want %b), %d brokers", allowed, dc.ClusterAuthorizedOperations, want, len(dc.Brokers))
				}
			},
		},
		{
			key: kmsg.DescribeLogDirs, grants: []aclEntry{onCluster(describe)},
			req:   func() kmsg.Request { return versioned(kmsg.NewPtrDescribeLogDirsRequest(), 4) },
			where: "error_code", denied: clusterAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeLogDirsResponse).ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				if n := len(r.(*kmsg.DescribeLogDirsResponse).Dirs); allowed != (n == 1) {
					t.Errorf("allowed %v: %d log dirs", allowed, n)
				}
			},
		},
		{
			key: kmsg.AddPartitionsToTxn, grants: []aclEntry{onTxnID(txnID("AddPartitionsToTxn"), write), onTopic(topic("AddPartitionsToTxn"), write)},
			setup: func(t *testing.T, e *authzEnv) {
				topicSetup(topic("AddPartitionsToTxn"))(t, e)
				ids["AddPartitionsToTxn"] = e.initTxnAsAdmin(t, txnID("AddPartitionsToTxn"))
			},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrAddPartitionsToTxnRequest(), 3)
				r.TransactionalID, r.ProducerID, r.ProducerEpoch = txnID("AddPartitionsToTxn"), ids["AddPartitionsToTxn"], 0
				r.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: topic("AddPartitionsToTxn"), Partitions: []int32{0}}}
				return r
			},
			where: "topics[0].partitions[0]", denied: txnAuthz, without: []*kerr.Error{txnAuthz, topicAuthz},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode
			},
		},
		{
			key: kmsg.AddOffsetsToTxn, grants: []aclEntry{onTxnID(txnID("AddOffsetsToTxn"), write), onGroup(group("AddOffsetsToTxn"), read)},
			setup: func(t *testing.T, e *authzEnv) {
				ids["AddOffsetsToTxn"] = e.initTxnAsAdmin(t, txnID("AddOffsetsToTxn"))
			},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrAddOffsetsToTxnRequest(), 3)
				r.TransactionalID, r.ProducerID, r.ProducerEpoch = txnID("AddOffsetsToTxn"), ids["AddOffsetsToTxn"], 0
				r.Group = group("AddOffsetsToTxn")
				return r
			},
			where: "error_code", denied: txnAuthz, without: []*kerr.Error{txnAuthz, groupAuthz},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode },
		},
		{
			// The transaction has a partition, so the allowed abort ends it.
			key: kmsg.EndTxn, grants: []aclEntry{onTxnID(txnID("EndTxn"), write)},
			setup: func(t *testing.T, e *authzEnv) {
				topicSetup(topic("EndTxn"))(t, e)
				ids["EndTxn"] = e.initTxnAsAdmin(t, txnID("EndTxn"))
				e.addPartitionAsAdmin(t, txnID("EndTxn"), ids["EndTxn"], topic("EndTxn"))
			},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrEndTxnRequest(), 3)
				r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = txnID("EndTxn"), ids["EndTxn"], 0, false
				return r
			},
			where: "error_code", denied: txnAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.EndTxnResponse).ErrorCode },
		},
		{
			// A marker of a producer with nothing ongoing ends nothing.
			key: kmsg.WriteTxnMarkers, grants: []aclEntry{onCluster(kmsg.ACLOperationClusterAction)}, setup: topicSetup(topic("WriteTxnMarkers")),
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrWriteTxnMarkersRequest(), 1)
				m := kmsg.NewWriteTxnMarkersRequestMarker()
				m.ProducerID, m.ProducerEpoch = 424242, 0
				m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: topic("WriteTxnMarkers"), Partitions: []int32{0}}}
				r.Markers = []kmsg.WriteTxnMarkersRequestMarker{m}
				return r
			},
			where: "markers[0].topics[0].partitions[0]", denied: clusterAuthz,
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode
			},
		},
		{
			key: kmsg.TxnOffsetCommit, grants: []aclEntry{onTxnID(txnID("TxnOffsetCommit"), write), onGroup(group("TxnOffsetCommit"), read),
				onTopic(topic("TxnOffsetCommit"), read)},
			setup: func(t *testing.T, e *authzEnv) {
				topicSetup(topic("TxnOffsetCommit"))(t, e)
				ids["TxnOffsetCommit"] = e.initTxnAsAdmin(t, txnID("TxnOffsetCommit"))
				ao := versioned(kmsg.NewPtrAddOffsetsToTxnRequest(), 3)
				ao.TransactionalID, ao.ProducerID, ao.Group = txnID("TxnOffsetCommit"), ids["TxnOffsetCommit"], group("TxnOffsetCommit")
				if r := roundTrip(t, e.conn(t, "admin"), ao).(*kmsg.AddOffsetsToTxnResponse); r.ErrorCode != 0 {
					t.Fatalf("AddOffsetsToTxn as admin: %s", codeName(r.ErrorCode))
				}
			},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrTxnOffsetCommitRequest(), 3)
				r.TransactionalID, r.Group, r.ProducerID, r.Generation = txnID("TxnOffsetCommit"), group("TxnOffsetCommit"), ids["TxnOffsetCommit"], -1
				r.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: topic("TxnOffsetCommit"),
					Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}}}}
				return r
			},
			where: "topics[0].partitions[0]", denied: txnAuthz, without: []*kerr.Error{txnAuthz, groupAuthz, topicAuthz},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
			},
		},
		{
			key: kmsg.DescribeTransactions, grants: []aclEntry{onTxnID(txnID("DescribeTransactions"), describe)},
			setup: func(t *testing.T, e *authzEnv) { e.initTxnAsAdmin(t, txnID("DescribeTransactions")) },
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrDescribeTransactionsRequest(), 0)
				r.TransactionalIDs = []string{txnID("DescribeTransactions")}
				return r
			},
			where: "transaction_states[0]", denied: txnAuthz,
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.DescribeTransactionsResponse).TransactionStates[0].ErrorCode
			},
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				if st := r.(*kmsg.DescribeTransactionsResponse).TransactionStates[0]; (st.State == "Empty") != allowed {
					t.Errorf("allowed %v: %+v", allowed, st)
				}
			},
		},
		{
			// No error either way: the ids a principal may not describe
			// are left out.
			key: kmsg.ListTransactions, grants: []aclEntry{onTxnID(txnID("ListTransactions"), describe)},
			setup: func(t *testing.T, e *authzEnv) { e.initTxnAsAdmin(t, txnID("ListTransactions")) },
			req:   func() kmsg.Request { return versioned(kmsg.NewPtrListTransactionsRequest(), 1) },
			where: "error_code",
			code:  func(r kmsg.Response) int16 { return r.(*kmsg.ListTransactionsResponse).ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				var listed []string
				for _, st := range r.(*kmsg.ListTransactionsResponse).TransactionStates {
					listed = append(listed, st.TransactionalID)
				}
				if want := []string(nil); allowed {
					want = []string{txnID("ListTransactions")}
					if !slices.Equal(listed, want) {
						t.Errorf("allowed: listed %v, want %v", listed, want)
					}
				} else if len(listed) != 0 {
					t.Errorf("without ACLs: listed %v", listed)
				}
			},
		},
		{
			key: kmsg.DescribeProducers, grants: []aclEntry{onTopic(topic("DescribeProducers"), read)}, setup: topicSetup(topic("DescribeProducers")),
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrDescribeProducersRequest(), 0)
				r.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: topic("DescribeProducers"), Partitions: []int32{0}}}
				return r
			},
			where: "topics[0].partitions[0]", denied: topicAuthz,
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0].ErrorCode
			},
		},
		{
			key: kmsg.DescribeACLs, grants: []aclEntry{onCluster(describe)},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrDescribeACLsRequest(), 3)
				r.ResourceType, r.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
				r.Operation, r.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
				return r
			},
			where: "error_code", denied: clusterAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeACLsResponse).ErrorCode },
		},
		{
			key: kmsg.CreateACLs, grants: []aclEntry{onCluster(alter)},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrCreateACLsRequest(), 3)
				r.Creations = []kmsg.CreateACLsRequestCreation{{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: "mxt-acl-target",
					ResourcePatternType: kmsg.ACLResourcePatternTypeLiteral, Principal: "User:someone", Host: "*",
					Operation: kmsg.ACLOperationRead, PermissionType: kmsg.ACLPermissionTypeAllow}}
				return r
			},
			where: "results[0]", denied: clusterAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.CreateACLsResponse).Results[0].ErrorCode },
		},
		{
			key: kmsg.DeleteACLs, grants: []aclEntry{onCluster(alter)},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrDeleteACLsRequest(), 3)
				name, who := "mxt-acl-target", "User:someone"
				r.Filters = []kmsg.DeleteACLsRequestFilter{{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: &name,
					ResourcePatternType: kmsg.ACLResourcePatternTypeLiteral, Principal: &who,
					Operation: kmsg.ACLOperationAny, PermissionType: kmsg.ACLPermissionTypeAny}}
				return r
			},
			where: "results[0]", denied: clusterAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DeleteACLsResponse).Results[0].ErrorCode },
		},
		{
			key: kmsg.DescribeUserSCRAMCredentials, grants: []aclEntry{onCluster(describe)},
			req:   func() kmsg.Request { return versioned(kmsg.NewPtrDescribeUserSCRAMCredentialsRequest(), 0) },
			where: "error_code", denied: clusterAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeUserSCRAMCredentialsResponse).ErrorCode },
		},
		{
			key: kmsg.AlterUserSCRAMCredentials, grants: []aclEntry{onCluster(alter)},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrAlterUserSCRAMCredentialsRequest(), 0)
				salt := []byte("0123456789abcdef")
				salted, err := pbkdf2.Key(sha256.New, "new-password", salt, 4096, sha256.Size)
				if err != nil {
					panic(err)
				}
				r.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{{Name: "mx-scram-new", Mechanism: 1, Iterations: 4096,
					Salt: salt, SaltedPassword: salted}}
				return r
			},
			where: "results[0]", denied: clusterAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.AlterUserSCRAMCredentialsResponse).Results[0].ErrorCode },
		},
		{
			key: kmsg.InitProducerID, grants: []aclEntry{onCluster(idempotentWrite)},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrInitProducerIDRequest(), 4)
				r.ProducerID, r.ProducerEpoch, r.TransactionTimeoutMillis = -1, -1, 60000
				return r
			},
			where: "error_code", denied: clusterAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.InitProducerIDResponse).ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				if id := r.(*kmsg.InitProducerIDResponse).ProducerID; (id >= 0) != allowed {
					t.Errorf("allowed %v: producer id %d", allowed, id)
				}
			},
		},
		{
			key: kmsg.DescribeClientQuotas, grants: []aclEntry{onCluster(describeConfigs)},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrDescribeClientQuotasRequest(), 1)
				r.Components = []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "user", MatchType: kmsg.QuotasMatchTypeAny}}
				return r
			},
			where: "error_code", denied: clusterAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeClientQuotasResponse).ErrorCode },
		},
		{
			key: kmsg.AlterClientQuotas, grants: []aclEntry{onCluster(alterConfigs)},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrAlterClientQuotasRequest(), 1)
				who := "quota-user"
				r.ValidateOnly = true
				r.Entries = []kmsg.AlterClientQuotasRequestEntry{{Entity: []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "user", Name: &who}},
					Ops: []kmsg.AlterClientQuotasRequestEntryOp{{Key: "producer_byte_rate", Value: 1 << 20}}}}
				return r
			},
			where: "entries[0]", denied: clusterAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.AlterClientQuotasResponse).Entries[0].ErrorCode },
		},
		{
			key: kmsg.FindCoordinator, grants: []aclEntry{onGroup(group("FindCoordinator"), describe)},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrFindCoordinatorRequest(), 4)
				r.CoordinatorKeys = []string{group("FindCoordinator")}
				return r
			},
			where: "coordinators[0]", denied: groupAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.FindCoordinatorResponse).Coordinators[0].ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				if co := r.(*kmsg.FindCoordinatorResponse).Coordinators[0]; (co.NodeID >= 0) != allowed {
					t.Errorf("allowed %v: coordinator %+v", allowed, co)
				}
			},
		},
		{
			// Past authorization the coordinator asks a new member for its id.
			key: kmsg.JoinGroup, grants: []aclEntry{onGroup(group("JoinGroup"), read)},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrJoinGroupRequest(), 5)
				r.Group, r.SessionTimeoutMillis, r.RebalanceTimeoutMillis, r.ProtocolType = group("JoinGroup"), 10000, 10000, "consumer"
				r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}}
				return r
			},
			where: "error_code", ok: kerr.MemberIDRequired, denied: groupAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.JoinGroupResponse).ErrorCode },
		},
		{
			key: kmsg.SyncGroup, grants: []aclEntry{onGroup(group("SyncGroup"), read)},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrSyncGroupRequest(), 3)
				r.Group, r.MemberID, r.Generation = group("SyncGroup"), "member-1", 1
				return r
			},
			where: "error_code", ok: kerr.UnknownMemberID, denied: groupAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.SyncGroupResponse).ErrorCode },
		},
		{
			key: kmsg.Heartbeat, grants: []aclEntry{onGroup(group("Heartbeat"), read)},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrHeartbeatRequest(), 3)
				r.Group, r.MemberID, r.Generation = group("Heartbeat"), "member-1", 1
				return r
			},
			where: "error_code", ok: kerr.UnknownMemberID, denied: groupAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.HeartbeatResponse).ErrorCode },
		},
		{
			key: kmsg.LeaveGroup, grants: []aclEntry{onGroup(group("LeaveGroup"), read)},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrLeaveGroupRequest(), 3)
				r.Group, r.Members = group("LeaveGroup"), []kmsg.LeaveGroupRequestMember{{MemberID: "member-1"}}
				return r
			},
			where: "error_code", denied: groupAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.LeaveGroupResponse).ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				ms := r.(*kmsg.LeaveGroupResponse).Members
				if allowed != (len(ms) == 1 && ms[0].ErrorCode == kerr.UnknownMemberID.Code) {
					t.Errorf("allowed %v: members %+v", allowed, ms)
				}
			},
		},
		{
			key: kmsg.OffsetCommit, grants: []aclEntry{onGroup(group("OffsetCommit"), read), onTopic(topic("OffsetCommit"), read)},
			setup: topicSetup(topic("OffsetCommit")),
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrOffsetCommitRequest(), 8)
				r.Group, r.Generation = group("OffsetCommit"), -1
				r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic("OffsetCommit"),
					Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}}}}
				return r
			},
			where: "topics[0].partitions[0]", denied: groupAuthz, without: []*kerr.Error{groupAuthz, topicAuthz},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode },
		},
		{
			key: kmsg.OffsetFetch, grants: []aclEntry{onGroup(group("OffsetFetch"), describe), onTopic(topic("OffsetFetch"), describe)},
			setup: func(t *testing.T, e *authzEnv) {
				topicSetup(topic("OffsetFetch"))(t, e)
				commitAsAdmin(t, e, group("OffsetFetch"), topic("OffsetFetch"))
			},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrOffsetFetchRequest(), 7)
				r.Group = group("OffsetFetch")
				r.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic("OffsetFetch"), Partitions: []int32{0}}}
				return r
			},
			where: "error_code, else topics[0].partitions[0]", denied: groupAuthz, without: []*kerr.Error{groupAuthz, topicAuthz},
			code: func(r kmsg.Response) int16 {
				of := r.(*kmsg.OffsetFetchResponse)
				if of.ErrorCode != 0 || len(of.Topics) == 0 {
					return of.ErrorCode
				}
				return of.Topics[0].Partitions[0].ErrorCode
			},
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				of := r.(*kmsg.OffsetFetchResponse)
				if allowed && (len(of.Topics) != 1 || of.Topics[0].Partitions[0].Offset != 1) {
					t.Errorf("allowed: %+v", of.Topics)
				}
			},
		},
		{
			// v10 names the topic by id; Read is checked on the name the
			// id resolves to.
			key: kmsg.OffsetCommit, grants: []aclEntry{onGroup(group("OffsetCommitByID"), read), onTopic(topic("OffsetCommitByID"), read)},
			setup: idSetup("OffsetCommitByID"),
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrOffsetCommitRequest(), 10)
				r.Group, r.Generation = group("OffsetCommitByID"), -1
				r.Topics = []kmsg.OffsetCommitRequestTopic{{TopicID: topicIDs["OffsetCommitByID"],
					Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}}}}
				return r
			},
			where: "topics[0].partitions[0]", denied: groupAuthz, without: []*kerr.Error{groupAuthz, topicAuthz},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				if id := r.(*kmsg.OffsetCommitResponse).Topics[0].TopicID; id != topicIDs["OffsetCommitByID"] {
					t.Errorf("answered topic id %x, want %x", id, topicIDs["OffsetCommitByID"])
				}
			},
		},
		{
			key: kmsg.OffsetFetch, grants: []aclEntry{onGroup(group("OffsetFetchByID"), describe), onTopic(topic("OffsetFetchByID"), describe)},
			setup: func(t *testing.T, e *authzEnv) {
				idSetup("OffsetFetchByID")(t, e)
				commitAsAdmin(t, e, group("OffsetFetchByID"), topic("OffsetFetchByID"))
			},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrOffsetFetchRequest(), 10)
				r.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group("OffsetFetchByID"), MemberEpoch: -1,
					Topics: []kmsg.OffsetFetchRequestGroupTopic{{TopicID: topicIDs["OffsetFetchByID"], Partitions: []int32{0}}}}}
				return r
			},
			where: "groups[0].error_code, else groups[0].topics[0].partitions[0]", denied: groupAuthz, without: []*kerr.Error{groupAuthz, topicAuthz},
			code: func(r kmsg.Response) int16 {
				g := r.(*kmsg.OffsetFetchResponse).Groups[0]
				if g.ErrorCode != 0 || len(g.Topics) == 0 {
					return g.ErrorCode
				}
				return g.Topics[0].Partitions[0].ErrorCode
			},
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				g := r.(*kmsg.OffsetFetchResponse).Groups[0]
				if allowed && (len(g.Topics) != 1 || g.Topics[0].TopicID != topicIDs["OffsetFetchByID"] || g.Topics[0].Partitions[0].Offset != 1) {
					t.Errorf("allowed: %+v", g.Topics)
				}
			},
		},
		{
			// Listing is never refused: a principal sees the groups it may
			// describe (all of them with Describe on the cluster).
			key: kmsg.ListGroups, grants: []aclEntry{onGroup(group("ListGroups"), describe)},
			setup: func(t *testing.T, e *authzEnv) {
				topicSetup(topic("ListGroups"))(t, e)
				commitAsAdmin(t, e, group("ListGroups"), topic("ListGroups"))
			},
			req:   func() kmsg.Request { return versioned(kmsg.NewPtrListGroupsRequest(), 4) },
			where: "error_code", code: func(r kmsg.Response) int16 { return r.(*kmsg.ListGroupsResponse).ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				var ids []string
				for _, g := range r.(*kmsg.ListGroupsResponse).Groups {
					ids = append(ids, g.Group)
				}
				want := []string{}
				if allowed {
					want = []string{group("ListGroups")}
				}
				if !slices.Equal(ids, want) && !(len(ids) == 0 && len(want) == 0) {
					t.Errorf("allowed %v: listed %v, want %v", allowed, ids, want)
				}
			},
		},
		{
			key: kmsg.DescribeGroups, grants: []aclEntry{onGroup(group("DescribeGroups"), describe)},
			setup: func(t *testing.T, e *authzEnv) {
				topicSetup(topic("DescribeGroups"))(t, e)
				commitAsAdmin(t, e, group("DescribeGroups"), topic("DescribeGroups"))
			},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrDescribeGroupsRequest(), 5)
				r.Groups, r.IncludeAuthorizedOperations = []string{group("DescribeGroups")}, true
				return r
			},
			where: "groups[0]", denied: groupAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				g := r.(*kmsg.DescribeGroupsResponse).Groups[0]
				want := int32(-2147483648)
				if allowed {
					want = 1 << describe
				}
				if g.AuthorizedOperations != want || (!allowed && (g.State != "" || g.ProtocolType != "")) {
					t.Errorf("allowed %v: %+v (authorized operations want %b)", allowed, g, want)
				}
			},
		},
		{
			// A join of the consumer group protocol (KIP-848) subscribing
			// by name: Read on the group, Describe on each topic.
			key: kmsg.ConsumerGroupHeartbeat, grants: []aclEntry{onGroup(group("ConsumerGroupHeartbeat"), read), onTopic(topic("ConsumerGroupHeartbeat"), describe)},
			setup: topicSetup(topic("ConsumerGroupHeartbeat")),
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrConsumerGroupHeartbeatRequest(), 1)
				r.Group, r.MemberID, r.MemberEpoch, r.RebalanceTimeoutMillis = group("ConsumerGroupHeartbeat"), "mx-member-1", 0, 5000
				r.SubscribedTopicNames, r.Topics = []string{topic("ConsumerGroupHeartbeat")}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
				return r
			},
			where: "error_code", denied: groupAuthz, without: []*kerr.Error{groupAuthz, topicAuthz},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode },
			check: func(t *testing.T, e *authzEnv, r kmsg.Response, allowed bool) {
				hb := r.(*kmsg.ConsumerGroupHeartbeatResponse)
				if allowed && (hb.MemberEpoch != 1 || hb.Assignment == nil || len(hb.Assignment.Topics) != 1) {
					t.Errorf("allowed: epoch %d, assignment %+v", hb.MemberEpoch, hb.Assignment)
				}
			},
		},
		{
			key: kmsg.ConsumerGroupDescribe, grants: []aclEntry{onGroup(group("ConsumerGroupDescribe"), describe)},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrConsumerGroupDescribeRequest(), 1)
				r.Groups = []string{group("ConsumerGroupDescribe")}
				return r
			},
			where: "groups[0]", ok: kerr.GroupIDNotFound, denied: groupAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ConsumerGroupDescribeResponse).Groups[0].ErrorCode },
		},
		{
			key: kmsg.DeleteGroups, grants: []aclEntry{onGroup(group("DeleteGroups"), del)},
			setup: func(t *testing.T, e *authzEnv) {
				topicSetup(topic("DeleteGroups"))(t, e)
				commitAsAdmin(t, e, group("DeleteGroups"), topic("DeleteGroups"))
			},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrDeleteGroupsRequest(), 2)
				r.Groups = []string{group("DeleteGroups")}
				return r
			},
			where: "groups[0]", denied: groupAuthz,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode },
		},
		{
			key: kmsg.OffsetDelete, grants: []aclEntry{onGroup(group("OffsetDelete"), del), onTopic(topic("OffsetDelete"), read)},
			setup: func(t *testing.T, e *authzEnv) {
				topicSetup(topic("OffsetDelete"))(t, e)
				commitAsAdmin(t, e, group("OffsetDelete"), topic("OffsetDelete"))
			},
			req: func() kmsg.Request {
				r := versioned(kmsg.NewPtrOffsetDeleteRequest(), 0)
				r.Group = group("OffsetDelete")
				r.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: topic("OffsetDelete"), Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
				return r
			},
			where: "error_code, else topics[0].partitions[0]", denied: groupAuthz, without: []*kerr.Error{groupAuthz, topicAuthz},
			code: func(r kmsg.Response) int16 {
				od := r.(*kmsg.OffsetDeleteResponse)
				if od.ErrorCode != 0 || len(od.Topics) == 0 {
					return od.ErrorCode
				}
				return od.Topics[0].Partitions[0].ErrorCode
			},
		},
	}
}

// topicExists asks as the super user, without auto-creating it.
func topicExists(t *testing.T, e *authzEnv, topic string) bool {
	t.Helper()
	r := versioned(kmsg.NewPtrMetadataRequest(), 12)
	r.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	r.AllowAutoTopicCreation = false
	return roundTrip(t, e.conn(t, "admin"), r).(*kmsg.MetadataResponse).Topics[0].ErrorCode == 0
}

func codeName(code int16) string {
	if code == 0 {
		return "no error"
	}
	return kerr.ErrorForCode(code).Error()
}

func wantCodeOf(e *kerr.Error) int16 {
	if e == nil {
		return 0
	}
	return e.Code
}

// TestAuthzMatrix runs every row, denied principal first (a refused
// request must change nothing the allowed one then relies on).
func TestAuthzMatrix(t *testing.T) {
	e := startAuthzServer(t, false)
	rows := authzMatrix()

	// The matrix covers exactly what the broker serves: an API added to
	// the table without a row fails here, as does a row of an API gone.
	av := versioned(kmsg.NewPtrApiVersionsRequest(), 3)
	av.ClientSoftwareName, av.ClientSoftwareVersion = "matrix", "1"
	served := map[int16]bool{}
	for _, k := range roundTrip(t, e.conn(t, "nobody"), av).(*kmsg.ApiVersionsResponse).ApiKeys {
		served[k.ApiKey] = true
	}
	covered := map[int16]bool{}
	for _, r := range rows {
		covered[r.key.Int16()] = true
		if !served[r.key.Int16()] {
			t.Errorf("matrix row for %s, which the broker does not serve", r.name())
		}
	}
	for k := range served {
		if !covered[k] {
			t.Errorf("API %s (key %d) is served but has no row in the authorization matrix", kmsg.NameForKey(k), k)
		}
	}

	for _, r := range rows {
		t.Run(r.name(), func(t *testing.T) {
			if r.setup != nil {
				r.setup(t, e)
			}
			run := func(user string) (int16, kmsg.Response) {
				if r.raw != nil {
					return r.raw(t, e, user), nil
				}
				resp := roundTrip(t, e.conn(t, user), r.req())
				return r.code(resp), resp
			}
			// A principal holding none of it.
			code, resp := run("nobody")
			if code != wantCodeOf(r.denied) {
				t.Errorf("without ACLs: %s at %s, want %s", codeName(code), r.where, codeName(wantCodeOf(r.denied)))
			}
			if r.check != nil && resp != nil {
				r.check(t, e, resp, false)
			}
			// Principals holding all but one of several ACLs.
			for i, missing := range r.without {
				user := fmt.Sprintf("%s-without-%d", r.user(), i)
				var held []aclEntry
				for j, g := range r.grants {
					if j != i {
						held = append(held, g)
					}
				}
				e.grantTo(t, user, held...)
				if code, _ := run(user); code != missing.Code {
					t.Errorf("without %v: %s at %s, want %s", r.grants[i], codeName(code), r.where, missing.Message)
				}
			}
			// The principal holding exactly what the API needs.
			e.grantTo(t, r.user(), r.grants...)
			code, resp = run(r.user())
			if code != wantCodeOf(r.ok) {
				t.Errorf("with %v: %s at %s, want %s", r.grants, codeName(code), r.where, codeName(wantCodeOf(r.ok)))
			}
			if r.check != nil && resp != nil {
				r.check(t, e, resp, true)
			}
		})
	}
}

// authzTopics creates topics as the super user.
func (e *authzEnv) topics(t *testing.T, topics ...string) {
	t.Helper()
	createTopics(t, testCtx(t, 30*time.Second), e.adm, 1, nil, topics...)
}

// produceCode produces one record as user over a raw connection.
func (e *authzEnv) produceCode(t *testing.T, user, topic string) int16 {
	t.Helper()
	return roundTrip(t, e.conn(t, user), produceReq(topic, 0, -1, makeBatch(1, 10))).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
}

// fetchCode fetches a topic's partition 0 as user.
func (e *authzEnv) fetchCode(t *testing.T, user, topic string) int16 {
	t.Helper()
	r := versioned(kmsg.NewPtrFetchRequest(), 12)
	r.ReplicaID, r.MaxBytes, r.MinBytes, r.SessionEpoch = -1, 1<<20, 1, -1
	r.Topics = []kmsg.FetchRequestTopic{{Topic: topic, Partitions: []kmsg.FetchRequestTopicPartition{
		{Partition: 0, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1, LogStartOffset: -1, PartitionMaxBytes: 1 << 20}}}}
	return roundTrip(t, e.conn(t, user), r).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode
}

func wantAuthzCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	if got != wantCodeOf(want) {
		t.Errorf("%s: %s, want %s", what, codeName(got), codeName(wantCodeOf(want)))
	}
}

// TestAuthzRules: how ACLs combine, as Kafka's authorizer decides.
func TestAuthzRules(t *testing.T) {
	e := startAuthzServer(t, false)
	const read, write, describe = kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe
	topicAuthz := kerr.TopicAuthorizationFailed

	t.Run("deny beats allow", func(t *testing.T) {
		e.topics(t, "dn-1", "dn-2", "dn-3")
		e.grantTo(t, "u-deny", onTopic("dn-1", read), aclEntry{rt: kmsg.ACLResourceTypeTopic, name: "dn-1", op: read, deny: true})
		wantAuthzCode(t, "fetch with ALLOW and DENY Read", e.fetchCode(t, "u-deny", "dn-1"), topicAuthz)
		// ALLOW All on a prefix, DENY Write on one literal topic.
		e.grantTo(t, "u-deny2", aclEntry{rt: kmsg.ACLResourceTypeTopic, name: "dn-", prefix: true, op: kmsg.ACLOperationAll},
			aclEntry{rt: kmsg.ACLResourceTypeTopic, name: "dn-2", op: write, deny: true})
		wantAuthzCode(t, "produce to the denied topic", e.produceCode(t, "u-deny2", "dn-2"), topicAuthz)
		wantAuthzCode(t, "produce to another topic of the prefix", e.produceCode(t, "u-deny2", "dn-3"), nil)
		// A DENY of Read does not deny Describe (implication is for ALLOW only).
		e.grantTo(t, "u-deny3", onTopic("dn-3", describe), aclEntry{rt: kmsg.ACLResourceTypeTopic, name: "dn-3", op: read, deny: true})
		wantAuthzCode(t, "ListOffsets with Describe and DENY Read", listOffsetsCode(t, e, "u-deny3", "dn-3"), nil)
		wantAuthzCode(t, "fetch with DENY Read", e.fetchCode(t, "u-deny3", "dn-3"), topicAuthz)
	})

	t.Run("prefixed ACL", func(t *testing.T) {
		e.topics(t, "pfx-a", "xpfx-a")
		e.grantTo(t, "u-pfx", aclEntry{rt: kmsg.ACLResourceTypeTopic, name: "pfx-", prefix: true, op: write})
		wantAuthzCode(t, "produce under the prefix", e.produceCode(t, "u-pfx", "pfx-a"), nil)
		wantAuthzCode(t, "produce outside the prefix", e.produceCode(t, "u-pfx", "xpfx-a"), topicAuthz)
		// Write implies Describe: the producer sees the topic's metadata.
		wantAuthzCode(t, "ListOffsets under the prefix", listOffsetsCode(t, e, "u-pfx", "pfx-a"), nil)
	})

	t.Run("wildcard principal", func(t *testing.T) {
		e.topics(t, "wc-1", "wc-2")
		e.grant(t, aclEntry{rt: kmsg.ACLResourceTypeTopic, name: "wc-1", op: describe, princpl: "User:*"}.binding(""))
		wantAuthzCode(t, "a principal with no ACL of its own, User:* allowed", listOffsetsCode(t, e, "u-anyone", "wc-1"), nil)
		wantAuthzCode(t, "another topic", listOffsetsCode(t, e, "u-anyone", "wc-2"), topicAuthz)
		// And the wildcard resource "*".
		e.grantTo(t, "u-star", onTopic("*", read))
		wantAuthzCode(t, "Read on every topic", e.fetchCode(t, "u-star", "wc-2"), nil)
	})

	t.Run("host-specific", func(t *testing.T) {
		e.topics(t, "hs-1")
		// The test connects from 127.0.0.1.
		e.grantTo(t, "u-host", onTopic("hs-1", read), aclEntry{rt: kmsg.ACLResourceTypeTopic, name: "hs-1", op: read, deny: true, host: "127.0.0.1"})
		wantAuthzCode(t, "DENY from this host", e.fetchCode(t, "u-host", "hs-1"), topicAuthz)
		e.grantTo(t, "u-host2", onTopic("hs-1", read), aclEntry{rt: kmsg.ACLResourceTypeTopic, name: "hs-1", op: read, deny: true, host: "10.9.9.9"})
		wantAuthzCode(t, "DENY from another host", e.fetchCode(t, "u-host2", "hs-1"), nil)
		e.grantTo(t, "u-host3", aclEntry{rt: kmsg.ACLResourceTypeTopic, name: "hs-1", op: read, host: "10.9.9.9"})
		wantAuthzCode(t, "ALLOW from another host only", e.fetchCode(t, "u-host3", "hs-1"), topicAuthz)
	})

	t.Run("super user", func(t *testing.T) {
		e.topics(t, "su-1")
		wantAuthzCode(t, "produce as the super user, no ACLs", e.produceCode(t, "admin", "su-1"), nil)
		// Even a DENY does not apply to a super user.
		e.grant(t, aclEntry{rt: kmsg.ACLResourceTypeTopic, name: "su-1", op: write, deny: true}.binding("admin"))
		wantAuthzCode(t, "produce as the super user despite a DENY", e.produceCode(t, "admin", "su-1"), nil)
		dc := versioned(kmsg.NewPtrDescribeClusterRequest(), 1)
		dc.IncludeClusterAuthorizedOperations, dc.EndpointType = true, 1
		var all int32
		for _, op := range []kmsg.ACLOperation{kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs,
			kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe} {
			all |= 1 << op
		}
		if ops := roundTrip(t, e.conn(t, "admin"), dc).(*kmsg.DescribeClusterResponse).ClusterAuthorizedOperations; ops != all {
			t.Errorf("super user's cluster operations %b, want %b", ops, all)
		}
	})

	t.Run("authorized operations", func(t *testing.T) {
		// Kafka answers the cluster's operations only to a principal that
		// may Describe it: IdempotentWrite alone shows as 0.
		dc := versioned(kmsg.NewPtrDescribeClusterRequest(), 1)
		dc.IncludeClusterAuthorizedOperations, dc.EndpointType = true, 1
		e.grantTo(t, "u-ops", onCluster(kmsg.ACLOperationIdempotentWrite))
		if ops := roundTrip(t, e.conn(t, "u-ops"), dc).(*kmsg.DescribeClusterResponse).ClusterAuthorizedOperations; ops != 0 {
			t.Errorf("cluster operations without Describe on it: %b, want 0", ops)
		}
		e.grantTo(t, "u-ops", onCluster(describe))
		want := int32(1<<kmsg.ACLOperationIdempotentWrite | 1<<describe)
		if ops := roundTrip(t, e.conn(t, "u-ops"), dc).(*kmsg.DescribeClusterResponse).ClusterAuthorizedOperations; ops != want {
			t.Errorf("cluster operations with Describe and IdempotentWrite: %b, want %b", ops, want)
		}
		// A topic's: Read implies Describe, and both are reported.
		e.topics(t, "ops-1")
		e.grantTo(t, "u-ops", onTopic("ops-1", read))
		mr := versioned(kmsg.NewPtrMetadataRequest(), 12)
		name := "ops-1"
		mr.Topics, mr.IncludeTopicAuthorizedOperations = []kmsg.MetadataRequestTopic{{Topic: &name}}, true
		if ops := roundTrip(t, e.conn(t, "u-ops"), mr).(*kmsg.MetadataResponse).Topics[0].AuthorizedOperations; ops != 1<<read|1<<describe {
			t.Errorf("topic operations with Read: %b, want Read and Describe", ops)
		}
	})

	t.Run("produce", func(t *testing.T) {
		e.topics(t, "pr-1")
		// Refused before the topic's existence is checked.
		wantAuthzCode(t, "produce to a topic that does not exist, no ACL", e.produceCode(t, "nobody", "pr-missing"), topicAuthz)
		// acks=0: nobody hears of the error, so the connection is closed.
		// An ApiVersions after it would be answered on an open connection.
		nc := e.conn(t, "nobody")
		writeRequest(t, nc, produceReq("pr-1", 0, 0, makeBatch(1, 10)), 7)
		writeRequest(t, nc, versioned(kmsg.NewPtrApiVersionsRequest(), 0), 8)
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.ReadFull(nc, make([]byte, 4))
		if ne, ok := err.(net.Error); err == nil || (ok && ne.Timeout()) {
			t.Errorf("the connection of a refused acks=0 produce stayed open (read: %v)", err)
		}
		// A transactional batch needs Write on its transactional id.
		e.grantTo(t, "u-txn", onTopic("pr-1", write))
		txn := "tx-1"
		req := produceReq("pr-1", 0, -1, transactionalBatch(1000))
		req.TransactionID = &txn
		code := roundTrip(t, e.conn(t, "u-txn"), req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
		wantAuthzCode(t, "transactional produce without Write on the id", code, kerr.TransactionalIDAuthorizationFailed)
		e.grantTo(t, "u-txn", aclEntry{rt: kmsg.ACLResourceTypeTransactionalId, name: txn, op: write})
		nc = e.conn(t, "u-txn")
		pid := initTxn(t, nc, txn)
		addPartition(t, nc, txn, pid, "pr-1")
		req = produceReq("pr-1", 0, -1, transactionalBatch(pid))
		req.TransactionID = &txn
		code = roundTrip(t, nc, req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
		wantAuthzCode(t, "transactional produce with Write on the id", code, nil)
	})

	t.Run("groups", func(t *testing.T) {
		e.topics(t, "gr-1")
		commitAsAdmin(t, e, "gr-a", "gr-1")
		commitAsAdmin(t, e, "gr-b", "gr-1")
		// FindCoordinator before v4 carries Kafka's message.
		fc := versioned(kmsg.NewPtrFindCoordinatorRequest(), 3)
		fc.CoordinatorKey = "gr-a"
		r := roundTrip(t, e.conn(t, "nobody"), fc).(*kmsg.FindCoordinatorResponse)
		if r.ErrorCode != kerr.GroupAuthorizationFailed.Code || r.NodeID != -1 || r.ErrorMessage == nil || *r.ErrorMessage != "Group authorization failed." {
			t.Errorf("FindCoordinator v3 refused: %+v", r)
		}
		// OffsetFetch v1 has no top-level error: every partition gets it.
		of := versioned(kmsg.NewPtrOffsetFetchRequest(), 1)
		of.Group, of.Topics = "gr-a", []kmsg.OffsetFetchRequestTopic{{Topic: "gr-1", Partitions: []int32{0}}}
		ofr := roundTrip(t, e.conn(t, "nobody"), of).(*kmsg.OffsetFetchResponse)
		if len(ofr.Topics) != 1 || ofr.Topics[0].Partitions[0].ErrorCode != kerr.GroupAuthorizationFailed.Code || ofr.Topics[0].Partitions[0].Offset != -1 {
			t.Errorf("OffsetFetch v1 refused: %+v", ofr.Topics)
		}
		// v8: per group.
		e.grantTo(t, "u-groups", onGroup("gr-a", describe), onTopic("gr-1", describe))
		of8 := versioned(kmsg.NewPtrOffsetFetchRequest(), 8)
		of8.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "gr-a"}, {Group: "gr-b"}}
		codes := map[string]int16{}
		var offsets int
		for _, g := range roundTrip(t, e.conn(t, "u-groups"), of8).(*kmsg.OffsetFetchResponse).Groups {
			codes[g.Group] = g.ErrorCode
			for _, gt := range g.Topics {
				offsets += len(gt.Partitions)
			}
		}
		if codes["gr-a"] != 0 || codes["gr-b"] != kerr.GroupAuthorizationFailed.Code || offsets != 1 {
			t.Errorf("OffsetFetch v8 of an allowed and a refused group: %v, %d offsets", codes, offsets)
		}
		// Every offset of a group: topics the principal may not describe
		// are left out.
		e.topics(t, "gr-2")
		commitAsAdmin(t, e, "gr-a", "gr-2")
		all := versioned(kmsg.NewPtrOffsetFetchRequest(), 7)
		all.Group = "gr-a"
		var topics []string
		for _, rt := range roundTrip(t, e.conn(t, "u-groups"), all).(*kmsg.OffsetFetchResponse).Topics {
			topics = append(topics, rt.Topic)
		}
		if !slices.Equal(topics, []string{"gr-1"}) {
			t.Errorf("every offset of gr-a: topics %v, want [gr-1]", topics)
		}
		// ListGroups with Describe on the cluster: every group.
		e.grantTo(t, "u-lister", onCluster(describe))
		var listed []string
		for _, g := range roundTrip(t, e.conn(t, "u-lister"), versioned(kmsg.NewPtrListGroupsRequest(), 4)).(*kmsg.ListGroupsResponse).Groups {
			listed = append(listed, g.Group)
		}
		if !slices.Contains(listed, "gr-a") || !slices.Contains(listed, "gr-b") {
			t.Errorf("ListGroups with Describe on the cluster: %v", listed)
		}
	})

	t.Run("topic ids and configs", func(t *testing.T) {
		e.topics(t, "ti-1")
		md, err := e.adm.Metadata(context.Background(), "ti-1")
		if err != nil {
			t.Fatal(err)
		}
		id := md.Topics["ti-1"].ID
		// DeleteTopics by id without Describe: refused without the name.
		dt := versioned(kmsg.NewPtrDeleteTopicsRequest(), 6)
		dt.TimeoutMillis, dt.Topics = 5000, []kmsg.DeleteTopicsRequestTopic{{TopicID: id}}
		st := roundTrip(t, e.conn(t, "nobody"), dt).(*kmsg.DeleteTopicsResponse).Topics[0]
		if st.ErrorCode != kerr.TopicAuthorizationFailed.Code || st.Topic != nil {
			t.Errorf("DeleteTopics by id without Describe: %v, name %v", codeName(st.ErrorCode), st.Topic)
		}
		// Metadata by id without Describe: the id, not the name.
		mr := versioned(kmsg.NewPtrMetadataRequest(), 12)
		mr.Topics = []kmsg.MetadataRequestTopic{{TopicID: id}}
		mt := roundTrip(t, e.conn(t, "nobody"), mr).(*kmsg.MetadataResponse).Topics[0]
		if mt.ErrorCode != kerr.TopicAuthorizationFailed.Code || mt.Topic != nil || mt.TopicID != id {
			t.Errorf("Metadata by id without Describe: %+v", mt)
		}
		// Fetch v13 without Read: a topic's id is refused by its id; an id
		// that is no topic's is UNKNOWN_TOPIC_ID whoever asks, as Kafka
		// resolves ids before it authorizes names.
		fr := versioned(kmsg.NewPtrFetchRequest(), 13)
		fr.ReplicaID, fr.MaxBytes, fr.MinBytes, fr.SessionEpoch = -1, 1<<20, 1, -1
		part := []kmsg.FetchRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1, LogStartOffset: -1, PartitionMaxBytes: 1 << 20}}
		unknown := [16]byte{15: 1}
		fr.Topics = []kmsg.FetchRequestTopic{{TopicID: id, Partitions: part}, {TopicID: unknown, Partitions: part}}
		codes := map[[16]byte]int16{}
		for _, ft := range roundTrip(t, e.conn(t, "nobody"), fr).(*kmsg.FetchResponse).Topics {
			codes[ft.TopicID] = ft.Partitions[0].ErrorCode
		}
		if len(codes) != 2 || codes[id] != kerr.TopicAuthorizationFailed.Code || codes[unknown] != kerr.UnknownTopicID.Code {
			t.Errorf("Fetch v13 by id without Read: %v, want the topic's id refused and the unknown id UNKNOWN_TOPIC_ID", codes)
		}
		// Fetch v15+ names a replica in ReplicaState (KIP-903): one needs
		// ClusterAction on the cluster, whatever it may read; a consumer
		// (-1) needs Read.
		e.grantTo(t, "u-reader", onTopic("ti-1", kmsg.ACLOperationRead))
		for _, replica := range []int32{-1, 1} {
			fr := versioned(kmsg.NewPtrFetchRequest(), 15)
			fr.MaxBytes, fr.SessionEpoch, fr.ReplicaState.ID = 1<<20, -1, replica
			fr.Topics = []kmsg.FetchRequestTopic{{TopicID: id, Partitions: part}}
			code := roundTrip(t, e.conn(t, "u-reader"), fr).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode
			if want := map[int32]int16{-1: 0, 1: kerr.TopicAuthorizationFailed.Code}[replica]; code != want {
				t.Errorf("Fetch v15 with replica id %d, Read on the topic only: %s, want %s", replica, codeName(code), codeName(want))
			}
		}
		// CreateTopics with DescribeConfigs too: the configs are answered.
		e.grantTo(t, "u-creator", onTopic("ti-2", kmsg.ACLOperationCreate), onTopic("ti-2", kmsg.ACLOperationDescribeConfigs))
		ct := versioned(kmsg.NewPtrCreateTopicsRequest(), 7)
		ct.TimeoutMillis, ct.Topics = 5000, []kmsg.CreateTopicsRequestTopic{{Topic: "ti-2", NumPartitions: 2, ReplicationFactor: 1}}
		ctr := roundTrip(t, e.conn(t, "u-creator"), ct).(*kmsg.CreateTopicsResponse).Topics[0]
		if ctr.ErrorCode != 0 || ctr.NumPartitions != 2 || len(ctr.Configs) == 0 || ctr.ConfigErrorCode != 0 {
			t.Errorf("CreateTopics with DescribeConfigs: %+v", ctr)
		}
		// A broker resource's configs need DescribeConfigs on the cluster.
		dcr := versioned(kmsg.NewPtrDescribeConfigsRequest(), 4)
		dcr.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "0"}}
		res := roundTrip(t, e.conn(t, "u-creator"), dcr).(*kmsg.DescribeConfigsResponse).Resources[0]
		if res.ErrorCode != kerr.ClusterAuthorizationFailed.Code || len(res.Configs) != 0 {
			t.Errorf("DescribeConfigs of the broker without DescribeConfigs on the cluster: %v, %d configs", codeName(res.ErrorCode), len(res.Configs))
		}
		e.grantTo(t, "u-creator", onCluster(kmsg.ACLOperationDescribeConfigs))
		res = roundTrip(t, e.conn(t, "u-creator"), dcr).(*kmsg.DescribeConfigsResponse).Resources[0]
		if res.ErrorCode != 0 || len(res.Configs) == 0 {
			t.Errorf("DescribeConfigs of the broker with DescribeConfigs on the cluster: %v, %d configs", codeName(res.ErrorCode), len(res.Configs))
		}
	})
}

func listOffsetsCode(t *testing.T, e *authzEnv, user, topic string) int16 {
	t.Helper()
	r := versioned(kmsg.NewPtrListOffsetsRequest(), 7)
	r.ReplicaID = -1
	r.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: topic, Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, Timestamp: -1}}}}
	return roundTrip(t, e.conn(t, user), r).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode
}

// transactionalBatch is a valid batch with the transactional attribute.
func transactionalBatch(pid int64) []byte {
	raw := idemBatch(pid, 0, 0, 1)
	raw[22] |= 0x10
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// TestAuthzMetadata: Metadata leaves out the topics a principal may not
// describe, refuses named ones without disclosing whether they exist, and
// auto-creates only with Create on the cluster or the topic.
func TestAuthzMetadata(t *testing.T) {
	e := startAuthzServer(t, false)
	const describe, create = kmsg.ACLOperationDescribe, kmsg.ACLOperationCreate
	e.topics(t, "md-a", "md-b", "md-pre-1")
	e.grantTo(t, "u-meta", onTopic("md-a", describe), aclEntry{rt: kmsg.ACLResourceTypeTopic, name: "md-pre-", prefix: true, op: describe})

	metadata := func(user string, v int16, allowAuto bool, names ...string) *kmsg.MetadataResponse {
		r := versioned(kmsg.NewPtrMetadataRequest(), v)
		if names != nil {
			r.Topics = []kmsg.MetadataRequestTopic{}
			for _, n := range names {
				r.Topics = append(r.Topics, kmsg.MetadataRequestTopic{Topic: &n})
			}
		}
		r.AllowAutoTopicCreation = allowAuto
		r.IncludeTopicAuthorizedOperations = true
		r.IncludeClusterAuthorizedOperations = true
		return roundTrip(t, e.conn(t, user), r).(*kmsg.MetadataResponse)
	}
	codes := func(r *kmsg.MetadataResponse) map[string]int16 {
		out := map[string]int16{}
		for _, mt := range r.Topics {
			if mt.Topic != nil {
				out[*mt.Topic] = mt.ErrorCode
			}
		}
		return out
	}

	// Every topic: only those it may describe, silently.
	var names []string
	for n := range codes(metadata("u-meta", 12, false)) {
		names = append(names, n)
	}
	sort.Strings(names)
	if !slices.Equal(names, []string{"md-a", "md-pre-1"}) {
		t.Errorf("every topic: %v, want [md-a md-pre-1]", names)
	}
	if n := len(metadata("nobody", 12, false).Topics); n != 0 {
		t.Errorf("every topic, no ACLs: %d topics", n)
	}
	// Named: refused ones say so, existing or not, listed last.
	r := metadata("u-meta", 12, false, "md-b", "md-a", "md-nope")
	if got := codes(r); got["md-a"] != 0 || got["md-b"] != kerr.TopicAuthorizationFailed.Code || got["md-nope"] != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("named topics: %v", got)
	}
	if *r.Topics[0].Topic != "md-a" || r.Topics[0].AuthorizedOperations != 1<<describe {
		t.Errorf("first topic %s, authorized operations %b (want md-a, Describe)", *r.Topics[0].Topic, r.Topics[0].AuthorizedOperations)
	}
	// Cluster authorized operations (v8-v10): 0 without Describe on it.
	if ops := metadata("u-meta", 10, false, "md-a").AuthorizedOperations; ops != 0 {
		t.Errorf("cluster authorized operations without Describe on it: %b", ops)
	}

	// DescribeTopicPartitions (KIP-966) filters as Metadata does.
	dtp := func(user string, names ...string) *kmsg.DescribeTopicPartitionsResponse {
		r := kmsg.NewPtrDescribeTopicPartitionsRequest()
		for _, n := range names {
			r.Topics = append(r.Topics, kmsg.DescribeTopicPartitionsRequestTopic{Topic: n})
		}
		return roundTrip(t, e.conn(t, user), r).(*kmsg.DescribeTopicPartitionsResponse)
	}
	names = nil
	for _, dt := range dtp("u-meta").Topics {
		names = append(names, *dt.Topic)
	}
	if !slices.Equal(names, []string{"md-a", "md-pre-1"}) {
		t.Errorf("DescribeTopicPartitions, every topic: %v, want [md-a md-pre-1]", names)
	}
	if n := len(dtp("nobody").Topics); n != 0 {
		t.Errorf("DescribeTopicPartitions, every topic, no ACLs: %d topics", n)
	}
	var dtNamed []string
	for _, dt := range dtp("u-meta", "md-b", "md-a", "md-nope").Topics {
		dtNamed = append(dtNamed, fmt.Sprintf("%s:%s:%d:%b:%t", *dt.Topic, codeName(dt.ErrorCode), len(dt.Partitions), dt.AuthorizedOperations, dt.TopicID != [16]byte{}))
	}
	if want := []string{
		fmt.Sprintf("md-a:%s:1:%b:true", codeName(0), 1<<describe),
		fmt.Sprintf("md-b:%s:0:%b:false", codeName(kerr.TopicAuthorizationFailed.Code), int32(-2147483648)),
		fmt.Sprintf("md-nope:%s:0:%b:false", codeName(kerr.TopicAuthorizationFailed.Code), int32(-2147483648)),
	}; !slices.Equal(dtNamed, want) {
		t.Errorf("DescribeTopicPartitions, named topics:\n%v\nwant\n%v", dtNamed, want)
	}

	// Auto-creation: Describe alone is not enough.
	e.grantTo(t, "u-meta", onTopic("md-auto-1", describe))
	mt := metadata("u-meta", 12, true, "md-auto-1").Topics[0]
	if mt.ErrorCode != kerr.TopicAuthorizationFailed.Code || mt.IsInternal || len(mt.Partitions) != 0 {
		t.Errorf("auto-create without Create: %+v", mt)
	}
	if topicExists(t, e, "md-auto-1") {
		t.Errorf("auto-create without Create created the topic")
	}
	// With Create on the topic.
	e.grantTo(t, "u-meta", onTopic("md-auto-1", create))
	if mt := metadata("u-meta", 12, true, "md-auto-1").Topics[0]; mt.ErrorCode != 0 || len(mt.Partitions) == 0 {
		t.Errorf("auto-create with Create on the topic: %s, %d partitions", codeName(mt.ErrorCode), len(mt.Partitions))
	}
	// With Create on the cluster.
	e.grantTo(t, "u-cluster-creator", onCluster(create), onTopic("md-auto-2", describe))
	if mt := metadata("u-cluster-creator", 12, true, "md-auto-2").Topics[0]; mt.ErrorCode != 0 || len(mt.Partitions) == 0 {
		t.Errorf("auto-create with Create on the cluster: %s, %d partitions", codeName(mt.ErrorCode), len(mt.Partitions))
	}
	// Create without Describe: refused for Describe, and not created.
	e.grantTo(t, "u-blind-creator", onTopic("md-auto-3", create))
	if mt := metadata("u-blind-creator", 12, true, "md-auto-3").Topics[0]; mt.ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("auto-create without Describe: %s", codeName(mt.ErrorCode))
	}
	if topicExists(t, e, "md-auto-3") {
		t.Errorf("auto-create without Describe created the topic")
	}
}

// TestAuthzAllowEveryoneIfNoACLFound: with the setting a resource no ACL
// names is open to everyone, and closed once one does; without, closed.
func TestAuthzAllowEveryoneIfNoACLFound(t *testing.T) {
	for _, allowEveryone := range []bool{true, false} {
		t.Run(fmt.Sprint(allowEveryone), func(t *testing.T) {
			e := startAuthzServer(t, allowEveryone)
			e.topics(t, "ae-1")
			var want *kerr.Error
			if !allowEveryone {
				want = kerr.TopicAuthorizationFailed
			}
			wantAuthzCode(t, "produce to a topic no ACL names", e.produceCode(t, "u-anyone", "ae-1"), want)
			// No ACL on the cluster either: its operations follow the setting.
			dl := roundTrip(t, e.conn(t, "u-anyone"), versioned(kmsg.NewPtrDescribeLogDirsRequest(), 4)).(*kmsg.DescribeLogDirsResponse)
			if allowEveryone != (dl.ErrorCode == 0) {
				t.Errorf("DescribeLogDirs, no ACL on the cluster: %s", codeName(dl.ErrorCode))
			}
			// An ACL for someone else closes the topic to everyone else.
			e.grantTo(t, "u-owner", onTopic("ae-1", kmsg.ACLOperationWrite))
			wantAuthzCode(t, "produce once an ACL names the topic", e.produceCode(t, "u-anyone", "ae-1"), kerr.TopicAuthorizationFailed)
			wantAuthzCode(t, "produce as the ACL's principal", e.produceCode(t, "u-owner", "ae-1"), nil)
		})
	}
}

// TestAuthzIdempotentProducer: KIP-679, an idempotent producer needs only
// Write on some topic (or IdempotentWrite on the cluster); franz-go, which
// is idempotent by default, produces with Write on its topic alone.
func TestAuthzIdempotentProducer(t *testing.T) {
	e := startAuthzServer(t, false)
	e.topics(t, "idem-1", "idem-2")
	e.grantTo(t, "u-idem", onTopic("idem-1", kmsg.ACLOperationWrite))
	ipi := func(user string) *kmsg.InitProducerIDResponse {
		r := versioned(kmsg.NewPtrInitProducerIDRequest(), 4)
		r.ProducerID, r.ProducerEpoch, r.TransactionTimeoutMillis = -1, -1, 60000
		return roundTrip(t, e.conn(t, user), r).(*kmsg.InitProducerIDResponse)
	}
	if r := ipi("u-idem"); r.ErrorCode != 0 || r.ProducerID < 0 {
		t.Errorf("InitProducerId with Write on a topic: %s, id %d", codeName(r.ErrorCode), r.ProducerID)
	}
	// Write on a prefix counts as Write on some topic too.
	e.grantTo(t, "u-idem-pfx", aclEntry{rt: kmsg.ACLResourceTypeTopic, name: "idem-", prefix: true, op: kmsg.ACLOperationWrite})
	if r := ipi("u-idem-pfx"); r.ErrorCode != 0 {
		t.Errorf("InitProducerId with prefixed Write: %s", codeName(r.ErrorCode))
	}
	// Read is not Write.
	e.grantTo(t, "u-reader", onTopic("idem-1", kmsg.ACLOperationRead))
	if r := ipi("u-reader"); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code || r.ProducerID != -1 {
		t.Errorf("InitProducerId with Read only: %s, id %d", codeName(r.ErrorCode), r.ProducerID)
	}
	// A transactional id needs Write on it.
	txn := "tx-idem"
	tr := versioned(kmsg.NewPtrInitProducerIDRequest(), 4)
	tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.TransactionTimeoutMillis = &txn, -1, -1, 60000
	if r := roundTrip(t, e.conn(t, "u-idem"), tr).(*kmsg.InitProducerIDResponse); r.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Errorf("InitProducerId with a transactional id, no ACL on it: %s", codeName(r.ErrorCode))
	}

	ctx := testCtx(t, 30*time.Second)
	cl := e.client(t, "u-idem")
	for i := range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "idem-1", Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("idempotent produce %d with Write on the topic: %v", i, err)
		}
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "idem-2", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("idempotent produce to a topic without Write: %v", err)
	}
}

// TestAuthzConsumerGroup: a franz-go consumer group holding the ACLs
// `kafka-acls --add --consumer --topic T --group G` grants (Read and
// Describe on the topic, Read on the group) joins, consumes and commits.
func TestAuthzConsumerGroup(t *testing.T) {
	e := startAuthzServer(t, false)
	e.topics(t, "cg-1")
	ctx := testCtx(t, time.Minute)
	prod := e.client(t, "admin", kgo.DefaultProduceTopic("cg-1"))
	const n = 20
	for i := range n {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	e.grantTo(t, "u-consumer", onTopic("cg-1", kmsg.ACLOperationRead), onTopic("cg-1", kmsg.ACLOperationDescribe),
		onGroup("g-cg", kmsg.ACLOperationRead))
	cl := e.client(t, "u-consumer", kgo.ConsumerGroup("g-cg"), kgo.ConsumeTopics("cg-1"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", got, n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("consume %s/%d: %v", topic, p, err) })
		got += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	cl.Close()
	offs, err := e.adm.FetchOffsets(ctx, "g-cg")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("cg-1", 0); !ok || o.At != n {
		t.Errorf("committed offset %+v, want %d", o, n)
	}
}

// TestAuthzConsumerGroupRegex: a consumer group member subscribing by
// regex (KIP-848) is assigned only the matching topics its principal may
// describe.
func TestAuthzConsumerGroupRegex(t *testing.T) {
	e := startAuthzServer(t, false)
	e.topics(t, "rx-allowed", "rx-hidden")
	e.grantTo(t, "u-regex", onTopic("rx-allowed", kmsg.ACLOperationDescribe), onGroup("g-regex", kmsg.ACLOperationRead))
	ctx := testCtx(t, 30*time.Second)
	cl := e.client(t, "u-regex")
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.RebalanceTimeoutMillis = "g-regex", "rx-member", 5000
	req.SubscribedTopicRegex, req.Topics = kmsg.StringPtr("^rx-.*"), []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("join: %v %v", err, kerr.ErrorForCode(resp.ErrorCode))
	}
	md, err := e.adm.Metadata(ctx, "rx-allowed", "rx-hidden")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, at := range resp.Assignment.Topics {
		for name, td := range md.Topics {
			if td.ID == at.TopicID {
				got = append(got, name)
			}
		}
	}
	if !slices.Equal(got, []string{"rx-allowed"}) {
		t.Errorf("assigned topics %v, want only rx-allowed", got)
	}
}
