// Package taxii publishes the view's indicators as STIX 2.1 objects over a read-only TAXII 2.1
// server, and converts them for `threatpipe export`.
//
// Each address the view holds (info severity and gated addresses excepted: those are not threat
// indicators, and a firewall fed from this server must never block its own networks) becomes:
//
//   - an indicator with the pattern [ipv4-addr:value = '...'] (or ipv6-addr), valid from the first
//     sighting until the last sighting plus the view's retention (THREATPIPE_VIEW_RETENTION), the
//     moment the view forgets the address unless it is seen again: the verdict is not vouched for
//     past it. created is the first sighting; modified the sighting that gave the current score,
//     so a new version appears when the score changes and only then;
//   - a sighting of it (count, first_seen, last_seen), modified at the last sighting;
//   - a note with the reasons of the latest verdict, modified at the last sighting;
//
// all created_by_ref one threatpipe identity. Ids are UUIDv5 of the address (stable across
// replicas, restarts and exports, so consumers update rather than duplicate).
package taxii

import (
	"crypto/sha1"
	"fmt"
	"net/netip"
	"time"
)

// SpecVersion is the STIX version of every object.
const SpecVersion = "2.1"

// namespace is threatpipe's UUIDv5 namespace for STIX ids (a random UUIDv4, fixed forever:
// changing it would change every id consumers hold).
var namespace = [16]byte{0x6f, 0x1d, 0x3a, 0x52, 0x8b, 0x0e, 0x4c, 0x6a, 0x9f, 0x27, 0x41, 0xd5, 0x0c, 0x83, 0xe2, 0x9b}

// uuid5 is RFC 9562's name-based UUID (SHA-1) of name in namespace.
func uuid5(ns [16]byte, name string) string {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	u := h.Sum(nil)[:16]
	u[6] = (u[6] & 0x0f) | 0x50
	u[8] = (u[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// stixID is the id of the object of type typ about name.
func stixID(typ, name string) string { return typ + "--" + uuid5(namespace, typ+":"+name) }

// IDs are the ids of an address's objects.
type IDs struct{ Indicator, Sighting, Note string }

// IDsOf returns the ids of the objects about addr (canonical spelling).
func IDsOf(addr string) IDs {
	return IDs{Indicator: stixID("indicator", addr), Sighting: stixID("sighting", addr), Note: stixID("note", addr)}
}

// Timestamp formats t as STIX does, in UTC to the millisecond (the view keeps milliseconds).
func Timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Object is any STIX object this package makes.
type Object interface {
	StixID() string
	StixType() string
	// Version is the modified timestamp, the object's version in a TAXII manifest.
	Version() string
}

// Common are the properties every STIX object here has.
type Common struct {
	Type         string `json:"type"`
	SpecVersion  string `json:"spec_version"`
	ID           string `json:"id"`
	Created      string `json:"created"`
	Modified     string `json:"modified"`
	CreatedByRef string `json:"created_by_ref,omitempty"`
}

func (c *Common) StixID() string   { return c.ID }
func (c *Common) StixType() string { return c.Type }
func (c *Common) Version() string  { return c.Modified }

// ExternalReference names a source that rated the address.
type ExternalReference struct {
	SourceName  string `json:"source_name"`
	Description string `json:"description,omitempty"`
}

// Identity is threatpipe as the creator of every object.
type Identity struct {
	Common
	Name          string `json:"name"`
	Description   string `json:"description"`
	IdentityClass string `json:"identity_class"`
}

// Indicator is a STIX indicator of one address.
type Indicator struct {
	Common
	Name               string              `json:"name"`
	Description        string              `json:"description"`
	IndicatorTypes     []string            `json:"indicator_types"`
	Pattern            string              `json:"pattern"`
	PatternType        string              `json:"pattern_type"`
	ValidFrom          string              `json:"valid_from"`
	ValidUntil         string              `json:"valid_until"`
	Labels             []string            `json:"labels,omitempty"`
	Confidence         int                 `json:"confidence"`
	ExternalReferences []ExternalReference `json:"external_references,omitempty"`
}

// Sighting counts the view's sightings of an indicator.
type Sighting struct {
	Common
	Description   string `json:"description"`
	FirstSeen     string `json:"first_seen"`
	LastSeen      string `json:"last_seen"`
	Count         int64  `json:"count"`
	SightingOfRef string `json:"sighting_of_ref"`
}

// Note carries the reasons of the latest verdict.
type Note struct {
	Common
	Abstract   string   `json:"abstract"`
	Content    string   `json:"content"`
	ObjectRefs []string `json:"object_refs"`
}

// Compile-time checks that every object kind is an Object.
var (
	_ Object = (*Identity)(nil)
	_ Object = (*Indicator)(nil)
	_ Object = (*Sighting)(nil)
	_ Object = (*Note)(nil)
)

// identityCreated is the identity's fixed creation time: its id and content never change, so
// neither does its version.
var identityCreated = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// IdentityID is the id of threatpipe's identity.
var IdentityID = stixID("identity", "threatpipe")

// NewIdentity returns threatpipe's identity, the creator of every object.
func NewIdentity() *Identity {
	ts := Timestamp(identityCreated)
	return &Identity{
		Common: Common{Type: "identity", SpecVersion: SpecVersion, ID: IdentityID, Created: ts, Modified: ts},
		Name:   "threatpipe", IdentityClass: "system",
		Description: "threatpipe, the streaming threat-intel enrichment pipeline that scored these indicators.",
	}
}

// IdentityAdded is when the identity counts as added to every collection.
func IdentityAdded() time.Time { return identityCreated }

// patternOf is the STIX pattern matching addr; ok is false when addr is not an IP address
// (nothing else may be interpolated into a pattern).
func patternOf(addr string) (string, bool) {
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Zone() != "" {
		return "", false
	}
	typ := "ipv6-addr"
	if ip.Is4() {
		typ = "ipv4-addr"
	}
	return fmt.Sprintf("[%s:value = '%s']", typ, ip.String()), true
}
