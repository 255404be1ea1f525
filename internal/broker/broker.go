// Package broker serves the Kafka protocol: connections, request framing,
// and one handler file per API (named after the API), over the storage
// engine. Requests and responses are encoded with franz-go's kmsg.
package broker

import (
	"context"
	"errors"
	"fmt"
	"github.com/vigilhq/vigil/internal/bufpool"
	"github.com/vigilhq/vigil/internal/catchup"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/acl"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/forward"
	"github.com/vigilhq/vigil/internal/group"
	"github.com/vigilhq/vigil/internal/principal"
	"github.com/vigilhq/vigil/internal/quota"
	"github.com/vigilhq/vigil/internal/security"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/txn"
)

// api is one supported Kafka API: its version range and handler. handle
// runs on the connection's reader goroutine, in request order; the
// function it returns builds the response on the writer goroutine and may
// block.
type api struct {
	min, max int16
	handle   func(c *conn, h header, req kmsg.Request) func() kmsg.Response
}

// RequestObserver is told of every answered request (metrics).
type RequestObserver interface {
	Request(api string, d time.Duration)
}

type noObserver struct{}

func (noObserver) Request(string, time.Duration) {}

// Broker is one Kafka-protocol broker process.
type Broker struct {
	cfg       config.Broker
	log       *slog.Logger
	store     *storage.Engine
	groupsPtr atomic.Pointer[group.Shards]
	txnsPtr   atomic.Pointer[txn.Shards] // nil: no transactional id is coordinated here
	cluster   ClusterView                // nil: a single broker
	clusterID string
	self      map[string]brokerEndpoint // this broker's advertised endpoint per listener protocol
	apis      map[int16]api
	obs       RequestObserver
	quotas    *quota.Manager
	connQuota connLimiter  // conn_quota.go: connections over their address's creation rate
	connRate  *quota.Meter // max.connection.creation.rate; nil: unlimited
	dec       kgo.Decompressor
	// topicCfgs are the topic configs the broker knows (topicconfig.go),
	// built once; topicCfgIndex finds one by name, and topicCfgDefaults
	// holds their defaults, computed once from the static flags so that
	// the produce path makes no garbage looking them up.
	topicCfgs        []topicConfig
	topicCfgIndex    map[string]int
	topicCfgDefaults []string
	recompress       recompression // compression.go: topics whose compression.type is a codec
	// ignoredLogged holds the names of the ignored topic and broker
	// configs already logged as such, so each is logged once.
	ignoredLogged sync.Map
	dynCfgs       dynamicBrokerConfigs // broker_configs.go
	fwd           *forward.Pool        // nil: a single broker
	zoneBytes     ZoneBytes
	fetchBufs     bufpool.Pool      // the arrays fetch responses' records are copied into
	catchup       *catchup.Governor // nil: catch-up fetches are not paced
	catchupPrio   *catchup.Priority // nil: catch-up answers run at the process's priority
	// txnVerify, if set, verifies with the transaction coordinator that a
	// transactional batch's partition is in its producer's ongoing
	// transaction (KIP-890 part 1) before a produce appends the first
	// batch of one; a non-zero Kafka error code is the partition's answer.
	// With add (transaction version 2: Produce v12+), the coordinator is
	// asked to add the partition to the transaction instead. New sets
	// verifyTxnPartition; tests replace it.
	txnVerify func(transactionalID string, producerID int64, epoch int16, topic string, partition int32, add bool) int16

	// The security boundary (SetSecurity); the zero values let every
	// client do everything as ANONYMOUS.
	sslMapper *principal.SSLMapper
	sasl      SASL            // nil: no SASL mechanism enabled
	acls      *acl.Authorizer // nil: no authorizer
	security  *security.State // nil: no users or ACLs can be stored
	secObs    SecurityObserver
	// failedAuthDelay holds a connection open after a failed
	// authentication before closing it.
	failedAuthDelay time.Duration

	mu     sync.Mutex
	closed bool
	lns    []net.Listener
	conns  map[*conn]struct{}
	wg     sync.WaitGroup
}

