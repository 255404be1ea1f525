package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestKcatRecompressed: `vigil serve --compression-type zstd` makes zstd
// the default of its topics. kcat (librdkafka) produces uncompressed
// lines to one topic, and lz4 ones to a topic created with
// compression.type=gzip; a raw Fetch finds every stored batch in the
// topic's codec, and kcat reads every line back, in order.
func TestKcatRecompressed(t *testing.T) {
	t.Parallel()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat not installed: apt-get install -y kcat (see .ci/install)")
	}
	b := startBroker(t, "", t.TempDir(), "--compression-type", "zstd")
	createTopic(t, b.addr, "kcat-zstd", 1)
	createTopicWith(t, b.addr, "kcat-gzip", 1, map[string]*string{"compression.type": kadm.StringPtr("gzip")})

	var lines bytes.Buffer
	for i := range 5000 {
		fmt.Fprintf(&lines, `{"seq":%d,"host":"web-%02d","event":"login","user":"user%04d","message":"accepted password for user%04d from 10.0.%d.%d"}`+"\n",
			i, i%17, i*37%5000, i*37%5000, i%256, i*7%256)
	}
	file := filepath.Join(t.TempDir(), "lines.json")
	if err := os.WriteFile(file, lines.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSuffix(lines.String(), "\n"), "\n")
	for topic, c := range map[string]struct {
		produced string
		stored   int16
	}{"kcat-zstd": {"none", 4}, "kcat-gzip": {"lz4", 1}} {
		// batch.size: several batches, not one of every line.
		runCmd(t, 60*time.Second, kcat, "-b", b.addr, "-P", "-t", topic, "-l", "-X", "acks=all", "-X", "batch.size=65536", "-X", "compression.codec="+c.produced, file)

		codecs := storedCodecs(t, b.addr, topic, int64(len(want)))
		for codec, n := range codecs {
			if codec != c.stored {
				t.Errorf("%s: %d batches stored with codec %d, want %d", topic, n, codec, c.stored)
			}
		}
		t.Logf("%s: kcat sent %s, stored: %v (codec: batches)", topic, c.produced, codecs)

		out := runCmd(t, 60*time.Second, kcat, "-b", b.addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q")
		got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(got) != len(want) {
			t.Fatalf("%s: kcat read %d lines, want %d", topic, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: line %d read %q, want %q", topic, i, got[i], want[i])
			}
		}
	}
}

// storedCodecs fetches partition 0 of topic up to end with raw Fetch
// requests (v12: by name) and counts its data batches by codec.
func storedCodecs(t *testing.T, addr, topic string, end int64) map[int16]int {
	t.Helper()
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(kmsg.Fetch.Int16(), 12)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.MaxVersions(versions))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	codecs := map[int16]int{}
	for offset := int64(0); offset < end; {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 500, 1, 16<<20
		p := kmsg.NewFetchRequestTopicPartition()
		p.FetchOffset, p.PartitionMaxBytes = offset, 16<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.Partitions = topic, []kmsg.FetchRequestTopicPartition{p}
		req.Topics = []kmsg.FetchRequestTopic{rt}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("fetch %s at %d: %v", topic, offset, err)
		}
		rp := resp.Topics[0].Partitions[0]
		if rp.ErrorCode != 0 {
			t.Fatalf("fetch %s at %d: %v", topic, offset, kerr.ErrorForCode(rp.ErrorCode))
		}
		for rest := rp.RecordBatches; len(rest) >= 61; {
			size := 12 + int(binary.BigEndian.Uint32(rest[8:]))
			if size > len(rest) {
				break // a partial batch at the end of the answer
			}
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(rest[:size]); err != nil {
				t.Fatalf("fetch %s: %v", topic, err)
			}
			if rb.Attributes&0x20 == 0 { // data batches: markers are the broker's, uncompressed
				codecs[rb.Attributes&7]++
			}
			offset = rb.FirstOffset + int64(rb.LastOffsetDelta) + 1
			rest = rest[size:]
		}
	}
	return codecs
}

// TestTxnClientConfluentRecompressed: confluent-kafka's (librdkafka's)
// transactional producer, uncompressed, against `vigil serve
// --compression-type zstd`: its committed and aborted transactions are
// stored in zstd, and the script's read_committed consumer reads exactly
// the committed records at the offsets their delivery reports gave (its
// read_uncommitted one sees the aborted ones too).
func TestTxnClientConfluentRecompressed(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "", t.TempDir(), append([]string{"--compression-type", "zstd"}, txnClientBrokerFlags...)...)
	createTopic(t, b.addr, "cfz-in", 1)
	var produced struct{ Committed, Aborted []txnRecord }
	confluentTxn(t, &produced, "produce", b.addr, "cfz-producer", "cfz-in")
	if len(produced.Committed) == 0 || len(produced.Committed) != 2*len(produced.Aborted) {
		t.Fatalf("the script reports %d committed and %d aborted records, want four transactions committed for two aborted", len(produced.Committed), len(produced.Aborted))
	}
	end := int64(0)
	for _, r := range append(produced.Committed, produced.Aborted...) {
		end = max(end, r.Offset+1)
	}
	codecs := storedCodecs(t, b.addr, "cfz-in", end)
	if len(codecs) != 1 || codecs[4] == 0 {
		t.Errorf("data batches stored by codec %v, want zstd (4) alone", codecs)
	}
}
