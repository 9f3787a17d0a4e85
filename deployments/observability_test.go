package deployments

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
	sigsjson "sigs.k8s.io/json"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/ingest"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
	"github.com/threatpipe/threatpipe/sinks"
)

// The Grafana dashboard (grafana/threatpipe-dashboard.json) and the Prometheus alerting rules
// (prometheus/alerts.yaml). Every PromQL expression is parsed with Prometheus' own parser, and
// every metric, label and label value it names is checked against what the code exports: the
// test builds the real registries (telemetry, enrich, act), gives each vector a child so that it
// is gathered, and compares. Renaming a metric, a label or an outcome breaks it here instead of
// leaving an empty panel or an alert that can never fire.

const (
	dashboardPath = "grafana/threatpipe-dashboard.json"
	alertsPath    = "prometheus/alerts.yaml"
)

// ---------------------------------------------------------------------------------------------
// The metrics the code exports.

// obsFamily is one gathered metric family: its type and every label name its series carry.
type obsFamily struct {
	name   string
	typ    string // COUNTER, GAUGE, HISTOGRAM, SUMMARY, UNTYPED
	labels map[string]bool
}

// obsSeries is what a series name in PromQL resolves to.
type obsSeries struct {
	family *obsFamily
	suffix string // "", "_bucket", "_sum" or "_count"
}

// isCounterLike reports whether the series only ever goes up (until a restart), so it is only
// meaningful through rate(), irate() or increase().
func (s obsSeries) isCounterLike() bool {
	return s.family.typ == "COUNTER" || s.suffix != ""
}

// labelNames are the labels a selector of this series may match on or keep: the family's, the
// bucket's le, and the target labels Prometheus attaches at scrape time.
func (s obsSeries) labelNames() map[string]bool {
	out := maps.Clone(s.family.labels)
	out["job"], out["instance"] = true, true
	switch {
	case s.suffix == "_bucket":
		out["le"] = true
	case s.family.typ == "SUMMARY" && s.suffix == "":
		out["quantile"] = true
	}
	return out
}

// obsMetrics is every metric family a threatpipe role can export, keyed by family name.
type obsMetrics map[string]*obsFamily

func (m obsMetrics) resolve(name string) (obsSeries, bool) {
	if f, ok := m[name]; ok {
		return obsSeries{family: f}, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f, ok := m[base]; ok && (f.typ == "HISTOGRAM" || (f.typ == "SUMMARY" && suffix != "_bucket")) {
			return obsSeries{family: f, suffix: suffix}, true
		}
	}
	return obsSeries{}, false
}

// closest names the threatpipe family sharing the longest prefix with name, for messages.
func (m obsMetrics) closest(name string) string {
	best, bestLen := "", -1
	for _, f := range slices.Sorted(maps.Keys(m)) {
		n := 0
		for n < len(name) && n < len(f) && name[n] == f[n] {
			n++
		}
		if n > bestLen {
			best, bestLen = f, n
		}
	}
	return best
}

// loadObsMetrics builds the registries the roles build (cmd/threatpipe: the enricher registers
// the pipeline and enrichment metrics, act the pipeline and act metrics, ingest its own), touches every vector
// so it has a series, and gathers.
func loadObsMetrics(t *testing.T) obsMetrics {
	t.Helper()
	reg := telemetry.NewRegistry()
	for _, set := range []any{telemetry.NewPipelineMetrics(reg), enrich.NewMetrics(reg), act.NewMetrics(reg), ingest.NewMetrics(reg)} {
		if err := touchVectors(set); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := make(obsMetrics)
	for _, mf := range mfs {
		f := &obsFamily{name: mf.GetName(), typ: mf.GetType().String(), labels: map[string]bool{}}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				f.labels[lp.GetName()] = true
			}
		}
		out[f.name] = f
	}
	// A vector that was not touched is not gathered at all; make sure none was missed.
	for _, name := range []string{"threatpipe_events_consumed_total", "threatpipe_provider_latency_seconds", "threatpipe_act_lifts_total"} {
		if out[name] == nil {
			t.Fatalf("%s was not gathered: touchVectors missed a vector", name)
		}
	}
	return out
}

// touchVectors creates one child of every metric vector held in the fields of the struct set
// points to, so that the registry exports it. The number of labels is found by trying, since
// client_golang does not expose a vector's label names.
func touchVectors(set any) error {
	v := reflect.ValueOf(set).Elem()
	collector := reflect.TypeFor[prometheus.Collector]()
	for i := range v.NumField() {
		field := v.Field(i)
		if !field.Type().Implements(collector) || field.IsNil() {
			continue
		}
		get := field.MethodByName("GetMetricWithLabelValues")
		if !get.IsValid() {
			continue // a plain Counter or Gauge: always exported
		}
		touched := false
		for n := 0; n <= 10 && !touched; n++ {
			args := make([]reflect.Value, n)
			for j := range args {
				args[j] = reflect.ValueOf("x")
			}
			res := get.Call(args)
			touched = res[len(res)-1].IsNil()
		}
		if !touched {
			return fmt.Errorf("%T.%s: no label count up to 10 creates a child", set, v.Type().Field(i).Name)
		}
	}
	return nil
}

