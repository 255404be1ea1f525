package acl

import "context"

// Store is where bindings are kept: the broker's metadata store.
type Store interface {
	// ACLs returns every stored binding.
	ACLs(ctx context.Context) ([]Binding, error)
	// CreateACLs stores bindings, all or none. Creating a binding that is
	// already stored (every field equal) succeeds and keeps one copy.
	CreateACLs(ctx context.Context, bindings []Binding) error
	// DeleteACLs deletes, all at once, every binding any filter matches,
	// and returns for each filter the bindings it matched: a binding two
	// filters match is listed for both, as Kafka's controller lists it.
	DeleteACLs(ctx context.Context, filters []Filter) ([][]Binding, error)
}
