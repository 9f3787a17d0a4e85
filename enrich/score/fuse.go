package score

import (
	"math"
	"slices"
	"strconv"
	"strings"
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
	source    string
	risk      float64
	weight    float64
	malicious bool
	reason    int // index of its reason, whose points it sets
}

// Fuse fuses the outcomes, keyed by source name, visiting the sources in order (which decides
// whose AS, geo and ISP are used: the first that has them) and giving each one reason. now is
// the time the evidence's age is measured at (decay); the zero time decays nothing.
func (m *Model) Fuse(outcomes map[string]*event.ProviderOutcome, order []string, now time.Time) Fused {
	var f Fused
	var votes []vote
	services := []string{}
	for _, name := range order {
		out, ok := outcomes[name]
		if !ok || out == nil {
			continue
		}
		r := out.Result
		if out.Status != event.StatusOK || r == nil {
			f.Reasons = append(f.Reasons, event.Reason{Source: name, Detail: silentDetail(out)})
			continue
		}
		f.Tags = append(f.Tags, r.Tags...)
		f.context(r)
		if len(r.Lists) > 0 {
			votes = m.listVotes(&f, r, votes, &services)
			continue
		}
		if r.Service != "" {
			services = append(services, r.Service+" ("+name+")")
		}
		f.Reasons = append(f.Reasons, event.Reason{Source: name, Detail: withAge(r.Detail, out.Cache)})
		switch r.Verdict {
		case event.VerdictMalicious, event.VerdictSuspicious, event.VerdictBenign:
			w, risk, suffix := m.weight(name), float64(clamp(r.Score)), ""
			if r.Verdict == event.VerdictBenign {
				w *= m.BenignWeight
			} else {
				var factor float64
				factor, suffix = m.decay(r.LastSeen, now)
				risk *= factor
			}
			if w > 0 {
				f.Reasons[len(f.Reasons)-1].Detail += suffix
				votes = append(votes, vote{source: name, risk: risk, weight: w,
					malicious: r.Verdict == event.VerdictMalicious && risk >= float64(m.ValidateAt), reason: len(f.Reasons) - 1})
			}
		}
	}
	slices.Sort(f.Tags)
	f.Tags = slices.Compact(f.Tags)
	if f.Tags == nil {
		f.Tags = []string{}
	}
	f.Voters = len(votes)
	base, conf := m.tally(&f, votes)
	total := base + m.tagPoints(&f)
	if len(services) > 0 {
		f.BenignService = services[0]
		if total > float64(m.BenignCap) {
			f.Reasons = append(f.Reasons, event.Reason{Source: "benign_service",
				Detail: "capped at " + strconv.Itoa(m.BenignCap) + ": known-benign service " + strings.Join(services, ", "),
				Points: m.BenignCap - int(math.Round(total))})
			total = float64(m.BenignCap)
		}
	}
	f.Score = clamp(int(math.Round(total)))
	settle(f.Reasons, f.Score)
	f.Severity = event.SeverityOf(f.Score)
	f.Confidence = conf
	f.ValidatedBy = validators(votes)
	return f
}

// maxHalfLives caps the age decay counts: older evidence decays no further.
const maxHalfLives = 10

// decay is the factor the risk of a malicious or suspicious vote is multiplied by, for evidence
// last seen at last: 0.5^(age/half-life), with age = now - last capped at maxHalfLives
// half-lives; 1 when the evidence has no date or is not older than now. suffix is what the
// vote's reason says of it, e.g. " (evidence 45d old: ×0.35 decay)"; "" while the factor still
// shows as 1.00 (evidence a few hours old, which moves the risk by less than half a point).
func (m *Model) decay(last *time.Time, now time.Time) (factor float64, suffix string) {
	if last == nil || !last.Before(now) {
		return 1, ""
	}
	age := now.Sub(*last)
	factor = math.Pow(0.5, min(age.Hours()/m.halfLife().Hours(), maxHalfLives))
	if factor >= 0.995 {
		return factor, ""
	}
	return factor, " (evidence " + ageText(age) + " old: ×" + strconv.FormatFloat(factor, 'f', 2, 64) + " decay)"
}

