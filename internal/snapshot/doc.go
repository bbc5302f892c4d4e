// Package snapshot is the stream format in which a cache's entries are
// exported and imported: a versioned header, one framed record per entry,
// and a trailer with the number of records and a checksum of the whole
// stream.
//
// Each record is a key and the entry encoded by package driver/envelope,
// the format the Redis and disk layers store, so a snapshot keeps
// everything a layer keeps: payload and codec, freshness and expiry as
// absolute times, tags, and whether the entry is a cached absence. An
// importer therefore sees the time entries have left, minus the time
// since the export, and skips those that have expired.
//
// [Read] checks the whole stream before it hands over a single entry:
// magic, version, every record's framing and envelope (whose own checksum
// covers it), the sizes against [Limits], the trailer's count and the
// stream's checksum, and that nothing follows the trailer. A stream that is
// truncated, altered, from another format version or too large is refused
// with an error and no entry, so an import either applies all of a stream
// or none of it. To do so it holds the decoded entries in memory, which is
// what [Limits.MaxBytes] bounds.
//
// Layout, version 1 (integers little-endian, varints as encoding/binary):
//
//	"LCSNAP" | version 1 | flags 0 |
//	per entry: 'R' | uvarint len + key | uvarint len + envelope |
//	'E' | count uint64 | xxh3 uint64 (of every byte before it)
//
// The checksum is XXH3-64, as in the envelope: it catches corruption and
// truncation, not forgery. A snapshot is as trustworthy as wherever it was
// kept; sign or encrypt the file by other means if that is not trusted.
//
// The format is written by hand because it is small and its guarantees
// (validate everything first, in bounded memory) are the point; a
// general-purpose container would still need both checks on top.
package snapshot
