package grpccache

import (
	"context"

	"github.com/layercache/layercache"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// UnaryClientInterceptor returns an interceptor that answers calls to the
// methods listed in o from c, and caches the replies of the calls it makes,
// for a service whose dependencies are slow or costly to call. It panics if
// c is nil or o is invalid, with a message that names the method at fault.
//
// It serves only what it cached itself, under keys of its own, and reads
// nothing the server says about caching. A call answered from the cache
// makes no round trip, so its grpc.Header and grpc.Trailer call options
// are left empty. Credentials set on the connection
// (grpc.WithPerRPCCredentials) are not visible to an interceptor: if they
// differ between callers of one connection and answers depend on them, give
// the method an Identity.
func UnaryClientInterceptor(c *layercache.Cache, o Options) grpc.UnaryClientInterceptor {
	methods := compile(c, o, "UnaryClientInterceptor", "client")
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		m := methods[method]
		if m == nil {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		in, ok := req.(proto.Message)
		out, ok2 := reply.(proto.Message)
		if !ok || !ok2 {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		key, ok := m.keyFor(ctx, in, outgoingCredentials(ctx, opts))
		if !ok {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		_, _, err := m.do(ctx, c, key, in,
			func(ctx context.Context) (any, error) {
				if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
					return nil, err
				}
				return out, nil
			},
			func() proto.Message { return out })
		return err
	}
}
