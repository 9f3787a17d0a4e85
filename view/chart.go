package view

import (
	"html/template"
	"math"
	"strconv"
	"strings"
)

// The charts are inline SVG written on the server: no front-end build, no script, and nothing
// the Content-Security-Policy has to allow. Every text that reaches them is escaped, and classes
// are reduced to [a-z0-9-], since labels can carry indicator data.

// Bar is one bar of a bar chart.
type Bar struct {
	Label string
	Value float64
	// Class styles the bar (a severity, say); reduced to [a-z0-9-].
	Class string
}

// Point is one point of a line chart; Missing points break the line (no data, as opposed to 0).
type Point struct {
	Label   string
	Value   float64
	Missing bool
}

// ChartOptions size a chart.
type ChartOptions struct {
	Width, Height int
	// Max is the top of the value axis; 0 takes the largest value.
	Max float64
	// Percent shows values (0-1) as percentages.
	Percent bool
	// LabelEvery shows every n-th label under the bars or points (1 when 0).
	LabelEvery int
	// Title is the chart's accessible name.
	Title string
}

const (
	chartTop    = 8
	chartBottom = 16
	chartLeft   = 34
	chartRight  = 4
)

func (o ChartOptions) size() (w, h float64) {
	w, h = float64(o.Width), float64(o.Height)
	if w < 80 {
		w = 320
	}
	if h < 40 {
		h = 120
	}
	return w, h
}

func (o ChartOptions) top(values []float64) float64 {
	m := o.Max
	if m <= 0 {
		for _, v := range values {
			if v > m && !math.IsInf(v, 0) {
				m = v
			}
		}
	}
	if m <= 0 || math.IsNaN(m) {
		m = 1
	}
	return m
}

// BarChart draws bars side by side, scaled so that Max (or the largest value) fills the height.
func BarChart(bars []Bar, o ChartOptions) template.HTML {
	w, h := o.size()
	var b strings.Builder
	openSVG(&b, w, h, o.Title)
	if len(bars) == 0 {
		noData(&b, w, h)
		return closeSVG(&b)
	}
	values := make([]float64, len(bars))
	for i, bar := range bars {
		values[i] = bar.Value
	}
	top := o.top(values)
	axis(&b, w, h, top, o.Percent)
	plotW, plotH := w-chartLeft-chartRight, h-chartTop-chartBottom
	slot := plotW / float64(len(bars))
	gap := math.Min(2, slot/4)
	every := max(o.LabelEvery, 1)
	for i, bar := range bars {
		v := clampValue(bar.Value, top)
		bh := plotH * v / top
		x := chartLeft + float64(i)*slot + gap/2
		class := "bar"
		if c := cssClass(bar.Class); c != "" {
			class += " " + c
		}
		b.WriteString(`<rect class="` + class + `" x="` + f1(x) + `" y="` + f1(chartTop+plotH-bh) + `" width="` + f1(slot-gap) +
			`" height="` + f1(bh) + `"><title>` + esc(bar.Label) + `: ` + esc(format(bar.Value, o.Percent)) + `</title></rect>`)
		if i%every == 0 {
			b.WriteString(`<text class="label" x="` + f1(x+(slot-gap)/2) + `" y="` + f1(h-4) + `" text-anchor="middle">` + esc(bar.Label) + `</text>`)
		}
	}
	return closeSVG(&b)
}

