package ocsf

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ts := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	p := Product{Name: "test", Vendor: "Vigil"}
	ok := New(Authentication, AuthLogon, "Logon", ts, p)
	ok.Set("user.name", "alice")
	ok.Set("service.name", "sshd")
	if err := Validate(ok); err != nil {
		t.Fatalf("valid event: %v", err)
	}
	if ok["type_uid"] != 300201 || ok["category_uid"] != 3 {
		t.Errorf("type_uid %v category_uid %v", ok["type_uid"], ok["category_uid"])
	}
	for name, tc := range map[string]struct {
		mod  func(Event)
		want string
	}{
		"class attribute missing": {func(e Event) { delete(e, "user") }, "lacks required user"},
		"metadata.product":        {func(e Event) { delete(e["metadata"].(map[string]any), "product") }, "metadata.product"},
		"type_uid":                {func(e Event) { e["type_uid"] = 300202 }, "type_uid"},
		"category":                {func(e Event) { e["category_uid"] = 4 }, "category_uid"},
		"time":                    {func(e Event) { e["time"] = 0 }, "time"},
		"unknown class":           {func(e Event) { e["class_uid"] = 9999 }, "unknown class_uid"},
	} {
		e := New(Authentication, AuthLogon, "Logon", ts, p)
		e.Set("user.name", "alice")
		e.Set("service.name", "sshd")
		tc.mod(e)
		err := Validate(e)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to mention %q", name, err, tc.want)
		}
	}
	// A bare event of any class fails: each class requires something
	// beyond the base event.
	for _, c := range Classes() {
		if _, ok := classRequired[c.UID]; !ok {
			t.Errorf("%s: not in the required-attribute table", c.Name)
		}
		if err := Validate(New(c, ActivityOther, "", ts, p)); err == nil {
			t.Errorf("%s: bare event passes validation", c.Name)
		}
	}
	// Profiles and at-least-one groups.
	api := New(APIActivity, APIRead, "Read", ts, p)
	api.Set("actor.user.name", "a")
	api.Set("api.operation", "List")
	api.Set("src_endpoint.ip", "10.0.0.1")
	if err := Validate(api); err != nil {
		t.Errorf("API event: %v", err)
	}
	api.Set("metadata.profiles", []any{"cloud"})
	if err := Validate(api); err == nil || !strings.Contains(err.Error(), "profile cloud") {
		t.Errorf("cloud profile without cloud: %v", err)
	}
	http := New(HTTPActivity, 3, "Get", ts, p)
	http.Set("src_endpoint.ip", "10.0.0.1")
	if err := Validate(http); err == nil || !strings.Contains(err.Error(), "http_request, http_response") {
		t.Errorf("HTTP event without request or response: %v", err)
	}
}

func TestSetSkipsEmpty(t *testing.T) {
	e := Event{}
	e.Set("a.b", "")
	e.Set("a.c", nil)
	if _, ok := e["a"]; ok {
		t.Errorf("empty values created %v", e)
	}
	e.Set("a.b.c", 1)
	if v, _ := e.Get("a.b.c"); v != 1 {
		t.Errorf("Get: %v", v)
	}
}
