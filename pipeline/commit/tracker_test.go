package commit

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
)

var tp0 = TopicPartition{Topic: "siem", Partition: 0}

func pos(tp TopicPartition, off int64) Position { return Position{TopicPartition: tp, Offset: off} }

func wantCommittable(t *testing.T, tr *Tracker, want ...Position) {
	t.Helper()
	got := tr.Committable()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Committable() = %v, want %v", got, want)
	}
}

func sortedLags(tr *Tracker) []Lag {
	l := tr.Lags()
	sort.Slice(l, func(i, j int) bool {
		if l[i].Topic != l[j].Topic {
			return l[i].Topic < l[j].Topic
		}
		return l[i].Partition < l[j].Partition
	})
	return l
}

func TestEmptyTracker(t *testing.T) {
	tr := NewTracker()
	wantCommittable(t, tr)
	if l := tr.Lags(); len(l) != 0 {
		t.Fatalf("Lags() = %v", l)
	}
}

func TestInOrderCompletion(t *testing.T) {
	tr := NewTracker()
	var p *Partition
	for off := int64(0); off < 5; off++ {
		p = tr.Add(tp0, off)
	}
	wantCommittable(t, tr) // nothing done yet
	for off := int64(0); off < 5; off++ {
		if !p.Done(off) {
			t.Fatalf("Done(%d) = false", off)
		}
		wantCommittable(t, tr, pos(tp0, off))
	}
}

func TestOutOfOrderCompletion(t *testing.T) {
	tr := NewTracker()
	var p *Partition
	for off := int64(1); off <= 5; off++ {
		p = tr.Add(tp0, off)
	}
	p.Done(1)
	wantCommittable(t, tr, pos(tp0, 1))
	p.Done(3)
	p.Done(4)
	wantCommittable(t, tr, pos(tp0, 1)) // 2 holds the commit point back
	p.Done(2)
	wantCommittable(t, tr, pos(tp0, 4))
	p.Done(5)
	wantCommittable(t, tr, pos(tp0, 5))
}

func TestNothingCommittableUntilFirstDone(t *testing.T) {
	tr := NewTracker()
	var p *Partition
	for _, off := range []int64{100, 101, 102} {
		p = tr.Add(tp0, off)
	}
	p.Done(102)
	p.Done(101)
	wantCommittable(t, tr)
	p.Done(100)
	wantCommittable(t, tr, pos(tp0, 102))
}

func TestGapsInOffsets(t *testing.T) {
	tr := NewTracker()
	var p *Partition
	for _, off := range []int64{10, 12, 15, 16, 20} {
		p = tr.Add(tp0, off)
	}
	if p.Done(11) || p.Done(13) || p.Done(14) {
		t.Fatal("Done on an offset in a gap returned true")
	}
	p.Done(12)
	wantCommittable(t, tr)
	p.Done(10)
	wantCommittable(t, tr, pos(tp0, 12))
	p.Done(16)
	wantCommittable(t, tr, pos(tp0, 12))
	p.Done(15)
	wantCommittable(t, tr, pos(tp0, 16))
	p.Done(20)
	wantCommittable(t, tr, pos(tp0, 20))
}

func TestDoneUnknownOrTwice(t *testing.T) {
	tr := NewTracker()
	p := tr.Add(tp0, 5)
	tr.Add(tp0, 6)
	tr.Add(tp0, 7)
	for _, off := range []int64{-1, 0, 4, 8, 1 << 40} {
		if p.Done(off) {
			t.Errorf("Done(%d) of a never-added offset = true", off)
		}
	}
	if !p.Done(6) {
		t.Fatal("Done(6) = false")
	}
	if p.Done(6) {
		t.Error("second Done(6) = true")
	}
	if !p.Done(5) {
		t.Fatal("Done(5) = false")
	}
	// 5 and 6 are now below the head; they are still unknown.
	if p.Done(5) || p.Done(6) {
		t.Error("Done on an offset already committable = true")
	}
	if l := sortedLags(tr); l[0].InFlight != 1 {
		t.Errorf("InFlight = %d after failed Dones, want 1", l[0].InFlight)
	}
	wantCommittable(t, tr, pos(tp0, 6))
	if !p.Done(7) {
		t.Fatal("Done(7) = false")
	}
	wantCommittable(t, tr, pos(tp0, 7))
}

