package awsjson

import (
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRoundTrip requires decode(encode(x)) == x for a fully populated input and output of
// every operation of every service.
func TestRoundTrip(t *testing.T) {
	for _, c := range clients {
		codec := Codec{Service: c.service, Strict: true}
		for _, o := range operations(c.client) {
			for _, typ := range []reflect.Type{o.input, o.output} {
				t.Run(string(c.service)+"/"+typ.Name(), func(t *testing.T) {
					want := filled(typ)
					data, err := codec.Marshal(want)
					if err != nil {
						t.Fatalf("Marshal: %v", err)
					}
					got := reflect.New(typ).Interface()
					if err := codec.Unmarshal(data, got); err != nil {
						t.Fatalf("Unmarshal: %v\n%s", err, data)
					}
					if diff := cmp.Diff(got, want, cmpOpts(want)); diff != "" {
						t.Errorf("decode(encode(x)) differs (-got +want):\n%s", diff)
					}
				})
			}
		}
	}
}
