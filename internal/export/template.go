package export

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Template names an index, a sourcetype or a source from a document:
// literal text with placeholders in braces, "vigil-{class}-{yyyy.MM.dd}".
//
//	{class}      the OCSF class (Doc.Class: "authentication", "detection_finding")
//	{class_uid}  the OCSF class_uid ("3002"; "unknown" without one)
//	{topic}      the record's topic
//	{yyyy.MM.dd} any other brace is a date pattern of the event's time in
//	             UTC, with yyyy, yy, MM, dd and HH as in Elasticsearch's
//	             date math (Joda), and any of . - _ / : between them
type Template struct {
	src   string
	parts []tplPart
}

type tplPart struct {
	lit    string
	kind   int    // tplLit, tplClass, tplClassUID, tplTopic, tplDate
	layout string // Go time layout of a date
}

const (
	tplLit = iota
	tplClass
	tplClassUID
	tplTopic
	tplDate
)

// ParseTemplate compiles a template; an unknown placeholder is an error.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{src: s}
	rest := s
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			t.parts = append(t.parts, tplPart{lit: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tplPart{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("template %q: unclosed {", s)
		}
		name := rest[i+1 : i+j]
		rest = rest[i+j+1:]
		switch name {
		case "class":
			t.parts = append(t.parts, tplPart{kind: tplClass})
		case "class_uid":
			t.parts = append(t.parts, tplPart{kind: tplClassUID})
		case "topic":
			t.parts = append(t.parts, tplPart{kind: tplTopic})
		default:
			layout, err := dateLayout(name)
			if err != nil {
				return nil, fmt.Errorf("template %q: {%s}: %w (want class, class_uid, topic or a date such as yyyy.MM.dd)", s, name, err)
			}
			t.parts = append(t.parts, tplPart{kind: tplDate, layout: layout})
		}
	}
	return t, nil
}

// dateLayout turns a Joda-style date pattern into a Go layout.
func dateLayout(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("empty placeholder")
	}
	var b strings.Builder
	for p != "" {
		switch {
		case strings.HasPrefix(p, "yyyy"):
			b.WriteString("2006")
			p = p[4:]
		case strings.HasPrefix(p, "yy"):
			b.WriteString("06")
			p = p[2:]
		case strings.HasPrefix(p, "MM"):
			b.WriteString("01")
			p = p[2:]
		case strings.HasPrefix(p, "dd"):
			b.WriteString("02")
			p = p[2:]
		case strings.HasPrefix(p, "HH"):
			b.WriteString("15")
			p = p[2:]
		case strings.ContainsRune(".-_/:", rune(p[0])):
			b.WriteByte(p[0])
			p = p[1:]
		default:
			return "", fmt.Errorf("unknown date field at %q", p)
		}
	}
	return b.String(), nil
}

// String is the template's source.
func (t *Template) String() string { return t.src }

// Append renders the template for d onto b.
func (t *Template) Append(b []byte, d *Doc) []byte {
	for _, p := range t.parts {
		switch p.kind {
		case tplLit:
			b = append(b, p.lit...)
		case tplClass:
			b = append(b, d.Class()...)
		case tplClassUID:
			if d.ClassUID < 0 {
				b = append(b, "unknown"...)
			} else {
				b = strconv.AppendInt(b, int64(d.ClassUID), 10)
			}
		case tplTopic:
			b = append(b, d.Record.Topic...)
		case tplDate:
			b = d.Time.UTC().AppendFormat(b, p.layout)
		}
	}
	return b
}

// Render is Append to a new string.
func (t *Template) Render(d *Doc) string { return string(t.Append(nil, d)) }

// AppendJSONString appends s as a JSON string.
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