// obsLabelValues are the values a label may take, for the labels whose values the dashboard or
// the rules filter on. Most come from the code's constants, so renaming a value fails here too.
func obsLabelValues() map[string][]string {
	actOutcomes := []act.Outcome{act.OutcomeDone, act.OutcomeCommented, act.OutcomeRecovered, act.OutcomeDuplicate,
		act.OutcomeSuppressed, act.OutcomeNeverBlock, act.OutcomeRateCapped, act.OutcomeKillSwitch, act.OutcomeDryRun,
		act.OutcomeFailed, act.OutcomeBadCondition}
	liftOutcomes := []act.Outcome{act.OutcomeLifted, act.OutcomeLiftFailed, act.OutcomeResolved}
	statuses := []event.ProviderStatus{event.StatusOK, event.StatusNotFound, event.StatusQuotaExhausted,
		event.StatusRateLimited, event.StatusFailed, event.StatusDisabled, event.StatusSkipped}
	kinds := []enrich.ErrorKind{enrich.KindUnauthorized, enrich.KindQuotaExhausted, enrich.KindRateLimited,
		enrich.KindTransient, enrich.KindPermanent, enrich.KindUnavailable}
	return map[string][]string{
		"threatpipe_stage_duration_seconds/stage": {telemetry.StageDecode, telemetry.StageProcess,
			telemetry.StagePublish, telemetry.StageEndToEnd, telemetry.StageFetchWait},
		"threatpipe_act_actions_total/outcome":      obsStrings(actOutcomes),
		"threatpipe_act_actions_total/kind":         obsStrings([]sinks.Kind{sinks.KindBlock, sinks.KindAlert, sinks.KindTicket}),
		"threatpipe_act_lifts_total/outcome":        obsStrings(liftOutcomes),
		"threatpipe_provider_outcomes_total/status": obsStrings(statuses),
		// "ok" and "breaker_open" are literals in enrich/chain.go (checked by obsLiteralValues).
		"threatpipe_provider_calls_total/outcome": append(obsStrings(kinds), "ok", "breaker_open"),
		"threatpipe_cache_requests_total/result":  {"hit", "miss", "error"},
		"threatpipe_lookups_saved_total/reason":   {"cache_hit", "singleflight", "gated"},
		"threatpipe_ingest_errors_total/stage": {ingest.StagePoll, ingest.StageAuth, ingest.StageEncode,
			ingest.StagePublish, ingest.StageCursor, ingest.StageRecent},
	}
}

// obsLiteralValues are the label values above that the code writes as string literals rather
// than constants, with the files that must still contain them.
var obsLiteralValues = map[string][]string{
	"../enrich/lookup.go": {`"hit"`, `"miss"`, `"error"`, `"cache_hit"`, `"singleflight"`, `"gated"`},
	"../enrich/chain.go":  {`"ok"`, `"breaker_open"`},
}

func obsStrings[S ~string](vs []S) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// ---------------------------------------------------------------------------------------------
// PromQL checks.

// obsChecker checks PromQL expressions against the exported metrics. vars are the Grafana
// template variables the expressions may use (nil for alerting rules).
type obsChecker struct {
	metrics obsMetrics
	values  map[string][]string
	vars    map[string]obsVariable
	used    map[string]bool // families referenced so far
}

func newObsChecker(m obsMetrics, vars map[string]obsVariable) *obsChecker {
	return &obsChecker{metrics: m, values: obsLabelValues(), vars: vars, used: map[string]bool{}}
}

// grafanaDurations are Grafana's built-in interval variables; any valid duration stands in.
var grafanaDurations = regexp.MustCompile(`\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}`)

// grafanaVar matches $name, ${name}, ${name:format} and [[name]].
var grafanaVar = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

const varSentinel = "__grafana_var_"

// expand substitutes Grafana variables so that the expression can be parsed: durations by 5m,
// template variables by a sentinel that later checks recognise.
func (c *obsChecker) expand(expr string) (string, []error) {
	var errs []error
	expr = grafanaDurations.ReplaceAllString(expr, "5m")
	expr = grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		if _, ok := c.vars[name]; !ok {
			errs = append(errs, fmt.Errorf("uses $%s, which is neither a template variable of the dashboard nor a Grafana interval", name))
			return m
		}
		return varSentinel + name + "__"
	})
	return expr, errs
}

// check parses expr and checks it; it returns the labels every resulting series carries.
func (c *obsChecker) check(expr string) (map[string]bool, []error) {
	expanded, errs := c.expand(expr)
	if len(errs) > 0 {
		return nil, errs
	}
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expanded)
	if err != nil {
		return nil, []error{fmt.Errorf("PromQL does not parse: %v", err)}
	}
	if node.Type() != parser.ValueTypeVector {
		return nil, []error{fmt.Errorf("evaluates to a %s, not an instant vector", node.Type())}
	}
	a := &obsAnalysis{c: c}
	out := a.labels(node)
	return out, a.errs
}

// checkSeries checks a bare series selector, as label_values() takes; it returns its labels.
func (c *obsChecker) checkSeries(sel string) (map[string]bool, []error) {
	expanded, errs := c.expand(sel)
	if len(errs) > 0 {
		return nil, errs
	}
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expanded)
	if err != nil {
		return nil, []error{fmt.Errorf("PromQL does not parse: %v", err)}
	}
	vs, ok := node.(*parser.VectorSelector)
	if !ok {
		return nil, []error{fmt.Errorf("%s is not a series selector", sel)}
	}
	a := &obsAnalysis{c: c}
	s, ok := a.selector(vs)
	if !ok {
		return nil, a.errs
	}
	return s.labelNames(), a.errs
}

// obsAnalysis walks one expression, collecting errors.
type obsAnalysis struct {
	c    *obsChecker
	errs []error
}

func (a *obsAnalysis) errorf(format string, args ...any) {
	a.errs = append(a.errs, fmt.Errorf(format, args...))
}

// rangeFuncs take a counter's range and are the only right way to read a counter.
var rangeFuncs = map[string]bool{"rate": true, "irate": true, "increase": true, "resets": true}