// New builds a broker over an opened storage engine and a loaded group
// coordinator.
func New(cfg config.Broker, store *storage.Engine, groups *group.Shards, quotas *quota.Manager, clusterID string, log *slog.Logger) (*Broker, error) {
	b := &Broker{cfg: cfg, log: log, store: store, clusterID: clusterID, self: map[string]brokerEndpoint{},
		conns: map[*conn]struct{}{}, dec: kgo.DefaultDecompressor(), catchupPrio: catchup.NewPriority(int(cfg.CatchupNice))}
	for _, l := range cfg.Listeners {
		e, err := parseEndpoint(cfg.NodeID, l.Advertised)
		if err != nil {
			return nil, fmt.Errorf("broker: advertised address %q of %s: %w", l.Advertised, l, err)
		}
		b.self[l.Protocol] = e
	}
	b.apis = b.apiTable()
	b.topicCfgs = topicConfigTable()
	b.topicCfgIndex = make(map[string]int, len(b.topicCfgs))
	b.topicCfgDefaults = make([]string, len(b.topicCfgs))
	for i, c := range b.topicCfgs {
		b.topicCfgIndex[c.name] = i
		b.topicCfgDefaults[i] = c.def(b)
	}
	b.recompress.r = batch.NewRecompressor(b.dec)
	b.obs = noObserver{}
	b.secObs = noSecurityObserver{}
	b.failedAuthDelay = failedAuthDelay
	var err error
	if b.sslMapper, err = principal.ParseSSLRules(cfg.Security.SSLPrincipalMappingRules); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.quotas = quotas
	if cfg.MaxConnectionCreationRate > 0 {
		b.connRate = quota.NewMeter(float64(cfg.MaxConnectionCreationRate))
	}
	b.groupsPtr.Store(groups)
	b.txnVerify = b.verifyTxnPartition
	return b, nil
}

// Security is how the broker authenticates and authorizes clients.
type Security struct {
	SASL     SASL             // nil: no SASL mechanism enabled
	ACLs     *acl.Authorizer  // nil: no authorizer, everyone may do everything
	State    *security.State  // the shared ACLs and SCRAM users; nil: none
	Observer SecurityObserver // nil: security events are only logged
}

// SetSecurity installs the security boundary; call it before Serve.
func (b *Broker) SetSecurity(s Security) {
	b.sasl, b.acls, b.security = s.SASL, s.ACLs, s.State
	if s.Observer != nil {
		b.secObs = s.Observer
	}
}

// SetObserver installs the observer of answered requests; call it
// before Serve.
func (b *Broker) SetObserver(o RequestObserver) { b.obs = o }

// SetCatchup has catch-up fetches (those answered from segment objects)
// paced by g. Call it before Serve.
func (b *Broker) SetCatchup(g *catchup.Governor) { b.catchup = g }

