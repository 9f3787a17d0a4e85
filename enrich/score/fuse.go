package score

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Fused is the verdict of every source together.
type Fused struct {
	Score       int
	Severity    event.Severity
	Confidence  int
	ValidatedBy []string
	Tags        []string
	Reasons     []event.Reason
	// BlockListed: a block list matched. BenignService names the known-benign service the
	// address belongs to ("" when none). Lists are the names of the lists that matched.
	BlockListed   bool
	BenignService string
	Lists         []string
	// Voters is how many sources (list hits included) cast a vote.
	Voters int
	AS     *event.AS
	Geo    *event.GeoInfo
	ISP    string
}

// vote is one source's opinion.
type vote struct {
	risk      float64
	weight    float64
	malicious bool
	reason    int // index of its reason, whose points it sets and whose source names the voter
}

// Fuse fuses the outcomes, keyed by source name, visiting the sources in order (which decides
// whose AS, geo and ISP are used: the first that has them) and giving each one reason. now is
// the time the evidence's age is measured at (decay); the zero time decays nothing.
//
// It runs for every event, cache hits included, so the verdict's reasons, tags, validators, AS
// and geo share one allocation (a store) with the text it writes (cache ages, decay notes,
// silences, list hits, tag points) when that fits, and its working lists stay on the stack.
func (m *Model) Fuse(outcomes map[string]*event.ProviderOutcome, order []string, now time.Time) Fused {
	var (
		votes    [8]vote
		services [4]service
		text     [256]byte
		spans    [8]span
	)
	st := new(store)
	f := Fused{Reasons: st.reasons[:0], Tags: st.tags[:0]}
	fz := fusion{m: m, votes: votes[:0], services: services[:0], text: text[:0], spans: spans[:0]}
	for _, name := range order {
		if out := outcomes[name]; out != nil {
			fz = fz.source(&f, st, name, out, now)
		}
	}
	slices.Sort(f.Tags)
	f.Tags = slices.Compact(f.Tags)
	f.Voters = len(fz.votes)
	base, conf := m.tally(&f, fz.votes)
	fz, tagged := fz.tagPoints(&f)
	total := base + tagged
	if len(fz.services) > 0 {
		fz = fz.benignService()
		if total > float64(m.BenignCap) {
			fz = fz.benignCap(&f, total)
			total = float64(m.BenignCap)
		}
	}
	fz.setTexts(&f, st)
	f.Score = clamp(int(math.Round(total)))
	settle(f.Reasons, f.Score)
	f.Severity = event.SeverityOf(f.Score)
	f.Confidence = conf
	f.ValidatedBy = validators(st.validated[:0], fz.votes, f.Reasons)
	if len(f.Reasons) == 0 {
		f.Reasons = nil // as a verdict with no reasons has always been
	}
	return f
}

// source adds one source's outcome: its reason, tags and context (kept in st), and its vote if
// it has an opinion.
func (fz fusion) source(f *Fused, st *store, name string, out *event.ProviderOutcome, now time.Time) fusion {
	m, r := fz.m, out.Result
	if out.Status != event.StatusOK || r == nil {
		return fz.silent(f, name, out)
	}
	f.Tags = append(f.Tags, r.Tags...)
	keepContext(f, st, r)
	if len(r.Lists) > 0 {
		return fz.listVotes(f, r)
	}
	if r.Service != "" {
		fz.services = append(fz.services, service{name: r.Service, by: name})
	}
	switch r.Verdict {
	case event.VerdictMalicious, event.VerdictSuspicious, event.VerdictBenign:
	default:
		fz, _ = fz.reason(f, name, r.Detail, out.Cache, 0, 1)
		return fz
	}
	w, risk, factor, age := m.weight(name), float64(clamp(r.Score)), 1.0, time.Duration(0)
	if r.Verdict == event.VerdictBenign {
		w *= m.BenignWeight
	} else {
		factor, age = m.decay(r.LastSeen, now)
		risk *= factor
	}
	if w <= 0 {
		fz, _ = fz.reason(f, name, r.Detail, out.Cache, 0, 1) // no vote: nothing decayed
		return fz
	}
	fz, i := fz.reason(f, name, r.Detail, out.Cache, age, factor)
	fz.votes = append(fz.votes, vote{risk: risk, weight: w,
		malicious: r.Verdict == event.VerdictMalicious && risk >= float64(m.ValidateAt), reason: i})
	return fz
}

