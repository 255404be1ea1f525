package intel

import (
	"net/netip"
	"testing"
)

func TestSTIXPatterns(t *testing.T) {
	for _, tc := range []struct {
		p    string
		want []IOC
		err  bool
	}{
		{p: "[ipv4-addr:value = '198.51.100.7']", want: []IOC{{TypeIP, "198.51.100.7"}}},
		{p: "[domain-name:value = 'a.example' OR url:value = 'http://b.example/x']", want: []IOC{{TypeDomain, "a.example"}, {TypeURL, "http://b.example/x"}}},
		{p: "[file:hashes.'SHA-256' = 'ab'] OR [file:hashes.MD5 = 'cd']", want: []IOC{{TypeSHA256, "ab"}, {TypeMD5, "cd"}}},
		{p: "[ipv4-addr:value IN ('1.1.1.1', '2.2.2.2')]", want: []IOC{{TypeIP, "1.1.1.1"}, {TypeIP, "2.2.2.2"}}},
		{p: "[ipv4-addr:value = '1.1.1.1'] AND [domain-name:value = 'x.example']", err: true},
		{p: "[ipv4-addr:value = '1.1.1.1'] WITHIN 10 SECONDS", err: true},
		{p: "[process:name = 'x']", err: true},
		{p: "[domain-name:value LIKE '%.example']", err: true},
	} {
		got, err := ParseSTIXPattern(tc.p)
		if (err != nil) != tc.err || len(got) != len(tc.want) {
			t.Errorf("%s: %v, %v", tc.p, got, err)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: %v", tc.p, got)
			}
		}
	}
}

func TestIndexUpdates(t *testing.T) {
	ix := NewIndex()
	add := func(set, typ, v string, suffix bool) string {
		r := Record{Set: set, Type: typ, Value: v, Suffix: suffix}
		if err := r.Normalize(); err != nil {
			t.Fatal(err)
		}
		if err := ix.Apply([]byte(r.Key()), r.Marshal()); err != nil {
			t.Fatal(err)
		}
		return r.Key()
	}
	k1 := add("a", TypeIP, "10.0.0.0/8", false)
	add("b", TypeIP, "10.1.0.0/16", false)
	k3 := add("a", TypeDomain, "Example.COM", true)
	a := netip.MustParseAddr("10.1.2.3")
	if h := ix.LookupIP(a, a.String(), nil); len(h) != 2 || h[0].M.Set != "b" || h[1].String() != "10.0.0.0/8" {
		t.Errorf("10.1.2.3: %+v", h)
	}
	if h := ix.LookupDomain("www.example.com", nil); len(h) != 1 || h[0].Indicator != "example.com" || h[0].Match != MatchSuffix {
		t.Errorf("www.example.com: %+v", h)
	}
	// Tombstones remove exactly their indicator.
	ix.Apply([]byte(k1), nil)
	ix.Apply([]byte(k3), nil)
	if h := ix.LookupIP(a, a.String(), nil); len(h) != 1 || h[0].M.Set != "b" {
		t.Errorf("after tombstone: %+v", h)
	}
	if h := ix.LookupDomain("www.example.com", nil); len(h) != 0 {
		t.Errorf("after tombstone: %+v", h)
	}
	if ix.Len() != 1 {
		t.Errorf("len %d", ix.Len())
	}
}
