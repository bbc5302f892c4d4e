// Package disk is the persistent layer of a layercache stack (L3), stored in
// a local directory with github.com/nutsdb/nutsdb (v1.0.4). It keeps the
// cache warm across restarts and, under a memory layer, makes a two-level
// stack that needs no Redis.
//
// Programs select it by name in a configuration file after a blank import:
//
//	import _ "github.com/layercache/layercache/drivers/disk"
//
//	layers:
//	  - driver: disk
//	    dir: ./var/cache
//	    ttl: 24h
//	    max_size: 256MiB
//
// or build it directly with [New].
//
// # Storage
//
// Entries are stored as the versioned envelope of package driver/envelope
// (optionally S2-compressed, see [Options.CompressAbove]) under their key in
// one nutsdb bucket. nutsdb keeps the keys in memory and reads values from
// its files, so the layer's memory cost is per key, not per byte stored.
// Each record carries a nutsdb TTL in whole seconds, rounded up from the
// entry's remaining lifetime and capped by [Options.TTL]; the layer also
// keeps each entry's exact deadline in memory, and [Layer.Get] checks it and
// the envelope's ExpiresAt, so an expired entry is never returned.
//
// Writes are not fsynced: a write has reached the operating system when Set
// returns, which survives the process being killed at any moment. A power
// cut may lose the latest writes.
//
// # Encryption
//
// A disk is often readable, or writable, by more than the service: other
// users of the host, backups, a stolen volume. With [Options.EncryptionKeys]
// (encryption_keys in a configuration block) every record is encrypted and
// authenticated with AES-256-GCM before it reaches nutsdb:
//
//	"LE" 1 | key id | salt | nonce | ciphertext of the envelope | GCM tag
//
// under a key derived for that record from the first configured key and a
// random salt (HKDF-SHA256), with the record's header and nutsdb key as
// additional data, so that a record cannot be moved under another key.
// The key id names the configured key, so that a read finds it among all
// listed keys: rotation is putting a new key first and dropping the old one
// once what it encrypted has expired. A record that fails authentication
// (altered bytes, a key that is not listed, a plain record in an encrypted
// layer) is treated like a corrupt one: Get reports an error wrapping
// [ErrUnauthenticated] and envelope.ErrCorrupt, the cache counts it and
// loads, and the record is removed ([Layer.Stats] counts it).
//
// Keys come from the configuration file or, better, the environment:
//
//	LAYERCACHE_LAYERS__2__ENCRYPTION_KEYS=NEW_KEY_HEX,OLD_KEY_HEX
//
// as 64 hex digits or base64 (see [Key]); they never appear in logs, errors
// or the output of fmt. Opening an encrypted layer decrypts every record
// once, to rebuild the tag index. The cache keys themselves, the sizes of
// records and their expiry are stored in the clear.
//
// # Tags
//
// [Layer.InvalidateTags] removes every entry written with one of the given
// tags. The layer keeps, next to its in-memory index of keys, a map from each
// tag to the keys whose current entry carries it. Every write replaces the
// key's tags with the new entry's, and deletes, evictions, expiry and
// [Layer.Clear] remove them, so the map holds only the tags of live entries
// and costs memory per (tag, key) pair, never per entry ever written. nutsdb
// has no secondary indexes, and its files would have to be read whole to find
// a tag, so the map is rebuilt when the layer opens, from the same pass over
// the files that checks them (see Damaged files): it reads the tags from each
// record's envelope header, without decoding the payload.
//
// An invalidation deletes the tag's keys in nutsdb transactions of at most
// 1000 keys and lets other writes in between, so a tag covering much of the
// layer does not stall writes while it is removed. Entries that carried the
// tag when the call began are gone when it returns; entries written with the
// tag while it runs may survive it.
//
// # Size bound and eviction
//
// [Options.MaxSize] bounds the live data: the sum over entries of key,
// encoded value and nutsdb's largest record header ([Layer.Size]). A write
// that would exceed it evicts, in the same nutsdb transaction, the entries
// written longest ago (FIFO by last write). The layer evicts by write order
// rather than by recency of use because a disk layer sees only the reads
// that missed every faster layer, a weak signal of what is hot; because it
// costs reads nothing (no shared structure to update on a hit); and because
// write order can be rebuilt exactly from the files on restart.
//
// Overwritten, deleted, evicted and expired records stay in the data files
// until a compaction (nutsdb's merge) rewrites the live records into new
// files and removes the old ones. The layer starts one whenever MaxSize/2
// bytes have been written since the previous one started. Every data file is
// created at its full [Options.SegmentSize] S (sparse where the file system
// allows). Counting files at that full size, the directory holds:
//
//   - after a compaction, the live data and at most two partly filled
//     segments: at most MaxSize + 2*S (writing ten times MaxSize of 1 KB
//     entries leaves 1.0*MaxSize);
//   - between compactions, at most 1.5*MaxSize + 2*S;
//   - while a compaction runs, the files it reads next to the ones it
//     writes, while writes go on and compete with it for nutsdb's write
//     lock: under writes at full speed the directory peaks at about 3 to 4
//     times MaxSize (2.6 to 4.0 measured with 1 KB entries).
//
// Compaction runs on the layer's background goroutine, which [Layer.Close]
// stops and waits for.
//
// # Damaged files
//
// nutsdb does not survive damage to its files well: a bad checksum makes its
// Open fail for good, a flipped length field makes it allocate whatever the
// field claims, some damage makes it panic, and a failed Open leaves its
// directory lock held. So [New] checks every record itself (header,
// checksum, transaction structure) before nutsdb reads the files; nutsdb
// offers no such check, hence the hand-written reader:
//
//   - damage shaped like a write cut short by a crash (the last record
//     written up to a page boundary, zeros after it, nothing valid beyond)
//     is a torn write: the tail, which was never acknowledged, is cut and
//     everything before it kept;
//   - any other damage means acknowledged records were lost, and they may
//     have replaced or deleted keys that older records still hold, so
//     everything older than the damage is discarded (serving it could bring
//     back stale or invalidated values) and what follows it is kept;
//   - a damaged bucket file (nutsdb's table of buckets) discards everything.
//
// Damage therefore costs entries rather than correctness: a repair never
// brings back an older value of a key (short of a whole data file going
// missing, which leaves nothing to detect).
//
// Each case is logged at warning level through [Options.Logger]. A value
// whose envelope fails to decode is reported by Get as an error wrapping
// envelope.ErrCorrupt, and removed. Should nutsdb still panic, in New or in an
// operation, the panic becomes an error; after a panic inside a transaction
// (nutsdb then leaves its lock held) the layer refuses further operations
// until it is reopened.
//
// # Ownership
//
// A directory belongs to one layer at a time, across processes: the layer
// holds an exclusive flock on a lock file in it, and New fails at once with
// an error wrapping [ErrLocked] that names the directory while another
// layer holds it. The directory must hold nothing but the layer's files.
package disk
