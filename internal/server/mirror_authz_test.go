package server

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
)

// TestMirrorAppendAuthz: a mirror append (client.id vigil-mirror) needs
// ClusterAction on the cluster, as Kafka's replication requests do, and
// Write on the topic; with both it lands at the offset it carries. An
// ordinary produce to the mirror topic is refused whatever it may do.
func TestMirrorAppendAuthz(t *testing.T) {
	e := startAuthzServer(t, false)
	const topic = "mirrored"
	src := "kafka-prod"
	resp, err := e.adm.CreateTopic(context.Background(), 1, -1, map[string]*string{"vigil.mirror.source": &src}, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create the mirror topic: %v %v", err, resp.Err)
	}
	e.grantTo(t, "mirror-write", onTopic(topic, kmsg.ACLOperationWrite))
	e.grantTo(t, "mirror-cluster", onCluster(kmsg.ACLOperationClusterAction))
	e.grantTo(t, "mirror-both", onCluster(kmsg.ACLOperationClusterAction), onTopic(topic, kmsg.ACLOperationWrite))

	appendAt := func(user, clientID string, bases ...int64) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		var raw []byte
		for _, base := range bases {
			b := batch.Build([]batch.KV{{Key: []byte("k"), Value: []byte("v")}}, 1000)
			batch.Assign(b, base, 3)
			raw = append(raw, b...)
		}
		req := produceReq(topic, 0, -1, raw)
		r, err := req.RequestWith(context.Background(), e.client(t, user, kgo.ClientID(clientID)))
		if err != nil {
			t.Fatal(err)
		}
		return r.Topics[0].Partitions[0]
	}
	for _, tc := range []struct {
		user, clientID string
		want           *kerr.Error
	}{
		{"mirror-write", "vigil-mirror", kerr.ClusterAuthorizationFailed},
		{"mirror-cluster", "vigil-mirror", kerr.TopicAuthorizationFailed},
		{"mirror-both", "kcat", kerr.InvalidRequest}, // an ordinary produce to a mirror topic
	} {
		if p := appendAt(tc.user, tc.clientID, 5); p.ErrorCode != tc.want.Code {
			t.Errorf("%s as %s: %s, want %s", tc.user, tc.clientID, codeName(p.ErrorCode), tc.want.Message)
		}
	}
	if p := appendAt("mirror-both", "vigil-mirror", 5); p.ErrorCode != 0 || p.BaseOffset != 5 {
		t.Fatalf("mirror append with ClusterAction and Write: %s at %d, want offset 5", codeName(p.ErrorCode), p.BaseOffset)
	}
	end := func() int64 {
		t.Helper()
		ends, err := e.adm.ListEndOffsets(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := ends.Lookup(topic, 0)
		return o.Offset
	}
	if hw := end(); hw != 6 {
		t.Errorf("high watermark %d after a batch at offset 5, want 6", hw)
	}
	// Several batches in one request keep their offsets; the answer names
	// the first's.
	if p := appendAt("mirror-both", "vigil-mirror", 6, 8); p.ErrorCode != 0 || p.BaseOffset != 6 || end() != 9 {
		t.Fatalf("batches at 6 and 8: %s at %d, high watermark %d; want offset 6, 9", codeName(p.ErrorCode), p.BaseOffset, end())
	}
	// A retry of the last two is acknowledged and appends nothing.
	if p := appendAt("mirror-both", "vigil-mirror", 6, 8); p.ErrorCode != 0 || p.BaseOffset != 6 || end() != 9 {
		t.Fatalf("retried batches at 6 and 8: %s at %d, high watermark %d; want offset 6, 9", codeName(p.ErrorCode), p.BaseOffset, end())
	}
	// A batch that conflicts with the log (offset 7 is inside the gap
	// below the batch at 8, which it does not match) stops the request:
	// the batch after it is not appended.
	if p := appendAt("mirror-both", "vigil-mirror", 7, 20); p.ErrorCode != kerr.InvalidRequest.Code || end() != 9 {
		t.Fatalf("a conflicting batch then one at 20: %s, high watermark %d; want INVALID_REQUEST, 9", codeName(p.ErrorCode), end())
	}
}
