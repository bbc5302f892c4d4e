// Package model holds the bookshop's Go types.
package model

// Book is written by hand so that its reviews and rating have resolvers.
type Book struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Author string `json:"author"`
}
