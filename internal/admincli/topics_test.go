package admincli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/admincli"
)

type jsonErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type topicResult struct {
	Topic             string   `json:"topic"`
	ID                string   `json:"id"`
	Partitions        int      `json:"partitions"`
	ReplicationFactor int      `json:"replication_factor"`
	Internal          bool     `json:"internal"`
	OK                bool     `json:"ok"`
	Error             *jsonErr `json:"error"`
}

type topicInfo struct {
	Topic             string `json:"topic"`
	ID                string `json:"id"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	PartitionDetails  []struct {
		Partition   int32   `json:"partition"`
		Leader      int32   `json:"leader"`
		Replicas    []int32 `json:"replicas"`
		StartOffset int64   `json:"start_offset"`
		EndOffset   int64   `json:"end_offset"`
		SizeBytes   int64   `json:"size_bytes"`
	} `json:"partition_details"`
	Configs []struct {
		Name   string  `json:"name"`
		Value  *string `json:"value"`
		Source string  `json:"source"`
	} `json:"configs"`
	Error *jsonErr `json:"error"`
}

func (ti topicInfo) config(name string) (value, source string, ok bool) {
	for _, c := range ti.Configs {
		if c.Name == name {
			if c.Value != nil {
				value = *c.Value
			}
			return value, c.Source, true
		}
	}
	return "", "", false
}

func describeJSON(t *testing.T, addr string, topics ...string) []topicInfo {
	t.Helper()
	var infos []topicInfo
	decode(t, cli(t, addr, append([]string{"topics", "describe", "--json"}, topics...)...), &infos)
	return infos
}

func TestTopics(t *testing.T) {
	addr := startBroker(t)

	t.Run("create", func(t *testing.T) {
		r := mustCLI(t, addr, "topics", "create", "audit", "--partitions", "3", "--config", "retention.ms=3600000")
		wantRow(t, r, "TOPIC", "PARTITIONS", "REPLICATION", "RESULT")
		wantRow(t, r, "audit", "3", "1", "created")

		var res []topicResult
		decode(t, mustCLI(t, addr, "topics", "create", "--json", "logins", "dns"), &res)
		if len(res) != 2 || res[0].Topic != "logins" || res[1].Topic != "dns" {
			t.Fatalf("create --json answered %+v", res)
		}
		for _, r := range res {
			// -1 partitions: the broker default (--default-partitions 1).
			if !r.OK || r.Partitions != 1 || r.ReplicationFactor != 1 || r.ID == "" || r.Error != nil {
				t.Errorf("create %s: %+v", r.Topic, r)
			}
		}
	})

	t.Run("create errors", func(t *testing.T) {
		r := cli(t, addr, "topics", "create", "audit", "--partitions", "3")
		wantCode(t, r, admincli.ExitFailed)
		wantMatch(t, "stdout", r.stdout, `audit\s+-\s+-\s+error: TOPIC_ALREADY_EXISTS`)
		wantMatch(t, "stderr", r.stderr, `1 topic of 1 could not be created`)

		// One bad topic does not stop the others; its error is per topic.
		var res []topicResult
		r = cli(t, addr, "topics", "create", "--json", "audit", "fresh")
		wantCode(t, r, admincli.ExitFailed)
		decode(t, r, &res)
		if len(res) != 2 || res[0].OK || res[0].Error == nil || res[0].Error.Code != "TOPIC_ALREADY_EXISTS" || !res[1].OK {
			t.Errorf("create audit fresh: %+v", res)
		}

		r = cli(t, addr, "topics", "create", "compacted", "--config", "cleanup.policy=shred")
		wantCode(t, r, admincli.ExitFailed)
		wantMatch(t, "stdout", r.stdout, `compacted.*INVALID_CONFIG`)
	})

	t.Run("list", func(t *testing.T) {
		r := mustCLI(t, addr, "topics", "list")
		wantRow(t, r, "TOPIC", "PARTITIONS", "REPLICATION", "ID")
		wantRow(t, r, "audit", "3", "1")
		wantRow(t, r, "logins", "1", "1")
		wantNoRow(t, r, "compacted")

		var list []topicResult
		decode(t, mustCLI(t, addr, "topics", "list", "--json"), &list)
		names := map[string]topicResult{}
		for _, l := range list {
			names[l.Topic] = l
		}
		if a := names["audit"]; a.Partitions != 3 || a.ReplicationFactor != 1 || a.ID == "" {
			t.Errorf("list --json audit: %+v", a)
		}
		user := 0 // the broker's own topics (__consumer_offsets, _vigil.audit) are internal
		for _, l := range list {
			if !l.Internal {
				user++
			}
		}
		if user != 4 { // audit, logins, dns, fresh
			t.Errorf("list --json has %d topics that are not internal, want 4: %+v", user, list)
		}
		if o := names["__consumer_offsets"]; !o.Internal {
			t.Errorf("list --json does not mark __consumer_offsets internal: %+v", o)
		}
	})

	t.Run("describe", func(t *testing.T) {
		cl := client(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		for i := 0; i < 5; i++ {
			if err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: "audit", Partition: 1, Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
		r := mustCLI(t, addr, "topics", "describe", "audit")
		wantMatch(t, "stdout", r.stdout, `Topic: audit\s+ID: \S+\s+Partitions: 3\s+Replication: 1`)
		wantRow(t, r, "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "START", "END", "SIZE")
		wantRow(t, r, "0", "0", "0", "0", "0", "0", "0", "0B")
		wantRow(t, r, "1", "0", "0", "0", "0", "0", "5")
		wantMatch(t, "stdout", r.stdout, `(?m)^1\s+0\s+0\s+0\s+0\s+0\s+5\s+[0-9]+B\s*$`)
		wantRow(t, r, "retention.ms", "3600000", "topic")
		wantRow(t, r, "cleanup.policy", "delete", "default")

		infos := describeJSON(t, addr, "audit")
		if len(infos) != 1 || len(infos[0].PartitionDetails) != 3 {
			t.Fatalf("describe --json: %+v", infos)
		}
		if p := infos[0].PartitionDetails[1]; p.Partition != 1 || p.StartOffset != 0 || p.EndOffset != 5 || p.Leader != 0 || len(p.Replicas) != 1 ||
			p.SizeBytes < 5*(61+1) || p.SizeBytes > 5*100 { // five one-record batches: a 61-byte header and a record of a one-byte value each
			t.Errorf("partition 1: %+v", p)
		}
		if v, src, _ := infos[0].config("retention.ms"); v != "3600000" || src != "topic" {
			t.Errorf("retention.ms = %q (%s)", v, src)
		}
	})

	t.Run("describe unknown", func(t *testing.T) {
		r := cli(t, addr, "topics", "describe", "audit", "missing")
		wantCode(t, r, admincli.ExitFailed)
		wantMatch(t, "stdout", r.stdout, `Topic: audit`)
		wantMatch(t, "stdout", r.stdout, `Topic: missing\s+Error: UNKNOWN_TOPIC_OR_PARTITION`)
		wantMatch(t, "stderr", r.stderr, `1 topic of 2 could not be described`)

		r = cli(t, addr, "topics", "describe", "--json", "missing")
		wantCode(t, r, admincli.ExitFailed)
		var infos []topicInfo
		decode(t, r, &infos)
		if len(infos) != 1 || infos[0].Error == nil || infos[0].Error.Code != "UNKNOWN_TOPIC_OR_PARTITION" {
			t.Errorf("describe --json missing: %+v", infos)
		}
		// Looking did not create it.
		wantNoRow(t, mustCLI(t, addr, "topics", "list"), "missing")
	})

	t.Run("alter-config", func(t *testing.T) {
		r := mustCLI(t, addr, "topics", "alter-config", "audit", "--set", "max.message.bytes=500000", "--delete", "retention.ms")
		wantRow(t, r, "audit", "max.message.bytes", "set", "500000", "altered")
		wantRow(t, r, "audit", "retention.ms", "delete")
		infos := describeJSON(t, addr, "audit")
		if v, src, _ := infos[0].config("max.message.bytes"); v != "500000" || src != "topic" {
			t.Errorf("max.message.bytes = %q (%s), want 500000 (topic)", v, src)
		}
		if v, src, _ := infos[0].config("retention.ms"); v != "604800000" || src != "default" {
			t.Errorf("retention.ms = %q (%s), want the default back", v, src)
		}

		var res []struct {
			Topic string   `json:"topic"`
			OK    bool     `json:"ok"`
			Error *jsonErr `json:"error"`
		}
		r = cli(t, addr, "topics", "alter-config", "--json", "audit", "--set", "retention.ms=soon")
		wantCode(t, r, admincli.ExitFailed)
		decode(t, r, &res)
		if len(res) != 1 || res[0].OK || res[0].Error == nil || res[0].Error.Code != "INVALID_CONFIG" {
			t.Errorf("alter retention.ms=soon: %+v", res)
		}

		r = cli(t, addr, "topics", "alter-config", "missing", "--set", "retention.ms=1000")
		wantCode(t, r, admincli.ExitFailed)
		wantMatch(t, "stdout", r.stdout, `missing.*UNKNOWN_TOPIC_OR_PARTITION`)
		wantMatch(t, "stderr", r.stderr, `1 topic of 1 could not be altered`)
	})

	t.Run("delete", func(t *testing.T) {
		r := cli(t, addr, "topics", "delete", "dns", "missing")
		wantCode(t, r, admincli.ExitFailed)
		wantRow(t, r, "dns", "deleted")
		wantMatch(t, "stdout", r.stdout, `missing\s+error: UNKNOWN_TOPIC_OR_PARTITION`)
		wantMatch(t, "stderr", r.stderr, `1 topic of 2 could not be deleted`)

		var res []topicResult
		decode(t, mustCLI(t, addr, "topics", "delete", "--json", "logins"), &res)
		if len(res) != 1 || !res[0].OK || res[0].Topic != "logins" {
			t.Errorf("delete --json: %+v", res)
		}
		list := mustCLI(t, addr, "topics", "list")
		wantNoRow(t, list, "dns")
		wantNoRow(t, list, "logins")
		wantRow(t, list, "audit", "3", "1")
	})

	t.Run("hold and release", func(t *testing.T) {
		mustCLI(t, addr, "topics", "hold", "audit")
		wantMatch(t, "describe", mustCLI(t, addr, "topics", "describe", "audit").stdout, `vigil\.legal\.hold\s+true`)
		r := cli(t, addr, "topics", "delete", "audit")
		wantCode(t, r, admincli.ExitFailed)
		wantMatch(t, "stdout", r.stdout, `audit.*POLICY_VIOLATION.*legal hold`)
		mustCLI(t, addr, "topics", "release", "audit")
		wantMatch(t, "describe", mustCLI(t, addr, "topics", "describe", "audit").stdout, `vigil\.legal\.hold\s+false`)
		wantRow(t, mustCLI(t, addr, "topics", "delete", "audit"), "audit", "deleted")
	})
}

func TestUsage(t *testing.T) {
	// Usage errors never reach a broker, so a dead address is fine.
	addr := closedPort(t)
	for _, tc := range []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{[]string{"topics"}, admincli.ExitUsage, "vigil topics list"},
		{[]string{"topics", "-h"}, admincli.ExitOK, "vigil topics alter-config"},
		{[]string{"groups", "help"}, admincli.ExitOK, "vigil groups reset"},
		{[]string{"topics", "frobnicate"}, admincli.ExitUsage, `unknown subcommand "frobnicate"`},
		{[]string{"topics", "list", "extra"}, admincli.ExitUsage, `unexpected argument "extra"`},
		{[]string{"topics", "list", "--no-such-flag"}, admincli.ExitUsage, "flag provided but not defined"},
		{[]string{"topics", "create", "--partitions", "3"}, admincli.ExitUsage, "name at least one topic"},
		{[]string{"topics", "create", "t", "--partitions", "0"}, admincli.ExitUsage, "--partitions 0"},
		{[]string{"topics", "create", "t", "--config", "retention.ms"}, admincli.ExitUsage, "want key=value"},
		{[]string{"topics", "describe"}, admincli.ExitUsage, "name at least one topic"},
		{[]string{"topics", "delete"}, admincli.ExitUsage, "name at least one topic"},
		{[]string{"topics", "alter-config", "t"}, admincli.ExitUsage, "nothing to change"},
		{[]string{"topics", "alter-config", "t", "--set", "a=1", "--delete", "a"}, admincli.ExitUsage, "both set and deleted"},
		{[]string{"topics", "list", "--brokers", ""}, admincli.ExitUsage, "--brokers is empty"},
		{[]string{"topics", "list", "--timeout", "0s"}, admincli.ExitUsage, "--timeout must be positive"},
		{[]string{"groups", "describe"}, admincli.ExitUsage, "name at least one group"},
		{[]string{"groups", "delete"}, admincli.ExitUsage, "name at least one group"},
		{[]string{"groups", "reset", "g", "--topic", "t"}, admincli.ExitUsage, "exactly one of --to-earliest"},
		{[]string{"groups", "reset", "g", "--topic", "t", "--to-earliest", "--to-latest"}, admincli.ExitUsage, "exactly one of --to-earliest"},
		{[]string{"groups", "reset", "g", "--to-earliest"}, admincli.ExitUsage, "either --topic"},
		{[]string{"groups", "reset", "g", "--topic", "t", "--all-topics", "--to-earliest"}, admincli.ExitUsage, "either --topic"},
		{[]string{"groups", "reset", "g", "h", "--topic", "t", "--to-earliest"}, admincli.ExitUsage, "exactly one group"},
		{[]string{"groups", "reset", "g", "--topic", "t:x", "--to-earliest"}, admincli.ExitUsage, "non-negative integers"},
		{[]string{"groups", "reset", "g", "--topic", "t", "--to-datetime", "yesterday"}, admincli.ExitUsage, "want RFC3339"},
		{[]string{"groups", "reset", "g", "--topic", "t", "--to-offset", "-3"}, admincli.ExitUsage, "non-negative offset"},
		{[]string{"groups", "reset", "g", "--topic", "t", "--to-latest", "--dry-run", "--execute"}, admincli.ExitUsage, "contradict"},
	} {
		r := cli(t, addr, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.want) {
			t.Errorf("vigil %s: exit %d, want %d with %q in output:\n%s%s", strings.Join(tc.args, " "), r.code, tc.code, tc.want, r.stdout, r.stderr)
		}
	}
}

func TestUnreachableBroker(t *testing.T) {
	addr := closedPort(t)
	for _, args := range [][]string{
		{"topics", "list"},
		{"topics", "create", "t", "--timeout", "5s"},
		{"groups", "list"},
		{"groups", "describe", "g"},
	} {
		start := time.Now()
		r := cli(t, addr, args...)
		wantCode(t, r, admincli.ExitFailed)
		wantMatch(t, "stderr", r.stderr, `cannot reach brokers 127\.0\.0\.1:\d+: .*connection refused`)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("vigil %s took %s to report a refused connection", strings.Join(args, " "), d)
		}
	}
	// --brokers wins over VIGIL_BROKERS.
	live := startBroker(t)
	mustCLI(t, addr, "topics", "list", "--brokers", live)
}
