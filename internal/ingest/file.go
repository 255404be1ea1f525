package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/parse"
)

// File input (vigil ingest --file PATH [--follow]): the lines of a log
// file (/var/log/auth.log, syslog, messages, audit.log, an access log), as
// syslog writes them: no PRI, the time, host and program read from each
// line (the local host when a line names none). The file is read from its
// start; with Follow, lines appended later are read as they come, and a
// rotated file (renamed away and recreated, or truncated) is followed to
// the new one once the old one is read to its end. Reading waits for the
// memory budget, as TCP syslog does. No read position is kept across
// restarts: a restarted ingest reads the file again.

// pollInterval is how often a followed file is checked for new lines.
const pollInterval = 250 * time.Millisecond

// FileDone is closed when every file not followed has been read and its
// events handed to the producer (for --file without --follow, which then
// exits).
func (s *Service) FileDone() <-chan struct{} { return s.filesDone }

func (s *Service) startFiles() error {
	s.filesDone = make(chan struct{})
	if len(s.cfg.Files) == 0 {
		close(s.filesDone)
		return nil
	}
	host, _ := os.Hostname()
	var files []*os.File
	for _, p := range s.cfg.Files {
		f, err := os.Open(p)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return fmt.Errorf("ingest: file input: %w", err)
		}
		files = append(files, f)
	}
	done := make(chan struct{}, len(files))
	for i, f := range files {
		s.wg.Add(1)
		go func(path string, f *os.File) {
			defer s.wg.Done()
			if err := s.readFile(path, f, host, s.cfg.Follow); err != nil && !errors.Is(err, errStopped) {
				s.log.Error("file input stopped", "file", path, "err", err)
			}
			done <- struct{}{}
		}(s.cfg.Files[i], f)
	}
	go func() {
		for range files {
			<-done
		}
		close(s.filesDone)
	}()
	return nil
}

var errStopped = errors.New("ingest stopped")

// readFile reads lines until the end (or, following, until the service
// stops).
func (s *Service) readFile(path string, f *os.File, host string, follow bool) error {
	var next *os.File // the file that replaced f, once rotated
	defer func() {
		f.Close()
		if next != nil {
			next.Close()
		}
	}()
	o := origin{listener: "file", remote: path}
	r := bufio.NewReaderSize(f, 64<<10)
	var partial []byte // a last line without LF yet
	var offset int64
	over := -1 // bytes of a line too long to keep, while it is read through
	// tooLong dead-letters a line over --max-message-bytes with its first
	// 64 KiB and its size, as syslog's oversize frames are.
	tooLong := func(kept []byte, size int) error {
		s.stats.Frames.Add(1)
		rec := s.pub.deadLetterSized("log line exceeds the maximum message size", "file", kept[:min(len(kept), deadLetterRawMax)], size, o)
		if err := s.pub.send(s.ctx, []*kgo.Record{rec}, o, true); err != nil {
			return errStopped
		}
		return nil
	}
	for {
		line, err := r.ReadSlice('\n')
		offset += int64(len(line))
		switch {
		case err == nil && over >= 0:
			if err := tooLong(partial, over+len(line)-1); err != nil {
				return err
			}
			partial, over = partial[:0], -1
			continue
		case err == nil:
			partial = append(partial, line...)
			text := bytes.TrimRight(partial, "\r\n")
			if len(text) > s.cfg.MaxMessageBytes {
				err = tooLong(text, len(text))
			} else {
				err = s.fileLine(text, host, path, o)
			}
			if err != nil {
				return err
			}
			partial = partial[:0]
			continue
		case errors.Is(err, bufio.ErrBufferFull):
			if over < 0 {
				partial = append(partial, line...)
				if len(partial) > s.cfg.MaxMessageBytes {
					over = len(partial) // dead-lettered once its end is read
				}
			} else {
				over += len(line)
			}
			continue
		case !errors.Is(err, io.EOF):
			return err
		}
		if over >= 0 {
			over += len(line)
			if !follow {
				return tooLong(partial, over)
			}
		} else {
			partial = append(partial, line...)
		}
		if !follow {
			if len(bytes.TrimSpace(partial)) > 0 {
				return s.fileLine(bytes.TrimRight(partial, "\r\n"), host, path, o)
			}
			return nil
		}
		if next != nil {
			// The old file is read to its end: go on with the new one.
			if len(bytes.TrimSpace(partial)) > 0 {
				if err := s.fileLine(bytes.TrimRight(partial, "\r\n"), host, path, o); err != nil {
					next.Close()
					return err
				}
			}
			partial = partial[:0]
			f.Close()
			f, next, offset = next, nil, 0
			r.Reset(f)
			continue
		}
		// At the end: wait for more, or for the file to be replaced.
		select {
		case <-s.ctx.Done():
			return errStopped
		case <-time.After(pollInterval):
		}
		st, err := os.Stat(path)
		if err != nil {
			continue // rotated away, not recreated yet
		}
		cur, err := f.Stat()
		switch {
		case err == nil && !sameFile(st, cur):
			// Rotated: read what the old file got since, then the new one.
			if next, err = os.Open(path); err != nil {
				next = nil
			}
		case st.Size() < offset:
			// Truncated in place (copytruncate): start over.
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			partial, offset = partial[:0], 0
			r.Reset(f)
		}
	}
}

// sameFile compares device and inode: a rotated path names a new file.
func sameFile(a, b os.FileInfo) bool { return os.SameFile(a, b) }

// fileLine parses and publishes one line, waiting for budget.
func (s *Service) fileLine(line []byte, host, path string, o origin) error {
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	line = append([]byte(nil), line...) // the reader's buffer is reused
	s.stats.Frames.Add(1)
	var results []parse.Result
	ro := o
	if rec, h, ok := s.parsers.AuditRecord(line, host); ok {
		results, ro = s.audit.add(rec, h, line, o, time.Now())
	} else {
		results = s.parsers.LogLine(line, host, path)
	}
	if err := s.pub.publish(s.ctx, results, ro, true); err != nil {
		s.stats.Refused.Add(1)
		if s.ctx.Err() != nil {
			return errStopped
		}
		return err
	}
	return nil
}