func TestDoneOnEmptyPartition(t *testing.T) {
	p := newPartition(tp0)
	if p.Done(0) {
		t.Fatal("Done on an empty partition = true")
	}
}

func TestCommittableOnlyBeyondCommitted(t *testing.T) {
	tr := NewTracker()
	var p *Partition
	for off := int64(0); off < 10; off++ {
		p = tr.Add(tp0, off)
	}
	p.Done(0)
	p.Done(1)
	c := tr.Committable()
	wantCommittable(t, tr, pos(tp0, 1))
	tr.Committed(c)
	wantCommittable(t, tr) // nothing new
	p.Done(3)
	wantCommittable(t, tr) // 2 still in flight
	p.Done(2)
	wantCommittable(t, tr, pos(tp0, 3))
	tr.Committed(tr.Committable())
	wantCommittable(t, tr)

	// A commit recorded ahead of the tracker (another consumer, say) also hides lower positions.
	tr.Committed([]Position{pos(tp0, 6)})
	p.Done(4)
	p.Done(5)
	p.Done(6)
	wantCommittable(t, tr)
	p.Done(7)
	wantCommittable(t, tr, pos(tp0, 7))
}

func TestMultiplePartitionsSorted(t *testing.T) {
	tr := NewTracker()
	tps := []TopicPartition{
		{"zeek", 0}, {"alerts", 10}, {"alerts", 2}, {"siem", 1}, {"alerts", 0}, {"siem", 0},
	}
	parts := map[TopicPartition]*Partition{}
	for i, tp := range tps {
		for off := int64(0); off < 3; off++ {
			parts[tp] = tr.Add(tp, off+int64(i)*100)
		}
	}
	// Complete the first two offsets of each partition except siem/1.
	for i, tp := range tps {
		if tp == (TopicPartition{"siem", 1}) {
			continue
		}
		parts[tp].Done(int64(i) * 100)
		parts[tp].Done(int64(i)*100 + 1)
	}
	want := []Position{
		pos(TopicPartition{"alerts", 0}, 401),
		pos(TopicPartition{"alerts", 2}, 201),
		pos(TopicPartition{"alerts", 10}, 101),
		pos(TopicPartition{"siem", 0}, 501),
		pos(TopicPartition{"zeek", 0}, 1),
	}
	wantCommittable(t, tr, want...)
	tr.Committed(want[:2])
	wantCommittable(t, tr, want[2:]...)

	// Done on one partition's Partition does not touch another's.
	if parts[TopicPartition{"alerts", 0}].Done(2) {
		t.Error("alerts/0 accepted zeek/0's offset 2")
	}
}

func TestRewindStartsFreshPartition(t *testing.T) {
	tr := NewTracker()
	var old *Partition
	for off := int64(10); off <= 15; off++ {
		old = tr.Add(tp0, off)
	}
	old.Done(10)
	old.Done(11)
	c := tr.Committable()
	wantCommittable(t, tr, pos(tp0, 11))
	tr.Committed(c)

	// Rebalance: the group resumes from committed offset 12 and redelivers 12..15.
	var fresh *Partition
	for off := int64(12); off <= 15; off++ {
		fresh = tr.Add(tp0, off)
	}
	if fresh == old {
		t.Fatal("rewind reused the old Partition")
	}
	// Completions of the superseded copies still succeed on the old Partition but must not
	// move the new commit point.
	for off := int64(12); off <= 15; off++ {
		if !old.Done(off) {
			t.Fatalf("old.Done(%d) = false", off)
		}
	}
	wantCommittable(t, tr)
	if !fresh.Done(12) {
		t.Fatal("fresh.Done(12) = false")
	}
	wantCommittable(t, tr, pos(tp0, 12))
	fresh.Done(14)
	wantCommittable(t, tr, pos(tp0, 12))
	fresh.Done(13)
	wantCommittable(t, tr, pos(tp0, 14))
}

