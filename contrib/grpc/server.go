package grpccache

import (
	"context"

	"github.com/layercache/layercache"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

var (
	hitHeader  = metadata.Pairs(Header, "hit")
	missHeader = metadata.Pairs(Header, "miss")
)

// UnaryServerInterceptor returns an interceptor that serves the methods
// listed in o from c and caches what their handlers return (see the package
// documentation for what is cached, for how long, and for whom). It panics
// if c is nil or o is invalid, with a message that names the method at
// fault.
//
// Put it after the interceptors that authenticate and authorize calls: a
// hit answers without running anything that comes after it.
func UnaryServerInterceptor(c *layercache.Cache, o Options) grpc.UnaryServerInterceptor {
	methods := compile(c, o, "UnaryServerInterceptor", "server")
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		m := methods[info.FullMethod]
		if m == nil {
			return handler(ctx, req)
		}
		msg, ok := req.(proto.Message)
		if !ok {
			return handler(ctx, req)
		}
		key, ok := m.keyFor(ctx, msg, incomingCredentials(ctx))
		if !ok {
			return handler(ctx, req)
		}
		resp, hit, err := m.do(ctx, c, key, msg,
			func(ctx context.Context) (any, error) { return handler(ctx, req) },
			func() proto.Message { return m.response.New().Interface() })
		h := missHeader
		if hit {
			h = hitHeader
		}
		// Fails only when the handler already sent its headers; the call's
		// answer matters more than the header.
		_ = grpc.SetHeader(ctx, h)
		return resp, err
	}
}
