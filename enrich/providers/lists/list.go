package lists

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaissmai/bart"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/health"
)

// stamp identifies a version of a file. The zero stamp means "missing".
type stamp struct {
	mod  time.Time
	size int64
}

// list is one declared list and the table of its last good version.
//
// Lookups Load the table from an atomic pointer without a lock; a reload parses the new
// version completely into a new table and Stores it. Tables are never modified once
// published, so a lookup still reading the old one is safe, and the garbage collector frees it
// when the last such lookup returns.
type list struct {
	def Def
	lim limits
	log *zap.Logger
	now func() time.Time
	cur atomic.Pointer[bart.Lite]

	mu    sync.Mutex // serialises polls; guards seen and stats
	seen  stamp      // the version last tried, loaded or not: a failure is logged once per change
	stats health.File
}

func newList(d Def, lim limits, log *zap.Logger, now func() time.Time) *list {
	return &list{def: d, lim: lim, now: now,
		log:   log.With(zap.String("list", d.Name), zap.String("path", d.Path)),
		stats: health.File{Name: d.Name, Kind: d.Kind, Path: d.Path, Format: d.Format}}
}

// errorf names the list and its file.
func (l *list) errorf(format string, args ...any) error {
	return fmt.Errorf("lists: list %q (%s): %s", l.def.Name, l.def.Path, fmt.Sprintf(format, args...))
}

// read parses the file's current version and returns it with the stamp of what it read.
func (l *list) read() (parsed, stamp, error) {
	f, err := os.Open(l.def.Path)
	if err != nil {
		return parsed{}, stamp{}, l.errorf("%v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return parsed{}, stamp{}, l.errorf("%v", err)
	case fi.IsDir():
		return parsed{}, stamp{}, l.errorf("is a directory")
	case fi.Size() > l.lim.file:
		return parsed{}, stamp{}, l.errorf("file is larger than %d bytes", l.lim.file)
	}
	p, err := parse(f, l.def.Format, l.lim)
	if err != nil {
		return parsed{}, stamp{}, l.errorf("%v", err)
	}
	return p, stamp{fi.ModTime(), fi.Size()}, nil
}

// load reads the file for New: any failure is the caller's.
func (l *list) load() error {
	p, st, err := l.read()
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.install(p, st)
	return nil
}

// install publishes a parsed version. l.mu is held.
func (l *list) install(p parsed, st stamp) {
	l.seen = st
	l.cur.Store(p.table)
	l.stats.Format, l.stats.Entries, l.stats.Skipped = p.format, p.table.Size(), p.skipped
	l.stats.LoadedAt, l.stats.LastError = l.now(), ""
	if p.table.Size() == 0 && p.skipped > 0 {
		l.log.Warn("no entry of the list is an address or CIDR", zap.Int("skipped", p.skipped), zap.String("format", p.format))
	}
}

// poll reloads the file if its modification time or size changed since the version last
// tried. A version that fails to load keeps the loaded one; the failure is logged once and
// kept in the stats.
func (l *list) poll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, err := os.Stat(l.def.Path)
	var now stamp
	if err == nil {
		now = stamp{st.ModTime(), st.Size()}
	}
	if now == l.seen {
		return
	}
	l.seen = now
	p, loaded, err := l.read()
	if err != nil {
		l.stats.LastError = err.Error()
		l.log.Warn("cannot load the changed list; keeping the loaded version", zap.Error(err))
		return
	}
	// Remember the version read, not the one stat saw: if the file changed in between, the
	// next poll sees the difference and reads it again.
	l.install(p, loaded)
	l.log.Info("list reloaded", zap.Int("entries", p.table.Size()), zap.Int("skipped", p.skipped), zap.String("format", p.format))
}

func (l *list) snapshot() health.File {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}
