package act

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
)

func TestLoadFileCompilesTheWorkedExample(t *testing.T) {
	f := newFakes()
	set, err := LoadFile("testdata/playbooks.yaml", f.byName)
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		name     string
		kind     sinks.Kind
		sink     string
		duration time.Duration
		params   map[string]string
	}
	type playbook struct {
		name   string
		dry    bool
		window time.Duration
		steps  []step
	}
	want := []playbook{
		{"critical", false, 24 * time.Hour, []step{
			{"block", sinks.KindBlock, "edl", time.Hour, nil},
			{"page", sinks.KindAlert, "pagerduty", 0, nil},
			{"ticket", sinks.KindTicket, "jira", 0, map[string]string{"project": "SOC"}},
		}},
		{"single-source", false, DefaultWindow, []step{
			{"confirm", sinks.KindTicket, "jira", 0, map[string]string{"project": "SOC"}},
		}},
		{"bad-isp", false, DefaultWindow, []step{
			{"escalate", sinks.KindTicket, "jira", 0, map[string]string{"project": "SENIOR", "priority": "High"}},
		}},
		// An unnamed step is named action-sink.
		{"tor-watch", true, DefaultWindow, []step{{"block-edl", sinks.KindBlock, "edl", 6 * time.Hour, nil}}},
	}
	if len(set.Playbooks) != len(want) {
		t.Fatalf("got %d playbooks, want %d", len(set.Playbooks), len(want))
	}
	for i, w := range want {
		pb := set.Playbooks[i]
		if pb.Name != w.name || pb.DryRun != w.dry || pb.Window != w.window || len(pb.Steps) != len(w.steps) {
			t.Fatalf("playbook %d = %+v, want %+v", i, pb, w)
		}
		for j, ws := range w.steps {
			st := pb.Steps[j]
			if st.Name != ws.name || st.Kind != ws.kind || st.Sink != f.byName[ws.sink] || st.Duration != ws.duration {
				t.Errorf("%s step %d = %+v, want %+v", w.name, j, st, ws)
			}
			if len(st.Params) != len(ws.params) {
				t.Errorf("%s step %s params = %v, want %v", w.name, st.Name, st.Params, ws.params)
			}
			for k, v := range ws.params {
				if st.Params[k] != v {
					t.Errorf("%s step %s params = %v, want %v", w.name, st.Name, st.Params, ws.params)
				}
			}
		}
	}
	if got := set.Lists["bad_isps"]; !slices.Equal(got, []string{"Evil Hosting Ltd", "Bulletproof Networks"}) {
		t.Errorf("lists.bad_isps = %v", got)
	}
	for _, k := range []sinks.Kind{sinks.KindBlock, sinks.KindAlert, sinks.KindTicket} {
		if !set.Uses(k) {
			t.Errorf("Uses(%s) = false", k)
		}
	}
}

func TestBlockStepsDefaultTheirDuration(t *testing.T) {
	set := mustParse(t, `
playbooks:
  - name: p
    when: score >= 80
    steps:
      - {name: block, action: block, sink: edl}
      - {name: page, action: alert, sink: slack}
`, newFakes())
	if d := set.Playbooks[0].Steps[0].Duration; d != DefaultBlockDuration {
		t.Errorf("block without a duration lasts %s, want %s", d, DefaultBlockDuration)
	}
	if d := set.Playbooks[0].Steps[1].Duration; d != 0 {
		t.Errorf("an alert has a duration %s", d)
	}
	if set.Uses(sinks.KindTicket) {
		t.Error("Uses(ticket) = true without a ticket step")
	}
}

func TestLoadFileNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "playbooks.yaml")
	if err := os.WriteFile(path, []byte("playbooks: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path, newFakes().byName)
	if err == nil || !containsAll(err.Error(), path, "no playbooks") {
		t.Fatalf("error %v does not name the file and the problem", err)
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestParseRejects runs the fixtures in testdata/invalid: each states the errors it must
// produce ("# want:" substrings, each matched by one of the reported errors) and how many
// ("# errors:"), so that a file with several problems is shown to report all of them.
func TestParseRejects(t *testing.T) {
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
			wants, count := fixtureExpectations(t, raw)
			set, err := Parse(raw, newFakes().byName)
			if err == nil {
				t.Fatalf("accepted: %+v", set)
			}
			if set != nil {
				t.Error("a set was returned with the error")
			}
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			if len(errs) != count {
				t.Errorf("got %d errors, want %d:\n%v", len(errs), count, err)
			}
			for _, w := range wants {
				if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), w) }) {
					t.Errorf("no error contains %q; got:\n%v", w, err)
				}
			}
		})
	}
}

