package enrich

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// Table is asset or identity context: inventory records (JSON objects)
// from a compacted topic (`assets`, `identities`), keyed by the record
// key, found by the values of their match fields. A record without a
// value (a tombstone) removes the entry; a new value replaces it.
//
// Assets match by hostname, fqdn (and its first label), name, ip and ips
// (a list), mac; identities by name, username, user, email, upn, uid,
// sid, id. Values are compared lower-cased; an event's user name
// "CORP\alice" or "alice@corp.example" also tries "alice".
type Table struct {
	kind   string // "asset" or "identity"
	fields []string

	mu   sync.RWMutex
	recs map[string]*ctxRecord // by record key
	by   map[string]*ctxRecord // by match value
}

type ctxRecord struct {
	key  string
	data []byte   // compact JSON object
	vals []string // the match values it is filed under
}

var (
	assetFields    = []string{"hostname", "fqdn", "name", "ip", "ips", "mac"}
	identityFields = []string{"name", "username", "user", "email", "upn", "uid", "sid", "id"}
)

// NewAssets and NewIdentities return empty tables.
func NewAssets() *Table     { return newTable("asset", assetFields) }
func NewIdentities() *Table { return newTable("identity", identityFields) }

func newTable(kind string, fields []string) *Table {
	return &Table{kind: kind, fields: fields, recs: map[string]*ctxRecord{}, by: map[string]*ctxRecord{}}
}

// Len counts the records held.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.recs)
}

// Apply applies one record of the table's topic.
func (t *Table) Apply(key, value []byte) error {
	k := string(key)
	if value == nil {
		t.mu.Lock()
		t.drop(k)
		t.mu.Unlock()
		return nil
	}
	var obj map[string]any
	if err := json.Unmarshal(value, &obj); err != nil {
		return fmt.Errorf("%s record %q: %w", t.kind, key, err)
	}
	var vals []string
	add := func(v string) {
		if v = strings.ToLower(strings.TrimSpace(v)); v != "" {
			vals = append(vals, v)
		}
	}
	for _, f := range t.fields {
		switch x := obj[f].(type) {
		case string:
			add(x)
			if f == "fqdn" {
				if host, _, ok := strings.Cut(x, "."); ok {
					add(host)
				}
			}
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok {
					add(s)
				}
			}
		case float64:
			add(fmt.Sprint(x))
		}
	}
	if len(vals) == 0 {
		return fmt.Errorf("%s record %q names none of %s", t.kind, key, strings.Join(t.fields, ", "))
	}
	var data bytes.Buffer
	if err := json.Compact(&data, value); err != nil {
		return err
	}
	r := &ctxRecord{key: k, data: data.Bytes(), vals: vals}
	t.mu.Lock()
	t.drop(k)
	t.recs[k] = r
	for _, v := range vals {
		t.by[v] = r
	}
	t.mu.Unlock()
	return nil
}

func (t *Table) drop(k string) {
	old := t.recs[k]
	if old == nil {
		return
	}
	delete(t.recs, k)
	for _, v := range old.vals {
		if t.by[v] == old {
			delete(t.by, v)
		}
	}
}

// find returns the record filed under a lower-case value; the caller
// holds the read lock.
func (t *Table) find(v string) *ctxRecord {
	if t == nil || len(t.by) == 0 {
		return nil
	}
	return t.by[v]
}
