package sentry

import (
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// Sentry's clock rules, as its ingestion applies them to event
// timestamps.
const (
	// MinClockDrift is the smallest difference between the sender's
	// clock (the envelope's sent_at) and the arrival time that is taken
	// as a wrong clock and removed from the event's timestamp.
	MinClockDrift = 55 * time.Minute
	// MaxFuture and MaxPast bound an event's timestamp around its arrival;
	// beyond them it happened when it arrived.
	MaxFuture = time.Minute
	MaxPast   = 30 * 24 * time.Hour
)

// FixTimestamp corrects d.Timestamp for the sender's clock: when sentAt
// (the envelope header's sent_at, RFC 3339; "" when absent) is
// MinClockDrift or more away from received, the difference is removed;
// a timestamp still more than MaxFuture ahead of received or MaxPast
// behind it becomes received. A wrong clock would otherwise put an
// issue's first or last seen years away.
func FixTimestamp(d *model.Dump, sentAt string, received time.Time) {
	ts := time.Unix(0, d.Timestamp)
	if sentAt != "" {
		if sent, err := time.Parse(time.RFC3339Nano, sentAt); err == nil {
			if drift := received.Sub(sent); drift >= MinClockDrift || drift <= -MinClockDrift {
				ts = ts.Add(drift)
			}
		}
	}
	if ts.After(received.Add(MaxFuture)) || ts.Before(received.Add(-MaxPast)) {
		ts = received
	}
	d.Timestamp = ts.UnixNano()
}
