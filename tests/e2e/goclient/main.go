// Command goclient drives the Go client of berthd (clients/go) for
// tests/e2e/test_client_go.py. Each subcommand is one way a program uses
// the client; it prints what it got as JSON lines (or, for hold, a line
// of words) that the test compares with berthd:
//
//	call METHOD JSON   one call; prints {"result": ...} or {"error": ...}
//	session            one call per JSON line on stdin, one answer each
//	watch JSON         a Watch: one line per Change; ends when stdin does
//	hold NAME TTL      Acquire held while stdin is open (defer Release)
//	hold-own NAME TTL  the same with NoSignals and signal.NotifyContext
//	listen NAME        berth.Listener under `berth run --fd NAME`
//
// A call's JSON is {"call", "addr", "name", "token", "value", "opts"}:
// without "addr" the package-level functions ($BERTH_ADDR) are used, else
// a Client for that address; "opts" names options as the package does,
// durations in seconds ({"TTL": 60, "Wait": 1.5, "NoHold": true}).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"syscall"
	"time"

	"berth.local/berth"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		return usage()
	}
	switch {
	case args[0] == "call" && len(args) == 3:
		r := request{}
		if err := json.Unmarshal([]byte(args[2]), &r); err != nil {
			return fail(err)
		}
		r.Call = args[1]
		emit(newSession().do(r))
		return 0
	case args[0] == "session" && len(args) == 1:
		s := newSession()
		in := bufio.NewScanner(os.Stdin)
		in.Buffer(nil, 1<<20)
		for in.Scan() {
			r := request{}
			if err := json.Unmarshal(in.Bytes(), &r); err != nil {
				return fail(err)
			}
			emit(s.do(r))
		}
		return 0
	case args[0] == "watch" && len(args) == 2:
		return watch(args[1])
	case (args[0] == "hold" || args[0] == "hold-own") && len(args) == 3:
		ttl, err := strconv.Atoi(args[2])
		if err != nil {
			return fail(err)
		}
		if args[0] == "hold" {
			return hold(args[1], ttl)
		}
		return holdOwn(args[1], ttl)
	case args[0] == "listen" && len(args) == 2:
		return listen(args[1])
	}
	return usage()
}

func usage() int {
	fmt.Fprintln(os.Stderr, "usage: goclient call METHOD JSON | session | "+
		"watch JSON | hold NAME TTL | hold-own NAME TTL | listen NAME")
	return 2
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "goclient:", err)
	return 1
}

func emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"marshal": err.Error()})
	}
	fmt.Println(string(b))
}

// request is one call, as call and session read it.
type request struct {
	Call  string                     `json:"call"`
	Addr  *string                    `json:"addr"`
	Name  string                     `json:"name"`
	Token string                     `json:"token"`
	Value string                     `json:"value"`
	Opts  map[string]json.RawMessage `json:"opts"`
}

// session is the state calls share: the last lease of each name, for
// Lease.Release and Lease.Lost.
type session struct {
	leases map[string]*berth.Lease
}

func newSession() *session {
	return &session{leases: map[string]*berth.Lease{}}
}

