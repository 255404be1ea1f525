package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/audit"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/segment"
	"github.com/vigilhq/vigil/internal/server"
	"github.com/vigilhq/vigil/internal/server/servertest"
)

// createTopics creates topics prefix-00... through the broker: each is
// one audit event (CreateTopics), and it waits until the audit topic
// holds at least want records.
func createTopics(t *testing.T, addr, prefix string, n int, want int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range n {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, fmt.Sprintf("%s-%02d", prefix, i)); err != nil {
			t.Fatalf("create topic: %v", err)
		}
	}
	for {
		ends, err := adm.ListEndOffsets(ctx, audit.Topic)
		if err != nil {
			t.Fatal(err)
		}
		var got int64
		ends.Each(func(o kadm.ListedOffset) { got += o.Offset })
		if got >= want {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("the audit topic holds %d records, want %d", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func auditVerifyCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"audit", "verify"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// partitionLines returns the report's table rows by partition.
func partitionLines(out string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && regexp.MustCompile(`^\d+$`).MatchString(f[0]) {
			rows[f[0]] = f
		}
	}
	return rows
}

// TestAuditVerifyChain: the audit events a broker writes verify intact in
// every partition, and after a restart (the partitions' leadership
// starting afresh from the log) the chain goes on from the last record
// written before it: still intact, still from offset 0.
func TestAuditVerifyChain(t *testing.T) {
	cfg := servertest.Config(t.TempDir())
	b := servertest.Start(t, cfg)
	// Each burst is written at one flush, to the next partition.
	for i := range 3 {
		createTopics(t, b.Addr, fmt.Sprint("before", i), 8, int64(8*(i+1)))
	}
	anchors := filepath.Join(t.TempDir(), "anchors")
	code, out, errOut := auditVerifyCmd(t, "--brokers", b.Addr, "--save-anchors", anchors, "--progress", "1ns")
	if code != 0 || !strings.Contains(out, "every chain holds") {
		t.Fatalf("vigil audit verify: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "records checked") {
		t.Errorf("no progress line on stderr: %q", errOut)
	}
	rows := partitionLines(out)
	if len(rows) != audit.Partitions {
		t.Fatalf("%d partitions reported, want %d:\n%s", len(rows), audit.Partitions, out)
	}

	b.Close()
	b = servertest.Start(t, cfg)
	createTopics(t, b.Addr, "after", 24, 48)
	code, out, errOut = auditVerifyCmd(t, "--brokers", b.Addr, "--anchors", anchors)
	if code != 0 || !strings.Contains(out, "every chain holds") {
		t.Fatalf("vigil audit verify after a restart, anchored before it: exit %d\n%s%s", code, out, errOut)
	}
	var records, grown int
	for p, f := range partitionLines(out) {
		var n int
		fmt.Sscan(f[1], &n)
		records += n
		if n > 0 && (f[2] != "0" || f[5] != "intact") {
			t.Errorf("partition %s: %v, want a chain from 0, intact", p, f)
		}
		var before int
		fmt.Sscan(rows[p][1], &before)
		if n > before && before > 0 {
			grown++ // a chain that went on across the restart
		}
	}
	if records < 48 || grown == 0 {
		t.Errorf("%d records, %d partitions written before and after the restart:\n%s", records, grown, out)
	}

	code, out, _ = auditVerifyCmd(t, "--brokers", b.Addr, "--partition", "3")
	if rows := partitionLines(out); code != 0 || len(rows) != 1 || rows["3"] == nil {
		t.Errorf("--partition 3: exit %d\n%s", code, out)
	}
}

// TestAuditVerifyKeyed: with --audit-chain-key-file the links are keyed;
// the verifier needs the key, and another key breaks every link.
func TestAuditVerifyKeyed(t *testing.T) {
	dir := t.TempDir()
	key, other := filepath.Join(dir, "key"), filepath.Join(dir, "other")
	os.WriteFile(key, []byte("c2VjcmV0IGF1ZGl0IGNoYWluIGtleSBmb3IgdGVzdHM=\n"), 0o600)
	os.WriteFile(other, []byte("YW5vdGhlciBrZXksIG5vdCB0aGUgYnJva2Vycycgb25l\n"), 0o600)
	b := servertest.Run(t, func(c *config.Broker) { c.Security.AuditChainKeyFile = key })
	createTopics(t, b.Addr, "keyed", 8, 8)

	if code, out, errOut := auditVerifyCmd(t, "--brokers", b.Addr, "--key-file", key); code != 0 || !strings.Contains(out, "every chain holds") {
		t.Errorf("with the key: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := auditVerifyCmd(t, "--brokers", b.Addr); code != 1 || !strings.Contains(out, "keyed: give --key-file") {
		t.Errorf("without the key: exit %d, want 1 and a hint\n%s", code, out)
	}
	if code, out, _ := auditVerifyCmd(t, "--brokers", b.Addr, "--key-file", other); code != 1 || !strings.Contains(out, "the wrong --key-file?") {
		t.Errorf("with another key: exit %d, want 1\n%s", code, out)
	}

	// A guessable key keeps the broker from starting.
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("hunter2\n"), 0o600)
	cfg := servertest.Config(t.TempDir())
	cfg.Security.AuditChainKeyFile = short
	if srv, err := server.Start(context.Background(), cfg, servertest.Logger(t)); err == nil || !strings.Contains(err.Error(), "at least 32") {
		if err == nil {
			srv.Close()
		}
		t.Errorf("a broker with a 7-byte chain key: %v, want a refusal", err)
	}
}

// TestAuditVerifyTamperedObject: one audit record altered in its segment
// object (its batch's CRC recomputed, as a forger would) is a break at
// its offset, the other records still verify.
func TestAuditVerifyTamperedObject(t *testing.T) {
	cfg := servertest.Config(t.TempDir())
	b := servertest.Start(t, cfg)
	createTopics(t, b.Addr, "evidence", 40, 40)
	anchors := filepath.Join(t.TempDir(), "anchors")
	if code, out, errOut := auditVerifyCmd(t, "--brokers", b.Addr, "--save-anchors", anchors); code != 0 {
		t.Fatalf("before the tamper: exit %d\n%s%s", code, out, errOut)
	}
	b.Close() // uploads what the WAL holds

	p, off := tamper(t, cfg.ObjectStore, []byte("evidence-17"), []byte("evidence-71"))
	b = servertest.Start(t, cfg)
	code, out, errOut := auditVerifyCmd(t, "--brokers", b.Addr)
	want := fmt.Sprintf("break: partition %d offset %d: the link does not match", p, off)
	if code != 1 || !strings.Contains(out, want) || strings.Count(out, "break: ") != 1 {
		t.Fatalf("vigil audit verify after altering partition %d offset %d: exit %d, want 1 and one break\n%s%s", p, off, code, out, errOut)
	}

	// An anchor past the partition's end: its tail was cut off.
	raw, _ := os.ReadFile(anchors)
	var line string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, fmt.Sprint(p, " ")) {
			line = l
		}
	}
	f := strings.Fields(line)
	if len(f) != 3 {
		t.Fatalf("no anchor of partition %d in %s:\n%s", p, anchors, raw)
	}
	os.WriteFile(anchors, fmt.Appendf(nil, "%d 1000 %s\n", p, f[2]), 0o644)
	code, out, _ = auditVerifyCmd(t, "--brokers", b.Addr, "--anchors", anchors)
	if want := fmt.Sprintf("break: partition %d offset 1000: the partition ends at offset", p); code != 1 || !strings.Contains(out, want) {
		t.Errorf("an anchor past the end: exit %d, want 1 and %q\n%s", code, want, out)
	}
}

// tamper replaces old with new (as long) in the audit record holding it,
// in the segment objects under dir, and returns the record's partition
// and offset.
func tamper(t *testing.T, dir string, old, new []byte) (int32, int64) {
	t.Helper()
	var part int32 = -1
	var offset int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || part >= 0 {
			return err
		}
		obj, err := os.ReadFile(path)
		if err != nil || !bytes.HasSuffix(obj, []byte(segment.Magic)) || !bytes.Contains(obj, old) {
			return err
		}
		n, err := segment.FooterLen(obj[len(obj)-12:])
		if err != nil {
			return err
		}
		runs, err := segment.ParseFooter(obj[len(obj)-12-n : len(obj)-12])
		if err != nil {
			return err
		}
		for _, r := range runs {
			if r.Topic != audit.Topic {
				continue
			}
			for data := obj[r.Position : r.Position+r.Size]; len(data) > 0; {
				info, err := batch.Peek(data)
				if err != nil {
					return err
				}
				raw := data[:info.Size]
				data = data[info.Size:]
				_, recs, err := batch.Records(raw, kgo.DefaultDecompressor())
				if err != nil {
					return err
				}
				for _, rec := range recs {
					if i := bytes.Index(raw, old); i >= 0 && bytes.Contains(rec.Value, old) {
						copy(raw[i:], new)
						binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
						part, offset = r.Partition, info.BaseOffset+int64(rec.OffsetDelta)
						return os.WriteFile(path, obj, 0o644)
					}
				}
			}
		}
		return nil
	})
	if err != nil || part < 0 {
		t.Fatalf("no audit record holding %q in a segment object under %s (%v)", old, dir, err)
	}
	return part, offset
}

// TestAuditVerifyErrors: no Read on the audit topic, and no broker, are
// said plainly.
func TestAuditVerifyErrors(t *testing.T) {
	b := servertest.Run(t, func(c *config.Broker) { c.Security.Authorizer = "acl" })
	code, _, errOut := auditVerifyCmd(t, "--brokers", b.Addr, "--timeout", "10s")
	if code != 1 || !strings.Contains(errOut, "TOPIC_AUTHORIZATION_FAILED") || !strings.Contains(errOut, "needs Read") {
		t.Errorf("without Read on the audit topic: exit %d\n%s", code, errOut)
	}
	code, _, errOut = auditVerifyCmd(t, "--brokers", "127.0.0.1:1", "--timeout", "2s")
	if code != 1 || !strings.Contains(errOut, "cannot reach the brokers") {
		t.Errorf("no broker: exit %d\n%s", code, errOut)
	}
	if code, _, _ := auditVerifyCmd(t, "--partition"); code != 2 {
		t.Errorf("a bad flag: exit %d, want 2", code)
	}
}
