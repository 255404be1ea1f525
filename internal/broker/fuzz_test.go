package broker

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/group"
	"github.com/vigilhq/vigil/internal/meta/boltstore"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/quota"
	"github.com/vigilhq/vigil/internal/sasl"
	"github.com/vigilhq/vigil/internal/storage"
)

// fuzzBroker builds a broker over real stores in a temporary directory,
// with one topic, "fuzz", of two partitions holding a few records.
func fuzzBroker(tb testing.TB) *Broker {
	tb.Helper()
	dir := tb.TempDir()
	ctx := context.Background()
	ms, err := boltstore.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		tb.Fatal(err)
	}
	objs, err := objstore.Open(ctx, filepath.Join(dir, "objects"), objstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := storage.Open(ctx, ms, objs, storage.Options{
		WALDir:         filepath.Join(dir, "wal"),
		WALSync:        false,
		UploadInterval: 50 * time.Millisecond,
		SegmentBytes:   1 << 20,
		TailCacheBytes: 1 << 20,
		Logger:         log,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		store.Close()
		objs.Close()
		ms.Close()
	})
	cfg := config.Default()
	cfg.Listen, cfg.Advertised, cfg.DataDir = "127.0.0.1:9092", "127.0.0.1:9092", dir
	offsets, err := store.OpenInternalTopic(ctx, group.OffsetsTopic, 4, nil)
	if err != nil {
		tb.Fatal(err)
	}
	groups := group.New(group.Config{InitialRebalanceDelay: time.Millisecond, Logger: log}, offsets, store)
	if err := groups.Load(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(groups.Close)
	quotas, err := quota.Open(ctx, ms)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := New(cfg, store, group.Single(groups), quotas, "fuzz-cluster", log)
	if err != nil {
		tb.Fatal(err)
	}
	// SASL with a known user, so inputs can authenticate and go on.
	creds := sasl.CredentialMap{}
	for _, m := range []string{sasl.ScramSHA256, sasl.ScramSHA512} {
		if err := creds.Add("fuzz", m, "fuzz-password", sasl.MinScramIterations); err != nil {
			tb.Fatal(err)
		}
	}
	opts := sasl.PasswordOptions{DecoySecret: []byte("fuzz-decoy-secret-of-32-bytes...")}
	plain, err := sasl.NewPlain(creds, opts)
	if err != nil {
		tb.Fatal(err)
	}
	s256, err := sasl.NewScram(sasl.ScramSHA256, creds, opts)
	if err != nil {
		tb.Fatal(err)
	}
	reg, err := sasl.NewRegistry(plain, s256)
	if err != nil {
		tb.Fatal(err)
	}
	b.SetSecurity(Security{SASL: fuzzSASL{reg}})
	b.failedAuthDelay = 0
	if _, err := store.CreateTopic(ctx, "fuzz", 2, nil); err != nil {
		tb.Fatal(err)
	}
	return b
}

// runFrames serves one connection over net.Pipe, writes input to it, and
// waits for the connection to finish. Responses are discarded.
func runFrames(tb testing.TB, b *Broker, input []byte) {
	runFramesOn(tb, b, config.Listener{Protocol: config.Plaintext}, input)
}

// fuzzSASL presents a sasl.Registry as the broker's SASL.
type fuzzSASL struct{ r *sasl.Registry }

func (f fuzzSASL) Mechanisms() []string { return f.r.Names() }
func (f fuzzSASL) Start(name string) (SASLSession, bool) {
	m := f.r.Lookup(name)
	if m == nil {
		return nil, false
	}
	return m.Start(), true
}

// runFramesOn serves one connection of a listener of the given protocol.
func runFramesOn(tb testing.TB, b *Broker, l config.Listener, input []byte) {
	client, server := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{b: b, nc: server, listener: l, ctx: ctx, cancel: cancel, log: b.log,
		auth: authState{principal: "User:ANONYMOUS", host: "127.0.0.1"}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.serve()
	}()
	go io.Copy(io.Discard, client)
	client.SetWriteDeadline(time.Now().Add(5 * time.Second))
	client.Write(input)
	client.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Millisecond):
		// A long-polling fetch holds the writer until its MaxWait even
		// after the client is gone (as Kafka's purgatory does); end it as
		// the broker's Close would, so fuzzing does not wait for it.
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			tb.Fatalf("connection did not finish after cancel")
		}
	}
}

// frame prefixes a request (header and body) with its size.
func frame(body []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	return append(out, body...)
}

