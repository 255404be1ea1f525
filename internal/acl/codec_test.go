package acl

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEncodeGolden pins the stored form: changing it breaks every store.
func TestEncodeGolden(t *testing.T) {
	b := parse(t, "DENY User:alice IDEMPOTENT_WRITE TRANSACTIONAL_ID:PREFIXED:tx- 10.0.0.1")
	got, err := Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"resourceType":"TRANSACTIONAL_ID","resourceName":"tx-","patternType":"PREFIXED","principal":"User:alice","host":"10.0.0.1","operation":"IDEMPOTENT_WRITE","permission":"DENY"}`
	if string(got) != want {
		t.Fatalf("Encode =\n%s\nwant\n%s", got, want)
	}
	const key = `TRANSACTIONAL_ID/PREFIXED/"tx-"/"User:alice"/"10.0.0.1"/IDEMPOTENT_WRITE/DENY`
	if k := b.Key(); k != key {
		t.Fatalf("Key = %s, want %s", k, key)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	for rt := kmsg.ACLResourceTypeTopic; rt <= kmsg.ACLResourceTypeUser; rt++ {
		for _, pt := range []kmsg.ACLResourcePatternType{kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed} {
			for op := kmsg.ACLOperationAll; op <= kmsg.ACLOperationDescribeTokens; op++ {
				for _, perm := range []kmsg.ACLPermissionType{kmsg.ACLPermissionTypeAllow, kmsg.ACLPermissionTypeDeny} {
					b := Binding{ResourceType: rt, ResourceName: `a "name"/with\slashes ✓`, PatternType: pt,
						Principal: "User:CN=x,O=y:z", Host: "::1", Operation: op, Permission: perm}
					if rt == kmsg.ACLResourceTypeCluster {
						b.ResourceName = ClusterName
					}
					data, err := Encode(b)
					if err != nil {
						t.Fatal(err)
					}
					got, err := Decode(data)
					if err != nil {
						t.Fatalf("Decode(%s): %v", data, err)
					}
					if got != b {
						t.Fatalf("round trip: %s, want %s", got, b)
					}
				}
			}
		}
	}
}

func TestEncodeDecodeRefuseInvalid(t *testing.T) {
	if _, err := Encode(Binding{}); err == nil {
		t.Fatal("Encode accepted an invalid binding")
	}
	for _, data := range []string{
		`not json`,
		`{"resourceType":"SOMETHING","resourceName":"a","patternType":"LITERAL","principal":"User:a","host":"*","operation":"READ","permission":"ALLOW"}`,
		`{"resourceType":"TOPIC","resourceName":"a","patternType":"MATCH","principal":"User:a","host":"*","operation":"READ","permission":"ALLOW"}`,
		`{"resourceType":"TOPIC","resourceName":"","patternType":"LITERAL","principal":"User:a","host":"*","operation":"READ","permission":"ALLOW"}`,
		`{"resourceType":"TOPIC","resourceName":"a","patternType":"LITERAL","principal":"User:a","host":"*","operation":"READ"}`,
	} {
		if b, err := Decode([]byte(data)); err == nil {
			t.Errorf("Decode(%s) = %s, want an error", data, b)
		}
	}
}

// TestKeyUnique: keys are equal exactly when bindings are, whatever bytes
// the names hold.
func TestKeyUnique(t *testing.T) {
	base := parse(t, "ALLOW User:alice READ TOPIC:LITERAL:orders")
	variants := []Binding{base}
	for _, change := range []func(*Binding){
		func(b *Binding) { b.ResourceType = kmsg.ACLResourceTypeGroup },
		func(b *Binding) { b.PatternType = kmsg.ACLResourcePatternTypePrefixed },
		func(b *Binding) { b.ResourceName = "orders2" },
		func(b *Binding) { b.Principal = "User:bob" },
		func(b *Binding) { b.Host = "10.0.0.1" },
		func(b *Binding) { b.Operation = kmsg.ACLOperationWrite },
		func(b *Binding) { b.Permission = kmsg.ACLPermissionTypeDeny },
		func(b *Binding) { b.Operation = 0 },  // unknown values stay distinct
		func(b *Binding) { b.Operation = 99 }, //
		// Separators and quotes inside names cannot forge another key.
		func(b *Binding) { b.ResourceName = `orders"/"User:alice` },
		func(b *Binding) { b.ResourceName, b.Principal = `orders"/"User:alice"/"*`, `x` },
		func(b *Binding) { b.ResourceName, b.Principal = `orders`, `User:alice"/"*` },
		func(b *Binding) { b.ResourceName = "orders\x00" },
		func(b *Binding) { b.ResourceName = "orders\xff" },
	} {
		b := base
		change(&b)
		variants = append(variants, b)
	}
	seen := map[string]Binding{}
	for _, b := range variants {
		k := b.Key()
		if other, ok := seen[k]; ok {
			t.Fatalf("%s and %s share key %s", b, other, k)
		}
		seen[k] = b
	}
	same := base
	if same.Key() != base.Key() {
		t.Fatal("equal bindings, different keys")
	}
}
