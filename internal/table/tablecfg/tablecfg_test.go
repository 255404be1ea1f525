package tablecfg

import (
	"slices"
	"testing"
)

func TestParseColumns(t *testing.T) {
	got, err := ParseColumns(" src_endpoint.ip, actor.user.name ,,")
	if err != nil || !slices.Equal(got, []string{"src_endpoint.ip", "actor.user.name"}) {
		t.Errorf("ParseColumns = %q, %v", got, err)
	}
	for _, bad := range []string{"a..b", ".a", "a.", "a b", "a-b", "a.b[0]"} {
		if _, err := ParseColumns(bad); err == nil {
			t.Errorf("ParseColumns(%q) accepted", bad)
		}
	}
	if !On(map[string]string{Enabled: " true"}) || On(map[string]string{Enabled: "no"}) || On(nil) {
		t.Error("On misreads vigil.table.enabled")
	}
	if ValidateFormat("iceberg") != nil || ValidateFormat("delta") == nil {
		t.Error("ValidateFormat accepts what it should refuse or the reverse")
	}
}
