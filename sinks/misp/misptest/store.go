package misptest

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Event is a stored event.
type Event struct {
	ID, UUID, Info, Date                string
	Distribution, ThreatLevel, Analysis string
}

// Attribute is a stored attribute. Seed fills ID, UUID, Category and Timestamp when empty.
type Attribute struct {
	ID, EventID, UUID     string
	Type, Category, Value string
	Comment               string
	ToIDS, Deleted        bool
	Timestamp             int64
	Tags                  []string
}

// Sighting is a stored sighting.
type Sighting struct {
	ID, AttributeID, AttributeUUID, EventID, UUID string
	Source, Type                                  string
	Timestamp                                     int64
}

type store struct {
	events    []*Event
	attrs     []*Attribute
	sightings []*Sighting
	tagIDs    map[string]int
	nextID    int
}

func newStore() store { return store{tagIDs: map[string]int{}, nextID: 1000} }

func (st *store) id() string { st.nextID++; return strconv.Itoa(st.nextID) }

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (st *store) event(id string) *Event {
	for _, e := range st.events {
		if e.ID == id {
			return e
		}
	}
	return nil
}

func (st *store) attribute(match func(*Attribute) bool) *Attribute {
	for _, a := range st.attrs {
		if !a.Deleted && match(a) {
			return a
		}
	}
	return nil
}

func (st *store) tagID(name string) int {
	if id, ok := st.tagIDs[name]; ok {
		return id
	}
	st.tagIDs[name] = len(st.tagIDs) + 1
	return st.tagIDs[name]
}

// SeedEvent stores an event with info and returns its id.
func (s *Server) SeedEvent(info string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &Event{ID: s.st.id(), UUID: newUUID(), Info: info, Date: s.now().UTC().Format(time.DateOnly), Distribution: "0", ThreatLevel: "4", Analysis: "0"}
	s.st.events = append(s.st.events, e)
	return e.ID
}

// SeedAttribute stores a copy of a, filling an empty ID, UUID, Category (Network activity) and
// Timestamp (now), and an EventID of a new event "seed"; it returns the stored attribute.
func (s *Server) SeedAttribute(a Attribute) Attribute {
	if a.EventID == "" {
		a.EventID = s.SeedEvent("seed")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.ID == "" {
		a.ID = s.st.id()
	}
	if a.UUID == "" {
		a.UUID = newUUID()
	}
	if a.Category == "" {
		a.Category = "Network activity"
	}
	if a.Timestamp == 0 {
		a.Timestamp = s.now().Unix()
	}
	a.Tags = slices.Clone(a.Tags)
	for _, t := range a.Tags {
		s.st.tagID(t)
	}
	s.st.attrs = append(s.st.attrs, &a)
	return a
}

// Events returns the stored events, in creation order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Event, 0, len(s.st.events))
	for _, e := range s.st.events {
		out = append(out, *e)
	}
	return out
}

// Attributes returns the stored attributes (deleted ones included), in creation order.
func (s *Server) Attributes() []Attribute {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Attribute, 0, len(s.st.attrs))
	for _, a := range s.st.attrs {
		c := *a
		c.Tags = slices.Clone(a.Tags)
		out = append(out, c)
	}
	return out
}

// Sightings returns the stored sightings, in creation order.
func (s *Server) Sightings() []Sighting {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Sighting, 0, len(s.st.sightings))
	for _, x := range s.st.sightings {
		out = append(out, *x)
	}
	return out
}
