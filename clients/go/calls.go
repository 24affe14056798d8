package berth

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

const maxWait = 300 * time.Second // berthd holds a blocking query at most this

// Acquire leases a port under name. Options: Port, Proto, TTL, Pid, Meta,
// Publish, Host, Token, NoHold, NoSignals; ctx bounds the request only.
//
// The lease is held until its Release: with a TTL, it is renewed every
// third of it from a goroutine; a renewal that finds it lapsed (berthd
// was down, or the machine slept past the TTL) acquires it again with its
// token, which gives back the same port, as `berth run` does. A lease
// revoked by an admin, or released or taken by another holder, is not
// taken back: Lost is closed. It is owned by this process when berthd can
// see it (Pid), so it also ends when the process dies, even by kill -9.
//
// While a lease is held, SIGINT and SIGTERM are caught: they release
// every held lease and then end the process by the same signal, as if it
// had not been caught (deferred calls do not run on a signal, so without
// this the lease would outlive the process until berthd noticed). One
// the process ignores stays ignored (SIGINT, for a program a script
// started with &). A program that handles those signals itself
// (signal.NotifyContext for a graceful shutdown) passes NoSignals and
// calls Release on its way out.
// NoHold returns the lease without holding it.
func (c *Client) Acquire(ctx context.Context, name string, opts ...Option) (*Lease, error) {
	s, err := collect("Acquire", acquireOpts, opts)
	if err != nil {
		return nil, err
	}
	if s.noHold {
		return c.acquire(ctx, name, s, s.token, s.pidOr(0))
	}
	return c.hold(ctx, name, s)
}

// acquire posts one acquire of name with the options of s, the token and
// the owner pid (0: none).
func (c *Client) acquire(ctx context.Context, name string, s *settings,
	token string, pid int) (*Lease, error) {
	body := map[string]any{"name": name}
	if s.port != 0 {
		body["port"] = s.port
	}
	if s.proto != "" {
		body["proto"] = s.proto
	}
	if s.ttl != nil {
		body["ttl"] = seconds(*s.ttl)
	}
	if pid != 0 {
		body["pid"] = pid
	}
	if s.meta != nil {
		body["meta"] = s.meta
	}
	if s.publish {
		body["publish"] = true
	}
	if s.host != "" {
		body["host"] = s.host
	}
	l := &Lease{client: c}
	if _, err := c.request(ctx, "POST", "/v1/services", body, token, 0, l); err != nil {
		return nil, err
	}
	return l, nil
}

func (s *settings) pidOr(dflt int) int {
	if s.pid != nil {
		return *s.pid
	}
	return dflt
}

// Lookup is the live lease of name (without its token). Options: Wait(d)
// waits up to d (at most 300 s) for the name to be registered; Ready()
// waits until something listens on its port too. No lease (after the
// wait) is an *Error with code "not_found".
func (c *Client) Lookup(ctx context.Context, name string, opts ...Option) (*Lease, error) {
	s, err := collect("Lookup", lookupOpts, opts)
	if err != nil {
		return nil, err
	}
	q, wait := s.lookupQuery()
	l := &Lease{client: c}
	_, err = c.request(ctx, "GET", "/v1/services/"+url.PathEscape(name)+q,
		nil, "", wait, l)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// LookupCluster is name's instances in the cluster (berthd --cluster),
// one per node that publishes it, sorted by node. Option: Wait(d), for a
// node to publish it.
func (c *Client) LookupCluster(ctx context.Context, name string, opts ...Option) ([]Lease, error) {
	s, err := collect("LookupCluster", clusterOpts, opts)
	if err != nil {
		return nil, err
	}
	q, wait := s.lookupQuery()
	var doc struct {
		Instances []Lease `json:"instances"`
	}
	_, err = c.request(ctx, "GET", "/v1/cluster/services/"+url.PathEscape(name)+q,
		nil, "", wait, &doc)
	if err != nil {
		return nil, err
	}
	return doc.Instances, nil
}

// List is every live lease, sorted by name; with Cluster(), every
// instance the cluster publishes, by name then node.
func (c *Client) List(ctx context.Context, opts ...Option) (*Snapshot, error) {
	s, err := collect("List", listOpts, opts)
	if err != nil {
		return nil, err
	}
	return c.list(ctx, s.cluster, "", 0)
}

// list gets the list with the query q, which may make berthd hold it
// for up to wait.
func (c *Client) list(ctx context.Context, cluster bool, q string,
	wait time.Duration) (*Snapshot, error) {
	path := "/v1/services"
	if cluster {
		path = "/v1/cluster/services"
	}
	snap := &Snapshot{}
	if _, err := c.request(ctx, "GET", path+q, nil, "", wait, snap); err != nil {
		return nil, err
	}
	for i := range snap.Services {
		snap.Services[i].client = c
	}
	return snap, nil
}

// Renew renews name's lease with its token; TTL(d) sets a new TTL.
// It returns the lease as renewed.
func (c *Client) Renew(ctx context.Context, name, token string, opts ...Option) (*Lease, error) {
	s, err := collect("Renew", renewOpts, opts)
	if err != nil {
		return nil, err
	}
	body := map[string]any{}
	if s.ttl != nil {
		body["ttl"] = seconds(*s.ttl)
	}
	l := &Lease{client: c}
	_, err = c.request(ctx, "POST", "/v1/services/"+url.PathEscape(name)+"/renew",
		body, token, 0, l)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Release gives name's lease back with its token: the port is free at once.
func (c *Client) Release(ctx context.Context, name, token string) error {
	_, err := c.request(ctx, "DELETE", "/v1/services/"+url.PathEscape(name), nil, token, 0, nil)
	return err
}

// Revoke ends anyone's lease on name, without its token: an admin's act
// (root or berthd's own user only, else code "forbidden"). The lease's
// holder cannot take it back.
func (c *Client) Revoke(ctx context.Context, name string) error {
	_, err := c.request(ctx, "DELETE", "/v1/services/"+url.PathEscape(name)+"?force=1",
		nil, "", 0, nil)
	return err
}

// Status is berthd's /v1/status (docs/api.md), decoded as JSON.
func (c *Client) Status(ctx context.Context) (map[string]any, error) {
	var st map[string]any
	if _, err := c.request(ctx, "GET", "/v1/status", nil, "", 0, &st); err != nil {
		return nil, err
	}
	return st, nil
}

// lookupQuery is a lookup's query string ("" or "?wait=S&ready=1") and
// how long berthd may hold it.
func (s *settings) lookupQuery() (string, time.Duration) {
	q := url.Values{}
	var wait time.Duration
	if s.wait != nil {
		wait = *s.wait
		q.Set("wait", fmt.Sprint(seconds(wait)))
	}
	if s.ready {
		q.Set("ready", "1")
	}
	if len(q) == 0 {
		return "", 0
	}
	return "?" + q.Encode(), clampWait(wait)
}

// clampWait is how much longer than usual a request with ?wait= may take:
// berthd answers by then, as it clamps nothing but refuses more than 300.
func clampWait(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	if d > maxWait {
		return maxWait
	}
	return d
}
