package berth

import (
	"net"
	"strconv"
	"time"
)

// A Lease is a lease as berthd describes it (docs/api.md, the lease
// object); a cluster instance fills Name, Node, Host, Port, Proto, Meta
// and Ready. A lease from Acquire carries its Token and is held (see
// Acquire) until Release.
type Lease struct {
	Name      string            `json:"name"`
	Port      int               `json:"port"`
	Proto     string            `json:"proto"`
	Host      string            `json:"host"`
	TTL       int               `json:"ttl"` // seconds; 0: no expiry
	ExpiresAt *time.Time        `json:"expires_at"`
	Pid       int               `json:"pid"` // 0: no owner process
	Meta      map[string]string `json:"meta"`
	CreatedAt time.Time         `json:"created_at"`
	RenewedAt time.Time         `json:"renewed_at"`
	UID       *int              `json:"uid"`   // nil: berthd could not tell
	Ready     *bool             `json:"ready"` // nil: berthd cannot tell
	Publish   bool              `json:"publish"`
	Node      string            `json:"node,omitempty"`  // cluster instances
	Token     string            `json:"token,omitempty"` // from Acquire only

	client *Client
	hold   *hold // nil unless held
}

// Addr is host:port ([host]:port for an IPv6 host), to connect or listen to.
func (l *Lease) Addr() string {
	h := l.Host
	if h == "" {
		h = "127.0.0.1"
	}
	return net.JoinHostPort(h, strconv.Itoa(l.Port))
}

// IsReady says whether berthd saw something serving the lease's port.
func (l *Lease) IsReady() bool {
	return l.Ready != nil && *l.Ready
}

// Snapshot is the list of leases (or of a cluster's instances) at one
// index of berthd's registry.
type Snapshot struct {
	Services []Lease `json:"services"`
	Index    uint64  `json:"index"`
	// Stale: the cluster's view may be out of date (berthd is not
	// connected to etcd). Always false for the local list.
	Stale bool `json:"stale"`
}
