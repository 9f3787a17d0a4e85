package misp

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinktext"
)

// indexLimit bounds the events/index answer: eventinfo matches substrings, so a few events
// besides the one sought may come back.
const indexLimit = 100

// EventInfo is the info of the event the sink writes a playbook's attributes of one UTC day
// to: "threatpipe: <playbook> <YYYY-MM-DD>".
func EventInfo(playbook string, day time.Time) string {
	pb := sinktext.OneLine(playbook, maxInfo)
	if pb == "" {
		pb = "-"
	}
	return "threatpipe: " + pb + " " + day.UTC().Format(time.DateOnly)
}

// event is the id of the event a's attribute belongs in: the configured one, else the
// playbook's event of the day the indicator was seen (a redelivery tomorrow still lands in
// today's event), created when create is set and MISP has none.
func (s *Sink) event(ctx context.Context, a *sinks.Action, create bool) (string, bool, error) {
	if s.cfg.EventID != "" {
		return s.cfg.EventID, true, nil
	}
	day := a.SeenAt(s.now()).UTC()
	info := EventInfo(a.Playbook, day)
	s.eventMu.Lock()
	defer s.eventMu.Unlock()
	id, found, err := s.findEvent(ctx, info)
	if err != nil || found || !create {
		return id, found, err
	}
	id, err = s.createEvent(ctx, info, day)
	return id, err == nil, err
}

// findEvent is the id of the event whose info is exactly info; the lowest id when replicas
// racing created several.
func (s *Sink) findEvent(ctx context.Context, info string) (string, bool, error) {
	body, err := s.client.Post(ctx, EventsIndexPath, eventIndexQuery{EventInfo: info, Limit: indexLimit, Page: 1})
	if err != nil {
		return "", false, err
	}
	events, err := decodeEventIndex(body)
	if err != nil {
		return "", false, err
	}
	best, bestN := "", uint64(0)
	for _, e := range events {
		n, _ := strconv.ParseUint(e.ID, 10, 64)
		if e.Info == info && (best == "" || n < bestN) {
			best, bestN = e.ID, n
		}
	}
	return best, best != "", nil
}

func (s *Sink) createEvent(ctx context.Context, info string, day time.Time) (string, error) {
	body, err := s.client.Post(ctx, EventsAddPath, newEvent{
		Info:          info,
		Date:          day.Format(time.DateOnly),
		Distribution:  strconv.Itoa(s.cfg.Distribution),
		ThreatLevelID: strconv.Itoa(s.cfg.ThreatLevel),
		Analysis:      strconv.Itoa(s.cfg.Analysis),
	})
	if err != nil {
		return "", err
	}
	ev, err := decodeEvent(body)
	if err != nil {
		return "", fmt.Errorf("%s: %w", EventsAddPath, err)
	}
	return ev.ID, nil
}
