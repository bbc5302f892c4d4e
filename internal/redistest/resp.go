package redistest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// dialer says how to reach a server: its address, and the client TLS
// configuration when it speaks TLS.
type dialer struct {
	addr string
	tls  *tls.Config
}

func (d dialer) dial(timeout time.Duration) (net.Conn, error) {
	nd := &net.Dialer{Timeout: timeout}
	if d.tls != nil {
		return tls.DialWithDialer(nd, "tcp", d.addr, d.tls)
	}
	return nd.Dial("tcp", d.addr)
}

// rawDo sends one command (after AUTH when password is set) on a fresh
// connection and returns a status or bulk-string reply. The harness uses it
// instead of go-redis to probe servers that may not be up yet: it dials once,
// never retries, never logs and starts no goroutines.
func rawDo(d dialer, password string, timeout time.Duration, args ...string) (string, error) {
	conn, err := d.dial(timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}

	var req strings.Builder
	if password != "" {
		writeCommand(&req, "AUTH", password)
	}
	writeCommand(&req, args...)
	if _, err := io.WriteString(conn, req.String()); err != nil {
		return "", err
	}

	r := bufio.NewReader(conn)
	if password != "" {
		if _, err := readReply(r); err != nil {
			return "", fmt.Errorf("AUTH: %w", err)
		}
	}
	return readReply(r)
}

func writeCommand(w *strings.Builder, args ...string) {
	fmt.Fprintf(w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(w, "$%d\r\n%s\r\n", len(a), a)
	}
}

// readReply reads a simple string, error, integer or bulk string reply.
// Other reply types are not needed by the harness and are an error.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return "", fmt.Errorf("unexpected reply %q", line)
	}
}
