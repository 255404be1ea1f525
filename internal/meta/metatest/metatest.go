// Package metatest is the conformance suite every meta.Store backend must
// pass. A backend's own test calls Run with a Setup:
//
//	func TestConformance(t *testing.T) {
//		metatest.Run(t, func(t *testing.T) func() (meta.Store, error) {
//			path := filepath.Join(t.TempDir(), "meta.db")
//			return func() (meta.Store, error) { return boltstore.Open(path) }
//		})
//	}
//
// The suite only checks what the meta.Store documentation promises;
// backend-specific behaviour (id format, lock errors) belongs in the
// backend's own tests.
package metatest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/vigilhq/vigil/internal/meta"
)

// Setup prepares fresh, empty backing storage for one subtest and returns
// open, which opens a Store on that storage. Every call of open must
// return a new Store over the same data: that is how the suite checks
// persistence, by closing one Store and opening another.
//
// The suite closes every Store it opens, always before opening the next
// one on the same storage (an embedded backend may hold an exclusive
// lock), so open must not register its own Close. Setup is called once
// per subtest and subtests run in parallel, so storage must be isolated
// per call (a temp dir, a unique key prefix); Setup owns its removal via
// t.Cleanup.
type Setup func(t *testing.T) (open func() (meta.Store, error))

// Run runs the conformance suite as parallel subtests of t.
func Run(t *testing.T, setup Setup) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"ClusterID", testClusterID},
		{"ClusterIDConcurrentFirstCall", testClusterIDConcurrent},
		{"CreateTopicRoundTrip", testCreateTopicRoundTrip},
		{"CreateTopicDuplicate", testCreateTopicDuplicate},
		{"TopicsSorted", testTopicsSorted},
		{"TopicsAreCopies", testTopicsAreCopies},
		{"UpdateTopic", testUpdateTopic},
		{"UpdateTopicFnError", testUpdateTopicFnError},
		{"UpdateTopicUnknown", testUpdateTopicUnknown},
		{"DeleteTopic", testDeleteTopic},
		{"DeleteTopicUnknown", testDeleteTopicUnknown},
		{"DeleteTopicID", testDeleteTopicID},
		{"RecreatedTopicStartsEmpty", testRecreatedTopicStartsEmpty},
		{"SegmentRoundTrip", testSegmentRoundTrip},
		{"AddSegmentsOrdering", testAddSegmentsOrdering},
		{"AddSegmentsPartitionIsolation", testAddSegmentsPartitionIsolation},
		{"AddSegmentsTopicIsolation", testAddSegmentsTopicIsolation},
		{"AddSegmentsUnknownTopicDropped", testAddSegmentsUnknownTopicDropped},
		{"AddSegmentsDeletedTopicDropped", testAddSegmentsDeletedTopicDropped},
		{"ReplaceSegments", testReplaceSegments},
		{"ReplaceSegmentsAtomic", testReplaceSegmentsAtomic},
		{"AllSegments", testAllSegments},
		{"PartitionState", testPartitionState},
		{"SetPartitionStateUnknownTopic", testSetPartitionStateUnknownTopic},
		{"Producers", testProducers},
		{"ProducersStaleTopicDropped", testProducersStaleTopic},
		{"AbortedIndex", testAbortedIndex},
		{"AddSegmentsWithProducers", testAddSegmentsWithProducers},
		{"AllocateProducerIDs", testAllocateProducerIDs},
		{"ClientQuotas", testClientQuotas},
		{"SecurityRecords", testSecurityRecords},
		{"Concurrent", testConcurrent},
		{"Persistence", testPersistence},
		{"Closed", testClosed},
		{"CanceledContext", testCanceledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, &env{t: t, setup: setup, open: setup(t)})
		})
	}
}

type env struct {
	t     *testing.T
	setup Setup
	open  func() (meta.Store, error)
}

// other returns an env over a second, independent storage.
func (e *env) other() *env {
	return &env{t: e.t, setup: e.setup, open: e.setup(e.t)}
}

// handle makes Close idempotent so the suite can close a Store early (to
// reopen it) and still rely on t.Cleanup for every other path, without
// demanding idempotent Close from backends.
type handle struct {
	meta.Store
	once sync.Once
	err  error
}

func (h *handle) Close() error {
	h.once.Do(func() { h.err = h.Store.Close() })
	return h.err
}

// store opens a Store that is closed when the test ends.
func (e *env) store() meta.Store {
	e.t.Helper()
	s, err := e.open()
	if err != nil {
		e.t.Fatalf("open store: %v", err)
	}
	h := &handle{Store: s}
	e.t.Cleanup(func() {
		if err := h.Close(); err != nil {
			e.t.Errorf("close store: %v", err)
		}
	})
	return h
}

// reopen closes s and opens the same storage again.
func (e *env) reopen(s meta.Store) meta.Store {
	e.t.Helper()
	if err := s.Close(); err != nil {
		e.t.Fatalf("close before reopen: %v", err)
	}
	return e.store()
}

func topic(name string, partitions int32, configs map[string]string) meta.Topic {
	var id [16]byte
	copy(id[:], name)
	id[15] = 0xA5 // so even a 16-byte name gives a distinct non-trivial id
	return meta.Topic{Name: name, ID: id, Partitions: partitions, Configs: configs, CreatedMs: 1_700_000_000_000 + int64(len(name))}
}

func seg(topic string, partition int32, first, last int64) meta.Segment {
	return meta.Segment{
		Topic: topic, Partition: partition,
		Object:   fmt.Sprintf("segments/%s-%d-%d", topic, partition, first),
		Position: first * 10, Size: (last - first + 1) * 10,
		FirstOffset: first, LastOffset: last, MaxTimestamp: 1_700_000_000_000 + last,
	}
}

// sameTopic treats nil and empty Configs as equal: a backend that
// serialises configs need not preserve that distinction.
func sameTopic(a, b meta.Topic) bool {
	return a.Name == b.Name && a.ID == b.ID && a.Partitions == b.Partitions &&
		a.CreatedMs == b.CreatedMs && maps.Equal(a.Configs, b.Configs)
}

func compareSegments(a, b meta.Segment) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition),
		cmp.Compare(a.FirstOffset, b.FirstOffset), cmp.Compare(a.Object, b.Object))
}

func sortedSegments(s []meta.Segment) []meta.Segment {
	s = slices.Clone(s)
	slices.SortFunc(s, compareSegments)
	return s
}

// sameSegmentSet compares ignoring order.
func sameSegmentSet(a, b []meta.Segment) bool {
	return slices.EqualFunc(sortedSegments(a), sortedSegments(b), meta.SameSegment)
}

func mustCreate(t *testing.T, s meta.Store, tp meta.Topic) {
	t.Helper()
	if err := s.CreateTopic(t.Context(), tp); err != nil {
		t.Fatalf("CreateTopic(%q): %v", tp.Name, err)
	}
}

func mustAdd(t *testing.T, s meta.Store, segs ...meta.Segment) {
	t.Helper()
	if err := s.AddSegments(t.Context(), segs); err != nil {
		t.Fatalf("AddSegments: %v", err)
	}
}

func mustTopics(t *testing.T, s meta.Store) []meta.Topic {
	t.Helper()
	ts, err := s.Topics(t.Context())
	if err != nil {
		t.Fatalf("Topics: %v", err)
	}
	return ts
}

func mustTopic(t *testing.T, s meta.Store, name string) meta.Topic {
	t.Helper()
	for _, tp := range mustTopics(t, s) {
		if tp.Name == name {
			return tp
		}
	}
	t.Fatalf("topic %q not listed by Topics", name)
	return meta.Topic{}
}