// labels checks node and returns the labels of every series it yields.
func (a *obsAnalysis) labels(node parser.Node) map[string]bool {
	switch n := node.(type) {
	case *parser.NumberLiteral, *parser.StringLiteral:
		return map[string]bool{}
	case *parser.ParenExpr:
		return a.labels(n.Expr)
	case *parser.UnaryExpr:
		return a.labels(n.Expr)
	case *parser.StepInvariantExpr:
		return a.labels(n.Expr)
	case *parser.SubqueryExpr:
		return a.labels(n.Expr)
	case *parser.VectorSelector:
		s, ok := a.selector(n)
		if ok && s.isCounterLike() {
			a.errorf("%s is a %s series used without rate(), irate() or increase()", n.Name, strings.ToLower(s.family.typ))
		}
		if !ok {
			return nil
		}
		return s.labelNames()
	case *parser.MatrixSelector:
		a.errorf("range selector %s outside a function", n)
		return nil
	case *parser.Call:
		return a.call(n)
	case *parser.AggregateExpr:
		return a.aggregate(n)
	case *parser.BinaryExpr:
		return a.binary(n)
	default:
		a.errorf("unexpected PromQL node %T", node)
		return nil
	}
}

// selector checks a vector selector's metric name, label names and values.
func (a *obsAnalysis) selector(vs *parser.VectorSelector) (obsSeries, bool) {
	name := vs.Name
	if name == "" {
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
	}
	if name == "" {
		a.errorf("selector %s names no metric", vs)
		return obsSeries{}, false
	}
	s, ok := a.c.metrics.resolve(name)
	if !ok {
		a.errorf("metric %s is not exported by threatpipe (renamed? closest: %s)", name, a.c.metrics.closest(name))
		return obsSeries{}, false
	}
	a.c.used[s.family.name] = true
	if s.family.typ == "HISTOGRAM" && s.suffix == "" {
		a.errorf("%s is a histogram: its series are %[1]s_bucket, %[1]s_sum and %[1]s_count", name)
		return obsSeries{}, false
	}
	allowed := s.labelNames()
	for _, m := range vs.LabelMatchers {
		if m.Name == labels.MetricName {
			continue
		}
		if !allowed[m.Name] {
			a.errorf("%s has no label %q (it has %s)", name, m.Name, obsList(allowed))
			continue
		}
		if v, ok := strings.CutPrefix(m.Value, varSentinel); ok {
			varName, _ := strings.CutSuffix(v, "__")
			if tv := a.c.vars[varName]; (tv.Multi || tv.IncludeAll) && m.Type != labels.MatchRegexp {
				a.errorf("%s{%s}: multi-value variable $%s needs =~, not %s", name, m.Name, varName, m.Type)
			}
			continue
		}
		values, known := a.c.values[s.family.name+"/"+m.Name]
		if !known {
			continue
		}
		var literal []string
		switch m.Type {
		case labels.MatchEqual, labels.MatchNotEqual:
			literal = []string{m.Value}
		default:
			// Only plain alternations (a|b) can be checked value by value.
			if regexp.MustCompile(`^\w+(\|\w+)*$`).MatchString(m.Value) {
				literal = strings.Split(m.Value, "|")
			}
		}
		for _, v := range literal {
			if !slices.Contains(values, v) {
				a.errorf("%s{%s%s%q}: threatpipe never sets %s to %q (it uses %s)", name, m.Name, m.Type, m.Value, m.Name, v, strings.Join(values, ", "))
			}
		}
	}
	return s, true
}

func (a *obsAnalysis) call(n *parser.Call) map[string]bool {
	fn := n.Func.Name
	var first map[string]bool
	for i, arg := range n.Args {
		var got map[string]bool
		if ms, ok := arg.(*parser.MatrixSelector); ok {
			vs, _ := ms.VectorSelector.(*parser.VectorSelector)
			if vs == nil {
				a.errorf("%s(): unexpected range argument %s", fn, ms)
				continue
			}
			s, ok := a.selector(vs)
			if !ok {
				continue
			}
			switch {
			case s.isCounterLike() && !rangeFuncs[fn] && fn != "absent_over_time" && fn != "present_over_time":
				a.errorf("%s(%s[...]): %s is a counter; use rate() or increase()", fn, vs.Name, vs.Name)
			case !s.isCounterLike() && rangeFuncs[fn]:
				a.errorf("%s(%s[...]): %s is a gauge; %s() is for counters (use deriv(), delta() or *_over_time())", fn, vs.Name, vs.Name, fn)
			}
			got = s.labelNames()
		} else {
			got = a.labels(arg)
		}
		if first == nil && (arg.Type() == parser.ValueTypeVector || arg.Type() == parser.ValueTypeMatrix) {
			first = got
		}
		if fn == "histogram_quantile" && i == 1 {
			a.histogramQuantileArg(arg)
		}
	}
	switch fn {
	case "histogram_quantile":
		out := maps.Clone(first)
		delete(out, "le")
		return out
	case "vector", "time", "scalar", "absent", "absent_over_time":
		return map[string]bool{}
	case "label_replace", "label_join":
		out := maps.Clone(first)
		if len(n.Args) > 1 {
			if dst, ok := n.Args[1].(*parser.StringLiteral); ok {
				if out == nil {
					out = map[string]bool{}
				}
				out[dst.Val] = true
			}
		}
		return out
	}
	return first
}

