package grpccache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// A record is what the cache holds for a call, stored as a []byte (which
// the cache keeps as it is): a kind byte, then for a response its wire
// bytes, and for a cached error its expiry (Unix nanoseconds, big-endian)
// and its google.rpc.Status wire bytes. An error carries its own expiry
// because its lifetime is known only after the call, when the cache entry's
// options were already given; it must end no later than the entry.
const (
	recordResponse byte = 1
	recordStatus   byte = 2

	statusHeaderLen = 1 + 8
)

var (
	errCorruptRecord = errors.New("grpccache: corrupt cache record")
	errExpiredStatus = errors.New("grpccache: cached error expired")
)

// encodeResponse makes the record of a response.
func encodeResponse(resp proto.Message) ([]byte, error) {
	size := proto.Size(resp)
	b := make([]byte, 1, 1+size)
	b[0] = recordResponse
	// The size was just computed; marshalling may reuse it.
	return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, resp)
}

// encodeStatus makes the record of an error to be cached until expires.
func encodeStatus(st *status.Status, expires time.Time) ([]byte, error) {
	p := st.Proto()
	b := make([]byte, statusHeaderLen, statusHeaderLen+proto.Size(p))
	b[0] = recordStatus
	binary.BigEndian.PutUint64(b[1:statusHeaderLen], uint64(expires.UnixNano()))
	return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, p)
}

// decodeRecord decodes a record: a response into a message from newResponse,
// or a cached error as its status. It returns errExpiredStatus for an error
// past its expiry and an error wrapping errCorruptRecord for anything it
// cannot read.
func decodeRecord(rec []byte, newResponse func() proto.Message, now time.Time) (proto.Message, *status.Status, error) {
	if len(rec) == 0 {
		return nil, nil, fmt.Errorf("%w: empty", errCorruptRecord)
	}
	switch rec[0] {
	case recordResponse:
		resp := newResponse()
		if err := proto.Unmarshal(rec[1:], resp); err != nil {
			return nil, nil, fmt.Errorf("%w: response: %v", errCorruptRecord, err)
		}
		return resp, nil, nil
	case recordStatus:
		if len(rec) < statusHeaderLen {
			return nil, nil, fmt.Errorf("%w: short error record", errCorruptRecord)
		}
		if now.UnixNano() >= int64(binary.BigEndian.Uint64(rec[1:statusHeaderLen])) {
			return nil, nil, errExpiredStatus
		}
		var p spb.Status
		if err := proto.Unmarshal(rec[statusHeaderLen:], &p); err != nil {
			return nil, nil, fmt.Errorf("%w: status: %v", errCorruptRecord, err)
		}
		st := status.FromProto(&p)
		if st.Code() == 0 {
			return nil, nil, fmt.Errorf("%w: error record without an error", errCorruptRecord)
		}
		return nil, st, nil
	default:
		return nil, nil, fmt.Errorf("%w: unknown kind %d", errCorruptRecord, rec[0])
	}
}
