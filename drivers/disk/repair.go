package disk

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/nutsdb/nutsdb"
)

// This file reads nutsdb's files before nutsdb does. nutsdb v1.0.4 trusts its
// files: a damaged record makes Open fail for good (a checksum error), makes
// it allocate whatever size a flipped length field claims, or panics (an
// unknown data structure, a short bucket record), and it leaves its directory
// lock held when Open fails. So the layer checks every record itself, cuts a
// torn tail, drops whatever a damaged record makes untrustworthy, and only
// then lets nutsdb open a directory it is known to read cleanly. The same
// pass replays the log to rebuild the layer's index (sizes and write order),
// which nutsdb's API does not expose, and reads each entry's tags to rebuild
// the tag index.
//
// Layout of a nutsdb record (all varints are encoding/binary uvarints):
//
//	crc32 (IEEE, little-endian, over everything after it) | timestamp |
//	key size | value size | flag | ttl | status | data structure | tx id |
//	bucket id | key | value
//
// Data files are named <id>.dat and replayed in id order. Each file is
// created at full segment size; zero bytes after the last record mark its
// end. A transaction's records are contiguous and its last one carries the
// Committed status.

const (
	bucketName = "layercache"
	// keyPrefix is put before every key: nutsdb refuses an empty key, and
	// the cache allows one.
	keyPrefix    = "k"
	lockFileName = "layercache.lock"
	dataSuffix   = nutsdb.DataSuffix

	minHeader = nutsdb.MinEntryHeaderSize
	maxHeader = nutsdb.MaxEntryHeaderSize

	// bucketMetaSize is nutsdb's bucket record header: crc32, op uint16,
	// size uint32.
	bucketMetaSize = 4 + 2 + 4
	// bucketPayloadMin is a bucket record's id uint64 and ds uint16.
	bucketPayloadMin = 8 + 2
	// bucketNameMax bounds a plausible bucket record; ours is short.
	bucketNameMax = 1 << 10
)

// recordSize is what an entry is charged against MaxSize and what a write
// adds to the data files at most: its key, its value and the largest header
// nutsdb writes.
func recordSize(keyLen, valueLen int) int64 {
	return int64(keyLen) + int64(valueLen) + maxHeader
}

// header is a parsed nutsdb record header.
type header struct {
	crc    uint32
	ts     uint64
	ksz    uint64
	vsz    uint64
	flag   uint64
	ttl    uint64
	status uint64
	ds     uint64
	txID   uint64
	bucket uint64
}

// parseHeader decodes the header at the start of b and returns it with its
// length. ok is false when b does not hold a well-formed header.
func parseHeader(b []byte) (h header, n int, ok bool) {
	if len(b) < minHeader {
		return h, 0, false
	}
	h.crc = binary.LittleEndian.Uint32(b)
	n = 4
	fields := [...]*uint64{&h.ts, &h.ksz, &h.vsz, &h.flag, &h.ttl, &h.status, &h.ds, &h.txID, &h.bucket}
	for _, f := range fields {
		v, k := binary.Uvarint(b[n:])
		if k <= 0 {
			return h, 0, false
		}
		*f = v
		n += k
	}
	// nutsdb narrows these fields when it decodes them; a wider value is
	// not one it wrote.
	if h.ksz > math.MaxUint32 || h.vsz > math.MaxUint32 || h.ttl > math.MaxUint32 ||
		h.flag > math.MaxUint16 || h.status > math.MaxUint16 || h.ds > math.MaxUint16 {
		return h, 0, false
	}
	return h, n, true
}

// end reports whether h is nutsdb's end-of-data marker (its Entry.IsZero).
func (h *header) end() bool {
	return h.crc == 0 && h.ksz == 0 && h.vsz == 0 && h.ts == 0
}

// plausible reports whether h describes a record this layer's use of nutsdb
// writes: a B-tree set or delete with a key. nutsdb panics on an unknown
// data structure, so nothing else may reach it.
func (h *header) plausible() bool {
	return h.ksz > 0 &&
		h.ds == uint64(nutsdb.DataStructureBTree) &&
		(h.flag == uint64(nutsdb.DataSetFlag) || h.flag == uint64(nutsdb.DataDeleteFlag)) &&
		(h.status == uint64(nutsdb.Committed) || h.status == uint64(nutsdb.UnCommitted))
}

