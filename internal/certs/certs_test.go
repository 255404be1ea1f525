package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writePair writes a fresh self-signed certificate for cn and its key.
func writePair(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func commonName(t *testing.T, r *Reloader) string {
	t.Helper()
	c, err := x509.ParseCertificate(r.Certificate().Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return c.Subject.CommonName
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writePair(t, cert, key, "first")
	var reported []error
	now := time.Now()
	r, err := New(cert, key, Options{CheckEvery: time.Minute, OnError: func(err error) { reported = append(reported, err) }})
	if err != nil {
		t.Fatal(err)
	}
	r.now = func() time.Time { return now }
	if cn := commonName(t, r); cn != "first" {
		t.Fatalf("serving %q", cn)
	}
	if changed, err := r.Reload(); changed || err != nil {
		t.Fatalf("unchanged files: changed %v, err %v", changed, err)
	}

	// A renewed pair is served after an explicit reload...
	writePair(t, cert, key, "second")
	if changed, err := r.Reload(); !changed || err != nil {
		t.Fatalf("renewed pair: changed %v, err %v", changed, err)
	}
	if cn := commonName(t, r); cn != "second" {
		t.Fatalf("after reload serving %q", cn)
	}
	// ... or on a handshake once CheckEvery has passed, not before.
	writePair(t, cert, key, "third")
	if cn := commonName(t, r); cn != "second" {
		t.Fatalf("checked before CheckEvery: serving %q", cn)
	}
	now = now.Add(time.Minute)
	if cn := commonName(t, r); cn != "third" {
		t.Fatalf("after CheckEvery serving %q", cn)
	}

	// A half-replaced pair (the key of another certificate) keeps the old
	// certificate and is reported.
	other := filepath.Join(dir, "other.crt")
	writePair(t, other, key, "fourth")
	if changed, err := r.Reload(); changed || err == nil {
		t.Fatalf("mismatched pair: changed %v, err %v", changed, err)
	}
	now = now.Add(time.Minute)
	if cn := commonName(t, r); cn != "third" {
		t.Fatalf("mismatched pair: serving %q", cn)
	}
	if len(reported) != 1 {
		t.Errorf("errors reported on handshakes: %v, want 1", reported)
	}
	if _, err := New(filepath.Join(dir, "missing.crt"), key, Options{}); err == nil {
		t.Error("New with a missing certificate succeeded")
	}
}
