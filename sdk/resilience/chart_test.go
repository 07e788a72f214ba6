package resilience

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// chartsDir is where the simulations write their SVG charts: the
// directory in VIGIL_RESILIENCE_CHARTS (docs/resilience is the committed
// copy, see docs/resilience.md), or nowhere when unset.
func chartsDir() string { return os.Getenv("VIGIL_RESILIENCE_CHARTS") }

type series struct {
	name, color string
	dashed      bool
	pts         [][2]float64
}

type chart struct {
	file, title, xLabel, yLabel string
	xMax, yMax                  float64
	series                      []series
	// marks are vertical lines (x, label): a failure starting, ending.
	marks []mark
}

type mark struct {
	x     float64
	label string
}

// niceStep returns a round grid step for a range.
func niceStep(r float64) float64 {
	raw := r / 5
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}

// write renders c as SVG into chartsDir; a no-op when it is unset.
func (c chart) write(t *testing.T) {
	t.Helper()
	dir := chartsDir()
	if dir == "" {
		return
	}
	const w, h, l, r, top, bot = 760.0, 360.0, 70.0, 170.0, 40.0, 50.0
	pw, ph := w-l-r, h-top-bot
	x := func(v float64) float64 { return l + pw*v/c.xMax }
	y := func(v float64) float64 { return top + ph*(1-min(v, c.yMax)/c.yMax) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", l, c.title)
	for v, s := 0.0, niceStep(c.yMax); v <= c.yMax+s/1e6; v += s {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", l, l+pw, y(v), y(v), l-6, y(v)+4, fmtTick(v))
	}
	for v, s := 0.0, niceStep(c.xMax); v <= c.xMax+s/1e6; v += s {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x(v), x(v), top, top+ph, x(v), top+ph+16, fmtTick(v))
	}
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", l, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", l+pw/2, h-10, c.xLabel)
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+ph/2, c.yLabel)
	for _, m := range c.marks {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" stroke="#999" stroke-dasharray="2 3"/><text x="%.1f" y="%.0f" fill="#666" font-size="10">%s</text>`+"\n", x(m.x), x(m.x), top, top+ph, x(m.x)+3, top+12, m.label)
	}
	for i, s := range c.series {
		var p strings.Builder
		for j, pt := range s.pts {
			fmt.Fprintf(&p, "%s%.1f,%.1f ", map[bool]string{true: "M", false: "L"}[j == 0], x(pt[0]), y(pt[1]))
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.TrimSpace(p.String()), s.color, dash)
		ly := top + 10 + 20*float64(i)
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.0f" y2="%.0f" stroke="%s" stroke-width="2"%s/><text x="%.0f" y="%.0f">%s</text>`+"\n", l+pw+10, l+pw+30, ly, ly, s.color, dash, l+pw+36, ly+4, s.name)
	}
	b.WriteString("</svg>\n")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, c.file)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", p)
}

// pts places per-second values at the middle of their second.
func pts(v []float64) [][2]float64 {
	p := make([][2]float64, len(v))
	for i, y := range v {
		p[i] = [2]float64{float64(i) + 0.5, y}
	}
	return p
}

// avg is the mean of v[from:to].
func avg(v []float64, from, to int) float64 {
	s := 0.0
	for _, x := range v[from:to] {
		s += x
	}
	return s / float64(to-from)
}
