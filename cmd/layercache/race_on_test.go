//go:build race

package main

// raceBuild builds the command under test with the race detector when the
// tests run with it.
const raceBuild = true
