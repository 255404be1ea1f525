package acl

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Encode returns b's stored form: a JSON object whose fields are named as
// Binding's tags and whose enums are Kafka's names, e.g.
//
//	{"resourceType":"TOPIC","resourceName":"orders","patternType":"LITERAL",
//	 "principal":"User:alice","host":"*","operation":"READ","permission":"ALLOW"}
func Encode(b Binding) ([]byte, error) {
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("acl: encode %s: %w", b, err)
	}
	return json.Marshal(b)
}

// Decode reads a binding Encode wrote, and validates it.
func Decode(data []byte) (Binding, error) {
	var b Binding
	if err := json.Unmarshal(data, &b); err != nil {
		return Binding{}, fmt.Errorf("acl: decode: %w", err)
	}
	if err := b.Validate(); err != nil {
		return Binding{}, fmt.Errorf("acl: decode %s: %w", b, err)
	}
	return b, nil
}

// Key returns a string unique to b (equal bindings, equal keys), so a store
// keeps one key per binding. Keys of one resource pattern share a prefix:
//
//	TOPIC/LITERAL/"orders"/"User:alice"/"*"/READ/ALLOW
//
// Names are Go-quoted, so any byte in them keeps keys unambiguous.
func (b Binding) Key() string {
	var sb strings.Builder
	sb.WriteString(enumName(b.ResourceType.String(), int8(b.ResourceType)))
	sb.WriteByte('/')
	sb.WriteString(enumName(b.PatternType.String(), int8(b.PatternType)))
	sb.WriteByte('/')
	sb.WriteString(strconv.Quote(b.ResourceName))
	sb.WriteByte('/')
	sb.WriteString(strconv.Quote(b.Principal))
	sb.WriteByte('/')
	sb.WriteString(strconv.Quote(b.Host))
	sb.WriteByte('/')
	sb.WriteString(enumName(b.Operation.String(), int8(b.Operation)))
	sb.WriteByte('/')
	sb.WriteString(enumName(b.Permission.String(), int8(b.Permission)))
	return sb.String()
}

// enumName is an enum's Kafka name, or UNKNOWN(code) for a value kmsg does
// not name, so that keys of distinct bindings differ even then.
func enumName(name string, code int8) string {
	if name == "UNKNOWN" {
		return "UNKNOWN(" + strconv.Itoa(int(code)) + ")"
	}
	return name
}
