package act

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/neverblock"
	"github.com/threatpipe/threatpipe/sinks"
)

// previewPlaybooks exercises conditions, lists, step conditions, windows and every kind.
const previewPlaybooks = `
lists:
  bad_isps: ["Evil Hosting Ltd"]
playbooks:
  - name: critical
    when: score >= 80
    window: 1h
    steps:
      - {name: block, action: block, sink: palo, duration: 2h}
      - {name: page, action: alert, sink: pager, if: '"tor" in tags', params: {severity: critical}}
      - {name: ticket, action: ticket, sink: jira, params: {project: SOC}}
      - {name: intel, action: intel, sink: tq}
  - name: isp
    when: score >= 40 && isp in lists.bad_isps
    steps:
      - {name: ticket, action: ticket, sink: jira, params: {project: SENIOR}}
`

// sighting is one scored event of a preview case, at minutes after the start.
type sighting struct {
	min   int
	id    string
	ip    string
	score int
	opts  []func(*event.Scored)
}

var previewStart = time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)

func (s sighting) event() *event.Scored {
	ev := scored(s.id, s.ip, s.score, s.opts...)
	ev.ObservedAt = previewStart.Add(time.Duration(s.min) * time.Minute)
	ev.ProcessedAt = ev.ObservedAt.Add(time.Second)
	return ev
}

// tracePreview runs set over evs and returns every decision as "playbook/step ip outcome".
func tracePreview(set *Set, evs []*event.Scored, o PreviewOptions) ([]string, *PreviewResult) {
	var got []string
	res := runPreview(set, slices.Values(evs), o, func(pb *Playbook, st *Step, ev *event.Scored, out Outcome) {
		got = append(got, fmt.Sprintf("%s/%s %s %s", pb.Name, st.Name, ev.Indicator.Value, out))
	})
	return got, res
}

func TestPreviewDecides(t *testing.T) {
	set, err := parsePreview([]byte(previewPlaybooks))
	if err != nil {
		t.Fatal(err)
	}
	const ip = "185.220.101.45"
	full := func(block, ticket, intel Outcome) []string {
		return []string{"critical/block " + ip + " " + string(block), "critical/ticket " + ip + " " + string(ticket), "critical/intel " + ip + " " + string(intel)}
	}
	cases := []struct {
		name string
		seq  []sighting
		want []string
	}{
		{"below every condition", []sighting{{0, "e1", ip, 50, nil}}, nil},
		{"first match acts", []sighting{{0, "e1", ip, 90, nil}}, full(OutcomeDone, OutcomeDone, OutcomeDone)},
		{"repeats within the window by kind", []sighting{{0, "e1", ip, 90, nil}, {30, "e2", ip, 95, nil}},
			append(full(OutcomeDone, OutcomeDone, OutcomeDone), full(OutcomeSuppressed, OutcomeCommented, OutcomeUpdated)...)},
		{"acts again after the window", []sighting{{0, "e1", ip, 90, nil}, {61, "e2", ip, 90, nil}},
			append(full(OutcomeDone, OutcomeDone, OutcomeDone), full(OutcomeDone, OutcomeDone, OutcomeDone)...)},
		{"the window runs from the action, repeats do not extend it",
			[]sighting{{0, "e1", ip, 90, nil}, {50, "e2", ip, 90, nil}, {70, "e3", ip, 90, nil}},
			slices.Concat(full(OutcomeDone, OutcomeDone, OutcomeDone), full(OutcomeSuppressed, OutcomeCommented, OutcomeUpdated),
				full(OutcomeDone, OutcomeDone, OutcomeDone))},
		{"a redelivered event is a duplicate", []sighting{{0, "e1", ip, 90, nil}, {5, "e1", ip, 90, nil}},
			append(full(OutcomeDone, OutcomeDone, OutcomeDone), full(OutcomeDuplicate, OutcomeDuplicate, OutcomeDuplicate)...)},
		{"a step condition", []sighting{{0, "e1", ip, 90, []func(*event.Scored){withTags("tor")}}},
			[]string{"critical/block " + ip + " done", "critical/page " + ip + " done", "critical/ticket " + ip + " done", "critical/intel " + ip + " done"}},
		{"a playbook list", []sighting{{0, "e1", ip, 45, []func(*event.Scored){withISP("Evil Hosting Ltd")}}},
			[]string{"isp/ticket " + ip + " done"}},
		{"windows are per indicator", []sighting{{0, "e1", ip, 90, nil}, {1, "e2", "185.220.101.46", 90, nil}},
			append(full(OutcomeDone, OutcomeDone, OutcomeDone),
				"critical/block 185.220.101.46 done", "critical/ticket 185.220.101.46 done", "critical/intel 185.220.101.46 done")},
		{"a special address is never blocked", []sighting{{0, "e1", "10.1.2.3", 90, nil}},
			[]string{"critical/block 10.1.2.3 refused_never_block", "critical/ticket 10.1.2.3 done", "critical/intel 10.1.2.3 done"}},
		{"a configured never-block address", []sighting{{0, "e1", "45.155.205.7", 90, nil}},
			[]string{"critical/block 45.155.205.7 refused_never_block", "critical/ticket 45.155.205.7 done", "critical/intel 45.155.205.7 done"}},
	}
	never := neverblock.New(nil, []netip.Prefix{netip.MustParsePrefix("45.155.205.0/24")})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs := make([]*event.Scored, len(tc.seq))
			for i, s := range tc.seq {
				evs[i] = s.event()
			}
			got, res := tracePreview(set, evs, PreviewOptions{NeverBlock: never})
			if !slices.Equal(got, tc.want) {
				t.Errorf("decisions:\n got %q\nwant %q", got, tc.want)
			}
			if res.Events != len(evs) || res.ConditionErrors != 0 {
				t.Errorf("events %d, condition errors %d", res.Events, res.ConditionErrors)
			}
		})
	}
}

