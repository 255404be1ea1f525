package sigma

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sigma.yml")
	src := `mapping:
  aliases:
    Image: [process.file.path]
  strip_prefixes: ["unmapped."]
placeholders:
  admins: [alice, bob]
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	// An OCSF-shaped event reaches the Sigma field Image through the alias.
	runCases(t, []modCase{
		{"alias", "sel:\n  Image|endswith: '\\cmd.exe'\n  User|expand: '%admins%'\ncondition: sel",
			[]string{`{"process":{"file":{"path":"C:\\x\\cmd.exe"}},"unmapped":{"User":"bob"}}`},
			[]string{`{"process":{"file":{"path":"C:\\x\\cmd.exe"}},"unmapped":{"User":"eve"}}`}},
	}, cfg)
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yml")); err == nil {
		t.Error("missing config loaded")
	}
}
