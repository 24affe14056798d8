package berth

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// releaseBound is how long a signal waits for the releases: berthd may be
// gone too, and the process must still end.
const releaseBound = 3 * time.Second

// The held leases that SIGINT and SIGTERM release. While there is one,
// the signals are caught (signal.Notify); when the last is released, they
// are given back (signal.Stop), so a program without leases keeps Go's
// default of dying at once.
var caught struct {
	sync.Mutex
	holds map[*hold]bool
	ch    chan os.Signal
}

func catchSignals(l *Lease) {
	caught.Lock()
	defer caught.Unlock()
	if caught.holds == nil {
		caught.holds = map[*hold]bool{}
	}
	caught.holds[l.hold] = true
	if caught.ch == nil {
		// A signal the process ignores (SIGINT, for a program a script
		// started with &) is left ignored: Notify would turn it on, and
		// it would then release the lease of a program that goes on.
		var sigs []os.Signal
		for _, s := range []os.Signal{syscall.SIGINT, syscall.SIGTERM} {
			if !signal.Ignored(s) {
				sigs = append(sigs, s)
			}
		}
		if len(sigs) == 0 {
			return
		}
		caught.ch = make(chan os.Signal, 1)
		signal.Notify(caught.ch, sigs...)
		go onSignal(caught.ch)
	}
}

func uncatchSignals(h *hold) {
	if !h.signals {
		return
	}
	caught.Lock()
	defer caught.Unlock()
	delete(caught.holds, h)
	if len(caught.holds) == 0 && caught.ch != nil {
		signal.Stop(caught.ch)
		close(caught.ch)
		caught.ch = nil
	}
}

// onSignal releases every held lease on SIGINT or SIGTERM, then ends the
// process by the same signal: with no other handler for it, its default
// action applies, as if it had never been caught (a shell sees 130 or
// 143, systemd a clean stop on SIGTERM).
func onSignal(ch chan os.Signal) {
	sig, ok := <-ch
	if !ok {
		return
	}
	caught.Lock()
	holds := make([]*hold, 0, len(caught.holds))
	for h := range caught.holds {
		holds = append(holds, h)
	}
	caught.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), releaseBound)
	defer cancel()
	var wg sync.WaitGroup
	for _, h := range holds {
		wg.Add(1)
		go func(h *hold) {
			defer wg.Done()
			_ = h.release(ctx)
		}(h)
	}
	wg.Wait()
	// Every release dropped its hold, so the signals are given back by
	// now; if one did not finish in time, give them back here.
	caught.Lock()
	if caught.ch == ch {
		signal.Stop(ch)
		caught.ch = nil
		caught.holds = nil
	}
	caught.Unlock()
	if s, ok := sig.(syscall.Signal); ok {
		_ = syscall.Kill(os.Getpid(), s)
	}
}
