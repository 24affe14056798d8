package berth

import "context"

// The package-level calls: the Client's, through DefaultClient
// ($BERTH_ADDR, else 127.0.0.1:62893).

// Acquire is Client.Acquire through DefaultClient.
func Acquire(ctx context.Context, name string, opts ...Option) (*Lease, error) {
	c, err := DefaultClient()
	if err != nil {
		return nil, err
	}
	return c.Acquire(ctx, name, opts...)
}

// Lookup is Client.Lookup through DefaultClient.
func Lookup(ctx context.Context, name string, opts ...Option) (*Lease, error) {
	c, err := DefaultClient()
	if err != nil {
		return nil, err
	}
	return c.Lookup(ctx, name, opts...)
}

// LookupCluster is Client.LookupCluster through DefaultClient.
func LookupCluster(ctx context.Context, name string, opts ...Option) ([]Lease, error) {
	c, err := DefaultClient()
	if err != nil {
		return nil, err
	}
	return c.LookupCluster(ctx, name, opts...)
}

// List is Client.List through DefaultClient.
func List(ctx context.Context, opts ...Option) (*Snapshot, error) {
	c, err := DefaultClient()
	if err != nil {
		return nil, err
	}
	return c.List(ctx, opts...)
}

// Watch is Client.Watch through DefaultClient.
func Watch(ctx context.Context, opts ...Option) <-chan Change {
	c, err := DefaultClient()
	if err != nil {
		ch := make(chan Change, 1)
		ch <- Change{Err: err}
		close(ch)
		return ch
	}
	return c.Watch(ctx, opts...)
}

// Renew is Client.Renew through DefaultClient.
func Renew(ctx context.Context, name, token string, opts ...Option) (*Lease, error) {
	c, err := DefaultClient()
	if err != nil {
		return nil, err
	}
	return c.Renew(ctx, name, token, opts...)
}

// Release is Client.Release through DefaultClient.
func Release(ctx context.Context, name, token string) error {
	c, err := DefaultClient()
	if err != nil {
		return err
	}
	return c.Release(ctx, name, token)
}

// Revoke is Client.Revoke through DefaultClient.
func Revoke(ctx context.Context, name string) error {
	c, err := DefaultClient()
	if err != nil {
		return err
	}
	return c.Revoke(ctx, name)
}
