package sim

import (
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// GreyNoise Community's paths.
const (
	GreyNoiseCommunityPath = "/v3/community/"
	GreyNoisePingPath      = "/ping"
)

// GreyNoise speaks the GreyNoise Community API (shared reference providers.md §4): GET
// /v3/community/{ip} and GET /ping, key in the "key" header. Like the real API, lookups answer
// without a key too (the unauthenticated plan); /ping needs one. What it says of an address,
// by class (Truth):
//
//   - service: 200 with riot true, noise false, classification "benign", name t.Service and a
//     /riot/{ip} link;
//   - hostile: when Criminal IP flags is_scanner, or else with probability 60%
//     ("greynoise:noise"), 200 with noise true and classification "malicious"; otherwise 404;
//   - suspect: when flagged is_scanner, 200 with noise true and classification "unknown", or
//     "malicious" with probability 30% ("greynoise:malicious"); otherwise 404;
//   - clean: when flagged is_scanner, 200 with noise true, classification "benign" and name
//     "Simulated Research Scanner"; otherwise 404.
//
// Noise answers that are not benign name the actor "unknown", as GreyNoise does, and link to
// /ip/{ip}. last_seen ("greynoise:last-seen", a date) is 0-6 days before now for hostile
// addresses, except 20% of them ("greynoise:stale") last seen 30-89 days ago, whose evidence
// has decayed in the fused score; 0-29 days for the others. Community takes IPv4
// only: an IPv6 address, or anything that is not an address, is answered 400 {"message":
// "Request is not a valid routable IPv4 address"} and spends no quota.
//
// Errors, in GreyNoise's documented shapes: 404 {"ip":...,"noise":false,"riot":false,
// "message":"IP not observed scanning the internet or contained in RIOT data set."}; 401
// {"message":"Unauthorized. Please check your API key."}; 429 (rate limit, forced window and
// spent quota alike) the documented {"plan":"unauthenticated","rate-limit":"100-lookups/day",
// "plan_url":...,"message":...} with Retry-After (for a spent quota, the seconds to the UTC day's
// end); 500 {"message":"Encountered error while performing request"}. Unknown paths and wrong
// methods get Go's plain-text 404 and 405, as from the vendor's Go server. /ping answers
// {"expiration":"2026-12-31","message":"pong","offering":"community","address":"192.0.2.1"}.
type GreyNoise struct{}

var _ Dialect = GreyNoise{}

// Name implements Dialect.
func (GreyNoise) Name() string { return "greynoise" }

// Route implements Dialect. A lookup of anything but an IPv4 address gets an empty IP, which the
// engine answers as a bad request: Community validates the address before it looks it up.
func (GreyNoise) Route(r *http.Request) Route {
	if r.URL.Path == GreyNoisePingPath {
		return Route{Kind: RouteAccount, Method: http.MethodGet}
	}
	ip, ok := strings.CutPrefix(r.URL.Path, GreyNoiseCommunityPath)
	if !ok || ip == "" || strings.Contains(ip, "/") {
		return Route{}
	}
	if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() {
		ip = ""
	}
	return Route{Kind: RouteLookup, Method: http.MethodGet, IP: ip}
}

// Key implements Dialect: lookups without a key are the unauthenticated plan (keyless).
func (GreyNoise) Key(r *http.Request) (string, bool) {
	k := r.Header.Get("key")
	return k, k == "" && r.URL.Path != GreyNoisePingPath
}

// Knows implements Dialect.
func (GreyNoise) Knows(t *Truth) bool {
	_, ok := greyNoiseSees(t)
	return ok
}

// greyNoiseSight is what GreyNoise has on an address it knows.
type greyNoiseSight struct {
	noise, riot    bool
	classification string
	name           string
}

// greyNoiseSees applies the rules of the GreyNoise doc comment.
func greyNoiseSees(t *Truth) (greyNoiseSight, bool) {
	if a, err := netip.ParseAddr(t.IP); err != nil || !a.Is4() {
		return greyNoiseSight{}, false
	}
	scanner := t.Tagged("is_scanner")
	switch t.Class {
	case ClassService:
		return greyNoiseSight{riot: true, classification: "benign", name: t.Service}, true
	case ClassHostile:
		if scanner || t.Chance("greynoise:noise", 0.6) {
			return greyNoiseSight{noise: true, classification: "malicious", name: "unknown"}, true
		}
	case ClassSuspect:
		if scanner {
			class := "unknown"
			if t.Chance("greynoise:malicious", 0.3) {
				class = "malicious"
			}
			return greyNoiseSight{noise: true, classification: class, name: "unknown"}, true
		}
	case ClassClean:
		if scanner {
			return greyNoiseSight{noise: true, classification: "benign", name: "Simulated Research Scanner"}, true
		}
	}
	return greyNoiseSight{}, false
}

type greyNoiseCommunity struct {
	IP             string `json:"ip"`
	Noise          bool   `json:"noise"`
	RIOT           bool   `json:"riot"`
	Classification string `json:"classification,omitempty"`
	Name           string `json:"name,omitempty"`
	Link           string `json:"link,omitempty"`
	LastSeen       string `json:"last_seen,omitempty"`
	Message        string `json:"message"`
}

type greyNoiseMessage struct {
	Message string `json:"message"`
}

type greyNoiseLimit struct {
	Plan      string `json:"plan"`
	RateLimit string `json:"rate-limit"`
	PlanURL   string `json:"plan_url"`
	Message   string `json:"message"`
}

// greyNoiseRateLimited is the 429 body of GreyNoise's OpenAPI example, verbatim.
var greyNoiseRateLimited = greyNoiseLimit{"unauthenticated", "100-lookups/day", "https://greynoise.io/pricing",
	"You have hit your daily rate limit of 100 requests per day. Please create a free account or upgrade your plan at https://greynoise.io/pricing.\n"}

// Write implements Dialect.
func (GreyNoise) Write(w http.ResponseWriter, o *Outcome) {
	switch o.Kind {
	case OutUnknownRoute:
		http.Error(w, "404 page not found", http.StatusNotFound)
	case OutMethod:
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	case OutRateLimited:
		w.Header().Set("Retry-After", RetryAfterSeconds(o.RetryAfter))
		WriteJSON(w, http.StatusTooManyRequests, greyNoiseRateLimited)
	case OutQuotaExceeded:
		w.Header().Set("Retry-After", RetryAfterSeconds(o.Quota.Reset.Sub(o.Now)))
		WriteJSON(w, http.StatusTooManyRequests, greyNoiseRateLimited)
	case OutRejected:
		WriteJSON(w, http.StatusUnauthorized, greyNoiseMessage{"Unauthorized. Please check your API key."})
	case OutServerError:
		WriteJSON(w, http.StatusInternalServerError, greyNoiseMessage{"Encountered error while performing request"})
	case OutBadRequest:
		WriteJSON(w, http.StatusBadRequest, greyNoiseMessage{"Request is not a valid routable IPv4 address"})
	case OutNotFound:
		WriteJSON(w, http.StatusNotFound, greyNoiseCommunity{IP: o.Truth.IP,
			Message: "IP not observed scanning the internet or contained in RIOT data set."})
	case OutAccount:
		WriteJSON(w, http.StatusOK, map[string]string{"expiration": "2026-12-31", "message": "pong",
			"offering": "community", "address": "192.0.2.1"})
	default:
		WriteJSON(w, http.StatusOK, greyNoiseAnswer(o.Truth, o.Now))
	}
}

func greyNoiseAnswer(t *Truth, now time.Time) greyNoiseCommunity {
	s, _ := greyNoiseSees(t)
	link := "https://viz.greynoise.io/ip/" + t.IP
	if s.riot {
		link = "https://viz.greynoise.io/riot/" + t.IP
	}
	lo, hi := 0, 29
	if t.Class == ClassHostile {
		lo, hi = 0, 6
		if t.Chance("greynoise:stale", 0.2) {
			lo, hi = 30, 89
		}
	}
	lastSeen := now.UTC().AddDate(0, 0, -t.Between("greynoise:last-seen", lo, hi))
	return greyNoiseCommunity{IP: t.IP, Noise: s.noise, RIOT: s.riot, Classification: s.classification,
		Name: s.name, Link: link, LastSeen: lastSeen.Format(time.DateOnly), Message: "Success"}
}
