package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// ceilingWindow bounds the bytes the ceiling client keeps unacknowledged,
// like the producer's buffer (MaxBufferedBytes) bounds its.
const ceilingWindow = 32 << 20

// ceilingFileBytes is where the ceiling's log file is rotated (truncated and
// reused from the start), so a long run does not fill the disk.
const ceilingFileBytes = 1 << 30

// Ceiling measures how fast the same records can be made durable without a
// broker: a client goroutine streams length-prefixed records over loopback
// TCP to a server goroutine that appends them to a file in dir with group
// commit (one write+fsync of everything that arrived since the last one,
// then an acknowledgement of the durable byte count back to the client).
// It returns payload MB/s (10^6 bytes) acknowledged.
func Ceiling(ctx context.Context, dir string, d time.Duration, recordBytes int) (float64, error) {
	f, err := os.CreateTemp(dir, "vigil-bench-ceiling-*.log")
	if err != nil {
		return 0, fmt.Errorf("ceiling: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ceiling: %w", err)
	}
	defer ln.Close()

	srvErr := make(chan error, 1)
	go func() { srvErr <- ceilingServer(ln, f) }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, fmt.Errorf("ceiling: %w", err)
	}
	payload, err := ceilingClient(ctx, conn, d, recordBytes)
	conn.Close()
	if serr := <-srvErr; err == nil && serr != nil {
		err = serr
	}
	if err != nil {
		return 0, fmt.Errorf("ceiling: %w", err)
	}
	return payload, nil
}

// ceilingClient streams records for d and returns acknowledged payload MB/s.
func ceilingClient(ctx context.Context, conn net.Conn, d time.Duration, recordBytes int) (float64, error) {
	frame := 4 + recordBytes
	// One write carries as many whole records as fit in 64 KiB (at least one).
	perWrite := max(1, (64<<10)/frame)
	buf := make([]byte, perWrite*frame)
	for i := 0; i < perWrite; i++ {
		rec := buf[i*frame : (i+1)*frame]
		binary.BigEndian.PutUint32(rec, uint32(recordBytes))
		rand.Read(rec[4:])
	}

	var (
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		acked    int64 // wire bytes durable
		ackErr   error
		lastAck  time.Time
		ackedEnd int64 // wire bytes acked by the deadline
	)
	start := time.Now()
	deadline := start.Add(d)
	go func() {
		var b [8]byte
		for {
			_, err := io.ReadFull(conn, b[:])
			now := time.Now()
			mu.Lock()
			if err != nil {
				ackErr = err
				cond.Broadcast()
				mu.Unlock()
				return
			}
			acked = int64(binary.BigEndian.Uint64(b[:]))
			if !now.After(deadline) {
				ackedEnd, lastAck = acked, now
			}
			cond.Broadcast()
			mu.Unlock()
		}
	}()

	var sent int64
	for time.Now().Before(deadline) && ctx.Err() == nil {
		mu.Lock()
		for sent-acked+int64(len(buf)) > ceilingWindow && ackErr == nil {
			cond.Wait()
		}
		err := ackErr
		mu.Unlock()
		if err != nil {
			return 0, err
		}
		if _, err := conn.Write(buf); err != nil {
			return 0, err
		}
		sent += int64(len(buf))
	}
	// Wait for everything sent to be acknowledged so the server is idle.
	mu.Lock()
	for acked < sent && ackErr == nil {
		cond.Wait()
	}
	err := ackErr
	wire, last := ackedEnd, lastAck
	mu.Unlock()
	if err != nil {
		return 0, err
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if wire == 0 || !last.After(start) {
		return 0, errors.New("nothing acknowledged")
	}
	records := wire / int64(frame)
	payload := float64(records * int64(recordBytes))
	return payload / last.Sub(start).Seconds() / 1e6, nil
}

// ceilingServer reads one connection into a queue; a flusher writes each
// queued group to f, fsyncs, and acknowledges the total durable byte count.
func ceilingServer(ln net.Listener, f *os.File) error {
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()

	var (
		mu     sync.Mutex
		cond   = sync.NewCond(&mu)
		queue  []byte
		eof    bool
		failed atomic.Bool
	)
	flushDone := make(chan error, 1)
	go func() {
		var batch []byte
		var durable, size int64
		var ack [8]byte
		for {
			mu.Lock()
			for len(queue) == 0 && !eof {
				cond.Wait()
			}
			if len(queue) == 0 {
				mu.Unlock()
				flushDone <- nil
				return
			}
			batch, queue = queue, batch[:0]
			mu.Unlock()

			if _, err := f.Write(batch); err != nil {
				failed.Store(true)
				flushDone <- err
				return
			}
			if err := f.Sync(); err != nil {
				failed.Store(true)
				flushDone <- err
				return
			}
			durable += int64(len(batch))
			size += int64(len(batch))
			binary.BigEndian.PutUint64(ack[:], uint64(durable))
			if _, err := conn.Write(ack[:]); err != nil {
				flushDone <- nil // client went away
				return
			}
			if size >= ceilingFileBytes { // like a WAL rotation, after the ack
				if err := f.Truncate(0); err != nil {
					flushDone <- err
					return
				}
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					flushDone <- err
					return
				}
				size = 0
			}
		}
	}()

	rbuf := make([]byte, 256<<10)
	for !failed.Load() {
		n, err := conn.Read(rbuf)
		if n > 0 {
			mu.Lock()
			queue = append(queue, rbuf[:n]...)
			cond.Signal()
			mu.Unlock()
		}
		if err != nil {
			break
		}
	}
	mu.Lock()
	eof = true
	cond.Signal()
	mu.Unlock()
	return <-flushDone
}

// ceilingDir is where the ceiling's file goes: the broker's data directory
// when in process, so both hit the same file system.
func ceilingDir(dataDir string) string {
	if dataDir != "" {
		return dataDir
	}
	return filepath.Clean(os.TempDir())
}
