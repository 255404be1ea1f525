package admincli

import (
	"flag"
	"io"
	"reflect"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		pos     []string
		json    bool
		configs []string
	}{
		{[]string{"a", "--json", "b"}, []string{"a", "b"}, true, nil},
		{[]string{"--config", "x=1", "a", "--config=y=2"}, []string{"a"}, false, []string{"x=1", "y=2"}},
		{[]string{"a", "--", "--json", "b"}, []string{"a", "--json", "b"}, false, nil},
		{nil, nil, false, nil},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		asJSON := fs.Bool("json", false, "")
		var configs listFlag
		fs.Var(&configs, "config", "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if !reflect.DeepEqual(pos, tc.pos) || *asJSON != tc.json || !reflect.DeepEqual(configs.vals, tc.configs) {
			t.Errorf("%q: positional %q json %v configs %q", tc.args, pos, *asJSON, configs.vals)
		}
	}
}

func TestParseTopicSpec(t *testing.T) {
	tp, err := parseTopicSpec("orders:0, 2,5")
	if err != nil || tp.Topic != "orders" || !reflect.DeepEqual(tp.Partitions, []int32{0, 2, 5}) {
		t.Errorf("orders:0, 2,5 -> %+v %v", tp, err)
	}
	tp, err = parseTopicSpec("orders")
	if err != nil || tp.Topic != "orders" || tp.Partitions != nil {
		t.Errorf("orders -> %+v %v", tp, err)
	}
	for _, bad := range []string{":1", "orders:", "orders:-1", "orders:a"} {
		if _, err := parseTopicSpec(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestStateFilterSpelling(t *testing.T) {
	for in, want := range map[string]string{"stable": "Stable", "EMPTY": "Empty", "preparingrebalance": "PreparingRebalance", "Odd": "Odd"} {
		if got := canonicalState(in); got != want {
			t.Errorf("canonicalState(%q) = %q, want %q", in, got, want)
		}
	}
}