// validRecordAt reports whether b starts with a whole, checksummed record.
func validRecordAt(b []byte) bool {
	h, n, ok := parseHeader(b)
	if !ok || h.end() || !h.plausible() {
		return false
	}
	total := uint64(n) + h.ksz + h.vsz
	if total > uint64(len(b)) {
		return false
	}
	return crc32.ChecksumIEEE(b[4:total]) == h.crc
}

// segment is one data file.
type segment struct {
	id   int64
	path string
	size int64
}

// replayed is the latest record of a live key found by the scan.
type replayed struct {
	seq  uint64   // position in the log, for write order
	size int64    // recordSize
	ts   uint64   // nutsdb timestamp, Unix ms
	ttl  uint32   // nutsdb TTL, seconds; 0 means none
	tags []string // the entry's tags, from its envelope
}

// txRecord is one record of a transaction not yet committed in the scan.
type txRecord struct {
	key  string
	del  bool
	ours bool // in the layer's bucket
	rec  replayed
}

// openTx is a transaction whose commit record the scan has not reached.
type openTx struct {
	seg  int
	off  int64
	txID uint64
	recs []txRecord
}

// damage is where the scan found a record it cannot trust.
type damage struct {
	seg int
	off int64
	// end is where the damaged record claims to end, or 0 when the damage
	// cannot be a torn write (see onlyTail).
	end int64
	why string
}

// scanResult is what the layer learns from its files before nutsdb opens
// them.
type scanResult struct {
	segmentSize int64               // nutsdb segment size to open with
	records     map[string]replayed // stored key -> latest live record
	dataBytes   int64               // recordSize summed over every record on disk
}

// scanner checks and replays a directory's data files.
type scanner struct {
	dir      string
	log      *slog.Logger
	bucketID uint64
	segs     []segment
	buf      []byte

	records   map[string]replayed
	seq       uint64
	dataBytes int64
	open      *openTx
	// intern holds one copy of each tag read, so that the index does not
	// keep a string per entry for a tag that thousands of entries carry.
	intern map[string]string
	tagsOf func(storeKey, value []byte) []string
}

// repair makes dir safe for nutsdb to open and returns what it holds. It
// must run while the layer's lock is held: it rewrites and removes files.
//
// tagsOf reads the tags of a record's value, stored under storeKey, for the
// tag index; it returns nil when they cannot be read.
func repair(dir string, segmentSize int64, log *slog.Logger, tagsOf func(storeKey, value []byte) []string) (*scanResult, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	bucketID, err := checkBuckets(dir, segs, log)
	if err != nil {
		return nil, err
	}
	if bucketID == 0 {
		// No bucket file we trust: the data files cannot be interpreted.
		segs = nil
	}
	for _, s := range segs {
		segmentSize = max(segmentSize, s.size)
	}
	s := &scanner{dir: dir, log: log, bucketID: bucketID, segs: segs, intern: make(map[string]string), tagsOf: tagsOf}
	for {
		d, err := s.scan()
		if err != nil {
			return nil, err
		}
		if d == nil {
			if s.open != nil {
				// The log ends inside a transaction: a write torn by a
				// crash. Its records were never acknowledged.
				if err := s.cut(s.open.seg, s.open.off, "unfinished transaction at the end of the log"); err != nil {
					return nil, err
				}
			}
			break
		}
		tail, err := s.onlyTail(d)
		if err != nil {
			return nil, err
		}
		if tail {
			// Nothing valid follows the damage: it is the torn end of the
			// log (or indistinguishable from one), so everything before
			// it is the log as it was before the last write.
			seg, off := d.seg, d.off
			if s.open != nil {
				seg, off = s.open.seg, s.open.off
			}
			if err := s.cut(seg, off, d.why); err != nil {
				return nil, err
			}
			break
		}
		// Damage in the middle of the log: records lost in it may have
		// overwritten or deleted keys that older records still hold, so
		// nothing older than the damage can be trusted. What follows it is
		// newer than anything lost and is kept.
		drop := s.segs[:d.seg+1]
		for _, sg := range drop {
			if err := os.Remove(sg.path); err != nil {
				return nil, fmt.Errorf("layercache/disk: removing damaged data: %w", err)
			}
		}
		log.Warn("layercache/disk: discarded data older than a damaged record",
			"dir", dir, "file", filepath.Base(s.segs[d.seg].path), "offset", d.off, "reason", d.why,
			"files_removed", len(drop))
		s.segs = slices.Clone(s.segs[d.seg+1:])
	}
	return &scanResult{segmentSize: segmentSize, records: s.records, dataBytes: s.dataBytes}, nil
}

