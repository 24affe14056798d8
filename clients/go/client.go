package berth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultAddr is berthd's address when neither an explicit one nor
// $BERTH_ADDR is given.
const DefaultAddr = "127.0.0.1:62893"

// DefaultTimeout is how long one request may take, beyond any wait.
const DefaultTimeout = 10 * time.Second

const maxAnswer = 16 << 20 // bytes of one answer: far above any list

// A Client talks to one berthd. It is safe for concurrent use; its
// connections are kept alive between calls.
type Client struct {
	addr string
	host string // what the Host header says
	unix string // the socket's path, for unix:
	hc   *http.Client

	// Timeout is how long one request may take, beyond any wait.
	Timeout time.Duration
	// Logger gets what a held lease has to say (a lapse reclaimed, a
	// renewal failing, the lease lost); nil: os.Stderr.
	Logger *log.Logger
}

// NewClient makes a Client for addr: HOST:PORT, [V6]:PORT or unix:/path.
// An empty addr means $BERTH_ADDR, else DefaultAddr.
func NewClient(addr string) (*Client, error) {
	if addr == "" {
		addr = os.Getenv("BERTH_ADDR")
	}
	if addr == "" {
		addr = DefaultAddr
	}
	c := &Client{addr: addr, Timeout: DefaultTimeout}
	dialer := &net.Dialer{}
	network, target := "tcp", addr
	if strings.HasPrefix(addr, "unix:") {
		if len(addr) == 5 {
			return nil, fmt.Errorf("berth: bad address %q: no socket path", addr)
		}
		network, target = "unix", addr[5:]
		c.unix, c.host = target, "localhost"
	} else {
		h, p, err := net.SplitHostPort(addr)
		n, perr := strconv.Atoi(p)
		if err != nil || h == "" || perr != nil || n < 1 || n > 65535 ||
			(strings.Contains(h, ":") && !strings.HasPrefix(addr, "[")) {
			return nil, fmt.Errorf("berth: bad address %q: want HOST:PORT, "+
				"[V6]:PORT or unix:/path", addr)
		}
		c.host = addr
	}
	c.hc = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, target)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}}
	return c, nil
}

// Addr is the address the Client talks to.
func (c *Client) Addr() string { return c.addr }

var (
	defaultMu     sync.Mutex
	defaultClient *Client
)

// DefaultClient is the Client the package-level functions use: one for
// $BERTH_ADDR (else DefaultAddr), made on first use and again if
// $BERTH_ADDR changes.
func DefaultClient() (*Client, error) {
	addr := os.Getenv("BERTH_ADDR")
	if addr == "" {
		addr = DefaultAddr
	}
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultClient == nil || defaultClient.addr != addr {
		c, err := NewClient(addr)
		if err != nil {
			return nil, err
		}
		defaultClient = c
	}
	return defaultClient, nil
}

// request does one call: method and path, a JSON body (nil for none),
// a token, and how long berthd may hold it (a blocking query). It
// decodes a 2xx answer into out (unless nil) and returns X-Berth-Index.
func (c *Client) request(ctx context.Context, method, path string, body any,
	token string, wait time.Duration, out any) (uint64, error) {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("berth: %v", err)
		}
		payload = b
	}
	limit := c.Timeout + wait
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	resp, err := c.send(rctx, method, path, payload, token)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, unreachable(c.addr, why(err, limit), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, unreachable(c.addr, why(err, limit), err)
	}
	index, _ := strconv.ParseUint(resp.Header.Get("X-Berth-Index"), 10, 64)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return index, c.answerError(resp, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return index, &Error{Code: "http_error", Status: resp.StatusCode,
				Addr: c.addr, Message: fmt.Sprintf("berth: %s answered %s %s "+
					"with a body that is not berthd's: %v", c.addr, method,
					path, err)}
		}
	}
	return index, nil
}

// send sends one request. berthd closes a connection that idled for
// --idle-timeout: a request that finds its kept-alive connection closed
// under it was not read, so it is sent once more on a new connection
// (net/http does that itself only for GET, HEAD and DELETE).
func (c *Client) send(ctx context.Context, method, path string, payload []byte,
	token string) (*http.Response, error) {
	for try := 0; ; try++ {
		var rd io.Reader
		if payload != nil {
			rd = bytes.NewReader(payload)
		}
		reused := false
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			reused = i.Reused
		}}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace),
			method, "http://"+c.host+path, rd)
		if err != nil {
			return nil, fmt.Errorf("berth: %v", err)
		}
		req.Header.Set("Accept", "application/json")
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.hc.Do(req)
		if err == nil || !reused || try > 0 || ctx.Err() != nil {
			return resp, err
		}
	}
}

// answerError is the *Error of an answer outside 2xx.
func (c *Client) answerError(resp *http.Response, data []byte) error {
	var doc struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &doc) == nil && doc.Error != nil && doc.Error.Code != "" {
		return &Error{Code: doc.Error.Code, Message: doc.Error.Message,
			Status: resp.StatusCode, Addr: c.addr}
	}
	return &Error{Code: "http_error", Status: resp.StatusCode, Addr: c.addr,
		Message: fmt.Sprintf("berth: %s answered %s without a berthd error: "+
			"is it berthd?", c.addr, resp.Status)}
}

// why is a failure to reach berthd in a few lowercase words, as the
// berth command says them: "connection refused".
func why(err error, limit time.Duration) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var nerr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &nerr) && nerr.Timeout()) {
		return fmt.Sprintf("no answer within %v", limit)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed without an answer"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "unknown host " + dnsErr.Name
	}
	return err.Error()
}

// Close closes the Client's idle connections.
func (c *Client) Close() {
	c.hc.CloseIdleConnections()
}
