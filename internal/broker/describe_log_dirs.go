package broker

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDescribeLogDirs reports the partitions this broker leads as held
// in one log dir, the object store (named by its URL without the query,
// or its directory), with each partition's bytes of record batches: in
// segment objects, plus those in the WAL not yet uploaded. With shared
// storage every broker names the same dir; a partition is reported by its
// leader only, as Kafka reports a replica by the broker that hosts it.
// Nothing is ever a future replica, and there is no offset lag.
//
// Authorization, as Kafka's handleDescribeLogDirsRequest: Describe on the
// cluster, else no log dirs and (v3+) CLUSTER_AUTHORIZATION_FAILED.
func (b *Broker) handleDescribeLogDirs(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeCluster, clusterResource) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return func() kmsg.Response { return resp }
	}
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir, dir.TotalBytes, dir.UsableBytes = b.logDir()

	want := map[string][]int32{} // nil value: every partition
	if req.Topics != nil {
		for _, rt := range req.Topics {
			want[rt.Topic] = append(want[rt.Topic], rt.Partitions...)
		}
	}
	for _, t := range b.store.Topics() {
		parts, asked := want[t.Name]
		if req.Topics != nil && !asked {
			continue
		}
		dt := kmsg.DescribeLogDirsResponseDirTopic{Topic: t.Name}
		for _, l := range t.Logs {
			if req.Topics != nil && !slices.Contains(parts, l.Partition) {
				continue
			}
			if _, led := l.Leader(); !led {
				continue
			}
			dt.Partitions = append(dt.Partitions, kmsg.DescribeLogDirsResponseDirTopicPartition{Partition: l.Partition, Size: l.Size()})
		}
		if len(dt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, dt)
		}
	}
	slices.SortFunc(dir.Topics, func(a, b kmsg.DescribeLogDirsResponseDirTopic) int { return strings.Compare(a.Topic, b.Topic) })
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
	return func() kmsg.Response { return resp }
}

// logDir names the object store as a log dir, with its filesystem's size
// and free space when it is a local directory (-1 when unknown, as for S3).
func (b *Broker) logDir() (name string, total, usable int64) {
	name = b.cfg.ObjectStore
	if i := strings.IndexByte(name, '?'); i >= 0 && strings.Contains(name, "://") {
		name = name[:i]
	}
	path, local := strings.CutPrefix(name, "file://")
	if !local && !strings.Contains(name, "://") {
		path, local = name, true
	}
	total, usable = -1, -1
	if local {
		total, usable = diskSpace(path)
	}
	return name, total, usable
}
