package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// wire is one keep-alive HTTP/1.1 connection that a benchmark client sends
// all its requests on, one at a time, as a load generator such as wrk does.
// net/http's client hands every request to two goroutines of its own per
// connection; on a two-core machine that hand-off cost the load generator
// about as much CPU per checkout as a third of the server's, taken from the
// server it measures. Responses are still parsed by net/http.
type wire struct {
	host string
	conn net.Conn
	br   *bufio.Reader
	req  []byte // the request being written, reused
	body []byte // the last response body, reused
}

func newWire(baseURL string) *wire {
	return &wire{host: strings.TrimPrefix(baseURL, "http://")}
}

// post sends a JSON body and returns the response body, which is valid
// until the next call. A status other than want is an error.
func (w *wire) post(ctx context.Context, path, key string, body []byte, want int) ([]byte, error) {
	if w.conn == nil {
		deadline, _ := ctx.Deadline()
		if err := w.dial(ctx, deadline); err != nil {
			return nil, err
		}
	}
	w.req = append(w.req[:0], "POST "...)
	w.req = append(w.req, path...)
	w.req = append(w.req, " HTTP/1.1\r\nHost: "...)
	w.req = append(w.req, w.host...)
	w.req = append(w.req, "\r\nAuthorization: Bearer "...)
	w.req = append(w.req, key...)
	w.req = append(w.req, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	w.req = strconv.AppendInt(w.req, int64(len(body)), 10)
	w.req = append(w.req, "\r\n\r\n"...)
	w.req = append(w.req, body...)
	if _, err := w.conn.Write(w.req); err != nil {
		return nil, w.fail(ctx, err)
	}
	res, err := http.ReadResponse(w.br, nil)
	if err != nil {
		return nil, w.fail(ctx, err)
	}
	if res.ContentLength < 0 || res.Close {
		w.close() // cannot tell where the next response starts, or the server ends the connection
		return nil, fmt.Errorf("POST %s: response without length or keep-alive", path)
	}
	if n := int(res.ContentLength); cap(w.body) < n {
		w.body = make([]byte, n)
	}
	w.body = w.body[:res.ContentLength]
	if _, err := io.ReadFull(res.Body, w.body); err != nil {
		return nil, w.fail(ctx, err)
	}
	if res.StatusCode != want {
		return nil, fmt.Errorf("POST %s: %d %s", path, res.StatusCode, w.body)
	}
	return w.body, nil
}

// dial connects. Reads and writes end a little after deadline (the run's
// end; none when zero), so that a request in flight when the run ends is
// answered rather than cut off.
func (w *wire) dial(ctx context.Context, deadline time.Time) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", w.host)
	if err != nil {
		return err
	}
	if !deadline.IsZero() {
		_ = conn.SetDeadline(deadline.Add(deadlineSlack))
	}
	w.conn, w.br = conn, bufio.NewReaderSize(conn, 8<<10)
	return nil
}

// fail closes the connection after an error and returns the error, or the
// context's once it has ended (a request cut off by the end of the run).
func (w *wire) fail(ctx context.Context, err error) error {
	w.close()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (w *wire) close() {
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn = nil
	}
}

// wires are the connections of a closed loop's clients, one each.
type wires []*wire

func newWires(baseURL string, n int) wires {
	ws := make(wires, n)
	for i := range ws {
		ws[i] = newWire(baseURL)
	}
	return ws
}

// dial connects every wire before a run whose operations end by
// deadline. An open loop's senders would otherwise each connect inside
// their first operation: hundreds of connections made at the start of the
// schedule, their cost counted in the first operations' latencies and
// taken from the server's cores just as the offered rate arrives. A load
// generator's connections are open before it measures, as a backend's
// are before its traffic comes.
func (ws wires) dial(ctx context.Context, deadline time.Time) error {
	for _, w := range ws {
		if err := w.dial(ctx, deadline); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
	}
	return nil
}

func (ws wires) close() {
	for _, w := range ws {
		w.close()
	}
}

const deadlineSlack = time.Second
