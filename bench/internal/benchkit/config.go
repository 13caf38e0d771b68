package benchkit

import (
	"fmt"
	"reflect"
)

// FillZero sets every field of *cfg that is zero to the same field of defaults, but for the
// fields named in keep: those whose zero means something (no warmup, a phase turned off). A
// name in keep that *cfg does not have panics: it is a typo.
func FillZero[C any](cfg *C, defaults C, keep ...string) {
	v, d := reflect.ValueOf(cfg).Elem(), reflect.ValueOf(defaults)
	kept := map[string]bool{}
	for _, name := range keep {
		if _, ok := v.Type().FieldByName(name); !ok {
			panic(fmt.Sprintf("benchkit: FillZero: %s has no field %s", v.Type(), name))
		}
		kept[name] = true
	}
	for i := range v.NumField() {
		if f := v.Field(i); !kept[v.Type().Field(i).Name] && f.CanSet() && f.IsZero() {
			f.Set(d.Field(i))
		}
	}
}