// A rewind below the commit is the group's position now (a restarted broker may have lost the
// commits after it): the redelivered events are committed again as they complete, up to and
// past where the lost commit was.
func TestRewindBelowCommittedCommitsAgain(t *testing.T) {
	tr := NewTracker()
	var p *Partition
	for off := int64(0); off < 10; off++ {
		p = tr.Add(tp0, off)
	}
	for off := int64(0); off < 8; off++ {
		p.Done(off)
	}
	tr.Committed(tr.Committable()) // committed 7

	// Redelivery from further back than the commit (offset reset, say).
	var fresh *Partition
	for off := int64(3); off < 10; off++ {
		fresh = tr.Add(tp0, off)
	}
	for off := int64(3); off <= 7; off++ {
		fresh.Done(off)
		wantCommittable(t, tr, pos(tp0, off))
		tr.Committed(tr.Committable())
	}
	fresh.Done(8)
	wantCommittable(t, tr, pos(tp0, 8))
}

func TestRewindToSameOffset(t *testing.T) {
	tr := NewTracker()
	old := tr.Add(tp0, 5)
	fresh := tr.Add(tp0, 5) // redelivery of the very same offset
	if fresh == old {
		t.Fatal("re-adding the last offset reused the Partition")
	}
	old.Done(5)
	wantCommittable(t, tr)
	fresh.Done(5)
	wantCommittable(t, tr, pos(tp0, 5))
}

func TestLags(t *testing.T) {
	tr := NewTracker()
	a := TopicPartition{"a", 0}
	b := TopicPartition{"b", 1}
	var pa, pb *Partition
	for off := int64(0); off < 10; off++ {
		pa = tr.Add(a, off)
	}
	for _, off := range []int64{100, 105} {
		pb = tr.Add(b, off)
	}
	want := []Lag{
		{TopicPartition: a, Uncommitted: 10, InFlight: 10}, // 9 - (-1)
		{TopicPartition: b, Uncommitted: 106, InFlight: 2},
	}
	if got := sortedLags(tr); !reflect.DeepEqual(got, want) {
		t.Fatalf("Lags() = %+v, want %+v", got, want)
	}
	for off := int64(0); off < 4; off++ {
		pa.Done(off)
	}
	pa.Done(8)
	pb.Done(105)
	tr.Committed(tr.Committable()) // a at 3; b has nothing committable
	want = []Lag{
		{TopicPartition: a, Uncommitted: 6, InFlight: 5},
		{TopicPartition: b, Uncommitted: 106, InFlight: 1},
	}
	if got := sortedLags(tr); !reflect.DeepEqual(got, want) {
		t.Fatalf("Lags() = %+v, want %+v", got, want)
	}

	// After a rewind below the commit, the distance counts from where the consumer resumed.
	tr.Add(a, 1)
	want[0] = Lag{TopicPartition: a, Uncommitted: 1, InFlight: 1}
	if got := sortedLags(tr); !reflect.DeepEqual(got, want) {
		t.Fatalf("Lags() after rewind = %+v, want %+v", got, want)
	}
}

// White-box: memory follows the in-flight window, not the number of offsets ever seen.
func TestCompactionRandomOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tr := NewTracker()
	const n = 5000
	var p *Partition
	for off := int64(0); off < n; off++ {
		p = tr.Add(tp0, 1000+off*2) // with gaps
	}
	order := rng.Perm(n)
	done := make([]bool, n)
	contiguous := -1
	for i, k := range order {
		if !p.Done(1000 + int64(k)*2) {
			t.Fatalf("Done(%d) = false", 1000+k*2)
		}
		done[k] = true
		for contiguous+1 < n && done[contiguous+1] {
			contiguous++
		}
		if i%97 == 0 || i == n-1 {
			c := tr.Committable()
			if contiguous < 0 {
				if len(c) != 0 {
					t.Fatalf("Committable() = %v before offset 1000 is done", c)
				}
			} else if len(c) != 1 || c[0].Offset != 1000+int64(contiguous)*2 {
				t.Fatalf("after %d Dones: Committable() = %v, want offset %d", i+1, c, 1000+contiguous*2)
			}
		}
		p.mu.Lock()
		live, total := len(p.entries)-p.head, len(p.entries)
		p.mu.Unlock()
		if live != n-(contiguous+1) {
			t.Fatalf("live entries = %d, want %d", live, n-(contiguous+1))
		}
		// Compaction runs once the dead prefix is over 1024 and more than half the slice.
		if dead := total - live; dead > 1024 && dead*2 > total {
			t.Fatalf("not compacted: %d entries, %d dead", total, dead)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.entries) != 0 || p.head != 0 {
		t.Fatalf("after all Dones: len(entries) = %d, head = %d; want 0, 0", len(p.entries), p.head)
	}
	if p.inFlight != 0 || p.done != 1000+2*(n-1) {
		t.Fatalf("inFlight = %d, done = %d", p.inFlight, p.done)
	}
}

