package sdk

import (
	"strings"
	"testing"
)

// FuzzConfigFromEnv feeds arbitrary environment values to the parsing and
// validation of Config: they never panic, and every error names the
// variable or option at fault.
func FuzzConfigFromEnv(f *testing.F) {
	for _, s := range []string{"", "1", "0.5", "true", "http://k@h:8410/1", "h:99999", "http://[::1", "ftp://x", "1,0.5", "NaN", "-1s", "debug+2"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		env := map[string]string{
			"VIGIL_SERVICE": a, "VIGIL_GRADE": b, "VIGIL_COLLECTOR": a, "VIGIL_DUMPS_DSN": b,
			"VIGIL_TRACES_SAMPLE_RATE": a, "VIGIL_LOG_LEVEL": b, "VIGIL_LOGS_QUEUE_BYTES": a,
			"VIGIL_LOGS_FLUSH_INTERVAL": b, "VIGIL_METRICS_BUCKETS": a, "VIGIL_OTLP_PROTOCOL": b, "VIGIL_LOGS_SHIP": a,
			"VIGIL_DUMPS_SPOOL_MAX_BYTES": b, "VIGIL_DUMPS_WATCH": a, "VIGIL_DUMPS_IN_APP": b,
		}
		c, err := Config{}.fromEnv(func(k string) string { return env[k] })
		if err == nil {
			_, err = c.defaults()
		}
		if err != nil && !strings.Contains(err.Error(), "VIGIL_") {
			t.Errorf("error %q names no option", err)
		}
	})
}
