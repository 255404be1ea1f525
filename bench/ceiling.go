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
// reused from the start), so a long run does not fill the disk. Each run
// appends to a fresh file, and a run of the default length stays below
// this: the truncate of a whole file stalled the paced ceiling for 250-430
// ms at 1 GiB (110-120 MB/s over 10 s). Overwriting the file in place, as
// the WAL does with its reused files while the uploads keep up, ran at
// 1.3-1.5 GB/s on the development machine against 0.5-0.7 GB/s appending;
// at its maximum rate the broker's WAL appends to new files (the uploads
// lag, so trimmed files run out), so the ceiling appends too.
const ceilingFileBytes = 4 << 30

// Ceiling measures how fast the same records can be made durable without a
// broker: a client goroutine streams length-prefixed records over loopback
// TCP to a server goroutine that appends them to a file in dir with group
// commit (one write+fsync of everything that arrived since the last one,
// then an acknowledgement of the durable byte count back to the client).
// It returns payload MB/s (10^6 bytes) acknowledged.
func Ceiling(ctx context.Context, dir string, d time.Duration, recordBytes int) (float64, error) {
	var mbps float64
	err := withCeilingServer(dir, func(conn net.Conn) (err error) {
		mbps, err = ceilingClient(ctx, conn, d, recordBytes)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("ceiling: %w", err)
	}
	return mbps, nil
}

// withCeilingServer runs a ceiling server on a fresh file in dir and calls
// client with a connection to it; the server's error wins over none.
func withCeilingServer(dir string, client func(net.Conn) error) error {
	f, err := os.CreateTemp(dir, "vigil-bench-ceiling-*.log")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() { srvErr <- ceilingServer(ln, f) }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	err = client(conn)
	conn.Close()
	if serr := <-srvErr; err == nil && serr != nil {
		err = serr
	}
	return err
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

// CeilingPaced sends recsPerSec records per second for d through the same
// loopback-TCP-to-group-committed-file path as Ceiling, one write per
// millisecond, and returns the latency from each write to the
// acknowledgement that covers it: the machine's own latency at that load,
// the baseline for the broker's paced produce latency.
func CeilingPaced(ctx context.Context, dir string, d time.Duration, recordBytes int, recsPerSec float64) (Latencies, error) {
	var samples []time.Duration
	err := withCeilingServer(dir, func(conn net.Conn) (err error) {
		samples, err = ceilingPacedClient(ctx, conn, d, recordBytes, recsPerSec)
		return err
	})
	if err != nil {
		return Latencies{}, fmt.Errorf("paced ceiling: %w", err)
	}
	return summarize(samples), nil
}

func ceilingPacedClient(ctx context.Context, conn net.Conn, d time.Duration, recordBytes int, rate float64) ([]time.Duration, error) {
	frame := 4 + recordBytes
	rec := make([]byte, frame)
	binary.BigEndian.PutUint32(rec, uint32(recordBytes))
	rand.Read(rec[4:])

	type write struct {
		end int64 // wire bytes up to and including this write
		at  time.Time
	}
	var (
		mu      sync.Mutex
		cond    = sync.NewCond(&mu)
		pending []write
		samples []time.Duration
		acked   int64
		ackErr  error
	)
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
			for len(pending) > 0 && pending[0].end <= acked {
				samples = append(samples, now.Sub(pending[0].at))
				pending = pending[1:]
			}
			cond.Broadcast()
			mu.Unlock()
		}
	}()

	start := time.Now()
	var sent, recs int64
	var buf []byte
	for ctx.Err() == nil {
		elapsed := time.Since(start)
		if elapsed >= d {
			break
		}
		due := int64(elapsed.Seconds() * rate)
		buf = buf[:0]
		n := due - recs
		for ; recs < due; recs++ {
			buf = append(buf, rec...)
		}
		if len(buf) > 0 {
			now := time.Now()
			mu.Lock()
			sent += int64(len(buf))
			// Each record gets the latency of the write that carried it.
			for i := int64(0); i < n; i++ {
				pending = append(pending, write{end: sent, at: now})
			}
			mu.Unlock()
			if _, err := conn.Write(buf); err != nil {
				return nil, err
			}
		}
		next := time.Duration(float64(recs+1) / rate * float64(time.Second))
		time.Sleep(min(max(next-time.Since(start), 50*time.Microsecond), time.Millisecond))
	}
	mu.Lock()
	defer mu.Unlock()
	for acked < sent && ackErr == nil {
		cond.Wait()
	}
	if ackErr != nil {
		return nil, ackErr
	}
	return samples, ctx.Err()
}