// White-box: a long stream with a bounded in-flight window keeps the entries slice bounded.
func TestCompactionSlidingWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tr := NewTracker()
	const window = 64
	var p *Partition
	var inflight []int64
	maxLen, maxLive := 0, 0
	for off := int64(0); off < 50_000; off++ {
		p = tr.Add(tp0, off)
		inflight = append(inflight, off)
		if len(inflight) < window {
			continue
		}
		i := rng.IntN(len(inflight))
		if !p.Done(inflight[i]) {
			t.Fatalf("Done(%d) = false", inflight[i])
		}
		inflight = append(inflight[:i], inflight[i+1:]...)
		p.mu.Lock()
		total, live := len(p.entries), len(p.entries)-p.head
		p.mu.Unlock()
		// live spans from the oldest in-flight offset to the newest.
		if want := int(off - inflight[0] + 1); live != want {
			t.Fatalf("live entries = %d, want %d", live, want)
		}
		if dead := total - live; dead > max(1024, live) {
			t.Fatalf("not compacted: %d entries, %d live", total, live)
		}
		maxLen, maxLive = max(maxLen, total), max(maxLive, live)
	}
	// Memory is bounded by the in-flight span, not by the 50k offsets seen.
	if maxLen > maxLive+max(1024, maxLive) {
		t.Fatalf("entries grew to %d for a live span of at most %d", maxLen, maxLive)
	}
	if maxLen >= 5000 {
		t.Fatalf("entries grew to %d", maxLen)
	}
	for _, off := range inflight {
		p.Done(off)
	}
	wantCommittable(t, tr, pos(tp0, 49_999))
}

// Several workers complete shuffled offsets while a committer polls; every reported position
// must be monotonic and cover only offsets whose Done was already called.
func TestConcurrentCommittable(t *testing.T) {
	const (
		partitions = 3
		perPart    = 3000
		workers    = 6
	)
	tr := NewTracker()
	type job struct {
		tp  TopicPartition
		p   *Partition
		off int64
	}
	var jobs []job
	for i := 0; i < partitions; i++ {
		tp := TopicPartition{Topic: "t", Partition: i}
		for k := int64(0); k < perPart; k++ {
			off := k * 3 // gaps
			jobs = append(jobs, job{tp, tr.Add(tp, off), off})
		}
	}
	rand.New(rand.NewPCG(5, 6)).Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })

	var mu sync.Mutex
	marked := make(map[TopicPartition]map[int64]bool)
	for i := 0; i < partitions; i++ {
		marked[TopicPartition{"t", i}] = make(map[int64]bool)
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	var failures atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(jobs)) {
					return
				}
				j := jobs[i]
				mu.Lock()
				marked[j.tp][j.off] = true // recorded before Done, so the set is a superset
				mu.Unlock()
				if !j.p.Done(j.off) {
					failures.Add(1)
				}
			}
		}()
	}

	stop := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		last := make(map[TopicPartition]int64)
		check := func() error {
			for _, c := range tr.Committable() {
				if prev, ok := last[c.TopicPartition]; ok && c.Offset <= prev {
					return fmt.Errorf("%v: committable went from %d to %d", c.TopicPartition, prev, c.Offset)
				}
				last[c.TopicPartition] = c.Offset
				mu.Lock()
				for off := int64(0); off <= c.Offset; off += 3 {
					if !marked[c.TopicPartition][off] {
						mu.Unlock()
						return fmt.Errorf("%v: committable %d but offset %d is not done", c.TopicPartition, c.Offset, off)
					}
				}
				mu.Unlock()
				tr.Committed([]Position{c})
			}
			return nil
		}
		for {
			select {
			case <-stop:
				errs <- check()
				return
			default:
				if err := check(); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	wg.Wait()
	close(stop)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d Done calls returned false", f)
	}
	wantCommittable(t, tr) // all committed by the poller
	for _, l := range tr.Lags() {
		if l.InFlight != 0 || l.Uncommitted != 0 {
			t.Errorf("lag %+v after everything is done and committed", l)
		}
	}
}

