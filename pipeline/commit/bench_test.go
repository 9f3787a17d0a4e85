package commit

import "testing"

// BenchmarkTrackerOutOfOrder measures Add plus an out-of-order Done per offset, as the engine
// does for every event.
func BenchmarkTrackerOutOfOrder(b *testing.B) {
	t := NewTracker()
	tp := TopicPartition{Topic: "in", Partition: 0}
	var off int64
	b.ReportAllocs()
	for b.Loop() {
		p1 := t.Add(tp, off)
		p2 := t.Add(tp, off+1)
		p2.Done(off + 1)
		p1.Done(off)
		off += 2
	}
}
