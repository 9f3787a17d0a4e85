package sim

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// InternetDB speaks Shodan InternetDB (shared reference providers.md §6): GET /{ip}, no key.
// It knows 70% of addresses ("internetdb:known"; hostile ones 90%: they expose more) and
// answers those with all five lists:
//
//   - ports: Criminal IP's open ports; vulns: the ids of Criminal IP's CVEs; cpes: one per
//     application on those ports (OpenSSH, nginx, Tomcat, Windows for RDP);
//   - tags: from Criminal IP's flags, is_tor "tor", is_proxy "proxy", is_vpn "vpn", is_cloud
//     "cloud", is_scanner "scanner"; and for hostile addresses one malicious tag with
//     probability 25% ("internetdb:malicious-tag"): "c2" for the first 10%, "compromised" for
//     the other 15%;
//   - hostnames: one plausible name (the service's for a service address, else
//     ip-<address>.<as name>.example).
//
// Errors, in FastAPI's {"detail": ...} shape: unknown address 404 "No information available";
// rate limited, forced window or spent quota 429 "Rate limit exceeded" with Retry-After; 500
// "Internal Server Error"; a path segment that is not an address, or a path with more or fewer
// segments, 404 "Not Found" (InternetDB does not document either; FastAPI answers an unmatched
// path so, and the lookup route takes any segment); wrong method 405 "Method Not Allowed".
// There is no account check.
type InternetDB struct{}

var _ Dialect = InternetDB{}

// Name implements Dialect.
func (InternetDB) Name() string { return "internetdb" }

// Route implements Dialect: every one-segment path is a lookup; one that is not an address gets
// an empty IP, which the engine answers as a bad request.
func (InternetDB) Route(r *http.Request) Route {
	ip := strings.TrimPrefix(r.URL.Path, "/")
	if ip == "" || strings.Contains(ip, "/") {
		return Route{}
	}
	if _, err := netip.ParseAddr(ip); err != nil {
		ip = ""
	}
	return Route{Kind: RouteLookup, Method: http.MethodGet, IP: ip}
}

// Key implements Dialect: InternetDB takes no key.
func (InternetDB) Key(*http.Request) (string, bool) { return "", true }

// Knows implements Dialect.
func (InternetDB) Knows(t *Truth) bool {
	p := 0.7
	if t.Class == ClassHostile {
		p = 0.9
	}
	return t.Chance("internetdb:known", p)
}

type internetDBDetail struct {
	Detail string `json:"detail"`
}

type internetDBHost struct {
	CPEs      []string `json:"cpes"`
	Hostnames []string `json:"hostnames"`
	IP        string   `json:"ip"`
	Ports     []int    `json:"ports"`
	Tags      []string `json:"tags"`
	Vulns     []string `json:"vulns"`
}

// Write implements Dialect.
func (InternetDB) Write(w http.ResponseWriter, o *Outcome) {
	switch o.Kind {
	case OutUnknownRoute, OutBadRequest, OutAccount:
		WriteJSON(w, http.StatusNotFound, internetDBDetail{"Not Found"})
	case OutMethod:
		WriteJSON(w, http.StatusMethodNotAllowed, internetDBDetail{"Method Not Allowed"})
	case OutRateLimited, OutQuotaExceeded:
		wait := o.RetryAfter
		if o.Kind == OutQuotaExceeded {
			wait = o.Quota.Reset.Sub(o.Now)
		}
		w.Header().Set("Retry-After", RetryAfterSeconds(wait))
		WriteJSON(w, http.StatusTooManyRequests, internetDBDetail{"Rate limit exceeded"})
	case OutRejected: // unreachable: keyless
		WriteJSON(w, http.StatusUnauthorized, internetDBDetail{"Unauthorized"})
	case OutServerError:
		WriteJSON(w, http.StatusInternalServerError, internetDBDetail{"Internal Server Error"})
	case OutNotFound:
		WriteJSON(w, http.StatusNotFound, internetDBDetail{"No information available"})
	default:
		WriteJSON(w, http.StatusOK, internetDBAnswer(o.Truth))
	}
}

// internetDBCPEs is read-only: the CPE of the application on each simulated port.
var internetDBCPEs = map[int]string{
	22:   "cpe:/a:openbsd:openssh:8.9p1",
	80:   "cpe:/a:f5:nginx:1.24.0",
	443:  "cpe:/a:f5:nginx:1.24.0",
	3389: "cpe:/o:microsoft:windows",
	8080: "cpe:/a:apache:tomcat:9.0.80",
}

// internetDBFlagTags is read-only: Criminal IP flags and the Shodan tags they become.
var internetDBFlagTags = [...][2]string{
	{"is_tor", "tor"}, {"is_proxy", "proxy"}, {"is_vpn", "vpn"}, {"is_cloud", "cloud"}, {"is_scanner", "scanner"},
}

// InternetDBTags are the tags the simulator gives t (the InternetDB doc comment's rules),
// sorted.
func InternetDBTags(t *Truth) []string {
	tags := []string{}
	if t.Class == ClassHostile {
		switch d := t.Draw("internetdb:malicious-tag"); {
		case d < 0.10:
			tags = append(tags, "c2")
		case d < 0.25:
			tags = append(tags, "compromised")
		}
	}
	for _, ft := range internetDBFlagTags {
		if t.Tagged(ft[0]) {
			tags = append(tags, ft[1])
		}
	}
	slices.Sort(tags)
	return tags
}

func internetDBAnswer(t *Truth) internetDBHost {
	h := internetDBHost{CPEs: []string{}, IP: t.IP, Ports: []int{}, Tags: InternetDBTags(t), Vulns: []string{}}
	for _, p := range t.CIP.Ports {
		h.Ports = append(h.Ports, p)
		if c, ok := internetDBCPEs[p]; ok && !slices.Contains(h.CPEs, c) {
			h.CPEs = append(h.CPEs, c)
		}
	}
	for _, c := range t.CIP.CVEs {
		h.Vulns = append(h.Vulns, c.ID)
	}
	h.Hostnames = []string{internetDBHostname(t)}
	return h
}

// internetDBHostname is a reverse name in the style of the address's network.
func internetDBHostname(t *Truth) string {
	slug := func(s string) string {
		return strings.Trim(strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
				return r
			case r >= 'A' && r <= 'Z':
				return r + 'a' - 'A'
			}
			return '-'
		}, s), "-")
	}
	if t.Class == ClassService {
		return slug(t.Service) + ".example"
	}
	domain := slug(t.CIP.ASName)
	if domain == "" {
		domain = "static"
	}
	return "ip-" + slug(t.IP) + "." + domain + ".example"
}