// listSegments returns dir's data files in id order. A file that looks like
// a data file but whose name nutsdb would misread is an error: nutsdb maps
// any unparsable name to id 0.
func listSegments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("layercache/disk: %w", err)
	}
	var segs []segment
	for _, de := range ents {
		name := de.Name()
		if !strings.HasSuffix(name, dataSuffix) {
			continue
		}
		stem := strings.TrimSuffix(name, dataSuffix)
		id, err := strconv.ParseInt(stem, 10, 64)
		if err != nil || id < 0 || strconv.FormatInt(id, 10) != stem || !de.Type().IsRegular() {
			return nil, fmt.Errorf("layercache/disk: unexpected file %s in %s: the directory must hold only the layer's files",
				name, dir)
		}
		info, err := de.Info()
		if err != nil {
			return nil, fmt.Errorf("layercache/disk: %w", err)
		}
		segs = append(segs, segment{id: id, path: filepath.Join(dir, name), size: info.Size()})
	}
	slices.SortFunc(segs, func(a, b segment) int { return cmp.Compare(a.id, b.id) })
	return segs, nil
}

// checkBuckets validates nutsdb's bucket file and returns the id of the
// layer's bucket, or 0 after removing the bucket file and the data files
// when the bucket file cannot be trusted (nutsdb fails to open, or panics,
// on a damaged one, and data files mean nothing without it).
func checkBuckets(dir string, segs []segment, log *slog.Logger) (uint64, error) {
	path := filepath.Join(dir, nutsdb.BucketStoreFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b, err = nil, nil
	}
	if err != nil {
		return 0, fmt.Errorf("layercache/disk: %w", err)
	}
	id, why := parseBuckets(b)
	if why == "" {
		return id, nil
	}
	if len(b) > 0 || len(segs) > 0 {
		log.Warn("layercache/disk: discarded all data: bucket file unusable", "dir", dir, "reason", why,
			"files_removed", len(segs))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("layercache/disk: %w", err)
	}
	for _, s := range segs {
		if err := os.Remove(s.path); err != nil {
			return 0, fmt.Errorf("layercache/disk: %w", err)
		}
	}
	return 0, nil
}

// parseBuckets returns the id of the layer's bucket in a bucket file, or
// why the file is not usable. nutsdb appends to the file at offset 0 after a
// reopen (it does not open it for appending), so the layer only ever uses a
// file in which its bucket already exists.
func parseBuckets(b []byte) (id uint64, why string) {
	ids := map[string]uint64{}
	for len(b) > 0 {
		if len(b) < bucketMetaSize {
			return 0, "truncated bucket record"
		}
		op := binary.LittleEndian.Uint16(b[4:])
		size := uint64(binary.LittleEndian.Uint32(b[6:]))
		if size < bucketPayloadMin || size > bucketPayloadMin+bucketNameMax || uint64(len(b)) < bucketMetaSize+size {
			return 0, "bad bucket record size"
		}
		rec := b[:bucketMetaSize+size]
		if crc32.ChecksumIEEE(rec[4:]) != binary.LittleEndian.Uint32(rec) {
			return 0, "bucket record checksum mismatch"
		}
		bid := binary.LittleEndian.Uint64(rec[bucketMetaSize:])
		ds := binary.LittleEndian.Uint16(rec[bucketMetaSize+8:])
		name := string(rec[bucketMetaSize+bucketPayloadMin:])
		key := strconv.Itoa(int(ds)) + "/" + name
		switch nutsdb.BucketOperation(op) {
		case nutsdb.BucketInsertOperation, nutsdb.BucketUpdateOperation:
			ids[key] = bid
		case nutsdb.BucketDeleteOperation:
			delete(ids, key)
		default:
			return 0, "unknown bucket operation"
		}
		b = b[len(rec):]
	}
	id = ids[strconv.Itoa(int(nutsdb.DataStructureBTree))+"/"+bucketName]
	if id == 0 {
		return 0, "no bucket for the layer"
	}
	return id, ""
}

