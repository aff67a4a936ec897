package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration that the config file writes as a Go duration
// string ("30s", "5m", "1h30m"). Bare numbers are refused: a number without a
// unit is ambiguous.
type Duration struct {
	time.Duration
}

// D returns d as a Duration; a helper for literals.
func D(d time.Duration) Duration { return Duration{d} }

// MarshalJSON writes d as a duration string, without trailing zero units
// ("5m", not "5m0s").
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.String())
}

// String is the shortest form of d that time.ParseDuration reads back.
func (d Duration) String() string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("must be a duration string such as \"30s\" or \"5m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("must be a duration such as \"30s\" or \"5m\", got %q", s)
	}
	d.Duration = v
	return nil
}
