package geoip

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/threatpipe/threatpipe/pipeline/health"
	"go.uber.org/zap"
)

// maxDBBytes bounds what one database file may weigh in memory (GeoIP2 City is ~130 MB).
const maxDBBytes = 1 << 30

// kind is what a database must be, judged by its metadata's database_type.
type kind int

const (
	kindCity kind = iota // City, Country (GeoLite2, GeoIP2, DB-IP) or Enterprise: the City layout
	kindASN              // GeoLite2 ASN, DB-IP ASN
)

func (k kind) String() string {
	if k == kindASN {
		return "ASN"
	}
	return "City or Country"
}

// label is the kind as the health view names it.
func (k kind) label() string {
	if k == kindASN {
		return "asn"
	}
	return "city"
}

func (k kind) accepts(dbType string) bool {
	if k == kindASN {
		return strings.Contains(dbType, "ASN")
	}
	return strings.Contains(dbType, "City") || strings.Contains(dbType, "Country") || strings.Contains(dbType, "Enterprise")
}

func checkType(md maxminddb.Metadata, k kind) error {
	if !k.accepts(md.DatabaseType) {
		return fmt.Errorf("is a %q database, want a %s database", md.DatabaseType, k)
	}
	return nil
}

// validate opens path the cheap way (memory-mapped, reading only the metadata) to check it at
// start-up; the reader is closed before anyone can use it.
func validate(path string, k kind) error {
	r, err := maxminddb.Open(path)
	if err != nil {
		return fmt.Errorf("cannot open %q as a MaxMind database: %w", path, err)
	}
	defer r.Close()
	if err := checkType(r.Metadata, k); err != nil {
		return fmt.Errorf("%q %w", path, err)
	}
	return nil
}

// stamp identifies a version of a file. The zero stamp means "missing".
type stamp struct {
	mod  time.Time
	size int64
}

func statFile(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{fi.ModTime(), fi.Size()}, nil
}

// load reads the whole file into memory and opens it from there, rather than memory-mapping
// it: a mapped file that someone rewrites in place (`cp new.mmdb City.mmdb` truncates it) makes
// the next lookup fault and crash the process, and in-place rewrites are exactly what a reload
// feature invites. It returns the stamp of the version it read.
func load(path string, k kind) (*maxminddb.Reader, stamp, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, stamp{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, stamp{}, err
	}
	if fi.Size() > maxDBBytes {
		return nil, stamp{}, fmt.Errorf("%q is larger than %d bytes", path, maxDBBytes)
	}
	buf, err := io.ReadAll(io.LimitReader(f, maxDBBytes+1))
	if err != nil {
		return nil, stamp{}, err
	}
	if len(buf) > maxDBBytes {
		return nil, stamp{}, fmt.Errorf("%q is larger than %d bytes", path, maxDBBytes)
	}
	r, err := maxminddb.OpenBytes(buf)
	if err != nil {
		return nil, stamp{}, fmt.Errorf("%q is not a MaxMind database: %w", path, err)
	}
	if err := checkType(r.Metadata, k); err != nil {
		return nil, stamp{}, fmt.Errorf("%q %w", path, err)
	}
	return r, stamp{fi.ModTime(), fi.Size()}, nil
}

var errClosed = errors.New("closed")

// db is one database file and the reader of its last good version.
//
// Swapping readers: lookups Load the current reader from an atomic pointer and use it without
// any lock; a reload Stores the new one. The old reader is never Closed: it reads from a
// byte slice on the heap (see load), so closing it would only drop references, and doing that
// while a lookup still runs on it is a data race the reader's documentation forbids. Instead
// the swap drops the source's reference and the garbage collector frees the old database once
// the last in-flight lookup holding it returns. No reference counts, no grace period to guess.
type db struct {
	file
	log *zap.Logger
	cur atomic.Pointer[maxminddb.Reader] // nil once closed

	mu     sync.Mutex // serialises polls and Close; guards seen, stats and closed
	seen   stamp      // the version last tried, loaded or not: a failure is logged once per change
	stats  health.File
	closed bool
}

func openDB(f file, log *zap.Logger, now func() time.Time) (*db, error) {
	r, st, err := load(f.path, f.kind)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.env, err)
	}
	d := &db{file: f, log: log.With(zap.String("variable", f.env), zap.String("path", f.path)), seen: st,
		stats: health.File{Name: f.env, Kind: f.kind.label(), Path: f.path}}
	d.install(r, now())
	return d, nil
}

// install publishes a loaded reader. d.mu is held, or d is not shared yet.
func (d *db) install(r *maxminddb.Reader, at time.Time) {
	d.cur.Store(r)
	d.stats.Format, d.stats.BuiltAt = r.Metadata.DatabaseType, r.Metadata.BuildTime().UTC()
	d.stats.LoadedAt, d.stats.LastError = at, ""
}

// snapshot describes the database for the health view.
func (d *db) snapshot() health.File {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// lookup decodes addr's record into v and reports whether the database has it.
func (d *db) lookup(addr netip.Addr, v any) (bool, error) {
	if d == nil {
		return false, nil
	}
	r := d.cur.Load()
	if r == nil {
		return false, errClosed
	}
	if addr.Is6() && r.Metadata.IPVersion == 4 {
		return false, nil // an IPv4-only database knows no IPv6 address
	}
	res := r.Lookup(addr)
	if err := res.Decode(v); err != nil {
		return false, err
	}
	return res.Found(), nil
}

// poll reloads the file if its modification time or size changed since the version last
// tried. A version that fails to load keeps the loaded one and is logged once.
func (d *db) poll(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	st, err := statFile(d.path)
	if st == d.seen {
		return
	}
	d.seen = st
	if err != nil {
		d.stats.LastError = err.Error()
		d.log.Warn("cannot read the GeoIP database; keeping the loaded version", zap.Error(err))
		return
	}
	r, loaded, err := load(d.path, d.kind)
	if err != nil {
		d.stats.LastError = err.Error()
		d.log.Warn("cannot load the changed GeoIP database; keeping the loaded version", zap.Error(err))
		return
	}
	// Remember the version read, not the one stat saw: if the file changed in between, the
	// next poll sees the difference and reads it again.
	d.seen = loaded
	d.install(r, now)
	d.log.Info("GeoIP database reloaded", zap.String("database_type", r.Metadata.DatabaseType),
		zap.Time("built", r.Metadata.BuildTime()))
}

func (d *db) close() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.cur.Store(nil) // in-flight lookups finish on the reader they hold; see db
}