func fixtureExpectations(t *testing.T, raw []byte) (wants []string, count int) {
	t.Helper()
	count = -1
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		line := sc.Text()
		if w, ok := strings.CutPrefix(line, "# want: "); ok {
			wants = append(wants, w)
		}
		if n, ok := strings.CutPrefix(line, "# errors: "); ok {
			var err error
			if count, err = strconv.Atoi(n); err != nil {
				t.Fatalf("bad # errors: line %q", line)
			}
		}
	}
	if len(wants) == 0 || count < 1 {
		t.Fatal("fixture lacks # want: and # errors: lines")
	}
	return wants, count
}

func TestParseRejectsWhatIsNotAPlaybookFile(t *testing.T) {
	for name, raw := range map[string]string{
		"empty":       "",
		"list":        "- name: p\n",
		"bad yaml":    "playbooks: [\n",
		"wrong types": "playbooks:\n  - name: p\n    steps: block\n",
	} {
		if _, err := Parse([]byte(raw), newFakes().byName); err == nil || !strings.Contains(err.Error(), "not a playbook file") {
			t.Errorf("%s: error %v", name, err)
		}
	}
}

// decision is a Decision by name, for comparisons.
type decision struct{ playbook, step string }

func names(ds []Decision) []decision {
	out := make([]decision, 0, len(ds))
	for _, d := range ds {
		out = append(out, decision{d.Playbook.Name, d.Step.Name})
	}
	return out
}

