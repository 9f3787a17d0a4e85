package threatq

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinktext"
)

// ThreatQ indicator types of IP addresses (Cortex XSOAR ThreatQ v2's INDICATOR_TYPES; Polarity
// ThreatQ's _getEntityType: "IP Address" and "IPv6 Address").
const (
	TypeIPv4 = "IP Address"
	TypeIPv6 = "IPv6 Address"
)

// Attribute names the sink writes. Each exists at most once per indicator: a repeat updates
// its value. They are plain names so that analysts can filter on them in the Threat Library.
const (
	AttrScore       = "Threatpipe Score"
	AttrSeverity    = "Threatpipe Severity"
	AttrConfidence  = "Threatpipe Confidence"
	AttrValidatedBy = "Validated By"
	AttrCountry     = "Country"
	AttrASN         = "ASN"
	AttrASOrg       = "AS Organization"
	AttrISP         = "ISP"
	// verdictSuffix ends a provider's verdict attribute: "Criminal IP Verdict".
	verdictSuffix = " Verdict"
)

// maxValue bounds an attribute value: ThreatQ attribute values are text, but a verdict
// attribute has no business being long.
const maxValue = 1024

// providerLabels are the providers' names as their vendors spell them.
var providerLabels = map[string]string{
	"criminalip": "Criminal IP",
	"abuseipdb":  "AbuseIPDB",
	"greynoise":  "GreyNoise",
	"virustotal": "VirusTotal",
	"otx":        "AlienVault OTX",
	"internetdb": "Shodan InternetDB",
	"geoip":      "GeoIP",
	"lists":      "IP lists",
}

// ProviderLabel is the attribute prefix of a provider's verdict.
func ProviderLabel(name string) string {
	if l, ok := providerLabels[name]; ok {
		return l
	}
	return name
}

// TypeOf is the ThreatQ indicator type of an address.
func TypeOf(target string) string {
	if strings.Contains(target, ":") {
		return TypeIPv6
	}
	return TypeIPv4
}

// attr is one attribute to write: {"name", "value"} (Cortex XSOAR ThreatQ v2,
// attributes_to_request_format and add_attribute_command).
type attr struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// attributes are the values the action writes back, in a stable order.
func attributes(a *sinks.Action) []attr {
	out := []attr{{AttrScore, strconv.Itoa(a.Score)}, {AttrSeverity, a.SeverityLabel()}}
	add := func(name, value string) {
		if value = sinktext.OneLine(value, maxValue); value != "" {
			out = append(out, attr{name, value})
		}
	}
	ev := a.Event
	if ev != nil {
		out = append(out, attr{AttrConfidence, strconv.Itoa(ev.Confidence)})
		add(AttrValidatedBy, strings.Join(ev.ValidatedBy, ", "))
	}
	country, isp := a.Country, a.ISP
	if ev != nil {
		if country == "" && ev.Geo != nil {
			country = ev.Geo.CountryISOCode
		}
		if isp == "" {
			isp = ev.ISP
		}
	}
	add(AttrCountry, country)
	if ev != nil && ev.AS != nil {
		if ev.AS.Number > 0 {
			add(AttrASN, "AS"+strconv.FormatInt(ev.AS.Number, 10))
		}
		if ev.AS.Organization != nil {
			add(AttrASOrg, ev.AS.Organization.Name)
		}
	}
	add(AttrISP, isp)
	if ev != nil {
		for _, name := range slices.Sorted(maps.Keys(ev.Providers)) {
			if v := verdict(ev.Providers[name]); v != "" {
				add(ProviderLabel(name)+verdictSuffix, v)
			}
		}
	}
	return out
}

// verdict is a provider's outcome as an attribute value: its verdict and score, or "" when it
// gave none (an error, a pending lookup).
func verdict(o *event.ProviderOutcome) string {
	if o == nil || o.Result == nil || o.Result.Verdict == "" {
		return ""
	}
	return string(o.Result.Verdict) + " (" + strconv.Itoa(o.Result.Score) + ")"
}

// tags are the action's tags, cleaned and without repeats, in order.
func tags(a *sinks.Action) []string {
	var out []string
	for _, t := range a.Tags {
		t = sinktext.OneLine(t, maxName)
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}
