package storage

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// orphanAge is how old an unreferenced segment object must be before the
// start-up sweep deletes it: far longer than any upload takes between
// putting an object and committing its index, so an upload in flight
// (here or, later, on another broker) is never mistaken for an orphan.
const orphanAge = time.Hour

// sweepOrphans deletes segment objects that no index entry refers to and
// that are older than orphanAge: inputs of retention or compaction whose
// delete delay outlived the process, or objects of an upload that died
// between the put and the index commit.
func (e *Engine) sweepOrphans(ctx context.Context, now time.Time) (int, error) {
	objs, err := e.objs.List(ctx, "segments/")
	if err != nil {
		return 0, err
	}
	segs, err := e.meta.AllSegments(ctx)
	if err != nil {
		return 0, err
	}
	live := map[string]bool{}
	for _, s := range segs {
		live[s.Object] = true
	}
	n := 0
	for _, o := range objs {
		created, ok := objectTime(o.Key)
		if live[o.Key] || !ok || now.Sub(created) < orphanAge {
			continue
		}
		if err := e.objs.Delete(ctx, o.Key); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// objectTime reads the creation time objectKey put in a key.
func objectTime(key string) (time.Time, bool) {
	name, ok := strings.CutPrefix(key, "segments/")
	if !ok {
		return time.Time{}, false
	}
	stamp, _, ok := strings.Cut(name, "-")
	if !ok {
		return time.Time{}, false
	}
	ns, err := strconv.ParseUint(stamp, 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, int64(ns)), true
}
