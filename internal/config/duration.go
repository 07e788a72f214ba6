package config

import (
	"time"

	"github.com/prometheus/common/model"
)

// Duration is a flag value that accepts Prometheus-style durations with
// days and weeks (7d, 2w, 1h30m) as well as Go's (1.5h).
type Duration time.Duration

func (d *Duration) String() string {
	if *d == 0 {
		return "0"
	}
	return model.Duration(*d).String()
}

// Set parses v.
func (d *Duration) Set(v string) error {
	if pd, err := model.ParseDuration(v); err == nil {
		*d = Duration(pd)
		return nil
	}
	gd, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	*d = Duration(gd)
	return nil
}
