// Package grpccache caches the responses of chosen unary gRPC methods in a
// [layercache.Cache]: a server interceptor answers repeated calls without
// running the handler, and a client interceptor answers them without a round
// trip to a remote service (for services that call slow dependencies).
//
//	cache, _ := layercache.Open("cache.yaml")
//	opts := grpccache.Options{Methods: map[string]grpccache.Method{
//		catalogpb.Catalog_GetItem_FullMethodName: {
//			TTL:          time.Minute,
//			Tags:         []string{"catalog"},
//			CachedErrors: map[codes.Code]time.Duration{codes.NotFound: 5 * time.Second},
//		},
//	}}
//	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(authn, grpccache.UnaryServerInterceptor(cache, opts)))
//
// # What is cached
//
// Only the methods listed in [Options.Methods] are cached; every other call
// passes through untouched. The key of a call is its full method name and a
// SHA-256 hash of the request's deterministic protobuf encoding (map entries
// sorted), so equal requests share an entry whatever order their maps were
// filled in. The hash is a cryptographic one because requests come from
// clients: a client that could make two requests collide could have its
// response served for someone else's request.
//
// The cache stores the response's wire bytes. A hit is decoded into a new
// message of the method's own response type, found in the protobuf registry,
// so a server can serve a response that another instance computed and put in
// a shared layer. Only the message is cached: header and trailer metadata
// that a handler sets reach the call that ran it, not the calls served from
// the cache.
//
// # Concurrent calls and errors
//
// Concurrent identical calls that miss run the handler once; the others wait
// for its answer, which they receive as their own. Errors are not cached,
// except those whose status code the method lists in [Method.CachedErrors],
// each for its own time: the code, message and details are stored and
// replayed. An error that is not listed is returned to the call that ran the
// handler and to the identical calls that were waiting for it, and the next
// call runs the handler again. A call whose handler fails because the call
// itself was cancelled does not pass the cancellation on: one of the waiting
// calls runs the handler again for the others. A handler that panics panics
// on the call that ran it, as it would without the cache; the calls that
// were waiting for it fail with codes.Internal.
//
// # Who is asking
//
// A response that depends on the caller must not be served to another
// caller. A call whose metadata carries "authorization" (or, on the client,
// per-call credentials) is therefore not cached unless its method has an
// [Method.Identity] function, whose result becomes part of the key. Answers
// that depend on anything else about the caller (other metadata, a client
// certificate, the peer's address) need an Identity function too: the
// interceptors cannot see that dependency. On the server, put the cache
// interceptor after the interceptors that authenticate and authorize, since
// a hit skips everything that comes after it.
//
// # Telling hits from misses
//
// The server interceptor sets the response header [Header] ("x-cache") on
// every call of a cached method: "hit" when the handler did not run for the
// call and its answer (a response or a cached error) came from the cache or
// from an identical call it waited for; "miss" when the handler ran, and for
// every error that is not cached. Calls that bypass the cache get no
// header. The client interceptor serves only what it cached itself, under
// keys of its own, and sets no header.
package grpccache