// histogramQuantileArg checks the classic-histogram idiom: an aggregation that keeps le over
// the rate of _bucket series only.
func (a *obsAnalysis) histogramQuantileArg(arg parser.Expr) {
	for {
		p, ok := arg.(*parser.ParenExpr)
		if !ok {
			break
		}
		arg = p.Expr
	}
	agg, ok := arg.(*parser.AggregateExpr)
	keepsLe := ok && (agg.Without != slices.Contains(agg.Grouping, "le"))
	if !keepsLe {
		a.errorf("histogram_quantile() needs an aggregation that keeps le, like sum by (le) (rate(x_bucket[5m])); got %s", arg)
	}
	parser.Inspect(arg, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			if s, ok := a.c.metrics.resolve(vs.Name); ok && s.suffix != "_bucket" {
				a.errorf("histogram_quantile() over %s, which is not a histogram's _bucket series", vs.Name)
			}
		}
		return nil
	})
}

func (a *obsAnalysis) aggregate(n *parser.AggregateExpr) map[string]bool {
	inner := a.labels(n.Expr)
	if n.Param != nil {
		a.labels(n.Param)
	}
	if inner == nil {
		return nil // already reported
	}
	for _, l := range n.Grouping {
		if !inner[l] {
			a.errorf("%s %s (%s): the series aggregated have no label %q (they have %s)",
				n.Op, map[bool]string{false: "by", true: "without"}[n.Without], strings.Join(n.Grouping, ", "), l, obsList(inner))
		}
	}
	switch {
	case n.Op == parser.TOPK || n.Op == parser.BOTTOMK || n.Op == parser.LIMITK || n.Op == parser.LIMIT_RATIO:
		return inner
	case n.Without:
		out := maps.Clone(inner)
		for _, l := range n.Grouping {
			delete(out, l)
		}
		return out
	default:
		out := map[string]bool{}
		for _, l := range n.Grouping {
			out[l] = true
		}
		if n.Op == parser.COUNT_VALUES {
			if p, ok := n.Param.(*parser.StringLiteral); ok {
				out[p.Val] = true
			}
		}
		return out
	}
}

func (a *obsAnalysis) binary(n *parser.BinaryExpr) map[string]bool {
	lhs, rhs := a.labels(n.LHS), a.labels(n.RHS)
	lVec, rVec := n.LHS.Type() == parser.ValueTypeVector, n.RHS.Type() == parser.ValueTypeVector
	switch {
	case !lVec && !rVec:
		return map[string]bool{}
	case !rVec:
		return lhs
	case !lVec:
		return rhs
	}
	if lhs == nil || rhs == nil {
		return nil // already reported
	}
	vm := n.VectorMatching
	if vm == nil {
		vm = &parser.VectorMatching{Card: parser.CardOneToOne}
	}
	if vm.On {
		for _, l := range vm.MatchingLabels {
			if !lhs[l] || !rhs[l] {
				a.errorf("%s on (%s): %q is not a label of both sides", n.Op, strings.Join(vm.MatchingLabels, ", "), l)
			}
		}
	}
	switch n.Op {
	case parser.LAND, parser.LUNLESS:
		return lhs
	case parser.LOR:
		out := map[string]bool{}
		for l := range lhs {
			if rhs[l] {
				out[l] = true
			}
		}
		return out
	}
	var out map[string]bool
	switch vm.Card {
	case parser.CardManyToOne:
		out = maps.Clone(lhs)
	case parser.CardOneToMany:
		out = maps.Clone(rhs)
	default:
		if vm.On {
			out = map[string]bool{}
			for _, l := range vm.MatchingLabels {
				out[l] = true
			}
		} else {
			out = maps.Clone(lhs)
			for _, l := range vm.MatchingLabels {
				delete(out, l)
			}
		}
		return out
	}
	for _, l := range vm.Include {
		out[l] = true
	}
	return out
}

func obsList(set map[string]bool) string {
	return strings.Join(slices.Sorted(maps.Keys(set)), ", ")
}

// ---------------------------------------------------------------------------------------------
// The dashboard.

// obsDashboard is the part of Grafana's dashboard model the checks read. Grafana writes many
// more top-level keys and panel options, so unknown fields are allowed; duplicate keys and
// wrongly-cased names of these fields are not.
type obsDashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []obsVariable `json:"list"`
	} `json:"templating"`
	Panels []obsPanel `json:"panels"`
}

type obsDatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type obsVariable struct {
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Datasource *obsDatasourceRef `json:"datasource"`
	Query      any               `json:"query"` // a string, or {"query": ...} for Prometheus query variables
	Multi      bool              `json:"multi"`
	IncludeAll bool              `json:"includeAll"`
}

// queryString returns the variable's query, whichever form it has.
func (v obsVariable) queryString() string {
	switch q := v.Query.(type) {
	case string:
		return q
	case map[string]any:
		s, _ := q["query"].(string)
		return s
	}
	return ""
}

type obsPanel struct {
	ID         int               `json:"id"`
	Type       string            `json:"type"`
	Title      string            `json:"title"`
	Datasource *obsDatasourceRef `json:"datasource"`
	GridPos    *struct {
		H int `json:"h"`
		W int `json:"w"`
		X int `json:"x"`
		Y int `json:"y"`
	} `json:"gridPos"`
	Targets []obsTarget `json:"targets"`
	Panels  []obsPanel  `json:"panels"` // a collapsed row's panels
}

type obsTarget struct {
	RefID        string            `json:"refId"`
	Expr         string            `json:"expr"`
	LegendFormat string            `json:"legendFormat"`
	Datasource   *obsDatasourceRef `json:"datasource"`
}

func loadDashboard(t *testing.T) *obsDashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := decodeDashboard(data)
	if err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

func decodeDashboard(data []byte) (*obsDashboard, error) {
	var d obsDashboard
	strictErrs, err := sigsjson.UnmarshalStrict(data, &d, sigsjson.DisallowDuplicateFields)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(strictErrs...); err != nil {
		return nil, err
	}
	return &d, nil
}

