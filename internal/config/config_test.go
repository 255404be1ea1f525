package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "vigil.yaml")
	yaml := "listen: 127.0.0.1:1111\ndata-dir: /from/file\nlog-level: debug\nupload-interval: 5s\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load("test", []string{"--config", file, "--listen", "127.0.0.1:3333"},
		env(map[string]string{"VIGIL_DATA_DIR": "/from/env", "VIGIL_LISTEN": "127.0.0.1:2222"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:3333" {
		t.Errorf("flag must win over env and file: listen = %s", c.Listen)
	}
	if c.DataDir != "/from/env" {
		t.Errorf("env must win over file: data-dir = %s", c.DataDir)
	}
	if c.LogLevel != "debug" || c.UploadInterval != 5*time.Second {
		t.Errorf("file values not applied: %+v", c)
	}
	if c.Advertised != c.Listen || c.ObjectStore != filepath.Join("/from/env", "objects") {
		t.Errorf("derived defaults wrong: advertised %s object store %s", c.Advertised, c.ObjectStore)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load("test", nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9092" || c.DataDir != "./data" || c.WAL != "file" || !c.AutoCreateTopics || c.CompressionType != "producer" {
		t.Errorf("defaults: %+v", c)
	}
	if c, err := Load("test", nil, env(map[string]string{"VIGIL_COMPRESSION_TYPE": "zstd"})); err != nil || c.CompressionType != "zstd" {
		t.Errorf("VIGIL_COMPRESSION_TYPE=zstd: %v %q", err, c.CompressionType)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--wal", "tape"}, nil, "must be file or object"},
		{[]string{"--wal", "object", "--node-id", "-1"}, nil, "--node-id -1"},
		{[]string{"--wal-flush-interval", "0s"}, nil, "--wal-flush-interval"},
		{nil, map[string]string{"VIGIL_WAL_FLUSH_BYTES": "100"}, "--wal-flush-bytes"},
		{[]string{"--listen", "nonsense"}, nil, "--listen"},
		{[]string{"--log-level", "loud"}, nil, "--log-level"},
		{nil, map[string]string{"VIGIL_NODE_ID": "x"}, "VIGIL_NODE_ID"},
		{[]string{"--default-partitions", "0"}, nil, "at least 1"},
		{[]string{"extra"}, nil, "unexpected argument"},
		{[]string{"--offsets-partitions", "0"}, nil, "--offsets-partitions"},
		{[]string{"--transaction-state-partitions", "0"}, nil, "--transaction-state-partitions"},
		{nil, map[string]string{"VIGIL_TRANSACTION_MAX_TIMEOUT": "0s"}, "--transaction-max-timeout"},
		{nil, map[string]string{"VIGIL_GROUP_INITIAL_REBALANCE_DELAY": "-1s"}, "must not be negative"},
		{[]string{"--retention-check-interval", "0s"}, nil, "--retention-check-interval"},
		{nil, map[string]string{"VIGIL_OBJECT_DELETE_DELAY": "-1m"}, "--object-delete-delay"},
		{[]string{"--metadata", "zk://h:1"}, nil, "--metadata"},
		{[]string{"--metadata", "etcd://"}, nil, "--metadata"},
		{nil, map[string]string{"VIGIL_METADATA": "etcd://h:1,h2"}, "--metadata"},
		{[]string{"--metadata", "etcd://h:0"}, nil, "bad port"},
		{[]string{"--catchup-chunk-bytes", "100"}, nil, "--catchup-chunk-bytes"},
		{[]string{"--catchup-sched-limit", "10us"}, nil, "--catchup-sched-limit"},
		{nil, map[string]string{"VIGIL_CATCHUP_COMMIT_LIMIT": "-1ms"}, "--catchup-commit-limit"},
		{[]string{"--catchup-nice", "20"}, nil, "--catchup-nice"},
		{[]string{"--compression-type", "brotli"}, nil, "--compression-type"},
	} {
		_, err := Load("test", tc.args, env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v, %v) = %v, want error containing %q", tc.args, tc.env, err, tc.want)
		}
	}
	file := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(file, []byte("no-such-key: 1\n"), 0o644)
	if _, err := Load("test", []string{"--config", file}, env(nil)); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Errorf("unknown file key: %v", err)
	}
}

