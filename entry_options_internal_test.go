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