// refModel is a straightforward reference for the Tracker: per partition, the current
// generation's offsets in fetch order and which are done.
type refModel struct {
	gens      map[TopicPartition][]*refGen
	committed map[TopicPartition]int64
}

type refGen struct {
	offsets []int64
	done    map[int64]bool
}

func (m *refModel) cur(tp TopicPartition) *refGen {
	g := m.gens[tp]
	if len(g) == 0 {
		return nil
	}
	return g[len(g)-1]
}

func (m *refModel) add(tp TopicPartition, off int64) int {
	g := m.cur(tp)
	if g != nil && off <= g.offsets[len(g.offsets)-1] {
		m.committed[tp] = off - 1 // the consumer resumed here: the group's position
	}
	if g == nil || off <= g.offsets[len(g.offsets)-1] {
		g = &refGen{done: map[int64]bool{}}
		m.gens[tp] = append(m.gens[tp], g)
	}
	g.offsets = append(g.offsets, off)
	return len(m.gens[tp]) - 1
}

func (m *refModel) doneOK(g *refGen, off int64) bool {
	for _, o := range g.offsets {
		if o == off {
			if g.done[off] {
				return false
			}
			g.done[off] = true
			return true
		}
	}
	return false
}

func (m *refModel) committable() []Position {
	var out []Position
	for tp := range m.gens {
		g := m.cur(tp)
		hi := int64(-1)
		for _, o := range g.offsets {
			if !g.done[o] {
				break
			}
			hi = o
		}
		if c, ok := m.committed[tp]; hi >= 0 && (!ok || hi > c) {
			out = append(out, pos(tp, hi))
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

func TestTrackerAgainstModel(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		tr := NewTracker()
		m := &refModel{gens: map[TopicPartition][]*refGen{}, committed: map[TopicPartition]int64{}}
		parts := map[TopicPartition][]*Partition{} // generation index -> tracker Partition
		tps := []TopicPartition{{"a", 0}, {"a", 1}, {"b", 0}}
		next := map[TopicPartition]int64{}
		var log []string
		for step := 0; step < 400; step++ {
			tp := tps[rng.IntN(len(tps))]
			switch r := rng.IntN(100); {
			case r < 40: // fetch
				off := next[tp]
				if rng.IntN(10) == 0 && off > 0 { // rewind
					off = rng.Int64N(off + 1)
				}
				gi := m.add(tp, off)
				p := tr.Add(tp, off)
				if gi == len(parts[tp]) {
					parts[tp] = append(parts[tp], p)
				} else if parts[tp][gi] != p {
					t.Fatalf("seed %d: Add(%v, %d) returned a new Partition, model kept generation %d", seed, tp, off, gi)
				}
				next[tp] = off + 1 + rng.Int64N(3)
				log = append(log, fmt.Sprintf("add %v %d", tp, off))
			case r < 85: // complete, mostly in the current generation
				gens := m.gens[tp]
				if len(gens) == 0 {
					continue
				}
				gi := len(gens) - 1
				if rng.IntN(5) == 0 {
					gi = rng.IntN(len(gens))
				}
				g := gens[gi]
				off := g.offsets[rng.IntN(len(g.offsets))] + int64(rng.IntN(3)) - 1
				want := m.doneOK(g, off)
				if got := parts[tp][gi].Done(off); got != want {
					t.Fatalf("seed %d: gen %d Done(%v, %d) = %v, model %v\n%v", seed, gi, tp, off, got, want, log)
				}
				log = append(log, fmt.Sprintf("done g%d %v %d", gi, tp, off))
			default: // commit
				got, want := tr.Committable(), m.committable()
				if len(got) != 0 || len(want) != 0 {
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("seed %d step %d: Committable() = %v, model %v\n%v", seed, step, got, want, log)
					}
				}
				if rng.IntN(3) > 0 {
					tr.Committed(got)
					for _, c := range got {
						m.committed[c.TopicPartition] = c.Offset
					}
					log = append(log, fmt.Sprintf("committed %v", got))
				}
			}
		}
	}
}
