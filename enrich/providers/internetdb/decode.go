package internetdb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// ScoreMalicious is the score of an address Shodan tags as compromised or malware.
const ScoreMalicious = 80

// maliciousTags are the Shodan tags that say the host itself is bad, not merely exposed.
var maliciousTags = map[string]bool{"c2": true, "compromised": true, "malware": true, "doublepulsar": true}

// Detail limits: an address may have hundreds of ports and names.
const (
	maxDetailPorts     = 10
	maxDetailTags      = 8
	maxDetailHostnames = 3
)

// host is GET /{ip}'s 200 body. cpes are not read.
type host struct {
	IP        *string  `json:"ip"`
	Ports     []int64  `json:"ports"`
	Hostnames []string `json:"hostnames"`
	Tags      []string `json:"tags"`
	Vulns     []string `json:"vulns"`
}

// malformedError is a 2xx body that is not InternetDB's answer.
type malformedError struct {
	what string
	err  error // the JSON error, if any
}

func (e *malformedError) Error() string {
	if e.err != nil {
		return e.what + ": " + e.err.Error()
	}
	return e.what
}

func (e *malformedError) Unwrap() error { return e.err }

// unmarshalLenient decodes JSON and tolerates values of the wrong type (encoding/json skips
// such a value and fills the rest); only syntax errors fail.
func unmarshalLenient(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return nil
	}
	return err
}

// decodeHost turns a 2xx body of GET /{ip} into a Result. A body that is not a JSON object with
// ip or ports is a *malformedError.
//
// Normalisation: InternetDB describes exposure (ports, software, CVEs), not reputation, so it
// rates an address only when Shodan's own tags say the host is bad:
//   - any tag among c2, compromised, malware, doublepulsar: malicious, score 80;
//   - otherwise: unrated, score 0 (context only).
//
// Context: OpenPorts = ports within 1-65535, sorted, unique; CVECount = distinct vulns (MaxCVSS
// stays 0: InternetDB sends no scores); Tags = tags through providerhttp.Tag, sorted, unique.
// Detail, e.g. "InternetDB: ports 22, 80, 443; 2 CVEs; tags cloud, self-signed; hostnames
// a.example" (at most 10 ports, 8 tags, 3 hostnames, then "+N more").
func decodeHost(body []byte) (*enrich.Result, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &malformedError{what: "empty body"}
	}
	var h host
	if err := unmarshalLenient(body, &h); err != nil {
		return nil, &malformedError{what: "not JSON", err: err}
	}
	if h.IP == nil && h.Ports == nil {
		return nil, &malformedError{what: "no ip or ports"}
	}
	return normalise(&h), nil
}

func normalise(h *host) *enrich.Result {
	res := &enrich.Result{Verdict: event.VerdictUnrated}
	for _, p := range h.Ports {
		if p >= 1 && p <= 65535 {
			res.OpenPorts = append(res.OpenPorts, int(p))
		}
	}
	slices.Sort(res.OpenPorts)
	res.OpenPorts = slices.Compact(res.OpenPorts)

	cves := map[string]bool{}
	for _, v := range h.Vulns {
		if v = strings.ToUpper(strings.TrimSpace(v)); v != "" {
			cves[v] = true
		}
	}
	res.CVECount = len(cves)

	for _, t := range h.Tags {
		if t = providerhttp.Tag(t); t != "" {
			res.Tags = append(res.Tags, t)
		}
	}
	slices.Sort(res.Tags)
	res.Tags = slices.Compact(res.Tags)
	if slices.ContainsFunc(res.Tags, func(t string) bool { return maliciousTags[t] }) {
		res.Verdict, res.Score = enrich.VerdictMalicious, ScoreMalicious
	}
	res.Detail = detail(res, h.Hostnames)
	return res
}

func detail(res *enrich.Result, hostnames []string) string {
	var parts []string
	if len(res.OpenPorts) > 0 {
		ports := make([]string, len(res.OpenPorts))
		for i, p := range res.OpenPorts {
			ports[i] = strconv.Itoa(p)
		}
		parts = append(parts, "ports "+list(ports, maxDetailPorts))
	}
	switch res.CVECount {
	case 0:
	case 1:
		parts = append(parts, "1 CVE")
	default:
		parts = append(parts, fmt.Sprintf("%d CVEs", res.CVECount))
	}
	if len(res.Tags) > 0 {
		parts = append(parts, "tags "+list(res.Tags, maxDetailTags))
	}
	var names []string
	for _, n := range hostnames {
		if n = providerhttp.Clean(n, 64); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) > 0 {
		parts = append(parts, "hostnames "+list(names, maxDetailHostnames))
	}
	if len(parts) == 0 {
		return "InternetDB: no open ports, CVEs or tags"
	}
	return "InternetDB: " + strings.Join(parts, "; ")
}

// list joins at most n items, then says how many were left out.
func list(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(", +%d more", len(items)-n)
}

// Detail messages of InternetDB's 404s (FastAPI's {"detail": ...}).
const (
	detailNoInformation = "No information available"
	detailNoRoute       = "Not Found" // FastAPI's answer for a path no route matches
)

// errorDetail is the detail of an error body; "" when it is not a JSON object with a string
// detail (FastAPI's validation errors carry a list).
func errorDetail(body []byte) string {
	var e struct {
		Detail string `json:"detail"`
	}
	if unmarshalLenient(body, &e) != nil {
		return ""
	}
	return providerhttp.Clean(e.Detail, providerhttp.MaxMessageRunes)
}
