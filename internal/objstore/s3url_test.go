package objstore

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func TestParseS3URL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want s3Config
	}{
		{"s3://logs", s3Config{bucket: "logs", endpoint: "s3.amazonaws.com", secure: true, region: "us-east-1", lookup: minio.BucketLookupAuto, timeout: 30 * time.Second}},
		{"s3://logs/", s3Config{bucket: "logs", endpoint: "s3.amazonaws.com", secure: true, region: "us-east-1", lookup: minio.BucketLookupAuto, timeout: 30 * time.Second}},
		{"s3://logs/vigil/prod/?region=eu-west-1&path_style=false", s3Config{bucket: "logs", prefix: "vigil/prod/", endpoint: "s3.amazonaws.com", secure: true, region: "eu-west-1", lookup: minio.BucketLookupDNS, timeout: 30 * time.Second}},
		{"s3://b/p?endpoint=minio:9000&tls=false&path_style=true&create_bucket=true&timeout=5s", s3Config{bucket: "b", prefix: "p/", endpoint: "minio:9000", region: "us-east-1", lookup: minio.BucketLookupPath, createBucket: true, timeout: 5 * time.Second}},
		{"s3://b?endpoint=http://127.0.0.1:7070", s3Config{bucket: "b", endpoint: "127.0.0.1:7070", region: "us-east-1", lookup: minio.BucketLookupAuto, timeout: 30 * time.Second}},
		{"s3://b?endpoint=https://s3.example.com&tls=true", s3Config{bucket: "b", endpoint: "s3.example.com", secure: true, region: "us-east-1", lookup: minio.BucketLookupAuto, timeout: 30 * time.Second}},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseS3URL(u)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.url, got, tc.want)
		}
	}
	for _, tc := range []struct{ url, want string }{
		{"s3:///prefix", "missing bucket"},
		{"s3://key:secret@b", "must not be in the URL"},
		{"s3://b?endpont=x", `unknown parameter "endpont"`},
		{"s3://b?tls=maybe", "tls"},
		{"s3://b?path_style=yes", "path_style"},
		{"s3://b?timeout=-1s", "must be positive"},
		{"s3://b?region=", "must not be empty"},
		{"s3://b?endpoint=http://h:1&tls=true", "contradicts"},
		{"s3://b?endpoint=ftp://h:1", "http or https"},
		{"s3://b?endpoint=http://h:1/path", "without path"},
		{"s3://b?endpoint=h:1/path", "HOST[:PORT]"},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseS3URL(u); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to contain %q", tc.url, err, tc.want)
		}
	}
}