// ageText is a whole number of days ("45d"), or of hours or minutes when under a day.
func ageText(d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d >= time.Hour:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
}

// listVotes turns the lists source's hits into votes (block), benign services (benign) and
// reasons; tag hits arrive as tags. A block hit outweighs a benign one: lists that contradict
// each other are settled for the block, which is the more specific claim.
func (m *Model) listVotes(f *Fused, r *event.Intel, votes []vote, services *[]string) []vote {
	blocked := slices.ContainsFunc(r.Lists, func(h event.ListHit) bool { return h.Kind == event.ListBlock })
	for _, h := range r.Lists {
		f.Lists = append(f.Lists, h.Name)
		source := "list:" + h.Name
		detail := "on " + h.Kind + " list " + h.Name + " (" + h.Prefix + ")"
		f.Reasons = append(f.Reasons, event.Reason{Source: source, Detail: detail})
		switch h.Kind {
		case event.ListBlock:
			f.BlockListed = true
			lv := m.listVote(h.Name)
			if lv.Weight > 0 {
				votes = append(votes, vote{source: source, risk: float64(clamp(lv.Score)), weight: lv.Weight,
					malicious: lv.Score >= m.ValidateAt, reason: len(f.Reasons) - 1})
			}
		case event.ListBenign:
			if !blocked {
				*services = append(*services, h.Name+" (list)")
			}
		}
	}
	return votes
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

// tagPoints adds the risk-bearing tags' points (at most TagPointsMax) as one reason.
func (m *Model) tagPoints(f *Fused) float64 {
	var parts []string
	total := 0
	for _, t := range f.Tags {
		if p := m.TagPoints[t]; p != 0 {
			total += p
			parts = append(parts, t+" "+signed(p))
		}
	}
	if total == 0 {
		return 0
	}
	total = min(max(total, -m.TagPointsMax), m.TagPointsMax)
	f.Reasons = append(f.Reasons, event.Reason{Source: "tags", Detail: strings.Join(parts, ", "), Points: total})
	return float64(total)
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

func validators(votes []vote) []string {
	out := []string{}
	for _, v := range votes {
		if v.malicious {
			out = append(out, v.source)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (f *Fused) context(r *event.Intel) {
	if f.AS == nil && (r.ASNumber != 0 || r.ASOrganization != "") {
		f.AS = &event.AS{Number: r.ASNumber}
		if r.ASOrganization != "" {
			f.AS.Organization = &event.ASOrgRef{Name: r.ASOrganization}
		}
	}
	if f.Geo == nil && (r.CountryISO != "" || r.City != "" || r.Location != nil) {
		f.Geo = &event.GeoInfo{CountryISOCode: r.CountryISO, CityName: r.City, Location: r.Location}
	}
	if f.ISP == "" {
		f.ISP = r.ISP
	}
}

// silentDetail says why a source cast no vote.
func silentDetail(out *event.ProviderOutcome) string {
	switch out.Status {
	case event.StatusNotFound:
		if out.Result != nil && out.Result.Detail != "" {
			return withAge(out.Result.Detail, out.Cache)
		}
		return "no record of this address"
	case event.StatusSkipped:
		return "skipped: " + out.Error
	}
	d := "not consulted: " + string(out.Status)
	if out.Error != "" {
		d += " (" + out.Error + ")"
	}
	return d
}

func withAge(detail string, c *event.CacheInfo) string {
	if c != nil && c.Hit {
		return detail + " (cached " + strconv.FormatInt(c.AgeSeconds, 10) + "s ago)"
	}
	return detail
}

func signed(p int) string {
	if p > 0 {
		return "+" + strconv.Itoa(p)
	}
	return strconv.Itoa(p)
}

func clamp(n int) int { return min(max(n, 0), 100) }

// Apply writes the verdict into ev.
func (f *Fused) Apply(ev *event.Scored) {
	ev.Score, ev.Severity, ev.Confidence = f.Score, f.Severity, f.Confidence
	ev.ValidatedBy = f.ValidatedBy
	ev.Tags = mergeTags(ev.Tags, f.Tags)
	ev.Reasons = append(ev.Reasons, f.Reasons...)
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