func TestPreviewTallies(t *testing.T) {
	set, err := parsePreview([]byte(previewPlaybooks))
	if err != nil {
		t.Fatal(err)
	}
	var evs []*event.Scored
	for i := range 30 { // 30 indicators acted on, then each seen again within the window
		evs = append(evs, sighting{i, fmt.Sprintf("a%d", i), fmt.Sprintf("185.220.102.%d", i+1), 90, nil}.event())
	}
	for i := range 30 {
		evs = append(evs, sighting{40 + i, fmt.Sprintf("b%d", i), fmt.Sprintf("185.220.102.%d", i+1), 90, nil}.event())
	}
	evs = append(evs, sighting{5, "c", "10.0.0.1", 90, nil}.event())
	_, res := tracePreview(set, evs, PreviewOptions{})
	if res.Events != 61 || !res.From.Equal(previewStart) || !res.To.Equal(previewStart.Add(69*time.Minute)) {
		t.Errorf("events %d from %s to %s", res.Events, res.From, res.To)
	}
	block := res.Steps[0]
	if block.Playbook != "critical" || block.Step != "block" || block.Kind != sinks.KindBlock || block.Sink != "palo" || block.Window != "1h0m0s" {
		t.Errorf("block step: %+v", block)
	}
	if block.WouldAct != 30 || block.Suppressed != 30 || block.Outcomes[OutcomeNeverBlock] != 1 || block.Indicators != 31 || block.ActedOn != 30 {
		t.Errorf("block tally: %+v", block)
	}
	if len(block.Sample) != PreviewSampleSize {
		t.Fatalf("sample of %d", len(block.Sample))
	}
	// The actions come first, newest first: the last 20 of the first round.
	if s := block.Sample[0]; s.Outcome != OutcomeDone || s.EventID != "a29" || s.Indicator != "185.220.102.30" || s.Score != 90 {
		t.Errorf("first sample %+v", s)
	}
	if s := block.Sample[PreviewSampleSize-1]; s.EventID != "a10" {
		t.Errorf("last sample %+v", s)
	}
	ticket := res.Steps[2]
	if ticket.WouldAct != 61 || ticket.Outcomes[OutcomeCommented] != 30 || ticket.Suppressed != 0 {
		t.Errorf("ticket tally: %+v", ticket)
	}
	if page := res.Steps[1]; page.Indicators != 0 || page.WouldAct != 0 || len(page.Sample) != 0 {
		t.Errorf("page step never triggered: %+v", page)
	}
}

func TestPreviewCountsConditionErrors(t *testing.T) {
	res, err := Preview([]byte(`
playbooks:
  - name: p
    when: fields.hits > 3
    steps:
      - {name: block, action: block, sink: edl}
      - {name: page, action: alert, sink: slack}
  - name: q
    when: score >= 80
    steps:
      - {name: page, action: alert, sink: slack}
`), slices.Values([]*event.Scored{sighting{0, "e1", "185.220.101.45", 90, nil}.event()}), PreviewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ConditionErrors != 1 || len(res.ConditionErrorSamples) != 1 || !strings.Contains(res.ConditionErrorSamples[0], `playbook "p": when:`) {
		t.Errorf("condition errors %d %q", res.ConditionErrors, res.ConditionErrorSamples)
	}
	if q := res.Steps[2]; q.Playbook != "q" || q.WouldAct != 1 {
		t.Errorf("the other playbook still decides: %+v", q)
	}
}

// sinkConfigErrors are the errors only a configured sink can cause, which the preview leaves
// to `threatpipe act --validate`.
var sinkConfigErrors = regexp.MustCompile(`is not configured|performs \w+ actions, not|params:|project is required`)

// errorPrefix is where Parse names the playbook and step of an error.
var errorPrefix = regexp.MustCompile(`^(playbook "[^"]*"|playbooks\[\d+\])( step ("[^"]*"|\d+))?: `)

// TestPreviewParseRejectsAsParse: every invalid fixture fails the preview with Parse's errors,
// less those about configured sinks.
func TestPreviewParseRejectsAsParse(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			wants, _ := fixtureExpectations(t, raw)
			_, parseErr := Parse(raw, newFakes().byName)
			set, err := parsePreview(raw)
			expectErr := slices.ContainsFunc(wants, func(w string) bool { return !sinkConfigErrors.MatchString(w) })
			if (err != nil) != expectErr {
				t.Fatalf("preview error %v, want one: %v (Parse: %v)", err, expectErr, parseErr)
			}
			if err == nil {
				if set == nil || len(set.Playbooks) == 0 {
					t.Fatal("no set without an error")
				}
				return
			}
			for _, w := range wants {
				if has := strings.Contains(err.Error(), w); has == sinkConfigErrors.MatchString(w) {
					t.Errorf("want %q reported: %v; got:\n%v", w, !has, err)
				}
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.Contains(parseErr.Error(), errorPrefix.ReplaceAllString(line, "")) {
					t.Errorf("%q is not one of Parse's errors:\n%v", line, parseErr)
				}
			}
		})
	}
}

