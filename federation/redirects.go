package federation

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/scrape"
)

// refusedTargets reports, at each collection, the scrape targets whose last
// scrape failed because the target answered with a redirect, which the
// federation does not follow (applyScrapeDefaults). Prometheus' scrape
// loop keeps only the last error of a target, so this is a gauge of
// targets, not a count of scrapes.
type refusedTargets struct {
	scrapes func() *scrape.Manager
	desc    *prometheus.Desc
}

const refusedTargetsHelp = "Scrape targets whose last scrape was refused, by reason: redirect (the target answered with a 3xx; redirects are not followed, so a target cannot point the federation at another host). The target's health and lastError in /api/v1/targets say the same."

func newRefusedTargets(scrapes func() *scrape.Manager) *refusedTargets {
	return &refusedTargets{scrapes: scrapes, desc: prometheus.NewDesc("vigil_federation_scrape_targets_refused",
		refusedTargetsHelp, []string{"reason"}, nil)}
}

func (c *refusedTargets) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *refusedTargets) Collect(ch chan<- prometheus.Metric) {
	n := 0
	if m := c.scrapes(); m != nil {
		for _, ts := range m.TargetsActive() {
			for _, t := range ts {
				if isRedirect(t.LastError()) {
					n++
				}
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), "redirect")
}

// isRedirect reports whether err is Prometheus' scrape error for a 3xx
// answer ("server returned HTTP status 302 Found").
func isRedirect(err error) bool {
	if err == nil {
		return false
	}
	s, ok := strings.CutPrefix(err.Error(), "server returned HTTP status ")
	return ok && len(s) >= 3 && s[0] == '3'
}
