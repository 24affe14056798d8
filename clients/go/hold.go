package berth

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// hold is what keeps a lease from Acquire: the renewing goroutine, and
// the state Release and the signal handler share. The goroutine never
// writes the Lease's fields, so a program may read them while it runs.
type hold struct {
	client  *Client
	name    string
	token   string
	ttl     int
	reclaim *settings // the acquire's options, with the lease's port
	pid     int
	signals bool

	ctx    context.Context // cancelled by Release: stops renewing
	cancel context.CancelFunc
	done   chan struct{} // the renewing goroutine has ended
	lost   chan struct{} // closed when the lease cannot be taken back

	mu       sync.Mutex
	released bool          // a release has begun
	gone     chan struct{} // closed when that release has ended
	isLost   bool
}

// hold acquires name and starts holding it (Acquire without NoHold).
func (c *Client) hold(ctx context.Context, name string, s *settings) (*Lease, error) {
	pid := s.pidOr(-1)
	if pid < 0 {
		pid = c.ownPid(ctx)
	}
	l, err := c.acquire(ctx, name, s, s.token, pid)
	if err != nil && Code(err) == "pid_not_visible" && s.pid == nil {
		pid = 0 // berthd cannot see this process: live by the TTL
		l, err = c.acquire(ctx, name, s, s.token, 0)
	}
	if err != nil {
		return nil, err
	}
	again := *s
	again.port = l.Port
	h := &hold{client: c, name: l.Name, token: l.Token, ttl: l.TTL,
		reclaim: &again, pid: pid, signals: !s.noSignals,
		done: make(chan struct{}), lost: make(chan struct{}),
		gone: make(chan struct{})}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	l.hold = h
	if h.signals {
		catchSignals(l)
	}
	if l.TTL > 0 {
		go h.renewLoop()
	} else {
		close(h.done)
	}
	return l, nil
}

// ownPid is this process's pid when berthd sees it as this process (the
// same PID namespace, the same boot), else 0; the pid when it cannot
// tell (an acquire that names a pid berthd cannot see is refused, and
// then made again without it).
func (c *Client) ownPid(ctx context.Context) int {
	pid := os.Getpid()
	if pid == 1 {
		return 0 // the init of a container: another namespace's pid 1
	}
	ns, err1 := os.Readlink("/proc/self/ns/pid")
	boot, err2 := os.ReadFile("/proc/sys/kernel/random/boot_id")
	st, err3 := c.Status(ctx)
	if err1 != nil || err2 != nil || err3 != nil {
		return pid
	}
	theirNs, _ := st["pid_namespace"].(string)
	theirBoot, _ := st["boot_id"].(string)
	if theirNs == "" || theirBoot == "" {
		return pid
	}
	if theirNs != ns || theirBoot != strings.TrimSpace(string(boot)) {
		return 0
	}
	return pid
}

func (h *hold) logf(format string, args ...any) {
	msg := "berth: " + fmt.Sprintf(format, args...)
	if h.client.Logger != nil {
		h.client.Logger.Print(msg)
	} else {
		fmt.Fprintln(os.Stderr, msg)
	}
}

// renewLoop renews the lease every third of its TTL until Release, and
// takes it back with its token when a renewal finds it lapsed.
func (h *hold) renewLoop() {
	defer close(h.done)
	t := time.NewTicker(time.Duration(h.ttl) * time.Second / 3)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		_, err := h.client.Renew(h.ctx, h.name, h.token)
		if err == nil {
			if failing {
				h.logf("renewed %s again", h.name)
			}
			failing = false
			continue
		}
		if h.ctx.Err() != nil {
			return
		}
		if Code(err) == "not_found" {
			_, err = h.client.acquire(h.ctx, h.name, h.reclaim, h.token, h.pid)
			if err == nil {
				h.logf("the lease on %s had lapsed; reclaimed it (port %d)",
					h.name, h.reclaim.port)
				failing = false
				continue
			}
			if h.ctx.Err() != nil {
				return
			}
		}
		if c := Code(err); c == "bad_token" || c == "name_taken" {
			h.logf("the lease on %s was revoked, released or taken; no longer "+
				"renewing it: %v", h.name, err)
			h.markLost()
			return
		}
		if !failing {
			h.logf("cannot renew %s, will retry: %v", h.name, err)
		}
		failing = true
	}
}

func (h *hold) markLost() {
	h.mu.Lock()
	if !h.isLost {
		h.isLost = true
		close(h.lost)
	}
	h.mu.Unlock()
	uncatchSignals(h)
}

// release stops renewing and releases the lease, once. A lease already
// gone (lapsed, revoked) is not an error here. A second call waits for
// the first to end (or ctx), so that a signal that comes while the
// program releases does not end the process before the release is made.
func (h *hold) release(ctx context.Context) error {
	h.mu.Lock()
	if h.released {
		h.mu.Unlock()
		select {
		case <-h.gone:
		case <-ctx.Done():
		}
		return nil
	}
	h.released = true
	h.mu.Unlock()
	defer close(h.gone)
	// The signals stay caught until the release is made: one that comes
	// meanwhile waits for it (above) instead of ending the process.
	defer uncatchSignals(h)
	h.cancel()
	<-h.done
	h.mu.Lock()
	lost := h.isLost
	h.mu.Unlock()
	if lost {
		return nil
	}
	err := h.client.Release(ctx, h.name, h.token)
	if c := Code(err); c == "not_found" || c == "bad_token" {
		return nil
	}
	return err
}

// Release gives the lease back: it stops renewing a held lease (once;
// later calls do nothing) and releases it with its token, so the port
// is free at once. A held lease already gone is not an error.
func (l *Lease) Release() error {
	c := l.client
	if c == nil {
		return fmt.Errorf("berth: the lease of %s came from no Client", l.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	if l.hold != nil {
		return l.hold.release(ctx)
	}
	if l.Token == "" {
		return fmt.Errorf("berth: the lease of %s has no token (only an "+
			"Acquire's has)", l.Name)
	}
	return c.Release(ctx, l.Name, l.Token)
}

// Lost is closed when a held lease ends for good while the program still
// holds it: revoked by an admin, or released or taken by another holder
// with its token. It is nil (never ready) for a lease that is not held.
func (l *Lease) Lost() <-chan struct{} {
	if l.hold == nil {
		return nil
	}
	return l.hold.lost
}
