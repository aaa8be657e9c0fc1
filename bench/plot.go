package bench

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A plot of p99 latency against offered rate, written as SVG by the
// benchmark itself so that the picture in docs/benchmarks.md is the run's
// own. A few dozen lines of SVG need no plotting library.

// marker is a vertical line on the plot: a rate worth comparing with.
type marker struct {
	Rate  float64
	Label string
	Color string
}

// plot is what a p99-against-rate chart shows.
type plot struct {
	Title   string
	Points  []point
	Limit   float64 // the p99 limit, ms
	Markers []marker
}

const (
	plotW, plotH                   = 720, 420
	padL, padR, padT, padB float64 = 70, 20, 40, 50
)

// svg renders the plot. The y axis is logarithmic: past the highest rate
// the system sustains, p99 grows from milliseconds to seconds.
func (p plot) svg() string {
	pts := slices.Clone(p.Points)
	slices.SortFunc(pts, func(a, b point) int { return cmpFloat(a.Rate, b.Rate) })
	xMax := 0.0
	yMax := math.Max(p.Limit*2, 10)
	for _, pt := range pts {
		xMax = math.Max(xMax, pt.Rate)
		yMax = math.Max(yMax, pt.P99)
	}
	for _, m := range p.Markers {
		xMax = math.Max(xMax, m.Rate)
	}
	xMax = niceCeil(xMax * 1.08)
	yLo, yHi := 0.0, math.Ceil(math.Log10(yMax)) // 1 ms .. 10^yHi ms
	w, h := plotW-padL-padR, plotH-padT-padB
	x := func(r float64) float64 { return padL + w*r/xMax }
	y := func(v float64) float64 {
		l := math.Log10(math.Max(v, 1))
		return padT + h*(1-(l-yLo)/(yHi-yLo))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%g" y="22" font-size="14" font-weight="bold">%s</text>`+"\n", padL, html.EscapeString(p.Title))
	// Grid and ticks.
	for e := yLo; e <= yHi; e++ {
		v := math.Pow(10, e)
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", padL, y(v), padL+w, y(v))
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-6, y(v)+4, msLabel(v))
	}
	step := niceCeil(xMax / 6)
	for r := 0.0; r <= xMax+1e-9; r += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#ddd"/>`+"\n", x(r), padT, x(r), padT+h)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x(r), padT+h+16, thousands(r))
	}
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#333"/>`+"\n", padL, padT, w, h)
	fmt.Fprintf(&b, `<text x="%g" y="%d" text-anchor="middle">offered rate (per second)</text>`+"\n", padL+w/2, plotH-10)
	fmt.Fprintf(&b, `<text transform="translate(16 %g) rotate(-90)" text-anchor="middle">p99 latency (ms, log scale)</text>`+"\n", padT+h/2)
	// The limit and the markers.
	fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#c00" stroke-dasharray="6 4"/>`+"\n", padL, y(p.Limit), padL+w, y(p.Limit))
	fmt.Fprintf(&b, `<text x="%g" y="%.1f" fill="#c00" text-anchor="end">p99 limit %s</text>`+"\n", padL+w-4, y(p.Limit)-5, msLabel(p.Limit))
	for i, m := range p.Markers {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="%s" stroke-dasharray="3 3"/>`+"\n", x(m.Rate), padT, x(m.Rate), padT+h, m.Color)
		tx, anchor := x(m.Rate)+4, "start"
		if tx > padL+w*0.6 { // label to the left of a line in the right part
			tx, anchor = x(m.Rate)-4, "end"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" fill="%s" text-anchor="%s">%s</text>`+"\n", tx, padT+14+14*float64(i), m.Color, anchor, html.EscapeString(m.Label))
	}
	// The measured points, joined in rate order.
	var path []string
	for _, pt := range pts {
		path = append(path, fmt.Sprintf("%.1f,%.1f", x(pt.Rate), y(pt.P99)))
	}
	fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#246"/>`+"\n", strings.Join(path, " "))
	for _, pt := range pts {
		fill := "#2a2"
		if !pt.Pass {
			fill = "#c22"
		}
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s/s: p99 %s</title></circle>`+"\n",
			x(pt.Rate), y(pt.P99), fill, thousands(pt.Rate), msLabel(pt.P99))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// write saves the plot at path, creating its directory.
func (p plot) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := os.WriteFile(path, []byte(p.svg()), 0o644); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

func msLabel(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%g s", v/1000)
	}
	return fmt.Sprintf("%g ms", round(v, 1))
}

// thousands formats a whole number with thousands separators: 23,500.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
