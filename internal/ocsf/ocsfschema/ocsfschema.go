// Package ocsfschema is the part of the OCSF 1.1.0 schema Vigil's
// lakehouse tables type their columns with: the attribute dictionary
// (one type per attribute name, in every class and object), the
// attributes of the classes Vigil produces with what they inherit, and
// the objects those reference. The data is ocsf-1.1.0.txt, reference data
// written for Vigil from the OCSF schema (schema.ocsf.io/1.1.0,
// github.com/ocsf/ocsf-schema), without captions, descriptions or enums.
package ocsfschema

import (
	"bufio"
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Version is the OCSF version of the data (internal/ocsf's SchemaVersion).
const Version = "1.1.0"

//go:embed ocsf-1.1.0.txt
var data string

// Requirement is how strongly OCSF asks for an attribute.
type Requirement uint8

const (
	Optional Requirement = iota
	Recommended
	Required
)

// Attr is an attribute of a class or object.
type Attr struct {
	Name string
	// Type is an OCSF scalar type (string_t, ip_t, integer_t, ...) or an
	// object's name; "object" is OCSF's untyped object (unmapped).
	Type        string
	Array       bool
	Requirement Requirement
}

// Base is the scalar type an attribute's type is a subtype of
// (string_t for ip_t, integer_t for port_t; json_t for OCSF's untyped
// object), or "" for an object type.
func (a Attr) Base() string { return base(a.Type) }

func base(t string) string {
	switch t {
	case "integer_t", "port_t":
		return "integer_t"
	case "long_t", "float_t", "boolean_t", "timestamp_t", "json_t":
		return t
	case "object":
		return "json_t"
	}
	if strings.HasSuffix(t, "_t") {
		// string_t and its subtypes: bytestring_t, datetime_t, email_t,
		// file_hash_t, file_name_t, hostname_t, ip_t, mac_t, subnet_t,
		// url_t, username_t, uuid_t ...
		return "string_t"
	}
	return ""
}

// Schema is the parsed data.
type Schema struct {
	dict    map[string]Attr
	objects map[string][]Attr
	classes map[int][]Attr
}

// Load returns the schema; the data is parsed once per process.
var Load = sync.OnceValue(func() *Schema {
	s, err := parse(data)
	if err != nil {
		panic(fmt.Sprintf("ocsfschema: embedded data: %v", err)) // caught by the package's tests
	}
	return s
})

func parse(text string) (*Schema, error) {
	s := &Schema{dict: map[string]Attr{}, objects: map[string][]Attr{}, classes: map[int][]Attr{}}
	byName := map[string][]Attr{} // class name -> its attributes, inherited included
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<16)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch {
		case f[0] == "a" && len(f) == 3:
			t, arr := strings.CutSuffix(f[2], "[]")
			s.dict[f[1]] = Attr{Name: f[1], Type: t, Array: arr}
		case f[0] == "o" && len(f) >= 2:
			attrs, err := s.attrs(f[2:])
			if err != nil {
				return nil, fmt.Errorf("line %d: object %s: %w", n, f[1], err)
			}
			s.objects[f[1]] = attrs
		case f[0] == "c" && len(f) >= 4:
			uid, err := strconv.Atoi(f[1])
			if err != nil {
				return nil, fmt.Errorf("line %d: class uid %q", n, f[1])
			}
			var attrs []Attr
			if f[3] != "-" {
				parent, ok := byName[f[3]]
				if !ok {
					return nil, fmt.Errorf("line %d: class %s extends unknown %s", n, f[2], f[3])
				}
				attrs = slices.Clone(parent)
			}
			own, err := s.attrs(f[4:])
			if err != nil {
				return nil, fmt.Errorf("line %d: class %s: %w", n, f[2], err)
			}
			for _, a := range own { // a class refines what it inherits
				if i := slices.IndexFunc(attrs, func(b Attr) bool { return b.Name == a.Name }); i >= 0 {
					attrs[i] = a
				} else {
					attrs = append(attrs, a)
				}
			}
			slices.SortFunc(attrs, func(a, b Attr) int { return strings.Compare(a.Name, b.Name) })
			byName[f[2]] = attrs
			if uid >= 0 { // -1: a category parent, not a class of its own
				s.classes[uid] = attrs
			}
		default:
			return nil, fmt.Errorf("line %d: cannot read %q", n, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// attrs reads NAME:REQ fields, typing each from the dictionary.
func (s *Schema) attrs(fields []string) ([]Attr, error) {
	out := make([]Attr, 0, len(fields))
	for _, f := range fields {
		name, req, ok := strings.Cut(f, ":")
		a, known := s.dict[name]
		if !ok || !known {
			return nil, fmt.Errorf("attribute %q is not in the dictionary", f)
		}
		switch req {
		case "r":
			a.Requirement = Required
		case "R":
			a.Requirement = Recommended
		case "o":
			a.Requirement = Optional
		default:
			return nil, fmt.Errorf("attribute %q: requirement %q", name, req)
		}
		out = append(out, a)
	}
	return out, nil
}

// Class returns the attributes of the class with uid, those it inherits
// from base_event and its category included, sorted by name.
func (s *Schema) Class(uid int) ([]Attr, bool) {
	a, ok := s.classes[uid]
	return a, ok
}

// Classes lists the uids of the classes the data has, ascending.
func (s *Schema) Classes() []int {
	out := make([]int, 0, len(s.classes))
	for uid := range s.classes {
		out = append(out, uid)
	}
	slices.Sort(out)
	return out
}

// Object returns the attributes of an object type, if the data defines it
// (objects Vigil's tables keep only as JSON are not).
func (s *Schema) Object(name string) ([]Attr, bool) {
	a, ok := s.objects[name]
	return a, ok
}

// Attribute returns the dictionary's entry for an attribute name.
func (s *Schema) Attribute(name string) (Attr, bool) {
	a, ok := s.dict[name]
	return a, ok
}

// Path returns the attribute a dotted path from an event's top level
// names (src_endpoint.port): each part before the last must be a single
// object whose definition has the next part.
func (s *Schema) Path(path string) (Attr, bool) {
	parts := strings.Split(path, ".")
	a, ok := s.dict[parts[0]]
	for _, p := range parts[1:] {
		if !ok || a.Array {
			return Attr{}, false
		}
		attrs, def := s.objects[a.Type]
		if !def {
			return Attr{}, false
		}
		i := slices.IndexFunc(attrs, func(b Attr) bool { return b.Name == p })
		if i < 0 {
			return Attr{}, false
		}
		a, ok = attrs[i], true
	}
	return a, ok
}