// apiTable lists every API the broker implements, with the versions it
// implements; ApiVersions advertises exactly this table.
func (b *Broker) apiTable() map[int16]api {
	return map[int16]api{
		kmsg.Produce.Int16():                      {3, 12, b.handleProduce},
		kmsg.Fetch.Int16():                        {4, 17, b.handleFetch},
		kmsg.ListOffsets.Int16():                  {1, 8, b.handleListOffsets},
		kmsg.Metadata.Int16():                     {0, 13, b.handleMetadata},
		kmsg.OffsetForLeaderEpoch.Int16():         {2, 4, b.handleOffsetForLeaderEpoch},
		kmsg.ApiVersions.Int16():                  {0, 4, b.handleApiVersions},
		kmsg.SASLHandshake.Int16():                {0, 1, b.handleSASLHandshake},
		kmsg.SASLAuthenticate.Int16():             {0, 2, b.handleSASLAuthenticate},
		kmsg.CreateTopics.Int16():                 {0, 7, b.handleCreateTopics},
		kmsg.DeleteTopics.Int16():                 {0, 6, b.handleDeleteTopics},
		kmsg.DeleteRecords.Int16():                {0, 2, b.handleDeleteRecords},
		kmsg.DescribeConfigs.Int16():              {0, 4, b.handleDescribeConfigs},
		kmsg.AlterConfigs.Int16():                 {0, 2, b.handleAlterConfigs},
		kmsg.CreatePartitions.Int16():             {0, 3, b.handleCreatePartitions},
		kmsg.IncrementalAlterConfigs.Int16():      {0, 1, b.handleIncrementalAlterConfigs},
		kmsg.DescribeCluster.Int16():              {0, 1, b.handleDescribeCluster},
		kmsg.DescribeLogDirs.Int16():              {0, 4, b.handleDescribeLogDirs},
		kmsg.DescribeProducers.Int16():            {0, 0, b.handleDescribeProducers},
		kmsg.DescribeACLs.Int16():                 {0, 3, b.handleDescribeAcls},
		kmsg.CreateACLs.Int16():                   {0, 3, b.handleCreateAcls},
		kmsg.DeleteACLs.Int16():                   {0, 3, b.handleDeleteAcls},
		kmsg.DescribeUserSCRAMCredentials.Int16(): {0, 0, b.handleDescribeUserScramCredentials},
		kmsg.AlterUserSCRAMCredentials.Int16():    {0, 0, b.handleAlterUserScramCredentials},
		kmsg.InitProducerID.Int16():               {0, 5, b.handleInitProducerID},
		kmsg.DescribeClientQuotas.Int16():         {0, 1, b.handleDescribeClientQuotas},
		kmsg.AlterClientQuotas.Int16():            {0, 1, b.handleAlterClientQuotas},
		kmsg.FindCoordinator.Int16():              {0, 6, b.handleFindCoordinator},
		kmsg.JoinGroup.Int16():                    {0, 9, b.handleJoinGroup},
		kmsg.SyncGroup.Int16():                    {0, 5, b.handleSyncGroup},
		kmsg.Heartbeat.Int16():                    {0, 4, b.handleHeartbeat},
		kmsg.LeaveGroup.Int16():                   {0, 5, b.handleLeaveGroup},
		kmsg.OffsetCommit.Int16():                 {0, 10, b.handleOffsetCommit},
		kmsg.OffsetFetch.Int16():                  {0, 10, b.handleOffsetFetch},
		kmsg.ListGroups.Int16():                   {0, 5, b.handleListGroups},
		kmsg.DescribeGroups.Int16():               {0, 6, b.handleDescribeGroups},
		kmsg.DeleteGroups.Int16():                 {0, 3, b.handleDeleteGroups},
		kmsg.OffsetDelete.Int16():                 {0, 0, b.handleOffsetDelete},
		kmsg.AddPartitionsToTxn.Int16():           {0, 5, b.handleAddPartitionsToTxn},
		kmsg.AddOffsetsToTxn.Int16():              {0, 4, b.handleAddOffsetsToTxn},
		kmsg.EndTxn.Int16():                       {0, 5, b.handleEndTxn},
		kmsg.WriteTxnMarkers.Int16():              {0, 2, b.handleWriteTxnMarkers},
		kmsg.TxnOffsetCommit.Int16():              {0, 5, b.handleTxnOffsetCommit},
		kmsg.DescribeTransactions.Int16():         {0, 0, b.handleDescribeTransactions},
		kmsg.ListTransactions.Int16():             {0, 2, b.handleListTransactions},
		kmsg.ConsumerGroupHeartbeat.Int16():       {0, 1, b.handleConsumerGroupHeartbeat},
		kmsg.ConsumerGroupDescribe.Int16():        {0, 1, b.handleConsumerGroupDescribe},
		kmsg.DescribeTopicPartitions.Int16():      {0, 0, b.handleDescribeTopicPartitions},
	}
}

// Serve accepts connections on ln, the listener l, until Close. Each
// listener is served by its own call.
func (b *Broker) Serve(ln net.Listener, l config.Listener) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.lns = append(b.lns, ln)
	b.mu.Unlock()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("broker: accept: %w", err)
		}
		if !b.admit(nc) {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		c := &conn{b: b, nc: nc, listener: l, ctx: ctx, cancel: cancel, log: b.log.With("remote", nc.RemoteAddr().String(), "listener", l.Protocol),
			auth: authState{principal: principal.Anonymous, host: clientHost(nc)}}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			nc.Close()
			cancel()
			return nil
		}
		b.conns[c] = struct{}{}
		b.wg.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.wg.Done()
			c.serve()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		}()
	}
}

// Close stops accepting, closes every connection, and waits for their
// in-flight requests to finish. The storage engine is closed by the owner.
func (b *Broker) Close() error {
	b.mu.Lock()
	b.closed = true
	for _, ln := range b.lns {
		ln.Close()
	}
	for c := range b.conns {
		c.cancel()
		c.nc.Close()
	}
	b.mu.Unlock()
	b.connQuota.close()
	// Before waiting for the connections: their writers may be waiting
	// for forwarded requests, which now fail at once (retriable) instead
	// of holding the shutdown up to a request's timeout.
	if b.fwd != nil {
		b.fwd.Close()
	}
	b.wg.Wait()
	return nil
}

// adminTimeout bounds a topic change's wait for the metadata store, so a
// store outage fails the request instead of hanging its connection.
const adminTimeout = 15 * time.Second