// fuzzSeeds are real requests, encoded by kmsg, without the size prefix.
func fuzzSeeds() [][]byte {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	enc := func(r kmsg.Request, v int16) []byte {
		r.SetVersion(v)
		return f.AppendRequest(nil, r, 1)[4:]
	}
	topic := "fuzz"
	var seeds [][]byte

	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "fuzz", "1"
	seeds = append(seeds, enc(av, 0), enc(av, 3))

	md := kmsg.NewPtrMetadataRequest()
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	seeds = append(seeds, enc(md, 1), enc(md, 9), enc(md, 12), enc(md, 13))

	// DescribeTopicPartitions: every topic a partition per page; named,
	// from a cursor; a cursor on a topic not named.
	dtp := kmsg.NewPtrDescribeTopicPartitionsRequest()
	dtp.ResponsePartitionLimit = 1
	seeds = append(seeds, enc(dtp, 0))
	dtp.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: topic}, {Topic: "other"}}
	dtp.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: topic, Partition: 1}
	seeds = append(seeds, enc(dtp, 0))
	dtp.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "absent", Partition: -1}
	seeds = append(seeds, enc(dtp, 0))

	// A valid uncompressed batch of one record.
	rec := kmsg.Record{Key: []byte("k"), Value: []byte("v")}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	rb := kmsg.RecordBatch{Magic: 2, PartitionLeaderEpoch: -1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: 1, Records: rec.AppendTo(nil)}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32c(raw[21:]))
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks, pr.TimeoutMillis = -1, 1000
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: raw}}}}
	seeds = append(seeds, enc(pr, 3), enc(pr, 9), enc(pr, 11), enc(pr, 12))

	fr := kmsg.NewPtrFetchRequest()
	fr.MaxWaitMillis, fr.MaxBytes, fr.SessionEpoch = 10, 1<<20, -1
	fr.Topics = []kmsg.FetchRequestTopic{{Topic: topic, Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, FetchOffset: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1}}}}
	seeds = append(seeds, enc(fr, 4), enc(fr, 12))
	fr.Topics[0].TopicID = [16]byte{0: 0xf0, 15: 0x0f} // v13 names topics by id; this one is no topic's
	seeds = append(seeds, enc(fr, 13), enc(fr, 16), enc(fr, 17))
	fr.ReplicaState.ID = 1 // v15+: a replica's fetch, refused without ClusterAction
	seeds = append(seeds, enc(fr, 15))

	lo := kmsg.NewPtrListOffsetsRequest()
	lo.ReplicaID = -1
	lo.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: topic, Partitions: []kmsg.ListOffsetsRequestTopicPartition{
		{Partition: 0, Timestamp: -1, CurrentLeaderEpoch: -1}, {Partition: 1, Timestamp: 0, CurrentLeaderEpoch: -1}, {Partition: 0, Timestamp: -3, CurrentLeaderEpoch: -1}}}}
	seeds = append(seeds, enc(lo, 1), enc(lo, 8))

	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic}, {ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "0"}}
	seeds = append(seeds, enc(dc, 0), enc(dc, 4))

	v := "3600000"
	ia := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ia.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic,
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: &v}}}}
	seeds = append(seeds, enc(ia, 0), enc(ia, 1))

	ac := kmsg.NewPtrAlterConfigsRequest()
	ac.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic,
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: &v}}}}
	seeds = append(seeds, enc(ac, 0), enc(ac, 2))

	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.TimeoutMillis = 1000
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: topic, Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 0}}}}
	seeds = append(seeds, enc(dr, 0), enc(dr, 2))

	ol := kmsg.NewPtrOffsetForLeaderEpochRequest()
	ol.ReplicaID = -1
	ol.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, LeaderEpoch: 0}}}}
	seeds = append(seeds, enc(ol, 2), enc(ol, 4))

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"no-such-topic"}
	other := "no-such-topic"
	dt.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: &other}}
	seeds = append(seeds, enc(dt, 0), enc(dt, 6))

	dcl := kmsg.NewPtrDescribeClusterRequest()
	seeds = append(seeds, enc(dcl, 0), enc(dcl, 1))

	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.ProducerID, ip.ProducerEpoch = -1, -1
	txn := "txn"
	ipTxn := kmsg.NewPtrInitProducerIDRequest()
	ipTxn.TransactionalID = &txn
	seeds = append(seeds, enc(ip, 0), enc(ip, 5), enc(ipTxn, 4))

	// An idempotent batch: producer id 0, epoch 0, sequence 0.
	binary.BigEndian.PutUint64(raw[43:], 0)
	binary.BigEndian.PutUint16(raw[51:], 0)
	binary.BigEndian.PutUint32(raw[53:], 0)
	binary.BigEndian.PutUint32(raw[17:], crc32c(raw[21:]))
	seeds = append(seeds, enc(pr, 9))

	// The group coordinator's APIs, each in its oldest and newest version.
	for _, v := range []int16{0, 1} {
		seeds = append(seeds, saslHandshake(v, "PLAIN"), saslHandshake(v, "SCRAM-SHA-256"), saslHandshake(v, "GSSAPI"))
	}
	for _, bytes := range [][]byte{
		[]byte("\x00fuzz\x00fuzz-password"),
		[]byte("\x00fuzz\x00wrong"),
		[]byte("n,,n=fuzz,r=fyko+d2lbbFgONRv9qkxdawL"),
		[]byte("n,a=other,n=fuzz,r=abc"),
	} {
		au := kmsg.NewPtrSASLAuthenticateRequest()
		au.SASLAuthBytes = bytes
		seeds = append(seeds, enc(au, 0), enc(au, 2), bytes) // the last: a bare v0 token
	}

	grp, inst, ptype, proto := "fuzz-group", "fuzz-instance", "consumer", "range"
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = grp, []string{grp, "txn"}
	seeds = append(seeds, enc(fc, 0), enc(fc, 3), enc(fc, 4), enc(fc, 6))
	fc.CoordinatorType = 1
	seeds = append(seeds, enc(fc, 2), enc(fc, 6))

	sub := (&kmsg.ConsumerMemberMetadata{Version: 0, Topics: []string{topic}}).AppendTo(nil)
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis, jg.ProtocolType = grp, 6000, 10, ptype
	jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: proto, Metadata: sub}}
	seeds = append(seeds, enc(jg, 0), enc(jg, 4), enc(jg, 9))
	jg.InstanceID = &inst
	seeds = append(seeds, enc(jg, 5), enc(jg, 9))

	sg := kmsg.NewPtrSyncGroupRequest()
	sg.Group, sg.Generation, sg.MemberID, sg.ProtocolType, sg.Protocol = grp, 1, "m", &ptype, &proto
	sg.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: "m", MemberAssignment: []byte{0, 0}}}
	seeds = append(seeds, enc(sg, 0), enc(sg, 5))

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.Generation, hb.MemberID = grp, 1, "m"
	seeds = append(seeds, enc(hb, 0), enc(hb, 4))

	lg := kmsg.NewPtrLeaveGroupRequest()
	lg.Group, lg.MemberID = grp, "m"
	lg.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}, {InstanceID: &inst}}
	seeds = append(seeds, enc(lg, 0), enc(lg, 5))

	// The consumer group protocol (KIP-848): a join by name and by
	// regex, a static leave, and a describe.
	cgh := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	cgh.Group, cgh.MemberID, cgh.RebalanceTimeoutMillis = grp, "fuzz-member", 5000
	cgh.SubscribedTopicNames, cgh.Topics = []string{topic}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	seeds = append(seeds, enc(cgh, 0), enc(cgh, 1))
	rx := "^fuzz.*"
	cgh.SubscribedTopicNames, cgh.SubscribedTopicRegex, cgh.InstanceID = nil, &rx, &inst
	seeds = append(seeds, enc(cgh, 1))
	cgh.MemberEpoch = -2
	seeds = append(seeds, enc(cgh, 1))
	cgd := kmsg.NewPtrConsumerGroupDescribeRequest()
	cgd.Groups = []string{grp}
	seeds = append(seeds, enc(cgd, 0), enc(cgd, 1))

	cmeta := "meta"
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group = grp
	oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1, Metadata: &cmeta}, {Partition: 9, Offset: 1}}}}
	seeds = append(seeds, enc(oc, 0), enc(oc, 2), enc(oc, 9))
	// v10 names topics by id: one that is no topic's, and the zero id.
	oc.Topics = append(oc.Topics, kmsg.OffsetCommitRequestTopic{Partitions: oc.Topics[0].Partitions})
	oc.Topics[0].TopicID = [16]byte{0: 0xf0, 15: 0x0f}
	seeds = append(seeds, enc(oc, 10))

	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = grp
	of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{0, 1}}}
	of.Groups = []kmsg.OffsetFetchRequestGroup{{Group: grp, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}}, {Group: "other"}}
	seeds = append(seeds, enc(of, 0), enc(of, 7), enc(of, 8), enc(of, 9))
	// v10 by id (no topic's, and the zero id); "other" asks for every offset.
	of.Groups[0].Topics = append(of.Groups[0].Topics, kmsg.OffsetFetchRequestGroupTopic{Partitions: []int32{0}})
	of.Groups[0].Topics[0].TopicID = [16]byte{0: 0xf0, 15: 0x0f}
	seeds = append(seeds, enc(of, 10))

	lgs := kmsg.NewPtrListGroupsRequest()
	lgs.StatesFilter, lgs.TypesFilter = []string{"Empty", "Stable"}, []string{"classic"}
	seeds = append(seeds, enc(lgs, 0), enc(lgs, 5))

	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups, dg.IncludeAuthorizedOperations = []string{grp, "missing"}, true
	seeds = append(seeds, enc(dg, 0), enc(dg, 6))

	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = grp
	od.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	seeds = append(seeds, enc(od, 0))

	dgs := kmsg.NewPtrDeleteGroupsRequest()
	dgs.Groups = []string{grp, "missing"}
	seeds = append(seeds, enc(dgs, 0), enc(dgs, 3))

	cid := "fuzz-client"
	acq := kmsg.NewPtrAlterClientQuotasRequest()
	acq.Entries = []kmsg.AlterClientQuotasRequestEntry{{Entity: []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "client-id", Name: &cid}},
		Ops: []kmsg.AlterClientQuotasRequestEntryOp{{Key: "producer_byte_rate", Value: 1 << 30}}}}
	dcq := kmsg.NewPtrDescribeClientQuotasRequest()
	dcq.Components = []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "client-id", MatchType: kmsg.QuotasMatchTypeAny}}
	seeds = append(seeds, enc(acq, 0), enc(acq, 1), enc(dcq, 0), enc(dcq, 1)) // AlterClientQuotas is decoded by TestFuzzSeeds only

	dld := kmsg.NewPtrDescribeLogDirsRequest()
	dld.Topics = []kmsg.DescribeLogDirsRequestTopic{{Topic: topic, Partitions: []int32{0, 7}}}
	seeds = append(seeds, enc(dld, 0), enc(dld, 4), enc(kmsg.NewPtrDescribeLogDirsRequest(), 2)) // the last: every topic
	dp := kmsg.NewPtrDescribeProducersRequest()
	dp.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: topic, Partitions: []int32{0, 7}}, {Topic: "missing", Partitions: []int32{0}}}
	seeds = append(seeds, enc(dp, 0))
	principal, host, name := "User:fuzz", "*", topic
	ca := kmsg.NewPtrCreateACLsRequest()
	ca.Creations = []kmsg.CreateACLsRequestCreation{{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: topic,
		ResourcePatternType: kmsg.ACLResourcePatternTypeLiteral, Principal: principal, Host: host,
		Operation: kmsg.ACLOperationRead, PermissionType: kmsg.ACLPermissionTypeAllow}}
	da := kmsg.NewPtrDescribeACLsRequest()
	da.ResourceType, da.ResourcePatternType, da.Operation, da.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	dla := kmsg.NewPtrDeleteACLsRequest()
	dla.Filters = []kmsg.DeleteACLsRequestFilter{{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: &name,
		ResourcePatternType: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationAny, PermissionType: kmsg.ACLPermissionTypeAny}}
	seeds = append(seeds, enc(ca, 0), enc(ca, 3), enc(da, 1), enc(da, 3), enc(dla, 1), enc(dla, 3))

	// An ApiVersions too new, and an unknown key.
	seeds = append(seeds, enc(av, 99), []byte{0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	return seeds
}

// FuzzRequestDecode feeds one request frame (the fuzz input, framed with
// its size) followed by a valid ApiVersions request through a real
// connection's read, decode, handle and write path. It looks for panics,
// hangs and races; a bad frame may only close the connection.
func FuzzRequestDecode(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	b := fuzzBroker(f)
	trailer := fuzzSeeds()[0] // ApiVersions v0
	// Every input also runs on a SASL_PLAINTEXT connection, as what follows
	// a v1 handshake (a SaslAuthenticate, or anything else) and as the
	// bare token a v0 handshake is followed by.
	saslL := config.Listener{Protocol: config.SASLPlaintext}
	hsV1, hsV0 := frame(saslHandshake(1, "PLAIN")), frame(saslHandshake(0, "SCRAM-SHA-256"))
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) >= 2 {
			// Creating topics or partitions with counts from random bytes
			// allocates without bound; those handlers are exercised by the
			// server tests instead.
			switch int16(binary.BigEndian.Uint16(body)) {
			case kmsg.CreateTopics.Int16(), kmsg.CreatePartitions.Int16():
				return
			case kmsg.AlterClientQuotas.Int16():
				// A random quota throttles later iterations' connections for
				// up to 30 s by design; the server tests cover quotas.
				return
			}
		}
		input := append(frame(body), frame(trailer)...)
		runFrames(t, b, input)
		runFramesOn(t, b, saslL, append(slices.Clone(hsV1), input...))
		runFramesOn(t, b, saslL, append(slices.Clone(hsV0), input...))
	})
}

func saslHandshake(v int16, mechanism string) []byte {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = v, mechanism
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz")).AppendRequest(nil, hs, 1)[4:]
}

// TestFuzzSeeds runs the seeds as a plain test, so `go test` covers them
// with every request valid.
func TestFuzzSeeds(t *testing.T) {
	b := fuzzBroker(t)
	var all []byte
	for _, s := range fuzzSeeds() {
		runFrames(t, b, frame(s))
		if s[0] != 0x7f {
			all = append(all, frame(s)...)
		}
	}
	runFrames(t, b, all) // pipelined on one connection
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }
