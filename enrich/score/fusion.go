package score

import (
	"strconv"
	"time"
	"unsafe"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// store holds the parts of a verdict a scored event keeps, in one allocation: the reasons, tags
// and validators of a typical event fit its arrays (more grow a slice as usual), the AS and geo
// records the event points to, and the text of its reasons when it fits (a cached answer's
// detail with its age and tag points, as make bench's hits have it, takes about 130 bytes).
type store struct {
	reasons   [4]event.Reason
	tags      [4]string
	validated [2]string
	as        event.AS
	org       event.ASOrgRef
	geo       event.GeoInfo
	text      [160]byte
}

// fusion is one Fuse call's working lists, which start in arrays on Fuse's stack. The reasons' text that is not a source's own detail as it is (a cache
// age, a decay note, a silence, a list hit, tag points) is appended to text, and spans say
// whose it is: setTexts makes the whole text one string, which those strings are slices of.
// Its methods take and return it by value, and the verdict and store they write to as separate
// pointers: escape analysis is not field-sensitive, so a store through a pointer to (or held
// in) the fusion, or a verdict returned from inside it, would move its arrays to the heap.
type fusion struct {
	m        *Model
	votes    []vote
	services []service
	text     []byte
	spans    []span
}

// span is where one string of the verdict lies in the fusion's text.
type span struct {
	reason     int // index of the reason (partDetail, partSource)
	part       part
	start, end int
}

type part uint8

const (
	partDetail  part = iota // the reason's detail
	partSource              // the reason's source
	partService             // the verdict's BenignService
)

// service is a known-benign service a source names: the service, and who names it (a source,
// or "list" for a benign list).
type service struct{ name, by string }

// appendTo appends the service as its reason and BenignService say it: "name (by)".
func (s service) appendTo(b []byte) []byte {
	return append(append(append(append(b, s.name...), " ("...), s.by...), ')')
}

// keepContext takes the AS, geo and ISP from r where no earlier source gave them, the AS and geo
// kept in st.
func keepContext(f *Fused, st *store, r *event.Intel) {
	if f.AS == nil && (r.ASNumber != 0 || r.ASOrganization != "") {
		st.as = event.AS{Number: r.ASNumber}
		if r.ASOrganization != "" {
			st.org = event.ASOrgRef{Name: r.ASOrganization}
			st.as.Organization = &st.org
		}
		f.AS = &st.as
	}
	if f.Geo == nil && (r.CountryISO != "" || r.City != "" || r.Location != nil) {
		st.geo = event.GeoInfo{CountryISOCode: r.CountryISO, CityName: r.City, Location: r.Location}
		f.Geo = &st.geo
	}
	if f.ISP == "" {
		f.ISP = r.ISP
	}
}

// reason adds the reason of a source that answered: its detail, then how old the cached answer
// was, then how much its evidence decayed when that shows. It returns the reason's index.
func (fz fusion) reason(f *Fused, name, detail string, c *event.CacheInfo, age time.Duration, factor float64) (fusion, int) {
	i := len(f.Reasons)
	hit := c != nil && c.Hit
	if !hit && !shows(factor) {
		f.Reasons = append(f.Reasons, event.Reason{Source: name, Detail: detail})
		return fz, i
	}
	f.Reasons = append(f.Reasons, event.Reason{Source: name})
	start := len(fz.text)
	fz.text = append(fz.text, detail...)
	if hit {
		fz.text = append(strconv.AppendInt(append(fz.text, " (cached "...), c.AgeSeconds, 10), "s ago)"...)
	}
	if shows(factor) {
		fz.text = appendDecay(fz.text, age, factor)
	}
	fz.spans = append(fz.spans, span{reason: i, part: partDetail, start: start, end: len(fz.text)})
	return fz, i
}

// silent adds the reason of a source that cast no vote, saying why.
func (fz fusion) silent(f *Fused, name string, out *event.ProviderOutcome) fusion {
	if out.Status == event.StatusNotFound {
		if out.Result != nil && out.Result.Detail != "" {
			fz, _ = fz.reason(f, name, out.Result.Detail, out.Cache, 0, 1)
			return fz
		}
		f.Reasons = append(f.Reasons, event.Reason{Source: name, Detail: "no record of this address"})
		return fz
	}
	i, start := len(f.Reasons), len(fz.text)
	f.Reasons = append(f.Reasons, event.Reason{Source: name})
	if out.Status == event.StatusSkipped {
		fz.text = append(append(fz.text, "skipped: "...), out.Error...)
	} else {
		fz.text = append(append(fz.text, "not consulted: "...), out.Status...)
		if out.Error != "" {
			fz.text = append(append(append(fz.text, " ("...), out.Error...), ')')
		}
	}
	fz.spans = append(fz.spans, span{reason: i, part: partDetail, start: start, end: len(fz.text)})
	return fz
}

// setTexts gives the spans their strings, all slices of one copy of the text: in st when it
// fits, else a string of its own. st's text is written here only, before any string points
// into it, and never again, which is what makes it a string.
func (fz fusion) setTexts(f *Fused, st *store) {
	if len(fz.spans) == 0 {
		return
	}
	var all string
	if len(fz.text) <= len(st.text) {
		n := copy(st.text[:], fz.text)
		all = unsafe.String(&st.text[0], n)
	} else {
		all = string(fz.text)
	}
	for _, sp := range fz.spans {
		s := all[sp.start:sp.end]
		switch sp.part {
		case partDetail:
			f.Reasons[sp.reason].Detail = s
		case partSource:
			f.Reasons[sp.reason].Source = s
		case partService:
			f.BenignService = s
		}
	}
}