func TestDecide(t *testing.T) {
	set := mustParse(t, readTestdata(t, "decide.yaml"), newFakes())
	intel := func(v event.Verdict) *event.ProviderOutcome {
		return &event.ProviderOutcome{Status: event.StatusOK, Result: &event.Intel{Verdict: v}}
	}
	type kinds map[sinks.Kind][]decision
	cases := []struct {
		name string
		ev   *event.Scored
		want kinds
	}{
		{"below every threshold", scored("e", "185.220.101.45", 10), kinds{}},
		{"critical from a clean ISP: the page's if is false",
			scored("e", "185.220.101.45", 85, withISP("Example Telecom")),
			kinds{sinks.KindBlock: {{"critical", "block"}}, sinks.KindTicket: {{"critical", "ticket"}}}},
		{"critical from a bad ISP: the page's if is true",
			scored("e", "185.220.101.45", 85, withISP("Evil Hosting Ltd")),
			kinds{sinks.KindBlock: {{"critical", "block"}}, sinks.KindAlert: {{"critical", "page"}},
				sinks.KindTicket: {{"critical", "ticket"}}}},
		{"tagged tor with a malicious verdict",
			scored("e", "185.220.101.45", 30, withTags("scanner", "tor"), func(ev *event.Scored) {
				ev.Providers = map[string]*event.ProviderOutcome{"abuseipdb": intel(event.VerdictMalicious), "greynoise": intel(event.VerdictBenign)}
			}),
			kinds{sinks.KindAlert: {{"tor", "page"}}}},
		{"tagged tor but the verdict is benign",
			scored("e", "185.220.101.45", 30, withTags("tor"), func(ev *event.Scored) {
				ev.Providers = map[string]*event.ProviderOutcome{"abuseipdb": intel(event.VerdictBenign)}
			}),
			kinds{}},
		{"a provider failed and the score is middling",
			scored("e", "185.220.101.45", 55, func(ev *event.Scored) {
				ev.Providers = map[string]*event.ProviderOutcome{"greynoise": {Status: event.StatusFailed, Error: "HTTP 503"}, "nil": nil}
			}),
			kinds{sinks.KindTicket: {{"blind", "review"}}}},
		{"watched country, AS number and organisation",
			scored("e", "185.220.101.45", 45, func(ev *event.Scored) {
				ev.Geo = &event.GeoInfo{CountryISOCode: "RU"}
				ev.AS = &event.AS{Number: 9009, Organization: &event.ASOrgRef{Name: "M247 Europe SRL"}}
			}),
			kinds{sinks.KindTicket: {{"geo", "ticket"}}}},
		{"watched country, other AS",
			scored("e", "185.220.101.45", 45, func(ev *event.Scored) {
				ev.Geo = &event.GeoInfo{CountryISOCode: "RU"}
				ev.AS = &event.AS{Number: 64500}
			}),
			kinds{}},
		{"gated private address: severity and source are visible",
			scored("e", "10.1.2.3", 0, func(ev *event.Scored) { ev.Gate = &event.Gate{Reason: "private", Prefix: "10.0.0.0/8"} }),
			kinds{sinks.KindAlert: {{"gated", "note"}}}},
		{"two playbooks at once keep playbook order",
			scored("e", "2001:db8::1", 95, withTags("tor"), withISP("Evil Hosting Ltd"), func(ev *event.Scored) {
				ev.Providers = map[string]*event.ProviderOutcome{"abuseipdb": intel(event.VerdictMalicious)}
			}),
			kinds{sinks.KindBlock: {{"critical", "block"}}, sinks.KindAlert: {{"critical", "page"}, {"tor", "page"}},
				sinks.KindTicket: {{"critical", "ticket"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, kind := range []sinks.Kind{sinks.KindBlock, sinks.KindAlert, sinks.KindTicket} {
				ds, err := set.Decide(tc.ev, kind)
				if err != nil {
					t.Fatalf("Decide(%s): %v", kind, err)
				}
				for _, d := range ds {
					if d.Step.Kind != kind {
						t.Errorf("Decide(%s) returned a %s step", kind, d.Step.Kind)
					}
				}
				if got := names(ds); !slices.Equal(got, tc.want[kind]) {
					t.Errorf("Decide(%s) = %v, want %v", kind, got, tc.want[kind])
				}
			}
		})
	}
}

func TestNewEnv(t *testing.T) {
	ev := scored("e", "185.220.101.45", 91, withTags("tor"), withISP("Evil Hosting Ltd"), func(ev *event.Scored) {
		ev.Geo = &event.GeoInfo{CountryISOCode: "NL"}
		ev.AS = &event.AS{Number: 9009, Organization: &event.ASOrgRef{Name: "M247"}}
		ev.Providers = map[string]*event.ProviderOutcome{
			"abuseipdb": {Status: event.StatusOK, Result: &event.Intel{Verdict: event.VerdictMalicious}},
			"greynoise": {Status: event.StatusNotFound},
			"broken":    nil,
		}
	})
	lists := map[string][]string{"x": {"y"}}
	env := NewEnv(ev, lists)
	if env.Score != 91 || env.Severity != "critical" || env.IP != "185.220.101.45" || env.Type != "ipv4-addr" ||
		env.ISP != "Evil Hosting Ltd" || env.Country != "NL" || env.ASN != 9009 || env.ASOrg != "M247" ||
		env.Source != "paloalto-edge-01" || env.Gated || !slices.Equal(env.Tags, []string{"tor"}) {
		t.Errorf("env = %+v", env)
	}
	if len(env.Providers) != 2 || env.Providers["abuseipdb"] != "ok" || env.Providers["greynoise"] != "not_found" {
		t.Errorf("providers = %v", env.Providers)
	}
	if len(env.Verdicts) != 1 || env.Verdicts["abuseipdb"] != "malicious" {
		t.Errorf("verdicts = %v (only providers that answered have one)", env.Verdicts)
	}
	if env.Lists["x"][0] != "y" {
		t.Errorf("lists = %v", env.Lists)
	}
}

func TestEnvMultiSource(t *testing.T) {
	ev := scored("e", "198.51.100.7", 88, func(ev *event.Scored) {
		ev.Confidence, ev.ValidatedBy = 74, []string{"abuseipdb", "list:drop"}
		ev.Fields = map[string]json.RawMessage{"malware_families": json.RawMessage(`["Mirai"]`), "abuse_reports": json.RawMessage(`37`)}
		ev.Providers = map[string]*event.ProviderOutcome{
			"lists":     {Status: event.StatusOK, Result: &event.Intel{Verdict: event.VerdictMalicious, Score: 90, Lists: []event.ListHit{{Name: "drop", Kind: event.ListBlock}}}},
			"greynoise": {Status: event.StatusOK, Result: &event.Intel{Verdict: event.VerdictBenign, Service: "Simulated CDN"}},
			"abuseipdb": {Status: event.StatusOK, Result: &event.Intel{Verdict: event.VerdictMalicious, Score: 96}},
		}
	})
	env := NewEnv(ev, nil)
	if env.Confidence != 74 || !slices.Equal(env.ValidatedBy, ev.ValidatedBy) || !env.BlockListed || !env.BenignService ||
		!slices.Equal(env.ListHits, []string{"drop"}) || env.Scores["abuseipdb"] != 96 || env.Fields["abuse_reports"] != 37.0 {
		t.Fatalf("env = %+v", env)
	}
	set := mustParse(t, `
playbooks:
  - name: agreed
    when: (len(validated_by) >= 2 && score >= 70) || block_listed
    steps: [{name: block, action: block, sink: edl}]
  - name: family
    when: '"Mirai" in fields.malware_families && confidence > 50 && scores.abuseipdb > 90'
    steps: [{name: tell, action: alert, sink: slack}]
`, newFakes())
	if ds, err := set.Decide(ev, sinks.KindBlock); err != nil || len(ds) != 1 {
		t.Errorf("block on agreement: %v %v", names(ds), err)
	}
	if ds, err := set.Decide(ev, sinks.KindAlert); err != nil || len(ds) != 1 {
		t.Errorf("alert on a mapped field: %v %v", names(ds), err)
	}
	lone := scored("e", "198.51.100.8", 95, func(ev *event.Scored) { ev.ValidatedBy = []string{"criminalip"} })
	if ds, _ := set.Decide(lone, sinks.KindBlock); len(ds) != 0 {
		t.Errorf("one source alone must not block: %v", names(ds))
	}
}

func TestDecideReportsRuntimeErrorsAndStillDecides(t *testing.T) {
	set := mustParse(t, `
playbooks:
  - name: first-tag
    when: tags[0] == "scanner"
    steps:
      - {name: block, action: block, sink: nft}
  - name: critical
    when: score >= 80
    steps:
      - {name: block, action: block, sink: edl}
      - {name: page, action: alert, sink: slack, if: 'tags[1] == "tor"'}
      - {name: page2, action: alert, sink: pagerduty}
`, newFakes())
	ev := scored("e", "185.220.101.45", 90) // no tags: tags[0] fails at run time

	ds, err := set.Decide(ev, sinks.KindBlock)
	if err == nil || !containsAll(err.Error(), `playbook "first-tag": when:`, "out of range") {
		t.Errorf("block: error %v does not name the failing condition", err)
	}
	if got := names(ds); !slices.Equal(got, []decision{{"critical", "block"}}) {
		t.Errorf("block: the other playbook must still decide: %v", got)
	}

	ds, err = set.Decide(ev, sinks.KindAlert)
	if err == nil || !containsAll(err.Error(), `playbook "critical" step "page": if:`, "out of range") {
		t.Errorf("alert: error %v does not name the failing step", err)
	}
	if strings.Contains(err.Error(), "first-tag") {
		t.Errorf("alert: a playbook without alert steps was evaluated: %v", err)
	}
	if got := names(ds); !slices.Equal(got, []decision{{"critical", "page2"}}) {
		t.Errorf("alert: the other step must still decide: %v", got)
	}

	if ds, err := set.Decide(scored("e", "185.220.101.45", 90, withTags("scanner", "tor")), sinks.KindAlert); err != nil ||
		!slices.Equal(names(ds), []decision{{"critical", "page"}, {"critical", "page2"}}) {
		t.Errorf("with tags: %v, %v", names(ds), err)
	}
}
