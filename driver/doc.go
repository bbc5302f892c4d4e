// Package driver defines what a layercache layer, invalidation bus and
// single-flight coordinator implement, the [Entry] they store, and the name
// registry that lets a configuration file refer to drivers by name.
//
// It is to layercache what database/sql/driver is to database/sql: users of
// the cache seldom import it; authors of drivers always do. It imports nothing
// else of layercache.
//
// A layer implements the small [Layer] interface. Everything else a layer can
// do better than the generic fallback is an optional interface discovered by
// type assertion: [BatchGetter], [BatchSetter], [Clearer], [TagInvalidator],
// [Pinger], [InProcess], [Shared], [ConditionalDeleter], [Timeouter],
// [AllTagsInvalidator], [PrefixInvalidator], [Expirer], [Generations], [Ranger],
// [Namer] and [Aser]. The fallback for each one lives
// in one place in the root package and is documented on the interface.
//
// Drivers register themselves from an init function:
//
//	func init() { driver.Register("memory", memoryDriver{}) }
//
// so that a program selects them with a blank import.
package driver
