package grpccache

import (
	"context"
	"errors"
	"time"

	"github.com/layercache/layercache"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// runFunc makes a call for real: it runs the handler on the server, or
// invokes the remote method on the client.
type runFunc func(ctx context.Context) (any, error)

// callError carries an error of the call itself through the cache, which
// returns it to the call that ran it and to the identical calls that were
// waiting, and caches nothing.
type callError struct{ err error }

func (e *callError) Error() string { return e.err.Error() }

// uncacheable says that the call succeeded but its response cannot be
// stored (it is not a protobuf message, or cannot be encoded). The call that
// ran it answers with its response; the waiting calls run their own.
type uncacheable struct{ err error }

func (e *uncacheable) Error() string { return "grpccache: response cannot be cached: " + e.err.Error() }

var errNotProto = errors.New("not a protobuf message")

// maxAttempts bounds how often a call reads its entry again after dropping
// one it could not use; past it, the call runs without the cache.
const maxAttempts = 2

// do answers a cacheable call from the cache, or runs it and caches the
// result. newResponse gives the message a cached response is decoded into.
// hit reports that the answer did not come from running the call itself.
func (m *method) do(ctx context.Context, c *layercache.Cache, key string, req proto.Message, run runFunc, newResponse func() proto.Message) (resp any, hit bool, err error) {
	opts := m.optionsFor(req)
	for attempt := 0; ; attempt++ {
		var (
			ran     bool   // this call's own run happened, as the load's leader
			own     []byte // the record that run produced
			ownResp any
			ownErr  error // the cached error that run returned
		)
		rec, err := layercache.Get(ctx, c, key, func(ctx context.Context) ([]byte, error) {
			ran = true
			resp, err := run(ctx)
			if err != nil {
				ownErr = err
				if st, ok := status.FromError(err); ok && ctx.Err() == nil {
					if ttl, ok := m.cachedErrorTTL(st.Code()); ok {
						if b, encErr := encodeStatus(st, time.Now().Add(ttl)); encErr == nil {
							own = b
							return b, nil
						}
					}
				}
				return nil, &callError{err}
			}
			ownResp = resp
			msg, ok := resp.(proto.Message)
			if !ok {
				return nil, &uncacheable{errNotProto}
			}
			b, encErr := encodeResponse(msg)
			if encErr != nil {
				return nil, &uncacheable{encErr}
			}
			own = b
			return b, nil
		}, opts...)

		if err == nil {
			if ran && len(rec) > 0 && len(own) > 0 && &rec[0] == &own[0] {
				// This call ran the load: answer with the very response (or
				// error) it got, not a copy decoded from the record.
				if ownErr != nil {
					return nil, false, ownErr
				}
				return ownResp, false, nil
			}
			resp, st, decErr := decodeRecord(rec, newResponse, time.Now())
			switch {
			case decErr == nil && st != nil:
				return nil, true, st.Err()
			case decErr == nil:
				return resp, true, nil
			case attempt < maxAttempts-1:
				// The entry outlived the error it holds, or cannot be read:
				// drop it and load.
				_ = c.Delete(ctx, key)
				continue
			}
			resp2, err := run(ctx)
			return resp2, false, err
		}

		var ce *callError
		var un *uncacheable
		var pe *layercache.PanicError
		switch {
		case errors.As(err, &ce):
			return nil, false, ce.err
		case errors.As(err, &un):
			if ran {
				return ownResp, false, nil
			}
		case errors.As(err, &pe):
			if ran {
				panic(pe.Value) // as it would have without the cache
			}
			return nil, false, status.Error(codes.Internal, "grpccache: the handler of an identical concurrent call panicked")
		case ctx.Err() != nil:
			return nil, false, status.FromContextError(ctx.Err()).Err()
		case ran:
			// The cache failed after the call ran; answer with what it got.
			if ownErr != nil {
				return nil, false, ownErr
			}
			return ownResp, false, nil
		}
		if errors.Is(err, layercache.ErrTypeMismatch) && attempt < maxAttempts-1 {
			// A value of another type under the key: drop it and load.
			_ = c.Delete(ctx, key)
			continue
		}
		// The cache cannot answer (closed, say): the call goes on without it.
		resp2, err := run(ctx)
		return resp2, false, err
	}
}