func TestPreviewTakesSinksAsGiven(t *testing.T) {
	set, err := parsePreview([]byte(`
playbooks:
  - name: p
    when: score >= 80
    steps:
      - {name: odd, action: quarantine, sink: palo}
      - {name: block, action: block, sink: palo, params: {anything: goes}}
      - {name: page, action: alert, sink: palo}
`))
	if err == nil {
		t.Fatalf("accepted %+v", set)
	}
	msg := err.Error()
	if !strings.Contains(msg, `step "odd": action "quarantine" is not one of`) ||
		!strings.Contains(msg, `step "page": sink "palo" performs block actions, not alert`) || strings.Contains(msg, `step "block"`) {
		t.Errorf("errors:\n%v", msg)
	}
	set, err = parsePreview([]byte(readTestdata(t, "playbooks.yaml")))
	if err != nil {
		t.Fatalf("the worked example: %v", err)
	}
	st := set.Playbooks[0].Steps[0]
	if _, err := st.Sink.Do(t.Context(), &sinks.Action{}); err == nil || st.Sink.Name() != "edl" || st.Sink.Kind() != sinks.KindBlock {
		t.Errorf("preview sink %s %s: Do %v", st.Sink.Name(), st.Sink.Kind(), err)
	}
}

// TestPreviewAgreesWithTheLedger runs the same sightings through the workers over the Redis
// ledger and through the preview's in-memory equivalent: every decision must agree. Redis
// expires claims in real time, so the sightings are real time apart (a 600 ms window) and each
// event's time is when the workers handled it.
func TestPreviewAgreesWithTheLedger(t *testing.T) {
	const playbooks = `
playbooks:
  - name: p
    when: score >= 80
    window: 600ms
    steps:
      - {name: block, action: block, sink: edl}
      - {name: page, action: alert, sink: slack}
      - {name: ticket, action: ticket, sink: tix}
      - {name: intel, action: intel, sink: tip}
`
	const a, b, never = "185.220.101.45", "185.220.101.46", "45.155.205.7"
	// at is in milliseconds after the start; the margins around the window are 150 ms or more.
	cases := map[string][]struct {
		at    int
		id    string
		ip    string
		score int
	}{
		"repeat within the window":    {{0, "e1", a, 90}, {200, "e2", a, 90}},
		"after the window":            {{0, "e1", a, 90}, {750, "e2", a, 90}},
		"window runs from the action": {{0, "e1", a, 90}, {400, "e2", a, 90}, {750, "e3", a, 90}, {900, "e4", a, 90}},
		"redelivery":                  {{0, "e1", a, 90}, {150, "e1", a, 90}, {300, "e2", a, 90}, {450, "e2", a, 90}},
		"redelivery after the window": {{0, "e1", a, 90}, {750, "e1", a, 90}},
		"per indicator":               {{0, "e1", a, 90}, {200, "e2", b, 90}, {400, "e3", a, 90}, {850, "e4", b, 90}},
		"never-block and thresholds":  {{0, "e1", never, 90}, {150, "e2", a, 50}, {300, "e3", a, 85}, {450, "e4", never, 95}},
	}
	for name, seq := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, playbooks)
			workers := map[sinks.Kind]*Worker{}
			for _, kind := range changeKinds {
				workers[kind] = r.worker(kind)
			}
			var fromLedger []string
			var evs []*event.Scored
			start := time.Now()
			for _, s := range seq {
				time.Sleep(time.Until(start.Add(time.Duration(s.at) * time.Millisecond)))
				ev := scored(s.id, s.ip, s.score)
				ev.ObservedAt = time.Now()
				evs = append(evs, ev)
				for _, kind := range changeKinds {
					for _, rec := range r.handle(workers[kind], ev).records {
						fromLedger = append(fromLedger, fmt.Sprintf("%s/%s %s %s", rec.Playbook, rec.Step, rec.Target, rec.Outcome))
					}
				}
			}
			if took := time.Since(start); took > time.Duration(seq[len(seq)-1].at+100)*time.Millisecond {
				t.Skipf("the workers took %s: too slow for the timings to mean anything", took)
			}
			fromPreview, _ := tracePreview(r.set, evs, PreviewOptions{NeverBlock: r.guard.NeverBlock})
			if !slices.Equal(fromPreview, fromLedger) {
				t.Errorf("the preview disagrees with the ledger:\npreview %q\n ledger %q", fromPreview, fromLedger)
			}
		})
	}
}
