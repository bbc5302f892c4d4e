package disk

// item is the layer's in-memory record of one live entry: enough to answer a
// miss or an expired key without touching the disk, to account for the bytes
// the entry holds, to evict in write order and to find the entry by tag.
type item struct {
	key      string   // the caller's key (without the storage prefix)
	tags     []string // the entry's tags as written (shared, never modified); may repeat
	size     int64    // bytes charged against MaxSize, see recordSize
	deadline int64    // Unix nanoseconds after which the entry is not served
	ts       uint64   // nutsdb timestamp (Unix ms) of the record now stored

	prev, next *item // write order: index.head is the oldest
}

// index maps keys to items, keeps them in the order they were last written,
// oldest first, and maps each tag to the keys whose current entry carries
// it. It is not safe for concurrent use: the layer guards it (see
// Layer.mu).
//
// Every change goes through put, remove and reset, which keep the tag map in
// step with the items: a tag maps exactly to the keys of the items that list
// it, and a tag no item lists is absent, so the map never outgrows the live
// entries.
type index struct {
	items      map[string]*item
	tags       map[string]map[string]struct{} // tag -> keys of the items carrying it
	head, tail *item
	live       int64 // sum of item.size
}

func newIndex() *index {
	return &index{items: make(map[string]*item), tags: make(map[string]map[string]struct{})}
}

// put adds it as the newest entry, replacing any item under the same key
// together with that item's tags.
func (x *index) put(it *item) {
	if old := x.items[it.key]; old != nil {
		x.remove(old)
	}
	x.items[it.key] = it
	x.live += it.size
	it.prev, it.next = x.tail, nil
	if x.tail != nil {
		x.tail.next = it
	} else {
		x.head = it
	}
	x.tail = it
	for _, t := range it.tags {
		keys := x.tags[t]
		if keys == nil {
			keys = make(map[string]struct{})
			x.tags[t] = keys
		}
		keys[it.key] = struct{}{}
	}
}

// remove takes it out of the index. it must be in the index.
func (x *index) remove(it *item) {
	delete(x.items, it.key)
	x.live -= it.size
	if it.prev != nil {
		it.prev.next = it.next
	} else {
		x.head = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	} else {
		x.tail = it.prev
	}
	it.prev, it.next = nil, nil
	for _, t := range it.tags {
		if keys := x.tags[t]; keys != nil {
			delete(keys, it.key)
			if len(keys) == 0 {
				// Dropping the emptied set, rather than keeping it for
				// the tag's next use, is what bounds the map by the
				// live entries when tags are short-lived (per user,
				// per request).
				delete(x.tags, t)
			}
		}
	}
}

// reset empties the index.
func (x *index) reset() {
	x.items = make(map[string]*item)
	x.tags = make(map[string]map[string]struct{})
	x.head, x.tail, x.live = nil, nil, 0
}

// tagged returns the keys whose entries carry at least one of tags, each
// once, in no particular order.
func (x *index) tagged(tags []string) []string {
	n := 0
	for _, t := range tags {
		n += len(x.tags[t])
	}
	keys := make([]string, 0, n)
	if len(tags) == 1 {
		for k := range x.tags[tags[0]] {
			keys = append(keys, k)
		}
		return keys
	}
	seen := make(map[string]struct{}, n)
	for _, t := range tags {
		for k := range x.tags[t] {
			if _, dup := seen[k]; !dup {
				seen[k] = struct{}{}
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// carries reports whether the entry now stored under key carries one of
// tags.
func (x *index) carries(key string, tags []string) bool {
	for _, t := range tags {
		if _, ok := x.tags[t][key]; ok {
			return true
		}
	}
	return false
}
