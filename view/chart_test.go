package view

import (
	"encoding/xml"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var rectHeight = regexp.MustCompile(`<rect class="([^"]*)" x="([^"]+)" y="([^"]+)" width="([^"]+)" height="([^"]+)"`)

// wellFormed checks that an SVG fragment parses as XML.
func wellFormed(t *testing.T, svg string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := d.Token()
		if err != nil {
			if err.Error() == "EOF" {
				return
			}
			t.Fatalf("SVG is not well-formed: %v\n%s", err, svg)
		}
	}
}

func TestBarChartScalesBarsToTheLargest(t *testing.T) {
	svg := string(BarChart([]Bar{{Label: "a", Value: 1}, {Label: "b", Value: 2}, {Label: "c", Value: 4, Class: "sev-critical"}, {Label: "d", Value: 0}},
		ChartOptions{Width: 200, Height: 100, Title: "test"}))
	wellFormed(t, svg)
	m := rectHeight.FindAllStringSubmatch(svg, -1)
	if len(m) != 4 {
		t.Fatalf("%d bars, want 4", len(m))
	}
	heights := make([]float64, 4)
	for i, g := range m {
		heights[i], _ = strconv.ParseFloat(g[5], 64)
		y, _ := strconv.ParseFloat(g[3], 64)
		if math.Abs(y+heights[i]-(100-chartBottom)) > 0.11 {
			t.Errorf("bar %d does not stand on the axis: y %v height %v", i, y, heights[i])
		}
	}
	plot := float64(100 - chartTop - chartBottom)
	if heights[2] != plot || math.Abs(heights[1]-plot/2) > 0.1 || math.Abs(heights[0]-plot/4) > 0.1 || heights[3] != 0 {
		t.Errorf("heights %v, want %v, %v/2, %v/4, 0", heights, plot, plot, plot)
	}
	if m[2][1] != "bar sev-critical" {
		t.Errorf("class %q", m[2][1])
	}
	for _, want := range []string{`aria-label="test"`, "<title>c: 4</title>", `>4</text>`} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
}

func TestBarChartFixedMaxAndPercent(t *testing.T) {
	svg := string(BarChart([]Bar{{Label: "cip", Value: 0.85, Class: "quota warn"}, {Label: "over", Value: 1.7}}, ChartOptions{Width: 200, Height: 100, Max: 1, Percent: true}))
	wellFormed(t, svg)
	m := rectHeight.FindAllStringSubmatch(svg, -1)
	plot := float64(100 - chartTop - chartBottom)
	h0, _ := strconv.ParseFloat(m[0][5], 64)
	h1, _ := strconv.ParseFloat(m[1][5], 64)
	if math.Abs(h0-0.85*plot) > 0.1 || h1 != plot {
		t.Errorf("heights %v %v: want 85%% and clamped to 100%% of %v", h0, h1, plot)
	}
	if !strings.Contains(svg, "<title>cip: 85%</title>") || !strings.Contains(svg, ">100%</text>") || m[0][1] != "bar quota warn" {
		t.Errorf("percent labels: %s", svg)
	}
}

func TestChartsEscapeLabelsAndClasses(t *testing.T) {
	evil := `"><script>alert(1)</script>`
	for _, svg := range []string{
		string(BarChart([]Bar{{Label: evil, Value: 1, Class: `x" onload="alert(1)`}}, ChartOptions{Title: evil})),
		string(LineChart([]Point{{Label: evil, Value: 1}, {Label: "b", Value: 2}}, ChartOptions{Title: evil})),
	} {
		wellFormed(t, svg)
		if strings.Contains(svg, "<script>") || strings.Contains(svg, `onload="`) {
			t.Errorf("unescaped: %s", svg)
		}
	}
	if cssClass(`Sev-High x" y<`) != "sev-high x y" {
		t.Errorf("cssClass %q", cssClass(`Sev-High x" y<`))
	}
}

func TestChartsWithoutData(t *testing.T) {
	for _, svg := range []string{
		string(BarChart(nil, ChartOptions{})),
		string(LineChart([]Point{{Missing: true}, {Missing: true}}, ChartOptions{})),
		string(BarChart([]Bar{{Value: 0}, {Value: 0}}, ChartOptions{})),
		string(Sparkline(nil, 100, 20, 100)),
		string(BarChart([]Bar{{Value: math.NaN()}, {Value: math.Inf(1)}, {Value: -3}}, ChartOptions{})),
	} {
		wellFormed(t, svg)
		if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
			t.Errorf("non-numbers in %s", svg)
		}
	}
	if !strings.Contains(string(BarChart(nil, ChartOptions{})), "no data") {
		t.Error("empty chart does not say so")
	}
}

func TestLineChartBreaksAtMissingPoints(t *testing.T) {
	pts := []Point{{Label: "1", Value: 0.5}, {Label: "2", Value: 1}, {Label: "3", Missing: true}, {Label: "4", Value: 0.25}, {Label: "5", Missing: true},
		{Label: "6", Value: 0}, {Label: "7", Value: 1}}
	svg := string(LineChart(pts, ChartOptions{Width: 200, Height: 100, Max: 1, Percent: true, LabelEvery: 3}))
	wellFormed(t, svg)
	if n := strings.Count(svg, "<polyline"); n != 2 {
		t.Errorf("%d line segments, want 2 (1-2 and 6-7)", n)
	}
	if n := strings.Count(svg, `class="dot"`); n != 1 {
		t.Errorf("%d lone dots, want 1 (point 4)", n)
	}
	if n := strings.Count(svg, `class="label"`); n != 3 {
		t.Errorf("%d labels, want every third: 3", n)
	}
	if !strings.Contains(svg, "<title>4: 25%</title>") {
		t.Error("point tooltip")
	}
	// Value 1 of max 1 is at the top of the plot, 0 on the axis.
	if !strings.Contains(svg, `cy="`+f1(chartTop)+`"`) || !strings.Contains(svg, `cy="`+f1(100-chartBottom)+`"`) {
		t.Errorf("points not scaled to the plot: %s", svg)
	}
}

func TestSparkline(t *testing.T) {
	svg := string(Sparkline([]float64{0, 50, 100}, 100, 20, 100))
	wellFormed(t, svg)
	if !strings.Contains(svg, `points="1,19 50,10 99,1"`) {
		t.Errorf("sparkline points: %s", svg)
	}
	one := string(Sparkline([]float64{40}, 100, 20, 100))
	if !strings.Contains(one, `points="50,11.8 50,11.8"`) {
		t.Errorf("single point: %s", one)
	}
}