// do makes one call and returns what to print.
func (s *session) do(r request) any {
	opts, err := options(r.Opts)
	if err != nil {
		return errorOf(err)
	}
	ctx := context.Background()
	var c *berth.Client
	if r.Addr != nil {
		if c, err = berth.NewClient(*r.Addr); err != nil {
			return errorOf(err)
		}
		defer func() {
			if r.Call != "Acquire" {
				c.Close()
			}
		}()
	}
	var res any
	switch r.Call {
	case "NewClient":
		res = c.Addr()
	case "DefaultClient":
		var dc *berth.Client
		if dc, err = berth.DefaultClient(); err == nil {
			res = dc.Addr()
		}
	case "Setenv":
		err = os.Setenv(r.Name, r.Value)
	case "Acquire":
		var l *berth.Lease
		if c != nil {
			l, err = c.Acquire(ctx, r.Name, opts...)
		} else {
			l, err = berth.Acquire(ctx, r.Name, opts...)
		}
		res = s.keep(l)
	case "Lookup":
		var l *berth.Lease
		if c != nil {
			l, err = c.Lookup(ctx, r.Name, opts...)
		} else {
			l, err = berth.Lookup(ctx, r.Name, opts...)
		}
		res = s.keep(l)
	case "LookupCluster":
		if c != nil {
			res, err = c.LookupCluster(ctx, r.Name, opts...)
		} else {
			res, err = berth.LookupCluster(ctx, r.Name, opts...)
		}
	case "List":
		if c != nil {
			res, err = c.List(ctx, opts...)
		} else {
			res, err = berth.List(ctx, opts...)
		}
	case "Renew":
		var l *berth.Lease
		if c != nil {
			l, err = c.Renew(ctx, r.Name, r.Token, opts...)
		} else {
			l, err = berth.Renew(ctx, r.Name, r.Token, opts...)
		}
		res = s.keep(l)
	case "Release":
		if c != nil {
			err = c.Release(ctx, r.Name, r.Token)
		} else {
			err = berth.Release(ctx, r.Name, r.Token)
		}
	case "Revoke":
		if c != nil {
			err = c.Revoke(ctx, r.Name)
		} else {
			err = berth.Revoke(ctx, r.Name)
		}
	case "Status":
		if c == nil {
			c, err = berth.DefaultClient()
		}
		if err == nil {
			res, err = c.Status(ctx)
		}
	case "Lease.Release", "Lease.Lost":
		l := s.leases[r.Name]
		switch {
		case l == nil:
			err = fmt.Errorf("goclient: no lease of %q yet", r.Name)
		case r.Call == "Lease.Release":
			err = l.Release()
		default:
			res = "open"
			select {
			case <-l.Lost():
				res = "closed"
			default:
			}
		}
	default:
		err = fmt.Errorf("goclient: no call %q", r.Call)
	}
	if err != nil {
		return errorOf(err)
	}
	return map[string]any{"result": res}
}

// keep remembers l under its name and returns it with what its methods say.
func (s *session) keep(l *berth.Lease) any {
	if l == nil {
		return nil
	}
	s.leases[l.Name] = l
	return map[string]any{"lease": l, "Addr": l.Addr(), "IsReady": l.IsReady(),
		"held": l.Lost() != nil}
}

// errorOf is an error as the test reads it: berth.Error's fields, the
// Error() text, what Code says, and the errno it wraps.
func errorOf(err error) any {
	out := map[string]any{"text": err.Error(), "Code": berth.Code(err)}
	var be *berth.Error
	if errors.As(err, &be) {
		out["code"], out["message"], out["status"], out["addr"] =
			be.Code, be.Message, be.Status, be.Addr
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		out["errno"] = int(errno)
	}
	return map[string]any{"error": out}
}

// options turns {"TTL": 60, ...} into the package's options, in name order.
func options(raw map[string]json.RawMessage) ([]berth.Option, error) {
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	var opts []berth.Option
	for _, k := range names {
		var num float64
		var str string
		var meta map[string]string
		var err error
		switch k {
		case "Port", "Pid", "Index", "TTL", "Wait":
			err = json.Unmarshal(raw[k], &num)
		case "Proto", "Host", "Token":
			err = json.Unmarshal(raw[k], &str)
		case "Meta":
			err = json.Unmarshal(raw[k], &meta)
		}
		if err != nil {
			return nil, fmt.Errorf("goclient: option %s: %v", k, err)
		}
		secs := time.Duration(num * float64(time.Second))
		switch k {
		case "Port":
			opts = append(opts, berth.Port(int(num)))
		case "Pid":
			opts = append(opts, berth.Pid(int(num)))
		case "Index":
			opts = append(opts, berth.Index(uint64(num)))
		case "TTL":
			opts = append(opts, berth.TTL(secs))
		case "Wait":
			opts = append(opts, berth.Wait(secs))
		case "Proto":
			opts = append(opts, berth.Proto(str))
		case "Host":
			opts = append(opts, berth.Host(str))
		case "Token":
			opts = append(opts, berth.Token(str))
		case "Meta":
			opts = append(opts, berth.Meta(meta))
		case "Publish":
			opts = append(opts, berth.Publish())
		case "NoHold":
			opts = append(opts, berth.NoHold())
		case "NoSignals":
			opts = append(opts, berth.NoSignals())
		case "Ready":
			opts = append(opts, berth.Ready())
		case "Cluster":
			opts = append(opts, berth.Cluster())
		default:
			return nil, fmt.Errorf("goclient: no option %s", k)
		}
	}
	return opts, nil
}

