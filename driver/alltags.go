package driver

import "context"

// AllTagsInvalidator is implemented by layers that can remove the entries
// carrying every one of a set of tags (an intersection), besides those
// carrying any of them ([TagInvalidator]). Without it the cache removes
// every entry carrying the first of the tags: more than asked, never less.
type AllTagsInvalidator interface {
	Layer
	// InvalidateAllTags removes every entry that carries all of tags.
	InvalidateAllTags(ctx context.Context, tags ...string) error
}