// scan replays every data file from the start and returns the first damage
// found, or nil when the whole log is readable.
func (s *scanner) scan() (*damage, error) {
	s.records = make(map[string]replayed)
	s.seq, s.dataBytes, s.open = 0, 0, nil
	for i := range s.segs {
		d, err := s.scanSegment(i)
		if err != nil || d != nil {
			return d, err
		}
	}
	return nil, nil
}

func (s *scanner) scanSegment(i int) (*damage, error) {
	seg := s.segs[i]
	if seg.size == 0 && i < len(s.segs)-1 {
		// nutsdb sizes a segment as it creates it; only the newest can
		// be empty, after a crash between the two steps.
		return &damage{seg: i, why: "empty data file before the newest"}, nil
	}
	f, err := os.Open(seg.path)
	if err != nil {
		return nil, fmt.Errorf("layercache/disk: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	for {
		rem := seg.size - off
		if rem < minHeader {
			return s.endOfData(r, i, off, rem)
		}
		hb, err := r.Peek(int(min(rem, maxHeader)))
		if err != nil {
			return nil, fmt.Errorf("layercache/disk: reading %s: %w", seg.path, err)
		}
		h, n, ok := parseHeader(hb)
		if ok && h.end() {
			return s.endOfData(r, i, off, rem)
		}
		if !ok {
			return &damage{seg: i, off: off, end: off + int64(len(hb)), why: "malformed record header"}, nil
		}
		total := int64(n) + int64(h.ksz) + int64(h.vsz)
		if !h.plausible() {
			return &damage{seg: i, off: off, end: off + min(total, rem), why: "record of a kind the layer never writes"}, nil
		}
		if total > rem {
			// Segments are created at full size and nutsdb never starts
			// a record that does not fit: the file was cut short.
			return &damage{seg: i, off: off, why: "record runs past the end of its file"}, nil
		}
		if int64(cap(s.buf)) < total {
			s.buf = make([]byte, total)
		}
		rec := s.buf[:total]
		if _, err := io.ReadFull(r, rec); err != nil {
			return nil, fmt.Errorf("layercache/disk: reading %s: %w", seg.path, err)
		}
		if crc32.ChecksumIEEE(rec[4:]) != h.crc {
			return &damage{seg: i, off: off, end: off + total, why: "record checksum mismatch"}, nil
		}
		if s.open != nil && s.open.txID != h.txID {
			return &damage{seg: i, off: off, why: "transaction interrupted by another"}, nil
		}
		if s.open == nil {
			s.open = &openTx{seg: i, off: off, txID: h.txID}
		}
		tr := txRecord{
			key:  string(rec[n : int64(n)+int64(h.ksz)]),
			del:  h.flag == uint64(nutsdb.DataDeleteFlag),
			ours: h.bucket == s.bucketID,
			rec:  replayed{size: recordSize(int(h.ksz), int(h.vsz)), ts: h.ts, ttl: uint32(h.ttl)},
		}
		if tr.ours && !tr.del {
			// The value is at hand already: reading its tags here is what
			// lets the layer rebuild its tag index without a second pass
			// over the files.
			tr.rec.tags = internAll(s.tagsOf(rec[n:int64(n)+int64(h.ksz)], rec[int64(n)+int64(h.ksz):]), s.intern)
		}
		s.open.recs = append(s.open.recs, tr)
		if h.status == uint64(nutsdb.Committed) {
			s.commit()
		}
		off += total
	}
}

// commit applies the open transaction, as nutsdb does when it reaches a
// Committed record: the latest record of a key wins, a delete removes it.
func (s *scanner) commit() {
	for _, tr := range s.open.recs {
		s.dataBytes += tr.rec.size
		if !tr.ours {
			continue
		}
		if tr.del {
			delete(s.records, tr.key)
			continue
		}
		s.seq++
		tr.rec.seq = s.seq
		s.records[tr.key] = tr.rec
	}
	s.open = nil
}

// endOfData checks that nothing but zeros follows the end of a file's
// records. nutsdb stops reading a file at the first zero header, so a
// record hidden behind one would be silently lost.
func (s *scanner) endOfData(r *bufio.Reader, seg int, off, rem int64) (*damage, error) {
	zero, err := allZero(r, rem)
	if err != nil {
		return nil, fmt.Errorf("layercache/disk: reading %s: %w", s.segs[seg].path, err)
	}
	if !zero {
		return &damage{seg: seg, off: off, why: "data after the end of the records"}, nil
	}
	return nil, nil
}

// tornPage is the granularity at which a write interrupted by a signal
// stops: the kernel copies a write into the page cache a page at a time and
// checks for a fatal signal between pages. Larger pages are multiples of it.
const tornPage = 4096

// onlyTail reports whether d is the torn end of the log: a write cut short
// by a crash, which leaves the damaged record's bytes up to a page boundary
// and zeros from there on, with nothing after it in its file or in later
// files. Any other damage (a flipped bit, a file cut short, foreign bytes)
// is treated as damage in the middle of the log.
func (s *scanner) onlyTail(d *damage) (bool, error) {
	if d.end == 0 {
		return false, nil
	}
	seg := s.segs[d.seg]
	b, err := readFrom(seg.path, d.off)
	if err != nil {
		return false, err
	}
	written := d.off + int64(lastNonZero(b)+1) // bytes from here on are zero
	if boundary := (written + tornPage - 1) / tornPage * tornPage; boundary >= d.end {
		return false, nil // the record is there in full: not torn
	}
	for p := 1; p+minHeader <= len(b); p++ {
		// A record's first minHeader bytes are never all zero, so no record
		// starts early in a run of zeros: skip such runs.
		if b[p] == 0 {
			q := firstNonZero(b[p:])
			if q < 0 {
				break
			}
			if q >= minHeader {
				p += q - minHeader
				continue
			}
		}
		if validRecordAt(b[p:]) {
			return false, nil
		}
	}
	for _, later := range s.segs[d.seg+1:] {
		f, err := os.Open(later.path)
		if err != nil {
			return false, fmt.Errorf("layercache/disk: %w", err)
		}
		zero, err := allZero(bufio.NewReaderSize(f, 1<<20), later.size)
		f.Close()
		if err != nil {
			return false, fmt.Errorf("layercache/disk: reading %s: %w", later.path, err)
		}
		if !zero {
			return false, nil
		}
	}
	return true, nil
}

// cut discards the log from (seg, off) on: the rest of that file and every
// later file read as zeros afterwards, keeping their sizes (nutsdb expects
// segment-sized files and resumes writing at the cut).
func (s *scanner) cut(seg int, off int64, why string) error {
	s.log.Warn("layercache/disk: discarded the torn end of the log", "dir", s.dir,
		"file", filepath.Base(s.segs[seg].path), "offset", off, "reason", why)
	for i := seg; i < len(s.segs); i++ {
		from := int64(0)
		if i == seg {
			from = off
		}
		sg := s.segs[i]
		f, err := os.OpenFile(sg.path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("layercache/disk: %w", err)
		}
		// Shrinking and growing back turns the range into a hole that
		// reads as zeros, without writing them.
		err = f.Truncate(from)
		if err == nil {
			err = f.Truncate(sg.size)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("layercache/disk: cutting %s: %w", sg.path, err)
		}
	}
	return nil
}

// zeros is compared against to find out whether a block is all zero.
var zeros = make([]byte, 64<<10)

// allZero reads n bytes from r and reports whether all were zero.
func allZero(r *bufio.Reader, n int64) (bool, error) {
	for n > 0 {
		b, err := r.Peek(int(min(n, int64(r.Size()))))
		if len(b) == 0 && err != nil {
			if err == io.EOF {
				return true, nil // the file is shorter than its stat said
			}
			return false, err
		}
		for c := b; len(c) > 0; {
			k := min(len(c), len(zeros))
			if !bytes.Equal(c[:k], zeros[:k]) {
				return false, nil
			}
			c = c[k:]
		}
		_, _ = r.Discard(len(b))
		n -= int64(len(b))
	}
	return true, nil
}

// lastNonZero returns the index of the last non-zero byte of b, or -1.
func lastNonZero(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return i
		}
	}
	return -1
}

// firstNonZero returns the index of the first non-zero byte of b, or -1.
func firstNonZero(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return i
		}
	}
	return -1
}

// readFrom returns the contents of path from off to its end.
func readFrom(path string, off int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("layercache/disk: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("layercache/disk: %w", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("layercache/disk: reading %s: %w", path, err)
	}
	return b, nil
}
