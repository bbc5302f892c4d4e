//go:build !unix

package redis

import "testing"

// favourRedis does nothing where processes have no nice value.
func favourRedis(testing.TB, ...int) {}