// legendLabel matches {{label}} in a Grafana legend.
var legendLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_]\w*)\s*\}\}`)

// labelValuesQuery matches label_values(selector, label) and label_values(label).
var labelValuesQuery = regexp.MustCompile(`^label_values\((?:(.+),\s*)?(\w+)\)$`)

// checkDashboard returns every problem of d, checked against the exported metrics.
func checkDashboard(d *obsDashboard, c *obsChecker) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if d.UID == "" || d.Title == "" {
		fail("uid and title must be set (the uid keeps links stable across imports)")
	}
	if d.SchemaVersion < 39 {
		fail("schemaVersion %d: want 39 or later", d.SchemaVersion)
	}

	// Template variables: a Prometheus data source picker, and query variables that read it.
	c.vars = map[string]obsVariable{}
	for _, v := range d.Templating.List {
		if _, dup := c.vars[v.Name]; dup || v.Name == "" {
			fail("template variable %q is empty or defined twice", v.Name)
		}
		c.vars[v.Name] = v
	}
	if ds, ok := c.vars["datasource"]; !ok || ds.Type != "datasource" || ds.queryString() != "prometheus" {
		fail(`need a template variable "datasource" of type datasource with query "prometheus"`)
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
			fail("variable %s: datasource must be ${datasource}", v.Name)
		}
		m := labelValuesQuery.FindStringSubmatch(v.queryString())
		if m == nil {
			fail("variable %s: query %q is not label_values(selector, label)", v.Name, v.queryString())
			continue
		}
		if m[1] == "" {
			fail("variable %s: label_values(%s) scans every series; name a metric", v.Name, m[2])
			continue
		}
		have, exprErrs := c.checkSeries(m[1])
		for _, err := range exprErrs {
			fail("variable %s: %v", v.Name, err)
		}
		if have != nil && !have[m[2]] {
			fail("variable %s: %s has no label %q", v.Name, m[1], m[2])
		}
	}

	// Panels: rows hold the others; every other panel queries Prometheus through the variable.
	ids := map[int]string{}
	rows := map[string]int{}
	var panels []obsPanel
	var row string
	for _, p := range d.Panels {
		if p.Type == "row" {
			row = p.Title
			rows[row] += 0
			for _, child := range p.Panels {
				rows[row]++
				panels = append(panels, child)
			}
			panels = append(panels, p)
			continue
		}
		if row == "" {
			fail("panel %q comes before the first row", p.Title)
		}
		rows[row]++
		panels = append(panels, p)
	}
	for _, want := range []string{"Pipeline", "Enrichment", "Actions"} {
		if rows[want] == 0 {
			fail("no row %q with panels (rows: %v)", want, rows)
		}
	}
	for _, p := range panels {
		where := fmt.Sprintf("panel %q", p.Title)
		if p.Title == "" {
			fail("panel %d has no title", p.ID)
		}
		if p.ID == 0 {
			fail("%s has no id", where)
		} else if other, dup := ids[p.ID]; dup {
			fail("%s reuses id %d of panel %q", where, p.ID, other)
		}
		ids[p.ID] = p.Title
		if p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
			fail("%s: gridPos missing or outside the 24-column grid", where)
		}
		if p.Type == "" {
			fail("%s has no type", where)
		}
		if p.Type == "row" {
			if len(p.Targets) > 0 {
				fail("row %q has targets", p.Title)
			}
			continue
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			fail(`%s: datasource must be {"type": "prometheus", "uid": "${datasource}"}`, where)
		}
		if len(p.Targets) == 0 {
			fail("%s has no targets", where)
		}
		refIDs := map[string]bool{}
		for _, tg := range p.Targets {
			tw := fmt.Sprintf("%s target %s", where, tg.RefID)
			if tg.RefID == "" || refIDs[tg.RefID] {
				fail("%s: refId empty or repeated", tw)
			}
			refIDs[tg.RefID] = true
			if tg.Datasource != nil && tg.Datasource.UID != "${datasource}" {
				fail("%s: datasource must be ${datasource}", tw)
			}
			if strings.TrimSpace(tg.Expr) == "" {
				fail("%s has no expr", tw)
				continue
			}
			have, exprErrs := c.check(tg.Expr)
			for _, err := range exprErrs {
				fail("%s: %v\n\t%s", tw, err, tg.Expr)
			}
			if have == nil {
				continue
			}
			for _, m := range legendLabel.FindAllStringSubmatch(tg.LegendFormat, -1) {
				if !have[m[1]] {
					fail("%s: legend uses {{%s}}, which the query's series do not carry (they have %s)", tw, m[1], obsList(have))
				}
			}
		}
	}
	return errs
}

func TestGrafanaDashboard(t *testing.T) {
	c := newObsChecker(loadObsMetrics(t), nil)
	for _, err := range checkDashboard(loadDashboard(t), c) {
		t.Error(err)
	}
}

// ---------------------------------------------------------------------------------------------
// The alerting rules.

// obsRuleFile mirrors Prometheus' rule file format (rulefmt) for alerting rules; decoded with
// KnownFields, so a misspelt key (`annotation`, `label`, `fo`) fails.
type obsRuleFile struct {
	Groups []obsRuleGroup `yaml:"groups"`
}

type obsRuleGroup struct {
	Name     string         `yaml:"name"`
	Interval string         `yaml:"interval,omitempty"`
	Labels   yaml.Node      `yaml:"labels,omitempty"`
	Rules    []obsAlertRule `yaml:"rules"`
}

type obsAlertRule struct {
	Alert         string            `yaml:"alert"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for"`
	KeepFiringFor string            `yaml:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels"`
	Annotations   struct {
		Summary     string `yaml:"summary"`
		Description string `yaml:"description"`
		RunbookURL  string `yaml:"runbook_url"`
	} `yaml:"annotations"`
}