func mustSegments(t *testing.T, s meta.Store, topic string, partition int32) []meta.Segment {
	t.Helper()
	segs, err := s.Segments(t.Context(), topic, partition)
	if err != nil {
		t.Fatalf("Segments(%q, %d): %v", topic, partition, err)
	}
	return segs
}

func mustAll(t *testing.T, s meta.Store) []meta.Segment {
	t.Helper()
	segs, err := s.AllSegments(t.Context())
	if err != nil {
		t.Fatalf("AllSegments: %v", err)
	}
	return segs
}

func mustState(t *testing.T, s meta.Store, topic string, partition int32) meta.PartitionState {
	t.Helper()
	st, err := s.PartitionState(t.Context(), topic, partition)
	if err != nil {
		t.Fatalf("PartitionState(%q, %d): %v", topic, partition, err)
	}
	return st
}

// The interface leaves reads of a topic that does not exist unspecified;
// the suite accepts either an empty answer or ErrUnknownTopic, but never
// data left over from before.

func wantNoSegments(t *testing.T, s meta.Store, topic string, partition int32) {
	t.Helper()
	segs, err := s.Segments(t.Context(), topic, partition)
	if err != nil && !errors.Is(err, meta.ErrUnknownTopic) {
		t.Fatalf("Segments(%q, %d): %v", topic, partition, err)
	}
	if len(segs) != 0 {
		t.Fatalf("Segments(%q, %d) = %v, want none", topic, partition, segs)
	}
}

func wantNoState(t *testing.T, s meta.Store, topic string, partition int32) {
	t.Helper()
	st, err := s.PartitionState(t.Context(), topic, partition)
	if err != nil && !errors.Is(err, meta.ErrUnknownTopic) {
		t.Fatalf("PartitionState(%q, %d): %v", topic, partition, err)
	}
	if st != (meta.PartitionState{}) {
		t.Fatalf("PartitionState(%q, %d) = %+v, want zero", topic, partition, st)
	}
}

func mustSetState(t *testing.T, s meta.Store, topic string, partition int32, st meta.PartitionState) {
	t.Helper()
	if err := s.SetPartitionState(t.Context(), topic, partition, st); err != nil {
		t.Fatalf("SetPartitionState(%q, %d): %v", topic, partition, err)
	}
}

