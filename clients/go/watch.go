package berth

import (
	"context"
	"fmt"
	"time"
)

// A Change is one step of a Watch: the list at a new index, or the error
// that ended the watch.
type Change struct {
	Snapshot
	Err error
}

const defaultWatchWait = 60 * time.Second

// Watch sends the list of leases on the channel it returns: first as it
// is now, then again each time it changes. It waits on berthd (blocking
// queries of up to Wait(d) each, 60 s by default), it does not poll.
// Options: Index(i) starts after index i instead of with the list now
// (nothing is sent until the index moves past i); Cluster() watches the
// cluster's view. The channel is closed when ctx is done, or after a
// Change whose Err says why the watch ended (berthd unreachable, an
// error answer). Changes are not queued: a reader that falls behind gets
// the latest list when it reads again.
func (c *Client) Watch(ctx context.Context, opts ...Option) <-chan Change {
	ch := make(chan Change)
	s, err := collect("Watch", watchOpts, opts)
	go func() {
		defer close(ch)
		if err != nil {
			send(ctx, ch, Change{Err: err})
			return
		}
		c.watch(ctx, s, ch)
	}()
	return ch
}

func (c *Client) watch(ctx context.Context, s *settings, ch chan<- Change) {
	wait := defaultWatchWait
	if s.wait != nil {
		wait = clampWait(*s.wait)
	}
	if wait < time.Second {
		wait = time.Second
	}
	var last uint64
	if s.index != nil {
		last = *s.index
	} else {
		snap, err := c.list(ctx, s.cluster, "", 0)
		if err != nil {
			send(ctx, ch, Change{Err: err})
			return
		}
		last = snap.Index
		if !send(ctx, ch, Change{Snapshot: *snap}) {
			return
		}
	}
	for {
		q := fmt.Sprintf("?index=%d&wait=%d", last, seconds(wait))
		snap, err := c.list(ctx, s.cluster, q, wait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			send(ctx, ch, Change{Err: err})
			return
		}
		if snap.Index == last {
			continue // the wait ran out without a change
		}
		last = snap.Index
		if !send(ctx, ch, Change{Snapshot: *snap}) {
			return
		}
	}
}

// send sends c unless ctx ends first; whether it was sent.
func send(ctx context.Context, ch chan<- Change, c Change) bool {
	select {
	case ch <- c:
		return true
	case <-ctx.Done():
		return false
	}
}