// TestObjectWAL: --wal object is accepted, with its group-commit knobs
// from flags, env or file.
func TestObjectWAL(t *testing.T) {
	c, err := Load("test", []string{"--wal", "object"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.WAL != "object" || c.WALFlushInterval != 5*time.Millisecond || c.WALFlushBytes != 4<<20 {
		t.Errorf("object WAL defaults: %s %s %d", c.WAL, c.WALFlushInterval, c.WALFlushBytes)
	}
	file := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(file, []byte("wal: object\nwal-flush-bytes: 65536\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = Load("test", []string{"--config", file, "--wal-flush-interval", "20ms"}, env(map[string]string{"VIGIL_NODE_ID": "7"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.WAL != "object" || c.WALFlushInterval != 20*time.Millisecond || c.WALFlushBytes != 65536 || c.NodeID != 7 {
		t.Errorf("object WAL from file/flag/env: %s %s %d node %d", c.WAL, c.WALFlushInterval, c.WALFlushBytes, c.NodeID)
	}
}

func TestGroupOptions(t *testing.T) {
	c, err := Load("test", nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.OffsetsPartitions != 16 || c.GroupInitialRebalance != 3*time.Second || c.GroupMinSession != 6*time.Second {
		t.Errorf("group defaults: %d %s %s", c.OffsetsPartitions, c.GroupInitialRebalance, c.GroupMinSession)
	}
	file := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(file, []byte("offsets-partitions: 8\ngroup-initial-rebalance-delay: 100ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = Load("test", []string{"--config", file}, env(map[string]string{"VIGIL_GROUP_MIN_SESSION_TIMEOUT": "1s"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.OffsetsPartitions != 8 || c.GroupInitialRebalance != 100*time.Millisecond || c.GroupMinSession != time.Second {
		t.Errorf("file/env: %d %s %s", c.OffsetsPartitions, c.GroupInitialRebalance, c.GroupMinSession)
	}
	c, err = Load("test", []string{"--offsets-partitions", "50"}, env(map[string]string{"VIGIL_OFFSETS_PARTITIONS": "3"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.OffsetsPartitions != 50 {
		t.Errorf("flag must win: offsets-partitions = %d", c.OffsetsPartitions)
	}
}

func TestMetadata(t *testing.T) {
	c, err := Load("test", nil, env(nil))
	if err != nil || c.Metadata != "" {
		t.Fatalf("default metadata = %q, %v; want empty (embedded file)", c.Metadata, err)
	}
	file := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(file, []byte("metadata: etcd://file:2379\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err = Load("test", []string{"--config", file}, env(nil)); err != nil || c.Metadata != "etcd://file:2379" {
		t.Fatalf("metadata from file = %q, %v", c.Metadata, err)
	}
	c, err = Load("test", []string{"--config", file}, env(map[string]string{"VIGIL_METADATA": "etcd://env:2379"}))
	if err != nil || c.Metadata != "etcd://env:2379" {
		t.Fatalf("env must win over file: %q, %v", c.Metadata, err)
	}
	c, err = Load("test", []string{"--metadata", "etcd://flag:1"}, env(map[string]string{"VIGIL_METADATA": "etcd://env:2379"}))
	if err != nil || c.Metadata != "etcd://flag:1" {
		t.Fatalf("flag must win: %q, %v", c.Metadata, err)
	}
	for in, want := range map[string]string{
		"etcd://a:1":                      "[a:1] /vigil/",
		"etcd://a:1,10.0.0.2:2379/":       "[a:1 10.0.0.2:2379] /vigil/",
		"etcd://a:1/vigil/prod":           "[a:1] /vigil/prod/",
		"etcd://a:1,[::1]:2379/x/":        "[a:1 [::1]:2379] /x/",
		"etcd://localhost:2379/team/a/b/": "[localhost:2379] /team/a/b/",
	} {
		eps, prefix, err := ParseEtcdURL(in)
		if got := fmt.Sprint(eps, " ", prefix); err != nil || got != want {
			t.Errorf("ParseEtcdURL(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
}

func TestS3Credentials(t *testing.T) {
	const store = "s3://logs/vigil?endpoint=minio:9000&tls=false"
	file := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(file, []byte("object-store: "+store+"\ns3-access-key-id: FROMFILE\ns3-secret-access-key: file-secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load("test", []string{"--config", file}, env(nil))
	if err != nil || c.ObjectStore != store || c.S3AccessKeyID != "FROMFILE" || string(c.S3SecretAccessKey) != "file-secret" {
		t.Fatalf("from file: %q %q %v", c.ObjectStore, c.S3AccessKeyID, err)
	}
	c, err = Load("test", []string{"--config", file, "--s3-access-key-id", "FROMFLAG"},
		env(map[string]string{"VIGIL_S3_SECRET_ACCESS_KEY": "env-secret", "VIGIL_S3_ACCESS_KEY_ID": "FROMENV"}))
	if err != nil || c.S3AccessKeyID != "FROMFLAG" || string(c.S3SecretAccessKey) != "env-secret" {
		t.Fatalf("flag > env > file: %q, %v", c.S3AccessKeyID, err)
	}
	// The secret never prints, not even as part of the whole config.
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), c.S3SecretAccessKey.String()} {
		if strings.Contains(s, "env-secret") {
			t.Fatalf("secret printed: %s", s)
		}
	}
	if !strings.Contains(fmt.Sprintf("%+v", c), "S3SecretAccessKey:[redacted]") {
		t.Errorf("redacted secret not shown as such: %+v", c)
	}

	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--object-store", store, "--s3-access-key-id", "K"}, nil, "must be given together"},
		{[]string{"--object-store", store}, map[string]string{"VIGIL_S3_SECRET_ACCESS_KEY": "s"}, "must be given together"},
		{[]string{"--s3-access-key-id", "K", "--s3-secret-access-key", "s"}, nil, "need an s3:// --object-store"},
	} {
		_, err := Load("test", tc.args, env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v, %v) = %v, want error containing %q", tc.args, tc.env, err, tc.want)
		}
	}
}

// TestUploadDefaultsByStore: a directory store uploads small and often,
// S3 fewer, larger objects (each upload is a PUT); whatever a flag, the
// environment or the file says wins either way.
func TestUploadDefaultsByStore(t *testing.T) {
	noEnv := env(nil)
	for _, c := range []struct {
		name     string
		args     []string
		env      map[string]string
		interval time.Duration
		bytes    int64
	}{
		{"directory", nil, nil, 100 * time.Millisecond, 4 << 20},
		{"s3", []string{"--object-store", "s3://bucket/vigil"}, nil, 250 * time.Millisecond, 16 << 20},
		{"s3, interval by flag", []string{"--object-store", "s3://bucket/vigil", "--upload-interval", "1s"}, nil, time.Second, 16 << 20},
		{"s3, bytes by env", []string{"--object-store", "s3://bucket/vigil"}, map[string]string{"VIGIL_SEGMENT_BYTES": "1048576"}, 250 * time.Millisecond, 1 << 20},
		{"directory, interval by flag", []string{"--upload-interval", "2s"}, nil, 2 * time.Second, 4 << 20},
	} {
		getenv := noEnv
		if c.env != nil {
			getenv = env(c.env)
		}
		got, err := Load("test", c.args, getenv)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got.UploadInterval != c.interval || got.SegmentBytes != c.bytes {
			t.Errorf("%s: upload interval %s, segment bytes %d; want %s and %d", c.name, got.UploadInterval, got.SegmentBytes, c.interval, c.bytes)
		}
	}
}
