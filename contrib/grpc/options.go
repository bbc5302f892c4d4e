package grpccache

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// Header is the response header in which the server interceptor says
// whether a call was served from the cache: "hit" or "miss".
const Header = "x-cache"

// Options configures [UnaryServerInterceptor] and [UnaryClientInterceptor].
// The interceptors copy what they need when they are built; changing
// Options afterwards changes nothing.
type Options struct {
	// Methods lists the methods to cache, keyed by full method name
	// ("/package.Service/Method", as in the generated
	// Service_Method_FullMethodName constants). Each must be a unary method
	// of a service whose generated package is imported (the response type
	// is looked up in the protobuf registry). Calls to methods not listed
	// pass through untouched.
	Methods map[string]Method
}

// Method says how the calls of one method are cached.
type Method struct {
	// TTL is how long a response stays fresh. Zero leaves it to the
	// cache's defaults (layercache.WithDefaults, or the defaults block of
	// a configuration file) and to the layers' own TTLs. Negative panics.
	TTL time.Duration

	// Tags are attached to every entry of the method, so that
	// [layercache.Cache.InvalidateTags] with one of them drops them all,
	// on every instance. Empty tags panic.
	Tags []string

	// RequestTags, if set, returns more tags for one request, such as
	// "item:42" for a request about item 42, so that a change to one thing
	// can drop just the responses that are about it. It must be safe for
	// concurrent use.
	RequestTags func(req proto.Message) []string

	// CachedErrors lists the status codes whose errors are cached, with how
	// long each is kept (never longer than a response would be), e.g.
	// {codes.NotFound: 5 * time.Second}. Errors with other codes, and
	// errors that are not gRPC statuses, are never cached. codes.OK,
	// codes.Canceled and codes.DeadlineExceeded (which describe the
	// caller's own context, not the answer), unknown codes and durations
	// that are not positive panic.
	CachedErrors map[codes.Code]time.Duration

	// Identity, if set, says who is calling, for a method whose answer
	// depends on the caller: its result becomes part of the key, so each
	// caller has entries of their own. It receives the call's context (on
	// the server with the incoming metadata and peer, on the client with
	// the outgoing metadata) and must be safe for concurrent use.
	//
	// Without Identity, calls that carry "authorization" metadata (or, on
	// the client, per-call credentials) are not cached. When Identity
	// returns an error the call is not cached; nor is it when Identity
	// returns "" for a call that carries credentials.
	Identity func(ctx context.Context) (string, error)
}
