package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/parse"
)

// Syslog over TCP carries either RFC 6587 octet counting ("LEN SP MSG",
// always used over TLS by RFC 5425) or non-transparent framing (messages
// ended by LF). Each listener is told which (Framing):
//
//   - octet-counted: every frame is "LEN SP MSG"; anything else up to the
//     next LF is dead-lettered as a bad frame and reading goes on;
//   - newline: every frame runs to the next LF (a line that starts with
//     digits and a space is just a line);
//   - auto (the default): per frame, digits, a space and then '<' (the
//     PRI every syslog message begins with) is octet-counted; anything
//     else runs to the next LF. A log line that begins "404 not found" is
//     a line, not a length.
//
// A frame cut short by the end of the connection is dead-lettered with
// what arrived of it, and counted (cut_frames).

// Framing is how a TCP syslog listener splits its stream into messages.
type Framing string

const (
	FramingAuto         Framing = "auto"
	FramingOctetCounted Framing = "octet-counted"
	FramingNewline      Framing = "newline"
)

// ParseFraming reads a --syslog-framing value ("" is auto).
func ParseFraming(s string) (Framing, error) {
	switch f := Framing(s); f {
	case "":
		return FramingAuto, nil
	case FramingAuto, FramingOctetCounted, FramingNewline:
		return f, nil
	}
	return "", fmt.Errorf("syslog framing %q: want auto, octet-counted or newline", s)
}

