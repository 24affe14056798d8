// Package berth is the Go client of berthd, the local port broker: a
// service gets its port, finds the services it needs and holds its lease
// while it runs, with the standard library only.
//
//	lease, err := berth.Acquire(ctx, "api", berth.TTL(30*time.Second))
//	if err != nil {
//		return err
//	}
//	defer lease.Release() // SIGINT and SIGTERM release it too
//	return http.ListenAndServe(lease.Addr(), handler)
//
//	db, err := berth.Lookup(ctx, "db", berth.Wait(30*time.Second))
//
// A Client talks to one berthd over its HTTP API (docs/api.md in the berth
// tree) at HOST:PORT, [V6]:PORT or unix:/path. The package-level functions
// use a Client for $BERTH_ADDR, else 127.0.0.1:62893, as the berth command
// does.
//
// An error answer from berthd is an *Error carrying the API's code
// ("name_taken", "not_found", ...), its message and the HTTP status; a
// berthd that cannot be reached is an *Error with code "unreachable" whose
// message names the address. Code(err) gives the code of any error.
//
// A lease from Acquire is held: renewed in the background while it has a
// TTL, taken back with its token if it lapsed, and released by Release or
// when the process gets SIGINT or SIGTERM (see Acquire). Listener and
// ListenFDs adopt the sockets that `berth run --fd` passes.
package berth