// maxHalfLives caps the age decay counts: older evidence decays no further.
const maxHalfLives = 10

// decay is the factor the risk of a malicious or suspicious vote is multiplied by, for evidence
// last seen at last: 0.5^(age/half-life), with age = now - last capped at maxHalfLives
// half-lives; 1 when the evidence has no date or is not older than now. The vote's reason
// notes it (appendDecay) unless the factor still shows as 1.00 (evidence a few hours old, which
// moves the risk by less than half a point).
func (m *Model) decay(last *time.Time, now time.Time) (factor float64, age time.Duration) {
	if last == nil || !last.Before(now) {
		return 1, 0
	}
	age = now.Sub(*last)
	return math.Pow(0.5, min(age.Hours()/m.halfLife().Hours(), maxHalfLives)), age
}

// shows is whether a decay factor is noted in its reason.
func shows(factor float64) bool { return factor < 0.995 }

// appendDecay appends what a decayed vote's reason says of it, e.g. " (evidence 45d old:
// ×0.35 decay)".
func appendDecay(b []byte, age time.Duration, factor float64) []byte {
	b = append(b, " (evidence "...)
	b = appendAge(b, age)
	b = append(b, " old: ×"...)
	b = strconv.AppendFloat(b, factor, 'f', 2, 64)
	return append(b, " decay)"...)
}

// appendAge appends a whole number of days ("45d"), or of hours or minutes when under a day.
func appendAge(b []byte, d time.Duration) []byte {
	switch {
	case d >= 24*time.Hour:
		return append(strconv.AppendInt(b, int64(d/(24*time.Hour)), 10), 'd')
	case d >= time.Hour:
		return append(strconv.AppendInt(b, int64(d/time.Hour), 10), 'h')
	}
	return append(strconv.AppendInt(b, int64(d/time.Minute), 10), 'm')
}

// listVotes turns the lists source's hits into votes (block), benign services (benign) and
// reasons; tag hits arrive as tags. A block hit outweighs a benign one: lists that contradict
// each other are settled for the block, which is the more specific claim.
func (fz fusion) listVotes(f *Fused, r *event.Intel) fusion {
	m := fz.m
	blocked := slices.ContainsFunc(r.Lists, func(h event.ListHit) bool { return h.Kind == event.ListBlock })
	for _, h := range r.Lists {
		f.Lists = append(f.Lists, h.Name)
		i := len(f.Reasons)
		f.Reasons = append(f.Reasons, event.Reason{})
		start := len(fz.text)
		fz.text = append(append(fz.text, "list:"...), h.Name...)
		fz.spans = append(fz.spans, span{reason: i, part: partSource, start: start, end: len(fz.text)})
		start = len(fz.text)
		fz.text = append(append(append(append(fz.text, "on "...), h.Kind...), " list "...), h.Name...)
		fz.text = append(append(append(fz.text, " ("...), h.Prefix...), ')')
		fz.spans = append(fz.spans, span{reason: i, part: partDetail, start: start, end: len(fz.text)})
		switch h.Kind {
		case event.ListBlock:
			f.BlockListed = true
			lv := m.listVote(h.Name)
			if lv.Weight > 0 {
				fz.votes = append(fz.votes, vote{risk: float64(clamp(lv.Score)), weight: lv.Weight,
					malicious: lv.Score >= m.ValidateAt, reason: i})
			}
		case event.ListBenign:
			if !blocked {
				fz.services = append(fz.services, service{name: h.Name, by: "list"})
			}
		}
	}
	return fz
}

// tally computes the weighted mean of the votes, sets each voter's points, and returns the
// mean and the confidence: agreement (1 - the weighted mean deviation from the mean, over its
// maximum of 50) times coverage (the summed weight over FullCoverage, at most 1).
func (m *Model) tally(f *Fused, votes []vote) (float64, int) {
	var sumW, sumWR float64
	for _, v := range votes {
		sumW += v.weight
		sumWR += v.weight * v.risk
	}
	if sumW == 0 {
		return 0, 0
	}
	mean := sumWR / sumW
	var dev float64
	for _, v := range votes {
		f.Reasons[v.reason].Points = int(math.Round(v.weight * v.risk / sumW))
		dev += v.weight * math.Abs(v.risk-mean)
	}
	agreement := max(0, 1-dev/sumW/50)
	coverage := min(1, sumW/m.FullCoverage)
	return mean, int(math.Round(100 * agreement * coverage))
}