func decodeRules(data []byte) (*obsRuleFile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f obsRuleFile
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	return &f, nil
}

// promTemplateFuncs are the functions Prometheus' alert templates offer (template.go); only
// their names matter, for parsing.
var promTemplateFuncs = func() template.FuncMap {
	m := template.FuncMap{}
	for _, name := range []string{"query", "first", "label", "value", "strvalue", "args", "reReplaceAll", "safeHtml",
		"match", "title", "toUpper", "toLower", "graphLink", "tableLink", "sortByLabel", "humanize",
		"humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp", "toTime", "toDuration",
		"pathPrefix", "externalURL", "parseDuration", "stripPort", "stripDomain", "now", "urlQueryEscape"} {
		m[name] = func(...any) string { return "" }
	}
	return m
}()

// templateLabel matches $labels.name in an annotation.
var templateLabel = regexp.MustCompile(`\$labels\.([a-zA-Z_]\w*)`)

var alertName = regexp.MustCompile(`^[A-Z][A-Za-z0-9]+$`)
var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// checkRules returns every problem of f, checked against the exported metrics.
func checkRules(f *obsRuleFile, c *obsChecker) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(f.Groups) == 0 {
		fail("no rule groups")
	}
	groups, alerts := map[string]bool{}, map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || groups[g.Name] {
			fail("group name %q empty or repeated", g.Name)
		}
		groups[g.Name] = true
		if g.Interval != "" {
			if _, err := model.ParseDuration(g.Interval); err != nil {
				fail("group %s: interval: %v", g.Name, err)
			}
		}
		if len(g.Rules) == 0 {
			fail("group %s has no rules", g.Name)
		}
		for _, r := range g.Rules {
			where := fmt.Sprintf("alert %s", r.Alert)
			if !alertName.MatchString(r.Alert) {
				fail("%s: alert names are CamelCase (recording rules do not belong in this file)", where)
			}
			if alerts[r.Alert] {
				fail("%s is defined twice", where)
			}
			alerts[r.Alert] = true

			have, exprErrs := c.check(r.Expr)
			for _, err := range exprErrs {
				fail("%s: %v\n\t%s", where, err, strings.TrimSpace(r.Expr))
			}
			if r.For == "" {
				fail("%s has no for:", where)
			} else if _, err := model.ParseDuration(r.For); err != nil {
				fail("%s: for: %v", where, err)
			}
			if r.KeepFiringFor != "" {
				if _, err := model.ParseDuration(r.KeepFiringFor); err != nil {
					fail("%s: keep_firing_for: %v", where, err)
				}
			}
			for k := range r.Labels {
				if !labelName.MatchString(k) {
					fail("%s: label name %q is invalid", where, k)
				}
			}
			if s := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, s) {
				fail("%s: labels.severity %q is not critical, warning or info", where, s)
			}
			if r.Annotations.Summary == "" || r.Annotations.Description == "" {
				fail("%s needs annotations.summary and annotations.description", where)
			}
			for name, text := range map[string]string{"summary": r.Annotations.Summary, "description": r.Annotations.Description} {
				// Prometheus prepends these definitions before expanding an annotation.
				const defs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
				if _, err := template.New(name).Funcs(promTemplateFuncs).Parse(defs + text); err != nil {
					fail("%s: %s is not a valid template: %v", where, name, err)
				}
				if have == nil {
					continue
				}
				for _, m := range templateLabel.FindAllStringSubmatch(text, -1) {
					if !have[m[1]] {
						fail("%s: %s uses $labels.%s, which the expression's series do not carry (they have %s)", where, name, m[1], obsList(have))
					}
				}
			}
			if err := checkRunbook(r.Annotations.RunbookURL); err != nil {
				fail("%s: runbook_url: %v", where, err)
			}
		}
	}
	return errs
}

// checkRunbook checks that ref (path#anchor, relative to the repository root) names an existing
// document and one of its headings.
func checkRunbook(ref string) error {
	file, anchor, _ := strings.Cut(ref, "#")
	if file == "" || anchor == "" || strings.Contains(file, "://") {
		return fmt.Errorf("%q: want a repository path with an anchor, like docs/operations.md#scaling", ref)
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(file)))
	if err != nil {
		return err
	}
	var anchors []string
	inCode := false
	for line := range strings.SplitSeq(string(data), "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if inCode {
			continue
		}
		if heading, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "#") {
			anchors = append(anchors, headingAnchor(heading))
		}
	}
	if !slices.Contains(anchors, anchor) {
		return fmt.Errorf("%s has no heading with anchor #%s (it has %s)", file, anchor, strings.Join(anchors, ", "))
	}
	return nil
}

// headingAnchor is GitHub's anchor for a Markdown heading: lower case, punctuation dropped,
// spaces turned into hyphens.
func headingAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func loadRules(t *testing.T) *obsRuleFile {
	t.Helper()
	data, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	f, err := decodeRules(data)
	if err != nil {
		t.Fatalf("%s does not decode strictly into the rule file format: %v", alertsPath, err)
	}
	return f
}

func TestPrometheusAlerts(t *testing.T) {
	c := newObsChecker(loadObsMetrics(t), nil)
	f := loadRules(t)
	for _, err := range checkRules(f, c) {
		t.Error(err)
	}
	// The conditions operators rely on: removing the rule that watches one of these is a choice
	// to make here, not by accident.
	for _, name := range []string{"threatpipe_quota_used", "threatpipe_quota_limit", "threatpipe_provider_breaker_state",
		"threatpipe_provider_disabled", "threatpipe_dead_letters_total", "threatpipe_consumer_lag",
		"threatpipe_events_consumed_total", "threatpipe_publish_retries_total", "threatpipe_act_actions_total",
		"threatpipe_act_rate_cap_trips_total", "threatpipe_act_kill_switch"} {
		if !c.used[name] {
			t.Errorf("no alerting rule watches %s", name)
		}
	}
}

