// Package drivertest is the conformance suite every layercache layer runs.
//
// A driver's tests call [RunLayerTests] with a function that opens a fresh,
// empty layer:
//
//	func TestConformance(t *testing.T) {
//		drivertest.RunLayerTests(t, func(t *testing.T) driver.Layer {
//			l, err := memory.New(memory.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return l
//		}, drivertest.Options{})
//	}
//
// The suite checks what the cache relies on and cannot check for itself:
// every field of a [driver.Entry] survives a round trip (a decoded value in
// layers that are [driver.InProcess], the payload and codec elsewhere),
// a miss is nil, nil, expiry is honoured to the nanosecond, large values,
// deletes, concurrent use without torn entries, corrupt stored bytes that
// come back as an error or a miss, contexts that are already done, and the
// agreement of every optional fast path ([driver.BatchGetter],
// [driver.BatchSetter], [driver.Clearer], [driver.TagInvalidator], ...) with
// the behaviour of the plain methods. Each behaviour is a subtest named for
// it, so a driver author can run one with -run.
package drivertest
