package layercache

import (
	"reflect"
	"testing"
	"time"
	"unsafe"
)

// detached lists entryOptions' fields one by one; a field added later and
// forgotten there would be lost by background refreshes.
func TestEntryOptions_DetachedCopiesEveryField(t *testing.T) {
	var o entryOptions
	v := reflect.ValueOf(&o).Elem()
	for i := range v.NumField() {
		f := reflect.NewAt(v.Field(i).Type(), unsafe.Pointer(v.Field(i).UnsafeAddr())).Elem()
		switch f.Kind() {
		case reflect.Int64:
			f.SetInt(int64(time.Second) * int64(i+1))
		case reflect.Float64:
			f.SetFloat(0.5)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"t"}))
		case reflect.Int:
			f.SetInt(int64(i + 1))
		default:
			t.Fatalf("field %s of kind %v: teach this test (and detached) about it", v.Type().Field(i).Name, f.Kind())
		}
	}
	d := o.detached()
	if !reflect.DeepEqual(*d, o) {
		t.Fatalf("detached() = %+v, want %+v", *d, o)
	}
	if &d.tags[0] == &o.tags[0] {
		t.Fatal("detached() shares its tags with the original")
	}
}

func TestEntryOptions_UntilBoundary(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	now := time.Date(2026, 12, 2, 22, 40, 0, 0, paris)
	for _, tc := range []struct {
		interval time.Duration
		loc      *time.Location
		want     time.Duration
	}{
		{24 * time.Hour, paris, 80 * time.Minute},                           // until midnight in Paris
		{time.Hour, paris, 20 * time.Minute},                                // the top of the hour
		{15 * time.Minute, paris, 5 * time.Minute},                          // the next quarter
		{7 * time.Hour, paris, 80 * time.Minute},                            // 21:00 passed; the next would be 28:00, so midnight
		{24 * time.Hour, nil, 24*time.Hour - 21*time.Hour - 40*time.Minute}, // midnight UTC (21:40 UTC now)
	} {
		o := entryOptions{align: tc.interval, alignIn: locations.index(tc.loc)}
		if got := o.untilBoundary(now); got != tc.want {
			t.Errorf("interval %v in %v: %v until the boundary, want %v", tc.interval, tc.loc, got, tc.want)
		}
	}
}