// LineChart draws points joined by lines; a missing point breaks the line, and a point alone
// between gaps is drawn as a dot.
func LineChart(points []Point, o ChartOptions) template.HTML {
	w, h := o.size()
	var b strings.Builder
	openSVG(&b, w, h, o.Title)
	present := 0
	values := make([]float64, 0, len(points))
	for _, p := range points {
		if !p.Missing {
			present++
			values = append(values, p.Value)
		}
	}
	if present == 0 {
		noData(&b, w, h)
		return closeSVG(&b)
	}
	top := o.top(values)
	axis(&b, w, h, top, o.Percent)
	plotW, plotH := w-chartLeft-chartRight, h-chartTop-chartBottom
	step := plotW
	if len(points) > 1 {
		step = plotW / float64(len(points)-1)
	}
	xy := func(i int, v float64) (float64, float64) {
		x := float64(chartLeft)
		if len(points) > 1 {
			x += float64(i) * step
		} else {
			x += plotW / 2
		}
		return x, chartTop + plotH - plotH*clampValue(v, top)/top
	}
	var run []string
	flush := func(last int) {
		switch len(run) {
		case 0:
		case 1:
			x, y := xy(last, points[last].Value)
			b.WriteString(`<circle class="dot" cx="` + f1(x) + `" cy="` + f1(y) + `" r="2"/>`)
		default:
			b.WriteString(`<polyline class="line" fill="none" points="` + strings.Join(run, " ") + `"/>`)
		}
		run = run[:0]
	}
	every := max(o.LabelEvery, 1)
	for i, p := range points {
		if p.Missing {
			flush(i - 1)
		} else {
			x, y := xy(i, p.Value)
			run = append(run, f1(x)+","+f1(y))
			b.WriteString(`<circle class="hit" cx="` + f1(x) + `" cy="` + f1(y) + `" r="3"><title>` + esc(p.Label) + `: ` +
				esc(format(p.Value, o.Percent)) + `</title></circle>`)
		}
		if i%every == 0 {
			x, _ := xy(i, 0)
			b.WriteString(`<text class="label" x="` + f1(x) + `" y="` + f1(h-4) + `" text-anchor="middle">` + esc(p.Label) + `</text>`)
		}
	}
	flush(len(points) - 1)
	return closeSVG(&b)
}

// Sparkline draws values (oldest first) as a small line without axes or labels.
func Sparkline(values []float64, width, height int, maxValue float64) template.HTML {
	w, h := float64(max(width, 20)), float64(max(height, 8))
	var b strings.Builder
	b.WriteString(`<svg class="sparkline" xmlns="http://www.w3.org/2000/svg" width="` + f1(w) + `" height="` + f1(h) +
		`" viewBox="0 0 ` + f1(w) + ` ` + f1(h) + `" role="img" aria-label="score history">`)
	if len(values) > 0 {
		top := ChartOptions{Max: maxValue}.top(values)
		pts := make([]string, len(values))
		for i, v := range values {
			x := w / 2
			if len(values) > 1 {
				x = 1 + (w-2)*float64(i)/float64(len(values)-1)
			}
			y := 1 + (h-2)*(1-clampValue(v, top)/top)
			pts[i] = f1(x) + "," + f1(y)
		}
		if len(pts) == 1 {
			pts = append(pts, pts[0])
		}
		b.WriteString(`<polyline class="line" fill="none" points="` + strings.Join(pts, " ") + `"/>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and escaped text only
}

func openSVG(b *strings.Builder, w, h float64, title string) {
	b.WriteString(`<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ` + f1(w) + ` ` + f1(h) +
		`" role="img" aria-label="` + esc(title) + `"><title>` + esc(title) + `</title>`)
}

func closeSVG(b *strings.Builder) template.HTML {
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and escaped text only
}

func noData(b *strings.Builder, w, h float64) {
	b.WriteString(`<text class="nodata" x="` + f1(w/2) + `" y="` + f1(h/2) + `" text-anchor="middle">no data</text>`)
}

func axis(b *strings.Builder, w, h, top float64, percent bool) {
	base := h - chartBottom
	b.WriteString(`<line class="axis" x1="` + f1(chartLeft) + `" y1="` + f1(base) + `" x2="` + f1(w-chartRight) + `" y2="` + f1(base) + `"/>`)
	b.WriteString(`<text class="tick" x="` + f1(chartLeft-4) + `" y="` + f1(chartTop+4) + `" text-anchor="end">` + esc(format(top, percent)) + `</text>`)
	b.WriteString(`<text class="tick" x="` + f1(chartLeft-4) + `" y="` + f1(base) + `" text-anchor="end">0</text>`)
}

func clampValue(v, top float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return math.Min(v, top)
}

// f1 formats a coordinate with one decimal, without a trailing ".0".
func f1(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	s := strconv.FormatFloat(math.Round(v*10)/10, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0")
}

func format(v float64, percent bool) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	if percent {
		return strconv.FormatFloat(math.Round(v*1000)/10, 'f', -1, 64) + "%"
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// cssClass keeps [a-z0-9-] and spaces of a class list.
func cssClass(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == ' ' {
			return r
		}
		return -1
	}, strings.ToLower(s))
}