// tagPoints adds the risk-bearing tags' points (at most TagPointsMax) as one reason, whose
// text gives each tag's points ("tor +10, scanner +5"), and returns them.
func (fz fusion) tagPoints(f *Fused) (fusion, float64) {
	m := fz.m
	total, start := 0, len(fz.text)
	for _, t := range f.Tags {
		if p := m.TagPoints[t]; p != 0 {
			total += p
			if len(fz.text) > start {
				fz.text = append(fz.text, ", "...)
			}
			fz.text = append(append(fz.text, t...), ' ')
			if p > 0 {
				fz.text = append(fz.text, '+')
			}
			fz.text = strconv.AppendInt(fz.text, int64(p), 10)
		}
	}
	if total == 0 {
		fz.text = fz.text[:start]
		return fz, 0
	}
	total = min(max(total, -m.TagPointsMax), m.TagPointsMax)
	fz.spans = append(fz.spans, span{reason: len(f.Reasons), part: partDetail, start: start, end: len(fz.text)})
	f.Reasons = append(f.Reasons, event.Reason{Source: "tags", Points: total})
	return fz, float64(total)
}

// benignService names the first known-benign service, with who says so.
func (fz fusion) benignService() fusion {
	start := len(fz.text)
	fz.text = fz.services[0].appendTo(fz.text)
	fz.spans = append(fz.spans, span{part: partService, start: start, end: len(fz.text)})
	return fz
}

// benignCap adds the reason that caps the score at BenignCap, naming every known-benign service.
func (fz fusion) benignCap(f *Fused, total float64) fusion {
	m := fz.m
	start := len(fz.text)
	fz.text = append(fz.text, "capped at "...)
	fz.text = append(strconv.AppendInt(fz.text, int64(m.BenignCap), 10), ": known-benign service "...)
	for i, s := range fz.services {
		if i > 0 {
			fz.text = append(fz.text, ", "...)
		}
		fz.text = s.appendTo(fz.text)
	}
	fz.spans = append(fz.spans, span{reason: len(f.Reasons), part: partDetail, start: start, end: len(fz.text)})
	f.Reasons = append(f.Reasons, event.Reason{Source: "benign_service", Points: m.BenignCap - int(math.Round(total))})
	return fz
}

// settle makes the points add up to the score: rounding and clamping leave a remainder, given
// to the reason with the most points (or the last, when none has any).
func settle(reasons []event.Reason, score int) {
	sum, top := 0, -1
	for i, r := range reasons {
		sum += r.Points
		if r.Points > 0 && (top < 0 || r.Points > reasons[top].Points) {
			top = i
		}
	}
	if sum == score || len(reasons) == 0 {
		return
	}
	if top < 0 {
		top = len(reasons) - 1
	}
	reasons[top].Points += score - sum
}

// validators are the sources of the malicious votes, sorted, once each, appended to dst.
func validators(dst []string, votes []vote, reasons []event.Reason) []string {
	for _, v := range votes {
		if v.malicious {
			dst = append(dst, reasons[v.reason].Source)
		}
	}
	slices.Sort(dst)
	return slices.Compact(dst)
}

func clamp(n int) int { return min(max(n, 0), 100) }

// Apply writes the verdict into ev. ev takes f's slices where it has none of its own (its
// reasons, tags and validators): apply a Fused once.
func (f *Fused) Apply(ev *event.Scored) {
	ev.Score, ev.Severity, ev.Confidence = f.Score, f.Severity, f.Confidence
	ev.ValidatedBy = f.ValidatedBy
	ev.Tags = mergeTags(ev.Tags, f.Tags)
	switch {
	case len(f.Reasons) == 0:
	case len(ev.Reasons) == 0:
		ev.Reasons = f.Reasons // an event's first reasons: no copy
	default:
		ev.Reasons = append(ev.Reasons, f.Reasons...)
	}
	if ev.AS == nil {
		ev.AS = f.AS
	}
	if ev.Geo == nil {
		ev.Geo = f.Geo
	}
	if ev.ISP == "" {
		ev.ISP = f.ISP
	}
}

func mergeTags(have, add []string) []string {
	if len(have) == 0 {
		return add
	}
	out := append(slices.Clone(have), add...)
	slices.Sort(out)
	return slices.Compact(out)
}
