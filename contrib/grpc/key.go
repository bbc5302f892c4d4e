package grpccache

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// keyFor returns the cache key of a call, and false when the call must not
// be cached: it carries credentials and the method cannot tell callers
// apart, Identity failed, or the request cannot be encoded.
func (m *method) keyFor(ctx context.Context, req proto.Message, hasCredentials bool) (string, bool) {
	var identity string
	if m.identity != nil {
		id, err := m.identity(ctx)
		if err != nil || (id == "" && hasCredentials) {
			return "", false
		}
		identity = id
	} else if hasCredentials {
		return "", false
	}
	key, err := m.key(identity, req)
	return key, err == nil
}

// maxPooledKeyBuffer bounds the encoding buffers kept for reuse, so one huge
// request does not pin its buffer for good.
const maxPooledKeyBuffer = 64 << 10

var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

var deterministic = proto.MarshalOptions{Deterministic: true}

// key hashes the identity (length-prefixed, so that identity and request
// bytes cannot trade places) and the request's deterministic encoding, in
// which map entries are sorted by key.
func (m *method) key(identity string, req proto.Message) (string, error) {
	bp := keyBuffers.Get().(*[]byte)
	b := binary.AppendUvarint((*bp)[:0], uint64(len(identity)))
	b = append(b, identity...)
	b, err := deterministic.MarshalAppend(b, req)
	sum := sha256.Sum256(b)
	if cap(b) <= maxPooledKeyBuffer {
		*bp = b[:0]
		keyBuffers.Put(bp)
	}
	if err != nil {
		return "", err
	}
	var digest [43]byte // base64.RawURLEncoding.EncodedLen(sha256.Size)
	base64.RawURLEncoding.Encode(digest[:], sum[:])
	var sb strings.Builder
	sb.Grow(len(m.keyPrefix) + len(digest))
	sb.WriteString(m.keyPrefix)
	sb.Write(digest[:])
	return sb.String(), nil
}

// incomingCredentials reports whether a server call carries credentials.
func incomingCredentials(ctx context.Context) bool {
	return len(metadata.ValueFromIncomingContext(ctx, "authorization")) > 0
}

// outgoingCredentials reports whether a client call carries credentials of
// its own: authorization metadata or per-call credentials. Credentials set
// on the connection (grpc.WithPerRPCCredentials) are not visible here.
func outgoingCredentials(ctx context.Context, opts []grpc.CallOption) bool {
	for _, o := range opts {
		switch o.(type) {
		case grpc.PerRPCCredsCallOption, *grpc.PerRPCCredsCallOption:
			return true
		}
	}
	md, ok := metadata.FromOutgoingContext(ctx)
	return ok && len(md["authorization"]) > 0
}
