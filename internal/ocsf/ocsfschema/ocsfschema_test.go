package ocsfschema

import (
	"testing"

	"github.com/vigilhq/vigil/internal/ocsf"
)

// Types and requirements checked by hand against the OCSF 1.1.0 schema
// (schema.ocsf.io/1.1.0).
func TestKnownAttributes(t *testing.T) {
	s := Load()
	for _, c := range []struct {
		path, typ, base string
		array           bool
	}{
		{"time", "timestamp_t", "timestamp_t", false},
		{"type_uid", "long_t", "long_t", false},
		{"class_uid", "integer_t", "integer_t", false},
		{"src_endpoint.ip", "ip_t", "string_t", false},
		{"src_endpoint.port", "port_t", "integer_t", false},
		{"dst_endpoint.hostname", "hostname_t", "string_t", false},
		{"traffic.bytes_in", "long_t", "long_t", false},
		{"process.pid", "integer_t", "integer_t", false},
		{"process.parent_process.file.path", "string_t", "string_t", false},
		{"actor.user.name", "string_t", "string_t", false},
		{"is_remote", "boolean_t", "boolean_t", false},
		{"http_request.url.port", "port_t", "integer_t", false},
		{"http_response.code", "integer_t", "integer_t", false},
		{"metadata.profiles", "string_t", "string_t", true},
		{"src_endpoint.location.coordinates", "float_t", "float_t", true},
		{"answers", "dns_answer", "", true},
		{"unmapped", "object", "json_t", false},
		{"api.request.data", "json_t", "json_t", false},
		{"user", "user", "", false},
	} {
		a, ok := s.Path(c.path)
		if !ok || a.Type != c.typ || a.Base() != c.base || a.Array != c.array {
			t.Errorf("Path(%s) = %+v, %v (base %q); want type %s, base %s, array %v", c.path, a, ok, a.Base(), c.typ, c.base, c.array)
		}
	}
	for _, bad := range []string{"nosuch", "src_endpoint.nosuch", "answers.rdata", "time.x", "metadata.product.name.x"} {
		if a, ok := s.Path(bad); ok {
			t.Errorf("Path(%s) = %+v, want none", bad, a)
		}
	}

	auth, ok := s.Class(ocsf.Authentication.UID)
	if !ok {
		t.Fatal("no Authentication")
	}
	req := map[string]Requirement{}
	for _, a := range auth {
		req[a.Name] = a.Requirement
	}
	// user is the class's own (required); metadata and time come from
	// base_event; is_remote is recommended.
	if req["user"] != Required || req["metadata"] != Required || req["time"] != Required || req["is_remote"] != Recommended || req["auth_protocol"] != Optional {
		t.Errorf("Authentication requirements: %v", req)
	}
	if _, ok := req["process"]; ok {
		t.Error("Authentication has Process Activity's process")
	}
	// Network Activity inherits network's endpoints and traffic.
	na, _ := s.Class(ocsf.NetworkActivity.UID)
	names := map[string]bool{}
	for _, a := range na {
		names[a.Name] = true
	}
	for _, n := range []string{"src_endpoint", "dst_endpoint", "traffic", "connection_info", "metadata", "time"} {
		if !names[n] {
			t.Errorf("Network Activity lacks %s", n)
		}
	}
}

// Every class Vigil produces is in the data, and every object a class
// attribute names (which becomes a struct column) is defined.
func TestClassesComplete(t *testing.T) {
	s := Load()
	for _, c := range append(ocsf.Classes(), ocsf.DetectionFinding) {
		attrs, ok := s.Class(c.UID)
		if !ok {
			t.Errorf("class %d %s missing", c.UID, c.Name)
			continue
		}
		for _, a := range attrs {
			if a.Base() == "" && !a.Array {
				if _, ok := s.Object(a.Type); !ok {
					t.Errorf("class %s: %s's object %s is not defined", c.Name, a.Name, a.Type)
				}
			}
		}
	}
	if _, ok := s.Class(-1); ok {
		t.Error("the network category parent is listed as a class")
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{
		"o user name:R",                  // not in the dictionary
		"a name string_t\no user name:X", // bad requirement
		"c 1 x nosuch",                   // unknown parent
		"z what",
	} {
		if _, err := parse(bad); err == nil {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
}
