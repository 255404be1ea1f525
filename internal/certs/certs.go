// Package certs serves a TLS certificate from a PEM certificate and key
// file pair, and a CA bundle from a PEM file, and picks up replaced files
// without a restart: certificates are renewed (ACME, an internal CA) far
// more often than brokers restart.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"
)

// Reloader holds the current certificate of one file pair. The files are
// checked at most once per CheckEvery, on a handshake; Reload checks now
// (SIGHUP). A pair that fails to load (half written, key and certificate
// not matching) keeps the previous certificate and is reported by Reload
// and by the error hook.
type Reloader struct {
	certFile, keyFile string
	checkEvery        time.Duration
	onError           func(error)
	now               func() time.Time

	mu          sync.Mutex
	cert        *tls.Certificate
	certStamp   stamp
	keyStamp    stamp
	lastChecked time.Time
}

// stamp identifies one version of a file without reading it.
type stamp struct {
	size int64
	mod  time.Time
}

// Options of a Reloader; zero values are the defaults.
type Options struct {
	CheckEvery time.Duration // default 1s
	OnError    func(error)   // called when a changed pair fails to load; default: ignore
}

// New loads the pair once; an error here is a configuration error.
func New(certFile, keyFile string, opts Options) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, checkEvery: opts.CheckEvery, onError: opts.OnError, now: time.Now}
	if r.checkEvery <= 0 {
		r.checkEvery = time.Second
	}
	if r.onError == nil {
		r.onError = func(error) {}
	}
	if _, err := r.reloadLocked(true); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload rereads the pair if either file changed; changed reports whether
// a new certificate is now served.
func (r *Reloader) Reload() (changed bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(false)
}

func (r *Reloader) reloadLocked(force bool) (bool, error) {
	r.lastChecked = r.now()
	cs, err := statFile(r.certFile)
	if err != nil {
		return false, err
	}
	ks, err := statFile(r.keyFile)
	if err != nil {
		return false, err
	}
	if !force && cs == r.certStamp && ks == r.keyStamp {
		return false, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return false, fmt.Errorf("load TLS certificate %s with key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.certStamp, r.keyStamp = &cert, cs, ks
	return true, nil
}

func statFile(name string) (stamp, error) {
	st, err := os.Stat(name)
	if err != nil {
		return stamp{}, fmt.Errorf("TLS file: %w", err)
	}
	return stamp{size: st.Size(), mod: st.ModTime()}, nil
}

// Certificate returns the certificate to present, rereading the files
// first when they were last checked over CheckEvery ago.
func (r *Reloader) Certificate() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.now().Sub(r.lastChecked) >= r.checkEvery {
		if _, err := r.reloadLocked(false); err != nil {
			r.onError(err)
		}
	}
	return r.cert
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

// CAPool holds the CA bundle client certificates are verified against,
// reread like a Reloader's pair when the file changes.
type CAPool struct {
	file       string
	checkEvery time.Duration
	onError    func(error)
	now        func() time.Time

	mu          sync.Mutex
	pool        *x509.CertPool
	stamp       stamp
	lastChecked time.Time
}

// NewCAPool loads the bundle once; an error here is a configuration error.
func NewCAPool(file string, opts Options) (*CAPool, error) {
	p := &CAPool{file: file, checkEvery: opts.CheckEvery, onError: opts.OnError, now: time.Now}
	if p.checkEvery <= 0 {
		p.checkEvery = time.Second
	}
	if p.onError == nil {
		p.onError = func(error) {}
	}
	if _, err := p.reloadLocked(true); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload rereads the bundle if it changed.
func (p *CAPool) Reload() (changed bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reloadLocked(false)
}

func (p *CAPool) reloadLocked(force bool) (bool, error) {
	p.lastChecked = p.now()
	st, err := statFile(p.file)
	if err != nil {
		return false, err
	}
	if !force && st == p.stamp {
		return false, nil
	}
	raw, err := os.ReadFile(p.file)
	if err != nil {
		return false, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return false, fmt.Errorf("CA bundle %s holds no PEM certificate", p.file)
	}
	p.pool, p.stamp = pool, st
	return true, nil
}

// Pool returns the current bundle, rereading the file first when it was
// last checked over CheckEvery ago.
func (p *CAPool) Pool() *x509.CertPool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.now().Sub(p.lastChecked) >= p.checkEvery {
		if _, err := p.reloadLocked(false); err != nil {
			p.onError(err)
		}
	}
	return p.pool
}
