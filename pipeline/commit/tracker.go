// Package commit tracks which fetched offsets are safe to commit when events complete out of
// order. Kafka commits are a single position per partition, so a partition may only be committed
// up to the highest offset below which every fetched event is done; a slow event holds back the
// commit position (never the events behind it) and its own offset is never committed early.
package commit

import (
	"sort"
	"sync"
)

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int
}

// Position is a committable point: every fetched offset up to and including Offset is done.
// Kafka's committed offset is the next one to read, Offset+1.
type Position struct {
	TopicPartition
	Offset int64
}

// Partition tracks the in-flight offsets of one partition, in fetch order. Offsets need not be
// consecutive (compaction and transaction markers leave gaps); order is what matters.
type Partition struct {
	tp TopicPartition

	mu       sync.Mutex
	entries  []entry // fetched, not yet committable; entries[head:] are live
	head     int
	done     int64 // highest contiguous done offset, -1 before any
	last     int64 // highest offset added
	inFlight int
}

type entry struct {
	offset int64
	done   bool
}

func newPartition(tp TopicPartition) *Partition {
	return &Partition{tp: tp, done: -1, last: -1}
}

// Done marks offset complete. It returns false if the offset is unknown (already done, or never
// added), which callers treat as a bug to count, not to crash on.
func (p *Partition) Done(offset int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := p.entries[p.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].offset >= offset })
	if i == len(live) || live[i].offset != offset || live[i].done {
		return false
	}
	live[i].done = true
	p.inFlight--
	for p.head < len(p.entries) && p.entries[p.head].done {
		p.done = p.entries[p.head].offset
		p.head++
	}
	// Compact once the dead prefix dominates, so memory stays proportional to the in-flight window.
	if p.head > 1024 && p.head*2 > len(p.entries) {
		n := copy(p.entries, p.entries[p.head:])
		clear(p.entries[n:])
		p.entries = p.entries[:n]
		p.head = 0
	}
	return true
}

func (p *Partition) add(offset int64) {
	p.mu.Lock()
	p.entries = append(p.entries, entry{offset: offset})
	p.last = offset
	p.inFlight++
	p.mu.Unlock()
}

// snapshot returns the highest contiguous done offset (-1 if none), the highest fetched offset
// and the number of offsets in flight.
func (p *Partition) snapshot() (done, last int64, inFlight int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done, p.last, p.inFlight
}

// Tracker holds one Partition per assigned partition. It is safe for concurrent use: the fetch
// loop calls Add, workers call Partition.Done, the committer calls Committable and Committed.
type Tracker struct {
	mu         sync.Mutex
	partitions map[TopicPartition]*Partition
	committed  map[TopicPartition]int64
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{
		partitions: make(map[TopicPartition]*Partition),
		committed:  make(map[TopicPartition]int64),
	}
}

// Add registers a fetched offset and returns the Partition to call Done on when the event and
// all its outputs are complete.
//
// An offset at or below the last one added means the consumer rewound: after a rebalance the
// group resumes from the committed offset and redelivers. The partition then starts afresh;
// completions of the superseded events still arrive at the old Partition, which no longer
// commits, so a redelivered event is only committed once its new copy is done. The position
// the consumer resumed from counts as the committed one from then on: a broker that restarted
// may have lost the last commits, and the redelivered events must be committed again even if
// they end where an earlier commit did, or the group's position would stay behind for good.
func (t *Tracker) Add(tp TopicPartition, offset int64) *Partition {
	t.mu.Lock()
	p := t.partitions[tp]
	rewound := p != nil && offset <= p.lastOffset()
	if rewound {
		t.committed[tp] = offset - 1
	}
	if p == nil || rewound {
		p = newPartition(tp)
		t.partitions[tp] = p
	}
	t.mu.Unlock()
	p.add(offset)
	return p
}

func (p *Partition) lastOffset() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// Committable returns, for every partition whose contiguous done offset moved past what was
// last committed, the position to commit.
func (t *Tracker) Committable() []Position {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Position
	for tp, p := range t.partitions {
		done, _, _ := p.snapshot()
		if c, ok := t.committed[tp]; done >= 0 && (!ok || done > c) {
			out = append(out, Position{TopicPartition: tp, Offset: done})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// Committed records that positions were committed.
func (t *Tracker) Committed(positions []Position) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, pos := range positions {
		t.committed[pos.TopicPartition] = pos.Offset
	}
}

// Lag is one partition's distance between fetched and committed.
type Lag struct {
	TopicPartition
	// Uncommitted is the highest fetched offset minus the last committed one.
	Uncommitted int64
	InFlight    int
}

// Lags reports every partition's commit lag.
func (t *Tracker) Lags() []Lag {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Lag, 0, len(t.partitions))
	for tp, p := range t.partitions {
		_, last, inFlight := p.snapshot()
		c, ok := t.committed[tp]
		if !ok {
			c = -1
		}
		out = append(out, Lag{TopicPartition: tp, Uncommitted: max(last-c, 0), InFlight: inFlight})
	}
	return out
}
