// Package certstest makes a throwaway certificate authority and the
// server and client certificates tests need, written as PEM files.
package certstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a test certificate authority.
type CA struct {
	t    testing.TB
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// File is the CA certificate as PEM, for --tls-ca and --tls-client-ca.
	File string
}

// Pair is a certificate and its key on disk.
type Pair struct {
	Cert, Key string
}

// NewCA makes a CA in a temporary directory of t.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	dir := t.TempDir()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{t: t, dir: dir, cert: cert, key: key, File: filepath.Join(dir, "ca.pem")}
	writePEM(t, ca.File, "CERTIFICATE", der)
	return ca
}

// Server issues a server certificate for 127.0.0.1 and localhost.
func (ca *CA) Server(cn string) Pair {
	return ca.issue(pkix.Name{CommonName: cn}, x509.ExtKeyUsageServerAuth, true)
}

// Client issues a client certificate with the subject given.
func (ca *CA) Client(subject pkix.Name) Pair {
	return ca.issue(subject, x509.ExtKeyUsageClientAuth, false)
}

// Rewrite issues a new server certificate into an existing pair's files
// (a renewal, as an ACME client does it).
func (ca *CA) Rewrite(p Pair, cn string) {
	n := ca.Server(cn)
	for src, dst := range map[string]string{n.Cert: p.Cert, n.Key: p.Key} {
		raw, err := os.ReadFile(src)
		if err != nil {
			ca.t.Fatal(err)
		}
		if err := os.WriteFile(dst, raw, 0o600); err != nil {
			ca.t.Fatal(err)
		}
	}
}

func (ca *CA) issue(subject pkix.Name, usage x509.ExtKeyUsage, server bool) Pair {
	t := ca.t
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if server {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(ca.dir, "cert-*")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	p := Pair{Cert: f.Name() + ".pem", Key: f.Name() + ".key"}
	writePEM(t, p.Cert, "CERTIFICATE", der)
	writePEM(t, p.Key, "EC PRIVATE KEY", kder)
	return p
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
