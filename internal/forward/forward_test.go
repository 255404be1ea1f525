package forward

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeLeader answers Produce requests on every connection in order, with
// BaseOffset = the number of requests it has read so far; mode decides
// how it misbehaves.
type fakeLeader struct {
	ln    net.Listener
	mode  atomic.Int32 // 0: answer; 1: close after reading; 2: never answer
	count atomic.Int64
	conns atomic.Int32
	wg    sync.WaitGroup
}

func startFake(t *testing.T) *fakeLeader {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeLeader{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer nc.Close()
				f.serve(t, nc)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakeLeader) serve(t *testing.T, nc net.Conn) {
	r := bufio.NewReader(nc)
	var size [4]byte
	for {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		frame := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		key, version := int16(binary.BigEndian.Uint16(frame)), int16(binary.BigEndian.Uint16(frame[2:]))
		corr := binary.BigEndian.Uint32(frame[4:])
		idLen := int(int16(binary.BigEndian.Uint16(frame[8:])))
		body := frame[10+max(idLen, 0):]
		req := kmsg.RequestForKey(key)
		req.SetVersion(version)
		if req.IsFlexible() {
			body = body[1:] // no tags are sent
		}
		if err := req.ReadFrom(body); err != nil {
			t.Errorf("fake leader: %v", err)
			return
		}
		n := f.count.Add(1)
		switch f.mode.Load() {
		case 1:
			return
		case 2:
			continue
		}
		pr := req.(*kmsg.ProduceRequest)
		if pr.Acks == 0 {
			continue
		}
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		resp.SetVersion(version)
		for _, rt := range pr.Topics {
			st := kmsg.ProduceResponseTopic{Topic: rt.Topic}
			for _, rp := range rt.Partitions {
				st.Partitions = append(st.Partitions, kmsg.ProduceResponseTopicPartition{Partition: rp.Partition, BaseOffset: n})
			}
			resp.Topics = append(resp.Topics, st)
		}
		out := binary.BigEndian.AppendUint32([]byte{0, 0, 0, 0}, corr)
		if resp.IsFlexible() {
			out = append(out, 0)
		}
		out = resp.AppendTo(out)
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

func produceReq(version int16, acks int16) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks, req.TimeoutMillis = acks, 1000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 3, Records: []byte{}}}}}
	return req
}

func TestForwardInOrder(t *testing.T) {
	f := startFake(t)
	var bytes atomic.Int64
	p := New(Config{ClientID: "test", Bytes: func(peer int32, n int) {
		if peer != 7 {
			t.Errorf("bytes counted for peer %d", peer)
		}
		bytes.Add(int64(n))
	}})
	defer p.Close()
	for _, version := range []int16{7, 9, 11} { // 9+: flexible
		f.count.Store(0)
		var calls []*Call
		for range 200 {
			calls = append(calls, p.Submit(7, f.ln.Addr().String(), produceReq(version, -1)))
		}
		for i, c := range calls {
			resp, err := c.Wait(context.Background())
			if err != nil {
				t.Fatalf("v%d call %d: %v", version, i, err)
			}
			if got := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].BaseOffset; got != int64(i+1) {
				t.Fatalf("v%d call %d answered as request %d", version, i, got)
			}
		}
	}
	if f.conns.Load() != 1 {
		t.Errorf("%d connections, want 1", f.conns.Load())
	}
	if bytes.Load() == 0 {
		t.Error("no bytes counted")
	}
	// acks=0 completes once written, without an answer.
	if _, err := p.Submit(7, f.ln.Addr().String(), produceReq(9, 0)).Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestForwardFailures(t *testing.T) {
	f := startFake(t)
	p := New(Config{ClientID: "test", DialTimeout: time.Second})
	defer p.Close()
	addr := f.ln.Addr().String()

	// The leader drops the connection: the call fails, the next one
	// dials again.
	f.mode.Store(1)
	if _, err := p.Submit(1, addr, produceReq(9, -1)).Wait(context.Background()); err == nil {
		t.Fatal("call on a dropped connection succeeded")
	}
	f.mode.Store(0)
	if _, err := p.Submit(1, addr, produceReq(9, -1)).Wait(context.Background()); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}

	// The leader never answers: Wait gives up at its deadline, and the
	// link is rebuilt for the next call.
	f.mode.Store(2)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	start := time.Now()
	_, err := p.Submit(1, addr, produceReq(9, -1)).Wait(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("stuck call: %v after %v", err, time.Since(start))
	}
	f.mode.Store(0)
	if _, err := p.Submit(1, addr, produceReq(9, -1)).Wait(context.Background()); err != nil {
		t.Fatalf("after a timeout: %v", err)
	}

	// Nobody listens.
	dead := f.ln.Addr().String()
	f.ln.Close()
	if _, err := p.Submit(2, dead, produceReq(9, -1)).Wait(context.Background()); err == nil {
		t.Fatal("call to a closed port succeeded")
	}
	p.Close()
	if _, err := p.Submit(1, addr, produceReq(9, -1)).Wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