// obsUnwatched are the threatpipe metrics neither the dashboard nor the rules need to read.
var obsUnwatched = map[string]string{
	"threatpipe_quota_remaining":            "the dashboard shows used and limit",
	"threatpipe_quota_warnings_total":       "ThreatpipeProviderQuotaNearlySpent watches the same threshold",
	"threatpipe_partition_in_flight_events": "the dashboard shows in-flight events per replica; commit lag per partition",
	// The ingest role: ThreatpipeIngestAuthFailing and ThreatpipeIngestCursorBehind watch its
	// errors and its lag; the counts below describe traffic, not a fault.
	"threatpipe_ingest_polls_total":              "traffic: polls that answered; failures are threatpipe_ingest_errors_total",
	"threatpipe_ingest_indicators_polled_total":  "traffic: records returned by the platforms",
	"threatpipe_ingest_events_published_total":   "traffic: the enricher's consumed events count them again",
	"threatpipe_ingest_indicators_skipped_total": "not_ip and recent skips are expected (docs/tip.md)",
}

// TestObservabilityCoversMetrics fails when a new threatpipe metric is neither graphed nor
// alerted on nor listed in obsUnwatched with a reason.
func TestObservabilityCoversMetrics(t *testing.T) {
	metrics := loadObsMetrics(t)
	c := newObsChecker(metrics, nil)
	checkDashboard(loadDashboard(t), c)
	c.vars = nil
	checkRules(loadRules(t), c)
	for _, name := range slices.Sorted(maps.Keys(metrics)) {
		if !strings.HasPrefix(name, "threatpipe_") {
			continue
		}
		_, exempt := obsUnwatched[name]
		switch {
		case !c.used[name] && !exempt:
			t.Errorf("%s is neither on the dashboard nor in an alerting rule; add it, or to obsUnwatched with a reason", name)
		case c.used[name] && exempt:
			t.Errorf("%s is in obsUnwatched but used; drop it from there", name)
		}
	}
	for name := range obsUnwatched {
		if metrics[name] == nil {
			t.Errorf("obsUnwatched lists %s, which is not exported", name)
		}
	}
}

// TestObsLabelValuesInCode checks that the label values written as string literals are still
// the ones the code writes.
func TestObsLabelValuesInCode(t *testing.T) {
	for file, literals := range obsLiteralValues {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, lit := range literals {
			if !bytes.Contains(src, []byte(lit)) {
				t.Errorf("%s no longer contains %s: update obsLabelValues and the dashboard and rules", file, lit)
			}
		}
	}
}

