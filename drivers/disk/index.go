package disk

// item is the layer's in-memory record of one live entry: enough to answer a
// miss or an expired key without touching the disk, to account for the bytes
// the entry holds and to evict in write order.
type item struct {
	key      string // the caller's key (without the storage prefix)
	size     int64  // bytes charged against MaxSize, see recordSize
	deadline int64  // Unix nanoseconds after which the entry is not served
	ts       uint64 // nutsdb timestamp (Unix ms) of the record now stored

	prev, next *item // write order: index.head is the oldest
}

// index maps keys to items and keeps them in the order they were last
// written, oldest first. It is not safe for concurrent use: the layer guards
// it (see Layer.mu).
type index struct {
	items      map[string]*item
	head, tail *item
	live       int64 // sum of item.size
}

func newIndex() *index {
	return &index{items: make(map[string]*item)}
}

// put adds it as the newest entry, replacing any item under the same key.
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
}

// reset empties the index.
func (x *index) reset() {
	x.items = make(map[string]*item)
	x.head, x.tail, x.live = nil, nil, 0
}