func (s *Service) serveSyslogTCP(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("syslog tcp accept failed", "err", err)
			}
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			if err := s.serveSyslogConn(c); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Warn("syslog tcp connection ended", "remote", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

func hostOf(a net.Addr) string {
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

// frameReader splits a TCP syslog stream into messages.
type frameReader struct {
	r    *bufio.Reader
	max  int
	mode Framing
}

// errOversize carries the kept prefix of a frame longer than max.
type errOversize struct {
	prefix []byte
	size   int // bytes in the frame
}

func (e *errOversize) Error() string {
	return "syslog frame exceeds the maximum message size"
}

// errCut is an octet-counted frame the connection ended inside of: what
// arrived of it, and the length it announced.
type errCut struct {
	got  []byte
	size int
}

func (e *errCut) Error() string {
	return fmt.Sprintf("octet-counted frame of %d bytes cut short after %d bytes: the connection ended", e.size, len(e.got))
}

// errBadFrame is a line an octet-counted listener got without a length.
type errBadFrame struct{ line []byte }

func (e *errBadFrame) Error() string {
	return "not an octet-counted frame (the listener's framing is octet-counted)"
}

// next returns the next frame. An oversize frame is consumed and reported
// as *errOversize, a line without a length on an octet-counted listener
// as *errBadFrame, after which reading continues; a frame cut by the end
// of the stream is *errCut.
func (f *frameReader) next() ([]byte, error) {
	// Skip the LFs/CRs/NULs some senders put between frames.
	for {
		b, err := f.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b != '\n' && b != '\r' && b != 0 {
			f.r.UnreadByte()
			break
		}
	}
	if f.mode == FramingNewline {
		return f.line(nil)
	}
	// Octet counting: up to 10 digits then SP.
	var digits []byte
	for len(digits) <= 10 {
		b, err := f.r.ReadByte()
		if err != nil {
			if len(digits) > 0 && errors.Is(err, io.EOF) {
				break // a lone number as the last line
			}
			return nil, err
		}
		if b >= '0' && b <= '9' {
			digits = append(digits, b)
			continue
		}
		f.r.UnreadByte()
		if b == ' ' && len(digits) > 0 {
			f.r.ReadByte() // the space
			n, _ := strconv.Atoi(string(digits))
			if f.mode == FramingOctetCounted {
				return f.counted(n)
			}
			// auto: a length only when a PRI follows it.
			if next, err := f.r.Peek(1); err == nil && next[0] == '<' {
				return f.counted(n)
			}
			digits = append(digits, ' ')
		}
		break
	}
	if f.mode == FramingOctetCounted {
		line, err := f.line(digits)
		if err != nil {
			return nil, err
		}
		return nil, &errBadFrame{line: line}
	}
	// Not octet-counted: the bytes read so far start an LF-framed line.
	return f.line(digits)
}

func (f *frameReader) counted(n int) ([]byte, error) {
	if n > f.max {
		keep := min(n, deadLetterRawMax)
		prefix := make([]byte, keep)
		if k, err := io.ReadFull(f.r, prefix); err != nil {
			return nil, &errCut{got: prefix[:k], size: n}
		}
		if _, err := io.CopyN(io.Discard, f.r, int64(n-keep)); err != nil {
			return nil, &errCut{got: prefix, size: n}
		}
		return nil, &errOversize{prefix: prefix, size: n}
	}
	buf := make([]byte, n)
	if k, err := io.ReadFull(f.r, buf); err != nil {
		return nil, &errCut{got: buf[:k], size: n}
	}
	return buf, nil
}

func (f *frameReader) line(start []byte) ([]byte, error) {
	buf := append([]byte(nil), start...)
	over, size := false, len(start)
	for {
		chunk, err := f.r.ReadSlice('\n')
		size += len(chunk)
		if !over {
			if len(buf)+len(chunk) > f.max+1 { // +1: the LF
				room := max(0, deadLetterRawMax-len(buf))
				buf = append(buf, chunk[:min(room, len(chunk))]...)
				over = true
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch {
		case err == nil:
			if over {
				return nil, &errOversize{prefix: buf, size: size - 1}
			}
			return bytes.TrimRight(buf, "\r\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			if over {
				return nil, &errOversize{prefix: buf, size: size}
			}
			return buf, nil // last line without LF
		default:
			return nil, err
		}
	}
}

// serveSyslogConn reads frames until the peer closes. Publishing waits
// for budget, and while it waits this connection is not read: TCP flow
// control then slows the sender instead of us dropping anything.
func (s *Service) serveSyslogConn(c net.Conn) error {
	o := origin{listener: "syslog-tcp", remote: hostOf(c.RemoteAddr())}
	fr := &frameReader{r: bufio.NewReaderSize(c, 64<<10), max: s.cfg.MaxMessageBytes, mode: s.cfg.SyslogFraming}
	for {
		frame, err := fr.next()
		var (
			big *errOversize
			cut *errCut
			bad *errBadFrame
		)
		switch {
		case errors.As(err, &big):
			s.stats.Frames.Add(1)
			rec := s.pub.deadLetterSized(big.Error(), "syslog", big.prefix, big.size, o)
			if err := s.pub.send(s.ctx, []*kgo.Record{rec}, o, true); err != nil {
				s.stats.Refused.Add(1)
				return err
			}
			continue
		case errors.As(err, &bad):
			s.stats.Frames.Add(1)
			s.stats.BadFrames.Add(1)
			rec := s.pub.deadLetterRecord(bad.Error(), "syslog", bad.line, o)
			if err := s.pub.send(s.ctx, []*kgo.Record{rec}, o, true); err != nil {
				s.stats.Refused.Add(1)
				return err
			}
			continue
		case errors.As(err, &cut):
			// The sender meant more: keep what came, say why it is short.
			s.stats.Frames.Add(1)
			s.stats.CutFrames.Add(1)
			rec := s.pub.deadLetterRecord(cut.Error(), "syslog", cut.got, o)
			if err := s.pub.send(s.ctx, []*kgo.Record{rec}, o, true); err != nil {
				s.stats.Refused.Add(1)
				return err
			}
			return io.EOF
		case err != nil:
			return err
		}
		s.stats.Frames.Add(1)
		results, ro := s.syslogResults(frame, o)
		if err := s.pub.publish(s.ctx, results, ro, true); err != nil {
			s.stats.Refused.Add(1)
			return err
		}
	}
}

// syslogResults parses one syslog message. Audit records are held by the
// grouper until their event is complete, so the results may be those of
// an earlier message of the same host (and its origin), or none yet.
func (s *Service) syslogResults(frame []byte, o origin) ([]parse.Result, origin) {
	if line, host, ok := s.parsers.AuditRecord(frame, o.remote); ok {
		return s.audit.add(line, host, frame, o, time.Now())
	}
	return s.parsers.Syslog(frame, o.remote), o
}

// serveSyslogUDP reads one message per datagram. UDP cannot push back, so
// a datagram that does not fit the budget is counted as dropped.
func (s *Service) serveSyslogUDP(c *net.UDPConn) {
	defer s.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := c.ReadFromUDP(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("syslog udp read failed", "err", err)
			}
			return
		}
		s.stats.Frames.Add(1)
		o := origin{listener: "syslog-udp", remote: addr.IP.String()}
		frame := append([]byte(nil), bytes.TrimRight(buf[:n], "\r\n")...)
		var recs []*kgo.Record
		if n > s.cfg.MaxMessageBytes {
			recs = []*kgo.Record{s.pub.deadLetterRecord(fmt.Sprintf("syslog datagram of %d bytes exceeds the maximum message size", n), "syslog", frame, o)}
		} else {
			results, ro := s.syslogResults(frame, o)
			recs = s.pub.records(results, ro)
		}
		if err := s.pub.send(s.ctx, recs, o, false); err != nil {
			s.stats.UDPDropped.Add(1)
		}
	}
}
