package enrich

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KV is one record to publish: a nil Value is a tombstone.
type KV struct {
	Key, Value []byte
}

// Published says what Publish wrote.
type Published struct {
	Records, Tombstones int
	Created             bool
}

// Publish writes records to a compacted topic (intel.*, assets,
// identities), creating it compacted if it does not exist. With a
// non-empty replace prefix, every key of the topic that starts with it
// and is not among records gets a tombstone, so the topic holds exactly
// the new version of that set (`vigil enrich load --replace`).
func Publish(ctx context.Context, cl *kgo.Client, opts []kgo.Opt, topic string, partitions int32, records []KV, replace string) (Published, error) {
	var out Published
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, partitions, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		out.Created = true
	case errors.Is(err, kerr.TopicAlreadyExists):
	default:
		return out, fmt.Errorf("create %s: %w", topic, err)
	}
	if replace != "" && !out.Created {
		keys, err := ReadKeys(ctx, cl, opts, topic, replace)
		if err != nil {
			return out, err
		}
		for _, r := range records {
			delete(keys, string(r.Key))
		}
		for k := range keys {
			records = append(records, KV{Key: []byte(k)})
			out.Tombstones++
		}
	}
	const chunk = 10000
	for i := 0; i < len(records); i += chunk {
		var recs []*kgo.Record
		for _, r := range records[i:min(i+chunk, len(records))] {
			recs = append(recs, &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return out, fmt.Errorf("produce to %s: %w", topic, err)
		}
	}
	out.Records = len(records) - out.Tombstones
	return out, nil
}

// ReadKeys reads a topic to its end and returns the live keys (the last
// record of each key is not a tombstone) that start with prefix; opts
// (brokers, security) make the reader.
func ReadKeys(ctx context.Context, cl *kgo.Client, opts []kgo.Opt, topic, prefix string) (map[string]bool, error) {
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	want := map[int32]kgo.Offset{}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(topic, o.Partition); ok && o.Offset > s.Offset {
			want[o.Partition] = kgo.NewOffset().At(s.Offset)
			left[o.Partition] = o.Offset
		}
	})
	keys := map[string]bool{}
	if len(want) == 0 {
		return keys, nil
	}
	rd, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: want}))...)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for len(left) > 0 {
		f := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", topic, err)
		}
		f.EachRecord(func(r *kgo.Record) {
			k := string(r.Key)
			if strings.HasPrefix(k, prefix) {
				if r.Value == nil {
					delete(keys, k)
				} else {
					keys[k] = true
				}
			}
			if end, ok := left[r.Partition]; ok && r.Offset >= end-1 {
				delete(left, r.Partition)
			}
		})
	}
	return keys, nil
}

// InventoryRecords reads an inventory export (CSV with a header row, a
// JSON array of objects, or NDJSON) into records keyed by the value of
// keyField, lower-cased. A CSV column holding ";"-separated values
// (ips) becomes a list.
func InventoryRecords(data []byte, keyField string) ([]KV, error) {
	var objs []map[string]any
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return nil, nil
	case trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &objs); err != nil {
			return nil, err
		}
	case trimmed[0] == '{':
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		for {
			var o map[string]any
			if err := dec.Decode(&o); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, err
			}
			objs = append(objs, o)
		}
	default:
		rd := csv.NewReader(bytes.NewReader(trimmed))
		rd.TrimLeadingSpace = true
		rows, err := rd.ReadAll()
		if err != nil {
			return nil, err
		}
		if len(rows) < 1 {
			return nil, nil
		}
		head := rows[0]
		for _, row := range rows[1:] {
			o := map[string]any{}
			for i, h := range head {
				if i >= len(row) || row[i] == "" {
					continue
				}
				h = strings.TrimSpace(h)
				if strings.Contains(row[i], ";") {
					var list []any
					for _, x := range strings.Split(row[i], ";") {
						if x = strings.TrimSpace(x); x != "" {
							list = append(list, x)
						}
					}
					o[h] = list
				} else {
					o[h] = strings.TrimSpace(row[i])
				}
			}
			objs = append(objs, o)
		}
	}
	var out []KV
	for i, o := range objs {
		k, ok := o[keyField].(string)
		if !ok || k == "" {
			return nil, fmt.Errorf("record %d has no %q", i+1, keyField)
		}
		v, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		out = append(out, KV{Key: []byte(strings.ToLower(k)), Value: v})
	}
	return out, nil
}
