package batch

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// build encodes a valid uncompressed batch of n records.
func build(n int) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte("k"), Value: []byte("value")}
		body := r.AppendTo(nil)[1:] // drop the placeholder length, re-add the real one
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	rb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(n - 1),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: recs}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crcTable))
	return raw
}

func TestSplitValid(t *testing.T) {
	two := append(build(3), build(2)...)
	hs, err := Split(two)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 2 || hs[0].NumRecords != 3 || hs[1].LastOffset() != 1 {
		t.Fatalf("got %d batches: %+v", len(hs), hs)
	}
	Assign(hs[1].Raw, 42, 7)
	info, err := Peek(hs[1].Raw)
	if err != nil || info.BaseOffset != 42 || info.LastOffset != 43 {
		t.Fatalf("Peek after Assign = %+v, %v", info, err)
	}
	if _, err := Split(hs[1].Raw); err != nil {
		t.Errorf("Assign must not break the CRC: %v", err)
	}
}

func TestSplitRejects(t *testing.T) {
	badCRC := build(2)
	badCRC[len(badCRC)-1] ^= 0xff
	badMagic := build(1)
	badMagic[16] = 1
	badCount := build(2)
	binary.BigEndian.PutUint32(badCount[57:], 5) // NumRecords
	binary.BigEndian.PutUint32(badCount[17:], crc32.Checksum(badCount[21:], crcTable))
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"empty":      {nil, ErrInvalid},
		"bad crc":    {badCRC, ErrCorrupt},
		"truncated":  {build(2)[:40], ErrCorrupt},
		"short body": {build(3)[:70], ErrCorrupt},
		"magic 1":    {badMagic, ErrInvalid},
		"count":      {badCount, ErrInvalid},
	} {
		if _, err := Split(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
}
