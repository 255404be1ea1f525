package clientsec

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
)

// Dialer opens connections that have passed a listener's security
// protocol (TLS handshake, SASL authentication) for code that speaks the
// Kafka protocol on a bare connection rather than through franz-go: the
// broker's links to its peers.
type Dialer struct {
	tls  *tls.Config    // nil: no TLS
	mech sasl.Mechanism // nil: no SASL
	fmt  *kmsg.RequestFormatter
}

// NewDialer validates c and prepares its TLS configuration and SASL
// mechanism; clientID names the connections in the peers' logs.
func (c *Config) NewDialer(clientID string) (*Dialer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	d := &Dialer{fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))}
	if c.TLS() {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		d.tls = tc
	}
	if c.SASL() {
		m, err := c.mechanism()
		if err != nil {
			return nil, err
		}
		d.mech = m
	}
	return d, nil
}

// Dial connects to addr and passes its security protocol before returning.
func (d *Dialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
		defer nc.SetDeadline(time.Time{})
	}
	host, _, _ := net.SplitHostPort(addr)
	if d.tls != nil {
		tc := d.tls.Clone()
		if tc.ServerName == "" {
			tc.ServerName = host
		}
		tlsConn := tls.Client(nc, tc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		nc = tlsConn
	}
	if d.mech != nil {
		if err := d.authenticate(ctx, nc, host); err != nil {
			nc.Close()
			return nil, fmt.Errorf("SASL %s authentication with %s: %w", d.mech.Name(), addr, err)
		}
	}
	return nc, nil
}

// authenticate runs SaslHandshake v1 and SaslAuthenticate v1 until the
// mechanism is done.
func (d *Dialer) authenticate(ctx context.Context, nc net.Conn, host string) error {
	sess, msg, err := d.mech.Authenticate(ctx, host)
	if err != nil {
		return err
	}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, d.mech.Name()
	var hsResp kmsg.SASLHandshakeResponse
	if err := d.roundTrip(nc, hs, &hsResp, 1); err != nil {
		return err
	}
	if err := kerr.ErrorForCode(hsResp.ErrorCode); err != nil {
		return fmt.Errorf("handshake: %w (enabled: %v)", err, hsResp.SupportedMechanisms)
	}
	for corr := int32(2); ; corr++ {
		au := kmsg.NewPtrSASLAuthenticateRequest()
		au.Version, au.SASLAuthBytes = 1, msg
		var auResp kmsg.SASLAuthenticateResponse
		if err := d.roundTrip(nc, au, &auResp, corr); err != nil {
			return err
		}
		if err := kerr.ErrorForCode(auResp.ErrorCode); err != nil {
			if auResp.ErrorMessage != nil {
				return fmt.Errorf("%w: %s", err, *auResp.ErrorMessage)
			}
			return err
		}
		done, next, err := sess.Challenge(auResp.SASLAuthBytes)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		msg = next
	}
}

func (d *Dialer) roundTrip(nc net.Conn, req kmsg.Request, resp kmsg.Response, corr int32) error {
	if _, err := nc.Write(d.fmt.AppendRequest(nil, req, corr)); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<20 {
		return fmt.Errorf("%s response of %d bytes", kmsg.NameForKey(req.Key()), n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(nc, body); err != nil {
		return err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return fmt.Errorf("%s response with correlation id %d, want %d", kmsg.NameForKey(req.Key()), got, corr)
	}
	resp.SetVersion(req.GetVersion())
	return resp.ReadFrom(body[4:])
}
