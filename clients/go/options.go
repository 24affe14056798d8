package berth

import (
	"fmt"
	"time"
)

// An Option tunes one call: which ones a call takes is said with the call
// (Acquire: Port, Proto, TTL, Pid, Meta, Publish, Host, Token, NoHold,
// NoSignals; Lookup: Wait, Ready; List: Cluster; Watch: Cluster, Index,
// Wait; Renew: TTL). A call given an option it does not take returns an
// error naming it rather than ignoring it.
type Option struct {
	kind  optKind
	apply func(*settings)
}

type optKind uint

const (
	optPort optKind = 1 << iota
	optProto
	optTTL
	optPid
	optMeta
	optPublish
	optHost
	optToken
	optNoHold
	optNoSignals
	optWait
	optReady
	optCluster
	optIndex
)

var optNames = map[optKind]string{
	optPort: "Port", optProto: "Proto", optTTL: "TTL", optPid: "Pid",
	optMeta: "Meta", optPublish: "Publish", optHost: "Host",
	optToken: "Token", optNoHold: "NoHold", optNoSignals: "NoSignals",
	optWait: "Wait", optReady: "Ready", optCluster: "Cluster",
	optIndex: "Index",
}

// What each call takes.
const (
	acquireOpts = optPort | optProto | optTTL | optPid | optMeta |
		optPublish | optHost | optToken | optNoHold | optNoSignals
	lookupOpts  = optWait | optReady
	clusterOpts = optWait
	listOpts    = optCluster
	watchOpts   = optCluster | optIndex | optWait
	renewOpts   = optTTL
)

// settings is what the options of one call set.
type settings struct {
	given     optKind
	port      int
	proto     string
	ttl       *time.Duration
	pid       *int
	meta      map[string]string
	publish   bool
	host      string
	token     string
	noHold    bool
	noSignals bool
	wait      *time.Duration
	ready     bool
	cluster   bool
	index     *uint64
}

func collect(call string, allowed optKind, opts []Option) (*settings, error) {
	s := &settings{}
	for _, o := range opts {
		if o.kind&allowed == 0 {
			return nil, fmt.Errorf("berth: %s does not take the %s option",
				call, optNames[o.kind])
		}
		s.given |= o.kind
		o.apply(s)
	}
	return s, nil
}

// Port asks for this exact port (else berthd picks one from its pool).
func Port(port int) Option {
	return Option{optPort, func(s *settings) { s.port = port }}
}

// Proto is what the port must be free for: "tcp" (the default), "udp" or
// "both".
func Proto(proto string) Option {
	return Option{optProto, func(s *settings) { s.proto = proto }}
}

// TTL makes the lease end unless renewed within d (whole seconds; 0: no
// expiry). A held lease is renewed every third of it. With Renew, the
// lease's new TTL.
func TTL(d time.Duration) Option {
	return Option{optTTL, func(s *settings) { s.ttl = &d }}
}

// Pid names the process that owns the lease: it ends when that process
// exits. Pid(0) leases by TTL alone. Without it, a held lease is owned by
// this process when berthd can see it (same PID namespace), as `berth run`
// does.
func Pid(pid int) Option {
	return Option{optPid, func(s *settings) { s.pid = &pid }}
}

// Meta is string data kept with the lease and shown to lookups.
func Meta(meta map[string]string) Option {
	return Option{optMeta, func(s *settings) { s.meta = meta }}
}

// Publish publishes the lease to the cluster (berthd --cluster).
func Publish() Option {
	return Option{optPublish, func(s *settings) { s.publish = true }}
}

// Host is the address clients should connect to (default 127.0.0.1).
func Host(host string) Option {
	return Option{optHost, func(s *settings) { s.host = host }}
}

// Token is an earlier lease's token: acquiring with it takes that lease
// back, with its port, even after it lapsed.
func Token(token string) Option {
	return Option{optToken, func(s *settings) { s.token = token }}
}

// NoHold makes Acquire return the lease as berthd answered it: not
// renewed in the background, not released on signals.
func NoHold() Option {
	return Option{optNoHold, func(s *settings) { s.noHold = true }}
}

// NoSignals holds the lease without catching SIGINT and SIGTERM: for a
// program that handles them itself (signal.NotifyContext) and releases
// the lease on its way out.
func NoSignals() Option {
	return Option{optNoSignals, func(s *settings) { s.noSignals = true }}
}

// Wait makes a lookup wait up to d (at most 300 s) for the name to be
// registered; for Watch, how long each blocking query may last.
func Wait(d time.Duration) Option {
	return Option{optWait, func(s *settings) { s.wait = &d }}
}

// Ready makes a lookup wait until something listens on the lease's port.
func Ready() Option {
	return Option{optReady, func(s *settings) { s.ready = true }}
}

// Cluster makes List and Watch ask the cluster's view (berthd --cluster).
func Cluster() Option {
	return Option{optCluster, func(s *settings) { s.cluster = true }}
}

// Index makes Watch start after this index instead of with the list as
// it is now.
func Index(i uint64) Option {
	return Option{optIndex, func(s *settings) { s.index = &i }}
}

// seconds is d in whole seconds, rounded up so that a wait is never
// shorter than asked. A negative d stays negative (-1s is -1, not 0,
// which would be a TTL that never expires), so that berthd refuses it.
func seconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return s
}