// untilStdinEnds returns a context cancelled when stdin ends.
func untilStdinEnds() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	return ctx
}

// watch prints each Change of a Watch until stdin ends, then {"closed"}
// once the channel is closed.
func watch(arg string) int {
	r := request{}
	if err := json.Unmarshal([]byte(arg), &r); err != nil {
		return fail(err)
	}
	opts, err := options(r.Opts)
	if err != nil {
		return fail(err)
	}
	ctx := untilStdinEnds()
	var ch <-chan berth.Change
	if r.Addr != nil {
		c, err := berth.NewClient(*r.Addr)
		if err != nil {
			return fail(err)
		}
		ch = c.Watch(ctx, opts...)
	} else {
		ch = berth.Watch(ctx, opts...)
	}
	for change := range ch {
		if change.Err != nil {
			emit(errorOf(change.Err))
			continue
		}
		names := []string{}
		for _, l := range change.Services {
			names = append(names, l.Name)
		}
		emit(map[string]any{"index": change.Index, "names": names,
			"stale": change.Stale})
	}
	emit(map[string]any{"closed": true, "cancelled": ctx.Err() != nil})
	return 0
}

// hold holds name while stdin is open, as a service holds its port
// while it runs; it says "lost" if the lease is lost meanwhile.
func hold(name string, ttl int) (rc int) {
	lease, err := berth.Acquire(context.Background(), name,
		berth.TTL(time.Duration(ttl)*time.Second))
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err := lease.Release(); err != nil {
			rc = fail(err)
		}
	}()
	fmt.Println(lease.Port, lease.Token)
	ctx := untilStdinEnds()
	select {
	case <-lease.Lost():
		fmt.Println("lost")
		<-ctx.Done()
	case <-ctx.Done():
	}
	return 0
}

// holdOwn holds name with NoSignals under the program's own
// signal.NotifyContext: a signal is noted ("signalled"), the lease kept
// until stdin ends, then released; exit status 7.
func holdOwn(name string, ttl int) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT,
		syscall.SIGTERM)
	defer stop()
	lease, err := berth.Acquire(ctx, name, berth.NoSignals(),
		berth.TTL(time.Duration(ttl)*time.Second))
	if err != nil {
		return fail(err)
	}
	fmt.Println(lease.Port, lease.Token)
	<-ctx.Done()
	fmt.Println("signalled")
	<-untilStdinEnds().Done()
	if err := lease.Release(); err != nil {
		return fail(err)
	}
	fmt.Println("released")
	return 7
}

// listen prints what `berth run --fd name` passed: the descriptors, the
// environment left, the listener's port (and that it accepts), and the
// lease's port.
func listen(name string) int {
	out := map[string]any{}
	fds := [][]any{}
	for _, f := range berth.ListenFDs() {
		flags, _, _ := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(),
			syscall.F_GETFD, 0)
		fds = append(fds, []any{f.Fd(), f.Name, flags&syscall.FD_CLOEXEC != 0})
	}
	out["fds"] = fds
	env := []string{}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if _, ok := os.LookupEnv(k); ok {
			env = append(env, k)
		}
	}
	out["env"] = env
	if _, err := berth.Listener("not-" + name); err != nil {
		out["other"] = err.Error()
	}
	ln, err := berth.Listener(name)
	if err != nil {
		out["error"] = err.Error()
		emit(out)
		return 0
	}
	out["port"] = ln.Addr().(*net.TCPAddr).Port
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	in, err := ln.Accept()
	if err != nil {
		return fail(err)
	}
	in.Close()
	out["accepted"] = true
	lease, err := berth.Lookup(context.Background(), name)
	if err != nil {
		return fail(err)
	}
	out["lease_port"] = lease.Port
	emit(out)
	return 0
}
