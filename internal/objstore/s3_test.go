package objstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/certs/certstest"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/objstore/s3test"
)

func openCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestS3OpenErrors(t *testing.T) {
	srv := s3test.Start(t)
	srv.Bucket("exists")
	ctx := openCtx(t)

	_, err := objstore.Open(ctx, srv.URL("missing", ""), srv.Options())
	if err == nil || !strings.Contains(err.Error(), `bucket "missing" does not exist`) || !strings.Contains(err.Error(), "create_bucket=true") {
		t.Fatalf("open of a missing bucket: %v", err)
	}
	if _, err := os.Stat(filepath.Join(srv.Root(), "missing")); !os.IsNotExist(err) {
		t.Fatalf("open without create_bucket created the bucket (stat: %v)", err)
	}

	wrong := objstore.Options{S3AccessKeyID: s3test.AccessKey, S3SecretAccessKey: "not-the-secret-4711"}
	_, err = objstore.Open(ctx, srv.URL("exists", ""), wrong)
	if err == nil {
		t.Fatal("open with a wrong secret succeeded")
	}
	if strings.Contains(err.Error(), "not-the-secret-4711") {
		t.Fatalf("error shows the secret: %v", err)
	}
	t.Logf("wrong secret: %v", err)

	for _, tc := range []struct {
		url  string
		opts objstore.Options
		want string
	}{
		{srv.URL("exists", "", "colour=blue"), srv.Options(), `unknown parameter "colour"`},
		{srv.URL("exists", "", "timeout=0s"), srv.Options(), "timeout"},
		{srv.URL("exists", "", "tls=true"), srv.Options(), "contradicts tls=true"},
		{"s3://" + s3test.AccessKey + ":" + s3test.SecretKey + "@exists/?endpoint=" + srv.Addr(), srv.Options(), "must not be in the URL"},
		{srv.URL("exists", ""), objstore.Options{S3AccessKeyID: "only-the-id"}, "needs its secret"},
	} {
		_, err := objstore.Open(ctx, tc.url, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("open %s: err %v, want it to contain %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), s3test.SecretKey) {
			t.Errorf("open %s: error shows the secret: %v", tc.url, err)
		}
	}
}

func TestS3CreateBucket(t *testing.T) {
	srv := s3test.Start(t)
	st := srv.Open(t, "fresh", "p", "create_bucket=true")
	if err := st.Put(openCtx(t), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(srv.Root(), "fresh", "p", "k")); err != nil || string(b) != "v" {
		t.Fatalf("object in the created bucket: %q, %v", b, err)
	}
	// Opening again finds the bucket.
	srv.Open(t, "fresh", "p", "create_bucket=true")
}

// TestS3CredentialChain opens the store without explicit credentials:
// first from the AWS environment variables, then from a shared
// credentials file in $HOME/.aws.
func TestS3CredentialChain(t *testing.T) {
	srv := s3test.Start(t)
	srv.Bucket("chain")
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "")

	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	roundTrip := func(what string) {
		t.Helper()
		ctx := openCtx(t)
		st, err := objstore.Open(ctx, srv.URL("chain", what), objstore.Options{})
		if err != nil {
			t.Fatalf("%s: open: %v", what, err)
		}
		defer st.Close()
		if err := st.Put(ctx, "k", []byte(what)); err != nil {
			t.Fatalf("%s: put: %v", what, err)
		}
		if b, err := st.GetRange(ctx, "k", 0, -1); err != nil || string(b) != what {
			t.Fatalf("%s: get: %q, %v", what, b, err)
		}
	}
	roundTrip("env")

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	if err := os.MkdirAll(filepath.Join(home, ".aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	ini := "[default]\naws_access_key_id = " + s3test.AccessKey + "\naws_secret_access_key = " + s3test.SecretKey + "\n"
	if err := os.WriteFile(filepath.Join(home, ".aws", "credentials"), []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	roundTrip("file")

	// Explicit credentials win over the chain.
	t.Setenv("AWS_ACCESS_KEY_ID", "WRONGKEY")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
	if _, err := objstore.Open(openCtx(t), srv.URL("chain", "x"), srv.Options()); err != nil {
		t.Fatalf("explicit credentials with wrong ones in the environment: %v", err)
	}
}

// TestS3HungStore freezes the server: calls must fail after about their
// timeout instead of blocking, and work again once it is back.
func TestS3HungStore(t *testing.T) {
	srv := s3test.Start(t)
	srv.Bucket("hung")
	st := srv.Open(t, "hung", "", "timeout=1s")
	ctx := openCtx(t)
	if err := st.Put(ctx, "before", []byte("x")); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	calls := map[string]func() error{
		"put":  func() error { return st.Put(ctx, "during", make([]byte, 100<<10)) },
		"get":  func() error { _, err := st.GetRange(ctx, "before", 0, -1); return err },
		"list": func() error { _, err := st.List(ctx, ""); return err },
		// Not "before": the frozen server still holds the request in its
		// socket backlog and carries it out once resumed, as a real store
		// may do with a call its client gave up on.
		"delete": func() error { return st.Delete(ctx, "other") },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		took := time.Since(start)
		if err == nil {
			t.Fatalf("%s on a hung store succeeded", name)
		}
		if !strings.Contains(err.Error(), "timed out") {
			t.Errorf("%s: error does not say it timed out: %v", name, err)
		}
		if took > 5*time.Second {
			t.Errorf("%s took %v with timeout=1s", name, took)
		}
		t.Logf("%s on a hung store failed after %v: %v", name, took.Round(time.Millisecond), err)
	}
	srv.Resume()
	resumed = true
	if b, err := st.GetRange(ctx, "before", 0, -1); err != nil || string(b) != "x" {
		t.Fatalf("get after resume: %q, %v", b, err)
	}
}

// TestS3Outage stops the server: calls fail (quickly, the connection is
// refused) and succeed again after it restarts, with the objects written
// before the outage intact.
func TestS3Outage(t *testing.T) {
	srv := s3test.Start(t)
	srv.Bucket("outage")
	st := srv.Open(t, "outage", "v")
	ctx := openCtx(t)
	if err := st.Put(ctx, "before", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	err := st.Put(ctx, "during", []byte("x"))
	if err == nil {
		t.Fatal("put during an outage succeeded")
	}
	t.Logf("put during the outage failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if _, err := st.GetRange(ctx, "before", 0, -1); err == nil || errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("get during an outage: %v (want an error other than ErrNotExist)", err)
	}
	srv.Start()
	if err := st.Put(ctx, "after", []byte("y")); err != nil {
		t.Fatalf("put after restart: %v", err)
	}
	objs, err := st.List(ctx, "")
	if err != nil || len(objs) != 2 || objs[0].Key != "after" || objs[1].Key != "before" {
		t.Fatalf("list after restart: %v, %v", objs, err)
	}
}

// TestS3PrivateCA talks https to a gateway whose certificate a private CA
// signed: with --s3-ca it works, without it the certificate is refused,
// and a CA bundle for a plain-HTTP endpoint is a configuration error.
func TestS3PrivateCA(t *testing.T) {
	ca := certstest.NewCA(t, "s3-ca")
	pair := ca.Server("s3")
	srv := s3test.StartTLS(t, pair.Cert, pair.Key)
	bucket := srv.Bucket("tls")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := srv.Options()
	if st, err := objstore.Open(ctx, srv.URL(bucket, "p"), opts); err == nil {
		st.Close()
		t.Fatal("a private CA's certificate was trusted without --s3-ca")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA: %v (want a certificate error)", err)
	}
	opts.S3CA = ca.File
	st, err := objstore.Open(ctx, srv.URL(bucket, "p"), opts)
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	defer st.Close()
	if err := st.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("put over https: %v", err)
	}
	plainSrv := s3test.Start(t)
	if _, err := objstore.Open(ctx, plainSrv.URL(plainSrv.Bucket("plain"), "p"), opts); err == nil || !strings.Contains(err.Error(), "plain-HTTP") {
		t.Errorf("a CA bundle with an http endpoint: %v", err)
	}
}
