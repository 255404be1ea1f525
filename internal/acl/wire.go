package acl

import (
	"context"
	"errors"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FromCreation converts one CreateAcls creation and validates it (v0
// requests carry no pattern type; kmsg decodes them as LITERAL, as Kafka
// does).
func FromCreation(c kmsg.CreateACLsRequestCreation) (Binding, error) {
	b := Binding{
		ResourceType: c.ResourceType,
		ResourceName: c.ResourceName,
		PatternType:  c.ResourcePatternType,
		Principal:    c.Principal,
		Host:         c.Host,
		Operation:    c.Operation,
		Permission:   c.PermissionType,
	}
	return b, b.Validate()
}

// FilterFromDescribe converts a DescribeAcls request's filter and validates
// it.
func FilterFromDescribe(r *kmsg.DescribeACLsRequest) (Filter, error) {
	f := Filter{
		ResourceType: r.ResourceType,
		ResourceName: r.ResourceName,
		PatternType:  r.ResourcePatternType,
		Principal:    r.Principal,
		Host:         r.Host,
		Operation:    r.Operation,
		Permission:   r.PermissionType,
	}
	return f, f.Validate()
}

// FilterFromDeletion converts one DeleteAcls filter and validates it.
func FilterFromDeletion(d kmsg.DeleteACLsRequestFilter) (Filter, error) {
	f := Filter{
		ResourceType: d.ResourceType,
		ResourceName: d.ResourceName,
		PatternType:  d.ResourcePatternType,
		Principal:    d.Principal,
		Host:         d.Host,
		Operation:    d.Operation,
		Permission:   d.PermissionType,
	}
	return f, f.Validate()
}

// ErrorCode gives the error code and message to answer err with: an
// *Error's or a *kerr.Error's own code, else UNKNOWN_SERVER_ERROR without a
// message (as Kafka answers an unexpected failure; log err instead).
func ErrorCode(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	var ae *Error
	if errors.As(err, &ae) {
		msg := ae.Message
		return ae.Err.Code, &msg
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code, nil
	}
	return kerr.UnknownServerError.Code, nil
}

// DescribeResources groups bindings by resource pattern, as Kafka's
// DescribeAcls response does; resources and their entries are sorted.
func DescribeResources(bs []Binding) []kmsg.DescribeACLsResponseResource {
	sorted := sortedCopy(bs)
	var out []kmsg.DescribeACLsResponseResource
	for i, b := range sorted {
		if i == 0 || !samePattern(b, sorted[i-1]) {
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType = b.ResourceType
			r.ResourceName = b.ResourceName
			r.ResourcePatternType = b.PatternType
			out = append(out, r)
		}
		a := kmsg.NewDescribeACLsResponseResourceACL()
		a.Principal = b.Principal
		a.Host = b.Host
		a.Operation = b.Operation
		a.PermissionType = b.Permission
		r := &out[len(out)-1]
		r.ACLs = append(r.ACLs, a)
	}
	return out
}

// DeleteMatches is the MatchingACLs of a DeleteAcls filter result, one per
// deleted binding, sorted.
func DeleteMatches(bs []Binding) []kmsg.DeleteACLsResponseResultMatchingACL {
	out := make([]kmsg.DeleteACLsResponseResultMatchingACL, 0, len(bs))
	for _, b := range sortedCopy(bs) {
		m := kmsg.NewDeleteACLsResponseResultMatchingACL()
		m.ResourceType = b.ResourceType
		m.ResourceName = b.ResourceName
		m.ResourcePatternType = b.PatternType
		m.Principal = b.Principal
		m.Host = b.Host
		m.Operation = b.Operation
		m.PermissionType = b.Permission
		out = append(out, m)
	}
	return out
}

// Create answers a CreateAcls request's creations, in order: each invalid
// one with its error, and the valid ones stored by one s.CreateACLs call
// (all succeed, or all get its error).
func Create(ctx context.Context, s Store, cs []kmsg.CreateACLsRequestCreation) []kmsg.CreateACLsResponseResult {
	results := make([]kmsg.CreateACLsResponseResult, len(cs))
	var valid []Binding
	var at []int
	for i, c := range cs {
		results[i] = kmsg.NewCreateACLsResponseResult()
		b, err := FromCreation(c)
		if err != nil {
			results[i].ErrorCode, results[i].ErrorMessage = ErrorCode(err)
			continue
		}
		valid = append(valid, b)
		at = append(at, i)
	}
	if len(valid) == 0 {
		return results
	}
	if err := s.CreateACLs(ctx, valid); err != nil {
		code, msg := ErrorCode(err)
		for _, i := range at {
			results[i].ErrorCode, results[i].ErrorMessage = code, msg
		}
	}
	return results
}

// Delete answers a DeleteAcls request's filters, in order: each invalid one
// with its error, and the valid ones applied by one s.DeleteACLs call.
func Delete(ctx context.Context, s Store, fs []kmsg.DeleteACLsRequestFilter) []kmsg.DeleteACLsResponseResult {
	results := make([]kmsg.DeleteACLsResponseResult, len(fs))
	var valid []Filter
	var at []int
	for i, d := range fs {
		results[i] = kmsg.NewDeleteACLsResponseResult()
		f, err := FilterFromDeletion(d)
		if err != nil {
			results[i].ErrorCode, results[i].ErrorMessage = ErrorCode(err)
			continue
		}
		valid = append(valid, f)
		at = append(at, i)
	}
	if len(valid) == 0 {
		return results
	}
	deleted, err := s.DeleteACLs(ctx, valid)
	if err == nil && len(deleted) != len(valid) {
		err = errors.New("acl: store answered a different number of filters")
	}
	for j, i := range at {
		if err != nil {
			results[i].ErrorCode, results[i].ErrorMessage = ErrorCode(err)
			continue
		}
		results[i].MatchingACLs = DeleteMatches(deleted[j])
	}
	return results
}

func samePattern(a, b Binding) bool {
	return a.ResourceType == b.ResourceType && a.ResourceName == b.ResourceName && a.PatternType == b.PatternType
}

func sortedCopy(bs []Binding) []Binding {
	out := make([]Binding, len(bs))
	copy(out, bs)
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}