// TestObservabilityChecksCatchMistakes proves the checks are not vacuous: each broken
// expression, panel or rule below must be reported.
func TestObservabilityChecksCatchMistakes(t *testing.T) {
	metrics := loadObsMetrics(t)
	exprs := map[string]string{
		"syntax error":             `sum(rate(threatpipe_events_consumed_total[5m])`,
		"renamed metric":           `sum(rate(threatpipe_events_consumed[5m]))`,
		"unknown label":            `sum(rate(threatpipe_dead_letters_total{reason="x"}[5m]))`,
		"unknown label value":      `sum(rate(threatpipe_act_actions_total{outcome="failure"}[5m]))`,
		"unknown stage":            `sum(rate(threatpipe_stage_duration_seconds_count{stage="e2e"}[5m]))`,
		"counter without rate":     `sum(threatpipe_events_consumed_total)`,
		"rate of a gauge":          `sum(rate(threatpipe_consumer_lag[5m]))`,
		"quantile without le":      `histogram_quantile(0.99, sum(rate(threatpipe_provider_latency_seconds_bucket[5m])))`,
		"quantile of non-bucket":   `histogram_quantile(0.99, sum by (le) (rate(threatpipe_provider_latency_seconds_count[5m])))`,
		"group by missing label":   `sum by (provider) (rate(threatpipe_events_consumed_total[5m]))`,
		"scalar result":            `scalar(sum(threatpipe_consumer_lag))`,
		"histogram base name":      `sum(rate(threatpipe_stage_duration_seconds[5m]))`,
		"on() with a missing side": `sum by (job) (threatpipe_consumer_lag) > on (provider) sum by (provider) (threatpipe_quota_used)`,
	}
	for name, expr := range exprs {
		t.Run("expr/"+name, func(t *testing.T) {
			_, errs := newObsChecker(metrics, nil).check(expr)
			if len(errs) == 0 {
				t.Errorf("accepted %s", expr)
			}
			t.Log(errors.Join(errs...))
		})
	}

	const goodDashboard = `{"uid": "u", "title": "t", "schemaVersion": 39, "someGrafanaKey": {"x": 1},
	  "templating": {"list": [
	    {"name": "datasource", "type": "datasource", "query": "prometheus"},
	    {"name": "job", "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"}, "multi": true,
	     "query": {"query": "label_values(threatpipe_events_consumed_total, job)"}}]},
	  "panels": [
	    {"type": "row", "title": "Pipeline", "id": 1, "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0}, "panels": []},
	    {"type": "timeseries", "title": "In", "id": 2, "gridPos": {"h": 8, "w": 24, "x": 0, "y": 1},
	     "datasource": {"type": "prometheus", "uid": "${datasource}"}, "options": {"anything": true},
	     "targets": [{"refId": "A", "expr": "sum by (topic) (rate(threatpipe_events_consumed_total{job=~\"$job\"}[$__rate_interval]))", "legendFormat": "{{topic}}"}]},
	    {"type": "row", "title": "Enrichment", "id": 3, "gridPos": {"h": 1, "w": 24, "x": 0, "y": 9}, "panels": []},
	    {"type": "stat", "title": "Disabled", "id": 4, "gridPos": {"h": 8, "w": 24, "x": 0, "y": 10},
	     "datasource": {"type": "prometheus", "uid": "${datasource}"},
	     "targets": [{"refId": "A", "expr": "max by (provider) (threatpipe_provider_disabled)", "legendFormat": "{{provider}}"}]},
	    {"type": "row", "title": "Actions", "id": 5, "gridPos": {"h": 1, "w": 24, "x": 0, "y": 18}, "collapsed": true, "panels": [
	      {"type": "stat", "title": "Kill switch", "id": 6, "gridPos": {"h": 8, "w": 24, "x": 0, "y": 19},
	       "datasource": {"type": "prometheus", "uid": "${datasource}"},
	       "targets": [{"refId": "A", "expr": "max(threatpipe_act_kill_switch)"}]}]}]}`
	good, err := decodeDashboard([]byte(goodDashboard))
	if err != nil {
		t.Fatal(err)
	}
	if errs := checkDashboard(good, newObsChecker(metrics, nil)); len(errs) > 0 {
		t.Fatalf("the reference dashboard is rejected: %v", errors.Join(errs...))
	}
	dashboards := map[string][2]string{
		"legend label not carried":  {`"legendFormat": "{{topic}}"`, `"legendFormat": "{{class}}"`},
		"unknown variable":          {`{job=~\"$job\"}`, `{job=~\"$cluster\"}`},
		"multi variable without =~": {`{job=~\"$job\"}`, `{job=\"$job\"}`},
		"fixed datasource":          {`"datasource": {"type": "prometheus", "uid": "${datasource}"}, "options"`, `"datasource": {"type": "prometheus", "uid": "P1"}, "options"`},
		"missing expr":              {`"expr": "max(threatpipe_act_kill_switch)"`, `"exprs": "max(threatpipe_act_kill_switch)"`},
		"missing title":             {`"title": "Kill switch", `, ``},
		"old schema":                {`"schemaVersion": 39`, `"schemaVersion": 27`},
		"no datasource variable":    {`"type": "datasource"`, `"type": "custom"`},
		"variable on unknown label": {`threatpipe_events_consumed_total, job)`, `threatpipe_events_consumed_total, provider)`},
		"missing row":               {`"title": "Enrichment"`, `"title": "Providers"`},
		"wrongly cased field":       {`"targets": [{"refId": "A", "expr": "max by`, `"targets": [{"refId": "A", "Expr": "max by`},
		"duplicate field":           {`"uid": "u",`, `"uid": "u", "uid": "v",`},
	}
	for name, edit := range dashboards {
		t.Run("dashboard/"+name, func(t *testing.T) {
			if !strings.Contains(goodDashboard, edit[0]) {
				t.Fatalf("test edit %q does not apply", edit[0])
			}
			d, err := decodeDashboard([]byte(strings.Replace(goodDashboard, edit[0], edit[1], 1)))
			if err != nil {
				t.Log("decoder:", err)
				return
			}
			errs := checkDashboard(d, newObsChecker(metrics, nil))
			if len(errs) == 0 {
				t.Error("accepted")
			}
			t.Log(errors.Join(errs...))
		})
	}

	const goodRules = `groups:
  - name: g
    rules:
      - alert: Disabled
        expr: max by (provider) (threatpipe_provider_disabled) == 1
        for: 1m
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.provider }} disabled"
          description: "{{ $value | humanize }}"
          runbook_url: docs/operations.md#probes-and-metrics
`
	f, err := decodeRules([]byte(goodRules))
	if err != nil {
		t.Fatal(err)
	}
	if errs := checkRules(f, newObsChecker(metrics, nil)); len(errs) > 0 {
		t.Fatalf("the reference rules are rejected: %v", errors.Join(errs...))
	}
	rules := map[string][2]string{
		"misspelt key":             {"annotations:", "annotation:"},
		"no for":                   {"        for: 1m\n", ""},
		"bad for":                  {"for: 1m", "for: 1 minute"},
		"unknown severity":         {"severity: critical", "severity: high"},
		"no severity":              {"severity: critical", "team: soc"},
		"no summary":               {`summary: "{{ $labels.provider }} disabled"`, `summary: ""`},
		"label not carried":        {"$labels.provider", "$labels.job"},
		"unknown template func":    {"humanize }}", "humanise }}"},
		"broken template":          {"$value | humanize }}", "$value | humanize }"},
		"missing anchor":           {"#probes-and-metrics", "#alerts"},
		"missing runbook document": {"docs/operations.md", "docs/runbook.md"},
		"renamed metric":           {"threatpipe_provider_disabled", "threatpipe_provider_off"},
		"recording rule":           {"- alert: Disabled", "- record: disabled"},
	}
	for name, edit := range rules {
		t.Run("rules/"+name, func(t *testing.T) {
			if !strings.Contains(goodRules, edit[0]) {
				t.Fatalf("test edit %q does not apply", edit[0])
			}
			f, err := decodeRules([]byte(strings.Replace(goodRules, edit[0], edit[1], 1)))
			if err != nil {
				t.Log("decoder:", err)
				return
			}
			errs := checkRules(f, newObsChecker(metrics, nil))
			if len(errs) == 0 {
				t.Error("accepted")
			}
			t.Log(errors.Join(errs...))
		})
	}
}