func wantSegments(t *testing.T, got, want []meta.Segment, what string) {
	t.Helper()
	if !slices.EqualFunc(got, want, meta.SameSegment) {
		t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

func testClusterID(t *testing.T, e *env) {
	s := e.store()
	id, err := s.ClusterID(t.Context())
	if err != nil {
		t.Fatalf("ClusterID: %v", err)
	}
	if id == "" {
		t.Fatal("ClusterID returned an empty id")
	}
	for range 3 {
		again, err := s.ClusterID(t.Context())
		if err != nil || again != id {
			t.Fatalf("ClusterID again = %q, %v; want %q", again, err, id)
		}
	}
	s = e.reopen(s)
	again, err := s.ClusterID(t.Context())
	if err != nil || again != id {
		t.Fatalf("ClusterID after reopen = %q, %v; want %q", again, err, id)
	}

	// Another cluster must get its own id, not a constant.
	otherID, err := e.other().store().ClusterID(t.Context())
	if err != nil {
		t.Fatalf("ClusterID of a second store: %v", err)
	}
	if otherID == "" || otherID == id {
		t.Fatalf("two independent stores have cluster ids %q and %q", id, otherID)
	}
}

func testClusterIDConcurrent(t *testing.T, e *env) {
	s := e.store()
	const n = 8
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id, err := s.ClusterID(t.Context())
			if err != nil {
				t.Errorf("ClusterID: %v", err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("concurrent first ClusterID calls disagree: %q", ids)
		}
	}
	s = e.reopen(s)
	if id, err := s.ClusterID(t.Context()); err != nil || id != ids[0] {
		t.Fatalf("ClusterID after reopen = %q, %v; want %q", id, err, ids[0])
	}
}

func testCreateTopicRoundTrip(t *testing.T, e *env) {
	s := e.store()
	if ts := mustTopics(t, s); len(ts) != 0 {
		t.Fatalf("Topics on empty store = %v, want none", ts)
	}
	a := topic("orders", 12, map[string]string{"cleanup.policy": "compact", "retention.ms": "-1"})
	b := topic("no-configs", 1, nil)
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	if got := mustTopic(t, s, "orders"); !sameTopic(got, a) {
		t.Fatalf("stored topic = %+v, want %+v", got, a)
	}
	if got := mustTopic(t, s, "no-configs"); !sameTopic(got, b) {
		t.Fatalf("stored topic = %+v, want %+v", got, b)
	}
	// New topics start with no segments and zero partition state.
	if segs := mustSegments(t, s, "orders", 0); len(segs) != 0 {
		t.Fatalf("new topic has segments %v", segs)
	}
	if st := mustState(t, s, "orders", 11); st != (meta.PartitionState{}) {
		t.Fatalf("new topic partition state = %+v, want zero", st)
	}
}

func testCreateTopicDuplicate(t *testing.T, e *env) {
	s := e.store()
	orig := topic("dup", 3, map[string]string{"k": "v"})
	mustCreate(t, s, orig)
	mustAdd(t, s, seg("dup", 0, 0, 9))
	mustSetState(t, s, "dup", 1, meta.PartitionState{LogStart: 5, LeaderEpoch: 2})

	second := topic("dup", 7, map[string]string{"other": "x"})
	second.ID[0] ^= 0xFF
	err := s.CreateTopic(t.Context(), second)
	if !errors.Is(err, meta.ErrTopicExists) {
		t.Fatalf("second CreateTopic err = %v, want ErrTopicExists", err)
	}
	// The failed create must not have touched the existing topic or its data.
	if got := mustTopic(t, s, "dup"); !sameTopic(got, orig) {
		t.Fatalf("topic after failed create = %+v, want %+v", got, orig)
	}
	if ts := mustTopics(t, s); len(ts) != 1 {
		t.Fatalf("Topics = %v, want exactly one", ts)
	}
	wantSegments(t, mustSegments(t, s, "dup", 0), []meta.Segment{seg("dup", 0, 0, 9)}, "segments after failed create")
	if st := mustState(t, s, "dup", 1); st != (meta.PartitionState{LogStart: 5, LeaderEpoch: 2}) {
		t.Fatalf("partition state after failed create = %+v", st)
	}
}

func testTopicsSorted(t *testing.T, e *env) {
	s := e.store()
	// Byte-wise order; includes names where a prefix, case and punctuation
	// decide the order.
	names := []string{"zeta", "a.b", "B", "a", "a-b", "_internal", "a_b", "alpha", "A", "ab", "a0"}
	for _, n := range names {
		mustCreate(t, s, topic(n, 1, nil))
	}
	var got []string
	for _, tp := range mustTopics(t, s) {
		got = append(got, tp.Name)
	}
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Fatalf("Topics names = %q, want %q", got, want)
	}
}

func testTopicsAreCopies(t *testing.T, e *env) {
	s := e.store()
	cfg := map[string]string{"retention.ms": "1000"}
	mustCreate(t, s, topic("iso", 1, cfg))
	cfg["retention.ms"] = "mutated-after-create"
	got := mustTopic(t, s, "iso")
	if got.Configs["retention.ms"] != "1000" {
		t.Fatalf("store aliases the caller's Configs map: %v", got.Configs)
	}
	got.Configs["retention.ms"] = "mutated-after-read"
	got.Configs["new"] = "x"
	if again := mustTopic(t, s, "iso"); !maps.Equal(again.Configs, map[string]string{"retention.ms": "1000"}) {
		t.Fatalf("store aliases the Configs map it returned: %v", again.Configs)
	}
}

func testUpdateTopic(t *testing.T, e *env) {
	s := e.store()
	orig := topic("upd", 3, map[string]string{"a": "1", "b": "2"})
	mustCreate(t, s, orig)
	mustCreate(t, s, topic("bystander", 1, map[string]string{"a": "1"}))

	calls := 0
	err := s.UpdateTopic(t.Context(), "upd", func(tp *meta.Topic) error {
		calls++
		if !sameTopic(*tp, orig) {
			t.Errorf("fn got %+v, want the stored topic %+v", *tp, orig)
		}
		tp.Partitions = 6
		delete(tp.Configs, "a")
		tp.Configs["b"] = "20"
		tp.Configs["c"] = "3"
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateTopic: %v", err)
	}
	if calls == 0 {
		t.Fatal("UpdateTopic did not call fn")
	}
	want := orig
	want.Partitions = 6
	want.Configs = map[string]string{"b": "20", "c": "3"}
	if got := mustTopic(t, s, "upd"); !sameTopic(got, want) {
		t.Fatalf("after UpdateTopic = %+v, want %+v", got, want)
	}
	if got := mustTopic(t, s, "bystander"); !maps.Equal(got.Configs, map[string]string{"a": "1"}) {
		t.Fatalf("UpdateTopic changed another topic: %+v", got)
	}

	// Removing every config must stick too.
	if err := s.UpdateTopic(t.Context(), "upd", func(tp *meta.Topic) error { tp.Configs = nil; return nil }); err != nil {
		t.Fatalf("UpdateTopic clearing configs: %v", err)
	}
	if got := mustTopic(t, s, "upd"); len(got.Configs) != 0 || got.Partitions != 6 {
		t.Fatalf("after clearing configs = %+v", got)
	}
}

func testUpdateTopicFnError(t *testing.T, e *env) {
	s := e.store()
	orig := topic("upd-err", 3, map[string]string{"a": "1"})
	mustCreate(t, s, orig)
	errBoom := errors.New("boom")
	err := s.UpdateTopic(t.Context(), "upd-err", func(tp *meta.Topic) error {
		// Mutate everything mutable before failing: none of it may stick.
		tp.Partitions = 99
		tp.CreatedMs = 1
		tp.Configs["a"] = "changed"
		tp.Configs["b"] = "added"
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("UpdateTopic err = %v, want fn's error", err)
	}
	if got := mustTopic(t, s, "upd-err"); !sameTopic(got, orig) {
		t.Fatalf("failed UpdateTopic stored %+v, want unchanged %+v", got, orig)
	}
}

func testUpdateTopicUnknown(t *testing.T, e *env) {
	s := e.store()
	mustCreate(t, s, topic("known", 1, nil))
	called := false
	err := s.UpdateTopic(t.Context(), "unknown", func(tp *meta.Topic) error { called = true; return nil })
	if !errors.Is(err, meta.ErrUnknownTopic) {
		t.Fatalf("UpdateTopic(unknown) err = %v, want ErrUnknownTopic", err)
	}
	if called {
		t.Fatal("UpdateTopic called fn for an unknown topic")
	}
	if ts := mustTopics(t, s); len(ts) != 1 || ts[0].Name != "known" {
		t.Fatalf("UpdateTopic(unknown) created something: %v", ts)
	}
}

func testDeleteTopic(t *testing.T, e *env) {
	s := e.store()
	mustCreate(t, s, topic("doomed", 3, nil))
	mustCreate(t, s, topic("doomed2", 3, nil)) // shares a name prefix
	mustCreate(t, s, topic("keep", 3, nil))
	doomed := []meta.Segment{seg("doomed", 0, 0, 9), seg("doomed", 0, 10, 19), seg("doomed", 2, 0, 4)}
	kept := []meta.Segment{seg("doomed2", 0, 0, 9), seg("keep", 0, 0, 9), seg("keep", 2, 0, 4)}
	mustAdd(t, s, append(slices.Clone(doomed), kept...)...)
	mustSetState(t, s, "doomed", 1, meta.PartitionState{LogStart: 7, LeaderEpoch: 3})
	mustSetState(t, s, "doomed2", 1, meta.PartitionState{LogStart: 8})
	mustSetState(t, s, "keep", 1, meta.PartitionState{LogStart: 9})

	removed, err := s.DeleteTopic(t.Context(), "doomed")
	if err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	if !sameSegmentSet(removed, doomed) {
		t.Fatalf("DeleteTopic returned %v, want %v", removed, doomed)
	}
	var names []string
	for _, tp := range mustTopics(t, s) {
		names = append(names, tp.Name)
	}
	if !slices.Equal(names, []string{"doomed2", "keep"}) {
		t.Fatalf("Topics after delete = %q", names)
	}
	for p := range int32(3) {
		wantNoSegments(t, s, "doomed", p)
		wantNoState(t, s, "doomed", p)
	}
	if all := mustAll(t, s); !sameSegmentSet(all, kept) {
		t.Fatalf("AllSegments after delete = %v, want %v", all, kept)
	}
	if st := mustState(t, s, "doomed2", 1); st.LogStart != 8 {
		t.Fatalf("other topic's state changed: %+v", st)
	}
	if st := mustState(t, s, "keep", 1); st.LogStart != 9 {
		t.Fatalf("other topic's state changed: %+v", st)
	}
	if _, err := s.DeleteTopic(t.Context(), "doomed"); !errors.Is(err, meta.ErrUnknownTopic) {
		t.Fatalf("second DeleteTopic err = %v, want ErrUnknownTopic", err)
	}
	if err := s.SetPartitionState(t.Context(), "doomed", 1, meta.PartitionState{LogStart: 1}); !errors.Is(err, meta.ErrUnknownTopic) {
		t.Fatalf("SetPartitionState on deleted topic err = %v, want ErrUnknownTopic", err)
	}
	if err := s.UpdateTopic(t.Context(), "doomed", func(*meta.Topic) error { return nil }); !errors.Is(err, meta.ErrUnknownTopic) {
		t.Fatalf("UpdateTopic on deleted topic err = %v, want ErrUnknownTopic", err)
	}
}

// testDeleteTopicID: a delete by id removes the topic only while the name
// is still that id's; the topic created again under the name (another
// id) stays, also after its configs changed, and the right id deletes it.
func testDeleteTopicID(t *testing.T, e *env) {
	s := e.store()
	first := topic("again", 2, nil)
	mustCreate(t, s, first)
	mustAdd(t, s, seg("again", 0, 0, 9))
	if _, err := s.DeleteTopic(t.Context(), "again"); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	second := first
	second.ID[0] ^= 0xFF
	mustCreate(t, s, second)
	mustAdd(t, s, seg("again", 1, 0, 4))
	if err := s.UpdateTopic(t.Context(), "again", func(tp *meta.Topic) error {
		tp.Configs = map[string]string{"retention.ms": "1000"}
		return nil
	}); err != nil {
		t.Fatalf("UpdateTopic: %v", err)
	}
	if _, err := s.DeleteTopicID(t.Context(), "again", first.ID); !errors.Is(err, meta.ErrUnknownTopic) {
		t.Fatalf("DeleteTopicID with the deleted topic's id: err = %v, want ErrUnknownTopic", err)
	}
	if ts := mustTopics(t, s); len(ts) != 1 || ts[0].ID != second.ID {
		t.Fatalf("the topic created again was touched: %v", ts)
	}
	removed, err := s.DeleteTopicID(t.Context(), "again", second.ID)
	if err != nil {
		t.Fatalf("DeleteTopicID with its own id: %v", err)
	}
	if !sameSegmentSet(removed, []meta.Segment{seg("again", 1, 0, 4)}) {
		t.Fatalf("DeleteTopicID returned %v", removed)
	}
	if ts := mustTopics(t, s); len(ts) != 0 {
		t.Fatalf("topics after DeleteTopicID: %v", ts)
	}
	if _, err := s.DeleteTopicID(t.Context(), "again", second.ID); !errors.Is(err, meta.ErrUnknownTopic) {
		t.Fatalf("second DeleteTopicID: err = %v, want ErrUnknownTopic", err)
	}
}

func testDeleteTopicUnknown(t *testing.T, e *env) {
	s := e.store()
	mustCreate(t, s, topic("present", 1, nil))
	mustAdd(t, s, seg("present", 0, 0, 1))
	removed, err := s.DeleteTopic(t.Context(), "absent")
	if !errors.Is(err, meta.ErrUnknownTopic) {
		t.Fatalf("DeleteTopic(absent) err = %v, want ErrUnknownTopic", err)
	}
	if len(removed) != 0 {
		t.Fatalf("DeleteTopic(absent) returned segments %v", removed)
	}
	if all := mustAll(t, s); len(all) != 1 {
		t.Fatalf("DeleteTopic(absent) changed the index: %v", all)
	}
}

func testRecreatedTopicStartsEmpty(t *testing.T, e *env) {
	s := e.store()
	old := topic("phoenix", 2, map[string]string{"old": "config"})
	mustCreate(t, s, old)
	mustAdd(t, s, seg("phoenix", 0, 0, 9), seg("phoenix", 1, 0, 9))
	mustSetState(t, s, "phoenix", 0, meta.PartitionState{LogStart: 5, LeaderEpoch: 4})
	if _, err := s.DeleteTopic(t.Context(), "phoenix"); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	fresh := topic("phoenix", 4, nil)
	fresh.ID[0] ^= 0xFF
	mustCreate(t, s, fresh)
	if got := mustTopic(t, s, "phoenix"); !sameTopic(got, fresh) {
		t.Fatalf("re-created topic = %+v, want %+v", got, fresh)
	}
	for p := range int32(4) {
		if segs := mustSegments(t, s, "phoenix", p); len(segs) != 0 {
			t.Fatalf("re-created topic inherited segments in partition %d: %v", p, segs)
		}
		if st := mustState(t, s, "phoenix", p); st != (meta.PartitionState{}) {
			t.Fatalf("re-created topic inherited partition %d state %+v", p, st)
		}
	}
	if all := mustAll(t, s); len(all) != 0 {
		t.Fatalf("AllSegments after re-create = %v, want none", all)
	}
}

func testSegmentRoundTrip(t *testing.T, e *env) {
	s := e.store()
	mustCreate(t, s, topic("rt", 1, nil))
	// Extremes every field may take in practice: offsets past 2^32,
	// MaxTimestamp -1 (Kafka's "no timestamp"), long object keys.
	segs := []meta.Segment{
		{Topic: "rt", Object: "o/1", Position: 0, Size: 1, FirstOffset: 0, LastOffset: 0, MaxTimestamp: -1},
		{Topic: "rt", Object: "o/" + string(make([]byte, 300)), Position: 1 << 40, Size: 1 << 33,
			FirstOffset: 1 << 41, LastOffset: 1<<41 + 1<<20, MaxTimestamp: 1<<62 + 3},
		{Topic: "rt", Object: "ü/ñ", Position: 7, Size: 9, FirstOffset: 5, LastOffset: 4, MaxTimestamp: 0},
	}
	mustAdd(t, s, segs...)
	wantSegments(t, mustSegments(t, s, "rt", 0), sortedSegments(segs), "Segments")
}

func testAddSegmentsOrdering(t *testing.T, e *env) {
	s := e.store()
	mustCreate(t, s, topic("ord", 1, nil))
	// Out of order within one call and across calls, with offsets whose
	// byte representations sort differently from their values under a
	// naive encoding (255 vs 256, small vs > 2^32).
	mustAdd(t, s, seg("ord", 0, 256, 300), seg("ord", 0, 0, 9), seg("ord", 0, 1<<33, 1<<33+5))
	mustAdd(t, s, seg("ord", 0, 255, 255), seg("ord", 0, 10, 254))
	mustAdd(t, s, seg("ord", 0, 301, 1000))
	want := []meta.Segment{
		seg("ord", 0, 0, 9), seg("ord", 0, 10, 254), seg("ord", 0, 255, 255),
		seg("ord", 0, 256, 300), seg("ord", 0, 301, 1000), seg("ord", 0, 1<<33, 1<<33+5),
	}
	wantSegments(t, mustSegments(t, s, "ord", 0), want, "Segments order")
}

func testAddSegmentsPartitionIsolation(t *testing.T, e *env) {
	s := e.store()
	mustCreate(t, s, topic("iso", 300, nil))
	parts := []int32{0, 1, 2, 255, 256, 257}
	var all []meta.Segment
	for i, p := range parts {
		for j := range 3 {
			all = append(all, seg("iso", p, int64(j*100+i), int64(j*100+i+50)))
		}
	}
	// One call spanning every partition, like a real upload.
	mustAdd(t, s, all...)
	for _, p := range parts {
		var want []meta.Segment
		for _, sg := range sortedSegments(all) {
			if sg.Partition == p {
				want = append(want, sg)
			}
		}
		wantSegments(t, mustSegments(t, s, "iso", p), want, fmt.Sprintf("partition %d", p))
	}
	if segs := mustSegments(t, s, "iso", 3); len(segs) != 0 {
		t.Fatalf("partition without entries returned %v", segs)
	}
}

func testAddSegmentsTopicIsolation(t *testing.T, e *env) {
	s := e.store()
	// Names where one is a prefix of the other catch prefix-scan bugs.
	for _, n := range []string{"t", "t1", "t/1"} {
		mustCreate(t, s, topic(n, 2, nil))
	}
	mustAdd(t, s, seg("t", 0, 0, 9), seg("t1", 0, 5, 9), seg("t/1", 0, 7, 9), seg("t", 1, 3, 4))
	wantSegments(t, mustSegments(t, s, "t", 0), []meta.Segment{seg("t", 0, 0, 9)}, "topic t")
	wantSegments(t, mustSegments(t, s, "t1", 0), []meta.Segment{seg("t1", 0, 5, 9)}, "topic t1")
	wantSegments(t, mustSegments(t, s, "t/1", 0), []meta.Segment{seg("t/1", 0, 7, 9)}, "topic t/1")
	wantSegments(t, mustSegments(t, s, "t", 1), []meta.Segment{seg("t", 1, 3, 4)}, "topic t partition 1")
}

func testAddSegmentsUnknownTopicDropped(t *testing.T, e *env) {
	s := e.store()
	mustCreate(t, s, topic("real", 1, nil))
	// A mixed batch: the known topic's entries land, the rest vanish.
	mustAdd(t, s, seg("ghost", 0, 0, 9), seg("real", 0, 0, 9), seg("ghost", 1, 0, 9))
	wantSegments(t, mustSegments(t, s, "real", 0), []meta.Segment{seg("real", 0, 0, 9)}, "known topic")
	if all := mustAll(t, s); !sameSegmentSet(all, []meta.Segment{seg("real", 0, 0, 9)}) {
		t.Fatalf("AllSegments = %v, want only the known topic's entry", all)
	}
	wantNoSegments(t, s, "ghost", 0)
	// Creating the topic afterwards must not reveal the dropped entries.
	mustCreate(t, s, topic("ghost", 2, nil))
	if segs := mustSegments(t, s, "ghost", 0); len(segs) != 0 {
		t.Fatalf("dropped entries surfaced after create: %v", segs)
	}
	if ts := mustTopics(t, s); len(ts) != 2 {
		t.Fatalf("Topics = %v", ts)
	}
}

func testAddSegmentsDeletedTopicDropped(t *testing.T, e *env) {
	s := e.store()
	mustCreate(t, s, topic("gone", 1, nil))
	mustAdd(t, s, seg("gone", 0, 0, 9))
	if _, err := s.DeleteTopic(t.Context(), "gone"); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	// An upload that finishes after the delete.
	mustAdd(t, s, seg("gone", 0, 10, 19))
	if all := mustAll(t, s); len(all) != 0 {
		t.Fatalf("AllSegments after late upload = %v, want none", all)
	}
	if ts := mustTopics(t, s); len(ts) != 0 {
		t.Fatalf("late upload resurrected the topic: %v", ts)
	}
	mustCreate(t, s, topic("gone", 1, nil))
	if segs := mustSegments(t, s, "gone", 0); len(segs) != 0 {
		t.Fatalf("late upload's entries surfaced after re-create: %v", segs)
	}
}

func testReplaceSegments(t *testing.T, e *env) {
	s := e.store()
	mustCreate(t, s, topic("rep", 2, nil))
	old := []meta.Segment{seg("rep", 0, 0, 9), seg("rep", 0, 10, 19), seg("rep", 0, 20, 29), seg("rep", 0, 30, 39)}
	other := seg("rep", 1, 0, 39)
	mustAdd(t, s, append(slices.Clone(old), other)...)

	// Compact the first three into one entry starting at the same offset,
	// matched by key only: the Object etc. of remove entries are not used.
	compacted := meta.Segment{Topic: "rep", Partition: 0, Object: "compacted/1", Position: 0, Size: 123,
		FirstOffset: 0, LastOffset: 29, MaxTimestamp: 42}
	remove := slices.Clone(old[:3])
	for i := range remove {
		remove[i].Object, remove[i].Size = "irrelevant", 0
	}
	if err := s.ReplaceSegments(t.Context(), remove, []meta.Segment{compacted}); err != nil {
		t.Fatalf("ReplaceSegments: %v", err)
	}
	wantSegments(t, mustSegments(t, s, "rep", 0), []meta.Segment{compacted, old[3]}, "after compaction")
	wantSegments(t, mustSegments(t, s, "rep", 1), []meta.Segment{other}, "untouched partition")

	// Retention: remove only.
	if err := s.ReplaceSegments(t.Context(), []meta.Segment{compacted}, nil); err != nil {
		t.Fatalf("ReplaceSegments remove-only: %v", err)
	}
	wantSegments(t, mustSegments(t, s, "rep", 0), []meta.Segment{old[3]}, "after retention")

	// Add only.
	if err := s.ReplaceSegments(t.Context(), nil, []meta.Segment{old[0]}); err != nil {
		t.Fatalf("ReplaceSegments add-only: %v", err)
	}
	wantSegments(t, mustSegments(t, s, "rep", 0), []meta.Segment{old[0], old[3]}, "after add-only")
	if all := mustAll(t, s); !sameSegmentSet(all, []meta.Segment{old[0], old[3], other}) {
		t.Fatalf("AllSegments = %v", all)
	}
}

// testReplaceSegmentsAtomic flips a partition between two layouts while
// readers check they never see a mixture of the two.
func testReplaceSegmentsAtomic(t *testing.T, e *env) {
	s := e.store()
	mustCreate(t, s, topic("atom", 1, nil))
	var fine []meta.Segment
	for i := range int64(10) {
		fine = append(fine, seg("atom", 0, i*10, i*10+9))
	}
	coarse := []meta.Segment{{Topic: "atom", Partition: 0, Object: "coarse", Size: 1000, FirstOffset: 0, LastOffset: 99}}
	mustAdd(t, s, fine...)

	const (
		flips   = 40
		readers = 4
	)
	done := make(chan struct{})
	var wg, started sync.WaitGroup
	started.Add(readers)
	for range readers {
		wg.Go(func() {
			for n := 0; ; n++ {
				if n == 1 {
					started.Done()
				}
				select {
				case <-done:
					return
				default:
				}
				got, err := s.Segments(t.Context(), "atom", 0)
				if err != nil {
					t.Errorf("Segments: %v", err)
				} else if !slices.EqualFunc(got, fine, meta.SameSegment) && !slices.EqualFunc(got, coarse, meta.SameSegment) {
					t.Errorf("reader saw a partial replacement: %v", got)
				}
			}
		})
	}
	// Readers must be running before the flips start, or a fast backend
	// could finish them all unobserved.
	started.Wait()
	for i := range flips {
		from, to := fine, coarse
		if i%2 == 1 {
			from, to = coarse, fine
		}
		if err := s.ReplaceSegments(t.Context(), from, to); err != nil {
			t.Errorf("ReplaceSegments flip %d: %v", i, err)
			break
		}
	}
	close(done)
	wg.Wait()
	wantSegments(t, mustSegments(t, s, "atom", 0), fine, "after an even number of flips")
}

func testAllSegments(t *testing.T, e *env) {
	s := e.store()
	if all := mustAll(t, s); len(all) != 0 {
		t.Fatalf("AllSegments on empty store = %v", all)
	}
	mustCreate(t, s, topic("x", 3, nil))
	mustCreate(t, s, topic("y", 1, nil))
	mustCreate(t, s, topic("empty", 1, nil))
	var want []meta.Segment
	for p := range int32(3) {
		for o := range int64(4) {
			want = append(want, seg("x", p, o*10, o*10+9))
		}
	}
	want = append(want, seg("y", 0, 0, 0), seg("y", 0, 1, 1))
	mustAdd(t, s, want[:5]...)
	mustAdd(t, s, want[5:]...)
	all := mustAll(t, s)
	if len(all) != len(want) || !sameSegmentSet(all, want) {
		t.Fatalf("AllSegments = %v, want (any order) %v", all, want)
	}
}

func testPartitionState(t *testing.T, e *env) {
	s := e.store()
	mustCreate(t, s, topic("ps", 4, nil))
	mustCreate(t, s, topic("ps2", 4, nil))
	for p := range int32(4) {
		if st := mustState(t, s, "ps", p); st != (meta.PartitionState{}) {
			t.Fatalf("initial state of partition %d = %+v, want zero", p, st)
		}
	}
	mustSetState(t, s, "ps", 1, meta.PartitionState{LogStart: 100, LeaderEpoch: 2})
	mustSetState(t, s, "ps", 3, meta.PartitionState{LogStart: 1 << 40, LeaderEpoch: -1})
	mustSetState(t, s, "ps2", 1, meta.PartitionState{LogStart: 7})
	want := map[int32]meta.PartitionState{1: {LogStart: 100, LeaderEpoch: 2}, 3: {LogStart: 1 << 40, LeaderEpoch: -1}}
	for p := range int32(4) {
		if st := mustState(t, s, "ps", p); st != want[p] {
			t.Fatalf("state of partition %d = %+v, want %+v", p, st, want[p])
		}
	}
	// Overwrite, including back to zero.
	mustSetState(t, s, "ps", 1, meta.PartitionState{LogStart: 150, LeaderEpoch: 3})
	if st := mustState(t, s, "ps", 1); st != (meta.PartitionState{LogStart: 150, LeaderEpoch: 3}) {
		t.Fatalf("overwritten state = %+v", st)
	}
	mustSetState(t, s, "ps", 3, meta.PartitionState{})
	if st := mustState(t, s, "ps", 3); st != (meta.PartitionState{}) {
		t.Fatalf("state reset to zero reads %+v", st)
	}
	if st := mustState(t, s, "ps2", 1); st != (meta.PartitionState{LogStart: 7}) {
		t.Fatalf("other topic's state = %+v", st)
	}
	// State and segments are independent.
	mustAdd(t, s, seg("ps", 1, 150, 160))
	if st := mustState(t, s, "ps", 1); st.LogStart != 150 {
		t.Fatalf("AddSegments changed partition state: %+v", st)
	}
}

func testSetPartitionStateUnknownTopic(t *testing.T, e *env) {
	s := e.store()
	err := s.SetPartitionState(t.Context(), "nope", 0, meta.PartitionState{LogStart: 1})
	if !errors.Is(err, meta.ErrUnknownTopic) {
		t.Fatalf("SetPartitionState(unknown) err = %v, want ErrUnknownTopic", err)
	}
	// Nothing may linger for a topic created later under that name.
	mustCreate(t, s, topic("nope", 1, nil))
	if st := mustState(t, s, "nope", 0); st != (meta.PartitionState{}) {
		t.Fatalf("rejected state surfaced after create: %+v", st)
	}
}

// testConcurrent runs every kind of call from several goroutines at once;
// run under -race it also checks the backend's own synchronisation. The
// shared counter checks that UpdateTopic is an atomic read-modify-write.
func testConcurrent(t *testing.T, e *env) {
	s := e.store()
	ctx := t.Context()
	mustCreate(t, s, topic("shared", 1, map[string]string{"n": "0"}))
	const (
		workers    = 8
		increments = 10
		batches    = 5
		perBatch   = 6
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			name := fmt.Sprintf("w%d", w)
			if err := s.CreateTopic(ctx, topic(name, 3, nil)); err != nil {
				t.Errorf("CreateTopic(%s): %v", name, err)
				return
			}
			for b := range batches {
				var segs []meta.Segment
				for i := range perBatch {
					off := int64(b*perBatch + i)
					segs = append(segs, seg(name, int32(i%3), off*10, off*10+9))
				}
				if err := s.AddSegments(ctx, segs); err != nil {
					t.Errorf("AddSegments(%s): %v", name, err)
				}
				if err := s.SetPartitionState(ctx, name, int32(b%3), meta.PartitionState{LogStart: int64(b), LeaderEpoch: int32(w)}); err != nil {
					t.Errorf("SetPartitionState(%s): %v", name, err)
				}
			}
			for range increments {
				err := s.UpdateTopic(ctx, "shared", func(tp *meta.Topic) error {
					n, err := strconv.Atoi(tp.Configs["n"])
					if err != nil {
						return err
					}
					tp.Configs["n"] = strconv.Itoa(n + 1)
					return nil
				})
				if err != nil {
					t.Errorf("UpdateTopic(shared): %v", err)
				}
			}
		})
		// Readers interleaved with the writers.
		wg.Go(func() {
			for range 20 {
				if _, err := s.Topics(ctx); err != nil {
					t.Errorf("Topics: %v", err)
				}
				if _, err := s.AllSegments(ctx); err != nil {
					t.Errorf("AllSegments: %v", err)
				}
				if _, err := s.Segments(ctx, "shared", 0); err != nil {
					t.Errorf("Segments: %v", err)
				}
				if _, err := s.ClusterID(ctx); err != nil {
					t.Errorf("ClusterID: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if got := mustTopic(t, s, "shared").Configs["n"]; got != strconv.Itoa(workers*increments) {
		t.Fatalf("shared counter = %s, want %d: concurrent UpdateTopic calls lost updates", got, workers*increments)
	}
	if ts := mustTopics(t, s); len(ts) != workers+1 {
		t.Fatalf("Topics has %d entries, want %d", len(ts), workers+1)
	}
	total := 0
	for w := range workers {
		name := fmt.Sprintf("w%d", w)
		for p := range int32(3) {
			segs := mustSegments(t, s, name, p)
			if len(segs) != batches*perBatch/3 {
				t.Fatalf("%s/%d has %d segments, want %d", name, p, len(segs), batches*perBatch/3)
			}
			for _, sg := range segs {
				if sg.Topic != name || sg.Partition != p {
					t.Fatalf("%s/%d returned foreign entry %+v", name, p, sg)
				}
			}
			total += len(segs)
			// The last batch b that wrote partition p is the largest b < batches with b%3 == p.
			lastB := int64(-1)
			for b := range int64(batches) {
				if b%3 == int64(p) {
					lastB = b
				}
			}
			if st := mustState(t, s, name, p); st != (meta.PartitionState{LogStart: lastB, LeaderEpoch: int32(w)}) {
				t.Fatalf("%s/%d state = %+v, want LogStart %d epoch %d", name, p, st, lastB, w)
			}
		}
	}
	if all := mustAll(t, s); len(all) != total {
		t.Fatalf("AllSegments has %d entries, want %d", len(all), total)
	}
}

func testPersistence(t *testing.T, e *env) {
	s := e.store()
	id, err := s.ClusterID(t.Context())
	if err != nil {
		t.Fatalf("ClusterID: %v", err)
	}
	mustCreate(t, s, topic("p1", 2, map[string]string{"retention.ms": "60000"}))
	mustCreate(t, s, topic("p2", 1, nil))
	mustCreate(t, s, topic("p3", 1, nil))
	mustAdd(t, s, seg("p1", 0, 0, 9), seg("p1", 1, 0, 4), seg("p2", 0, 0, 99), seg("p3", 0, 0, 1))
	mustAdd(t, s, seg("p1", 0, 10, 19))
	if err := s.ReplaceSegments(t.Context(), []meta.Segment{seg("p2", 0, 0, 99)}, []meta.Segment{seg("p2", 0, 50, 99)}); err != nil {
		t.Fatalf("ReplaceSegments: %v", err)
	}
	if err := s.UpdateTopic(t.Context(), "p1", func(tp *meta.Topic) error { tp.Partitions = 3; return nil }); err != nil {
		t.Fatalf("UpdateTopic: %v", err)
	}
	mustSetState(t, s, "p1", 1, meta.PartitionState{LogStart: 3, LeaderEpoch: 1})
	if _, err := s.DeleteTopic(t.Context(), "p3"); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}

	topicsBefore := mustTopics(t, s)
	allBefore := mustAll(t, s)
	segsBefore := map[string][]meta.Segment{}
	for _, tp := range topicsBefore {
		for p := range tp.Partitions {
			segsBefore[fmt.Sprint(tp.Name, p)] = mustSegments(t, s, tp.Name, p)
		}
	}

	s = e.reopen(s)

	if got, err := s.ClusterID(t.Context()); err != nil || got != id {
		t.Fatalf("ClusterID after reopen = %q, %v; want %q", got, err, id)
	}
	topicsAfter := mustTopics(t, s)
	if !slices.EqualFunc(topicsAfter, topicsBefore, sameTopic) {
		t.Fatalf("Topics after reopen = %+v, want %+v", topicsAfter, topicsBefore)
	}
	if got := mustTopic(t, s, "p1"); got.Partitions != 3 || got.Configs["retention.ms"] != "60000" {
		t.Fatalf("p1 after reopen = %+v", got)
	}
	for _, tp := range topicsAfter {
		for p := range tp.Partitions {
			wantSegments(t, mustSegments(t, s, tp.Name, p), segsBefore[fmt.Sprint(tp.Name, p)],
				fmt.Sprintf("%s/%d after reopen", tp.Name, p))
		}
	}
	wantSegments(t, mustSegments(t, s, "p2", 0), []meta.Segment{seg("p2", 0, 50, 99)}, "replaced entry after reopen")
	if all := mustAll(t, s); !sameSegmentSet(all, allBefore) || len(all) != 4 {
		t.Fatalf("AllSegments after reopen = %v, want %v", all, allBefore)
	}
	if st := mustState(t, s, "p1", 1); st != (meta.PartitionState{LogStart: 3, LeaderEpoch: 1}) {
		t.Fatalf("partition state after reopen = %+v", st)
	}
	wantNoSegments(t, s, "p3", 0)
	// The reopened store is fully writable.
	mustAdd(t, s, seg("p1", 0, 20, 29))
	if _, err := s.DeleteTopic(t.Context(), "p2"); err != nil {
		t.Fatalf("DeleteTopic after reopen: %v", err)
	}
	s = e.reopen(s)
	if ts := mustTopics(t, s); len(ts) != 1 || ts[0].Name != "p1" {
		t.Fatalf("Topics after second reopen = %v", ts)
	}
	if n := len(mustSegments(t, s, "p1", 0)); n != 3 {
		t.Fatalf("p1/0 after second reopen has %d segments, want 3", n)
	}
}

func testClosed(t *testing.T, e *env) {
	s := e.store()
	mustCreate(t, s, topic("c", 1, nil))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := t.Context()
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, meta.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
		}
	}
	_, err := s.ClusterID(ctx)
	check("ClusterID", err)
	check("CreateTopic", s.CreateTopic(ctx, topic("d", 1, nil)))
	_, err = s.Topics(ctx)
	check("Topics", err)
	called := false
	check("UpdateTopic", s.UpdateTopic(ctx, "c", func(*meta.Topic) error { called = true; return nil }))
	if called {
		t.Error("UpdateTopic called fn on a closed store")
	}
	_, err = s.DeleteTopic(ctx, "c")
	check("DeleteTopic", err)
	check("AddSegments", s.AddSegments(ctx, []meta.Segment{seg("c", 0, 0, 1)}))
	check("ReplaceSegments", s.ReplaceSegments(ctx, nil, []meta.Segment{seg("c", 0, 0, 1)}))
	_, err = s.Segments(ctx, "c", 0)
	check("Segments", err)
	_, err = s.AllSegments(ctx)
	check("AllSegments", err)
	_, err = s.PartitionState(ctx, "c", 0)
	check("PartitionState", err)
	check("SetPartitionState", s.SetPartitionState(ctx, "c", 0, meta.PartitionState{}))

	// None of the rejected calls may have changed anything.
	s = e.store()
	if ts := mustTopics(t, s); len(ts) != 1 || ts[0].Name != "c" {
		t.Fatalf("Topics after calls on a closed store = %v", ts)
	}
	if all := mustAll(t, s); len(all) != 0 {
		t.Fatalf("AllSegments after calls on a closed store = %v", all)
	}
}

// testCanceledContext checks that a call with a dead context fails and
// changes nothing. The error's type is not checked: remote backends may
// report cancellation their own way.
func testCanceledContext(t *testing.T, e *env) {
	s := e.store()
	mustCreate(t, s, topic("cc", 1, map[string]string{"k": "v"}))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	if err := s.CreateTopic(ctx, topic("new", 1, nil)); err == nil {
		t.Error("CreateTopic with canceled context succeeded")
	}
	if err := s.UpdateTopic(ctx, "cc", func(tp *meta.Topic) error { tp.Configs["k"] = "x"; return nil }); err == nil {
		t.Error("UpdateTopic with canceled context succeeded")
	}
	if _, err := s.DeleteTopic(ctx, "cc"); err == nil {
		t.Error("DeleteTopic with canceled context succeeded")
	}
	if err := s.AddSegments(ctx, []meta.Segment{seg("cc", 0, 0, 1)}); err == nil {
		t.Error("AddSegments with canceled context succeeded")
	}
	if err := s.SetPartitionState(ctx, "cc", 0, meta.PartitionState{LogStart: 1}); err == nil {
		t.Error("SetPartitionState with canceled context succeeded")
	}
	if ts := mustTopics(t, s); len(ts) != 1 || !maps.Equal(ts[0].Configs, map[string]string{"k": "v"}) {
		t.Fatalf("Topics after canceled calls = %+v", ts)
	}
	if all := mustAll(t, s); len(all) != 0 {
		t.Fatalf("AllSegments after canceled calls = %v", all)
	}
	if st := mustState(t, s, "cc", 0); st != (meta.PartitionState{}) {
		t.Fatalf("state after canceled call = %+v", st)
	}
}

func testProducers(t *testing.T, e *env) {
	s := e.store()
	tp := topic("idem", 2, nil)
	mustCreate(t, s, tp)
	put := func(ps ...meta.Producer) {
		t.Helper()
		if err := s.PutProducers(t.Context(), ps); err != nil {
			t.Fatalf("PutProducers: %v", err)
		}
	}
	get := func(p int32) []meta.Producer {
		t.Helper()
		got, err := s.Producers(t.Context(), "idem", p)
		if err != nil {
			t.Fatalf("Producers: %v", err)
		}
		return got
	}
	put(
		meta.Producer{Topic: "idem", TopicID: tp.ID, Partition: 0, ProducerID: 1 << 40, Data: []byte("b")},
		meta.Producer{Topic: "idem", TopicID: tp.ID, Partition: 0, ProducerID: 7, Data: []byte("a")},
		meta.Producer{Topic: "idem", TopicID: tp.ID, Partition: 1, ProducerID: 7, Data: []byte("other partition")},
	)
	got := get(0)
	if len(got) != 2 || got[0].ProducerID != 7 || string(got[0].Data) != "a" || got[1].ProducerID != 1<<40 || string(got[1].Data) != "b" {
		t.Fatalf("Producers(idem, 0) = %+v, want ids 7 and 2^40 in order", got)
	}
	// Overwrite one, delete the other, in one call.
	put(meta.Producer{Topic: "idem", TopicID: tp.ID, Partition: 0, ProducerID: 7, Data: []byte("a2")},
		meta.Producer{Topic: "idem", TopicID: tp.ID, Partition: 0, ProducerID: 1 << 40})
	s = e.reopen(s)
	got = get(0)
	if len(got) != 1 || got[0].ProducerID != 7 || string(got[0].Data) != "a2" {
		t.Fatalf("after update and reopen Producers(idem, 0) = %+v, want only 7=a2", got)
	}
	if got := get(1); len(got) != 1 || string(got[0].Data) != "other partition" {
		t.Fatalf("Producers(idem, 1) = %+v", got)
	}
	if _, err := s.DeleteTopic(t.Context(), "idem"); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	mustCreate(t, s, topic("idem", 2, nil))
	if got := get(0); len(got) != 0 {
		t.Fatalf("re-created topic inherited producers: %+v", got)
	}
}

// testAbortedIndex: a run's aborted-transaction index is stored with
// it, by every write that stores a run, and read back by every read.
func testAbortedIndex(t *testing.T, e *env) {
	s := e.store()
	mustCreate(t, s, topic("txn", 1, nil))
	plain := seg("txn", 0, 0, 9)
	withAborts := seg("txn", 0, 10, 19)
	withAborts.Aborted = []meta.AbortedTxn{{ProducerID: 3, FirstOffset: 2, LastOffset: 11}, {ProducerID: 1 << 50, FirstOffset: 12, LastOffset: 19}}
	mustAdd(t, s, plain, withAborts)
	s = e.reopen(s)
	got := mustSegments(t, s, "txn", 0)
	wantSegments(t, got, []meta.Segment{plain, withAborts}, "Segments with an aborted index")
	if len(got[0].Aborted) != 0 || len(got[1].Aborted) != 2 {
		t.Fatalf("aborted indexes read back: %v and %v", got[0].Aborted, got[1].Aborted)
	}
	if all := mustAll(t, s); !sameSegmentSet(all, []meta.Segment{plain, withAborts}) {
		t.Fatalf("AllSegments = %v", all)
	}
	// A merge keeps the union; replacing drops the old entries' index.
	merged := seg("txn", 0, 0, 19)
	merged.Object = "segments/merged"
	merged.Aborted = withAborts.Aborted
	if err := s.ReplaceSegments(t.Context(), []meta.Segment{plain, withAborts}, []meta.Segment{merged}); err != nil {
		t.Fatalf("ReplaceSegments: %v", err)
	}
	wantSegments(t, mustSegments(t, s, "txn", 0), []meta.Segment{merged}, "after the merge")
	removed, err := s.DeleteTopic(t.Context(), "txn")
	if err != nil || !sameSegmentSet(removed, []meta.Segment{merged}) {
		t.Fatalf("DeleteTopic = %v, %v", removed, err)
	}
}

// testAddSegmentsWithProducers: an upload's index entries and producer
// states are stored by one call, topic checks applied to each.
func testAddSegmentsWithProducers(t *testing.T, e *env) {
	s := e.store()
	tp := topic("up", 1, nil)
	mustCreate(t, s, tp)
	sg := seg("up", 0, 0, 4)
	err := s.AddSegments(t.Context(), []meta.Segment{sg, seg("gone", 0, 0, 4)},
		meta.Producer{Topic: "up", TopicID: tp.ID, Partition: 0, ProducerID: 9, Data: []byte("state")},
		meta.Producer{Topic: "gone", TopicID: tp.ID, Partition: 0, ProducerID: 9, Data: []byte("no topic")})
	if err != nil {
		t.Fatalf("AddSegments with producers: %v", err)
	}
	s = e.reopen(s)
	wantSegments(t, mustSegments(t, s, "up", 0), []meta.Segment{sg}, "Segments")
	got, err := s.Producers(t.Context(), "up", 0)
	if err != nil || len(got) != 1 || got[0].ProducerID != 9 || string(got[0].Data) != "state" {
		t.Fatalf("Producers = %+v, %v", got, err)
	}
	// Producer states alone are a valid call too (a takeover with nothing
	// to add), as is deleting one.
	if err := s.AddSegments(t.Context(), nil, meta.Producer{Topic: "up", TopicID: tp.ID, Partition: 0, ProducerID: 9}); err != nil {
		t.Fatalf("AddSegments deleting a producer: %v", err)
	}
	if got, err := s.Producers(t.Context(), "up", 0); err != nil || len(got) != 0 {
		t.Fatalf("Producers after the delete = %+v, %v", got, err)
	}
}

func testProducersStaleTopic(t *testing.T, e *env) {
	s := e.store()
	tp := topic("stale", 1, nil)
	mustCreate(t, s, tp)
	other := tp.ID
	other[0] ^= 0xFF
	err := s.PutProducers(t.Context(), []meta.Producer{
		{Topic: "stale", TopicID: other, Partition: 0, ProducerID: 1, Data: []byte("old incarnation")},
		{Topic: "missing", TopicID: tp.ID, Partition: 0, ProducerID: 1, Data: []byte("no topic")},
	})
	if err != nil {
		t.Fatalf("PutProducers: %v", err)
	}
	got, err := s.Producers(t.Context(), "stale", 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("Producers(stale) = %+v, %v; want none (written under another topic id)", got, err)
	}
}

func testAllocateProducerIDs(t *testing.T, e *env) {
	s := e.store()
	seen := map[int64]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first, err := s.AllocateProducerIDs(t.Context(), 10)
			if err != nil {
				t.Errorf("AllocateProducerIDs: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for id := first; id < first+10; id++ {
				if id < 0 || seen[id] {
					t.Errorf("producer id %d handed out twice or negative", id)
				}
				seen[id] = true
			}
		}()
	}
	wg.Wait()
	s = e.reopen(s)
	first, err := s.AllocateProducerIDs(t.Context(), 1)
	if err != nil {
		t.Fatalf("AllocateProducerIDs after reopen: %v", err)
	}
	if seen[first] || first < 80 {
		t.Fatalf("after reopen got id %d, which was already handed out", first)
	}
	if _, err := s.AllocateProducerIDs(t.Context(), 0); err == nil {
		t.Fatalf("AllocateProducerIDs(0) succeeded, want an error")
	}
}

func testSecurityRecords(t *testing.T, e *env) {
	s := e.store()
	ctx := t.Context()
	rev0, err := s.SecurityRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.SecurityRecords(ctx, meta.SecurityACL); err != nil || len(got) != 0 {
		t.Fatalf("empty store: records %v, err %v", got, err)
	}
	update := func(kind string, put map[string][]byte, del ...string) int64 {
		t.Helper()
		if err := s.UpdateSecurityRecords(ctx, kind, put, del); err != nil {
			t.Fatalf("UpdateSecurityRecords(%s): %v", kind, err)
		}
		rev, err := s.SecurityRevision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	// Keys with the characters principals and topic names bring.
	rev1 := update(meta.SecurityACL, map[string][]byte{"Topic/LITERAL/a.b-c/User:x/*/READ/ALLOW": []byte("1"), "k/2": []byte("2")})
	rev2 := update(meta.SecurityScram, map[string][]byte{"alice/SCRAM-SHA-512": []byte("cred")})
	rev3 := update(meta.SecurityACL, map[string][]byte{"k3": []byte("3")}, "k/2", "absent")
	if !(rev0 < rev1 && rev1 < rev2 && rev2 < rev3) {
		t.Fatalf("revision did not move with every update: %d, %d, %d, %d", rev0, rev1, rev2, rev3)
	}
	s = e.reopen(s)
	acls, err := s.SecurityRecords(ctx, meta.SecurityACL)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"Topic/LITERAL/a.b-c/User:x/*/READ/ALLOW": []byte("1"), "k3": []byte("3")}
	if !maps.EqualFunc(acls, want, bytes.Equal) {
		t.Fatalf("ACL records %q, want %q", acls, want)
	}
	scram, err := s.SecurityRecords(ctx, meta.SecurityScram)
	if err != nil || len(scram) != 1 || string(scram["alice/SCRAM-SHA-512"]) != "cred" {
		t.Fatalf("SCRAM records %q, err %v", scram, err)
	}
	if rev, err := s.SecurityRevision(ctx); err != nil || rev != rev3 {
		t.Fatalf("revision after reopen %d (err %v), want %d", rev, err, rev3)
	}
}

func testClientQuotas(t *testing.T, e *env) {
	s := e.store()
	set := func(entity string, q map[string]float64) {
		t.Helper()
		if err := s.SetClientQuotas(t.Context(), entity, q); err != nil {
			t.Fatalf("SetClientQuotas(%q): %v", entity, err)
		}
	}
	set("client-id=a", map[string]float64{"producer_byte_rate": 1024, "consumer_byte_rate": 2048})
	set("user", map[string]float64{"producer_byte_rate": 1e9})
	set("client-id=a", map[string]float64{"consumer_byte_rate": 4096}) // replaces
	set("gone", map[string]float64{"producer_byte_rate": 1})
	set("gone", nil)
	s = e.reopen(s)
	got, err := s.ClientQuotas(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]float64{
		"client-id=a": {"consumer_byte_rate": 4096},
		"user":        {"producer_byte_rate": 1e9},
	}
	if len(got) != len(want) || !maps.EqualFunc(got, want, func(a, b map[string]float64) bool { return maps.Equal(a, b) }) {
		t.Fatalf("ClientQuotas = %v, want %v", got, want)
	}
}
