// Package model holds the Go types of the gqlcache test schema.
package model

import "time"

// Book is bound by hand so that Book.author and Book.reviews get resolvers
// and the struct carries the values that are hard to round-trip.
type Book struct {
	ID          string
	Title       string
	Genre       Genre
	Price       *float64
	Sold        int64
	Labels      []string
	PublishedAt time.Time
	AuthorID    string
}

func (*Book) IsSearchResult() {}

// Vault hides its code from every encoder on purpose.
type Vault struct {
	ID   string
	code string
}

// NewVault returns a vault holding code.
func NewVault(id, code string) *Vault { return &Vault{ID: id, code: code} }

// Code is read by the Vault.code resolver.
func (v *Vault) Code() string { return v.code }
