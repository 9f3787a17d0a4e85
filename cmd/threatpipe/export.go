package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/redisx"
	"github.com/threatpipe/threatpipe/view"
	"github.com/threatpipe/threatpipe/view/taxii"
)

func runExport(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "export [--format stix|csv] [--severity list] [--since 24h|timestamp] [--out file]",
		`Writes the prioritised view's indicators, read directly from Redis (THREATPIPE_REDIS_*, under
THREATPIPE_REDIS_KEY_PREFIX), as a STIX 2.1 bundle (the objects the TAXII server publishes:
identity, then per address an indicator, a sighting and a note) or as CSV, in the order they were
stored. Info-severity and gated addresses are never exported. valid_until follows
THREATPIPE_VIEW_RETENTION, as on the TAXII server.`)
	format := fs.String("format", "stix", "stix (a STIX 2.1 bundle) or csv")
	severity := fs.String("severity", "low,medium,high,critical", "comma-separated severities to export: low, medium, high, critical")
	since := fs.String("since", "", "only indicators stored after this: a duration back from now (24h) or an RFC 3339 timestamp")
	out := fs.String("out", "-", "file to write (written whole, then renamed into place); - for stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *format != "stix" && *format != "csv" {
		return fmt.Errorf("--format: %q is not stix or csv", *format)
	}
	sevs, err := parseExportSeverities(*severity)
	if err != nil {
		return err
	}
	after, err := parseSince(*since, time.Now())
	if err != nil {
		return err
	}
	cfg, err := config.Load(env.environ)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	vcfg, err := view.LoadConfig(env.environ)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	rdb := redisx.New(&cfg.Redis)
	defer func() { _ = rdb.Close() }()
	feed := taxii.NewFeed(view.NewStore(rdb, cfg.Redis.KeyPrefix, vcfg.StoreOptions()))
	each := func(fn func(*view.Indicator) error) error {
		return feed.Each(ctx, after, func(ind *view.Indicator) error {
			if !sevs[ind.Severity] {
				return nil
			}
			return fn(ind)
		})
	}
	return writeOut(*out, env.stdout, func(w io.Writer) error {
		if *format == "csv" {
			return exportCSV(w, feed.Convert, each)
		}
		return exportSTIX(w, feed.Convert, each)
	})
}

func parseExportSeverities(s string) (map[event.Severity]bool, error) {
	out := map[event.Severity]bool{}
	for _, p := range strings.Split(s, ",") {
		switch sev := event.Severity(strings.TrimSpace(p)); sev {
		case event.SeverityLow, event.SeverityMedium, event.SeverityHigh, event.SeverityCritical:
			out[sev] = true
		default:
			return nil, fmt.Errorf("--severity: %q is not one of low, medium, high, critical", p)
		}
	}
	return out, nil
}

// parseSince reads --since: a duration back from now or a timestamp ("" for everything).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since: %q is neither a positive duration (24h) nor an RFC 3339 timestamp", s)
	}
	return t, nil
}

// writeOut runs write into path, through a temporary file renamed into place so a reader never
// sees half an export, or into stdout for "-".
func writeOut(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "-" {
		bw := bufio.NewWriter(stdout)
		return errors.Join(write(bw), bw.Flush())
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	bw := bufio.NewWriter(f)
	err = errors.Join(write(bw), bw.Flush(), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("--out %s: %w", path, err)
	}
	return nil
}

// exportSTIX streams a bundle: the identity, then every indicator's objects.
func exportSTIX(w io.Writer, conv taxii.Convert, each func(func(*view.Indicator) error) error) error {
	id := make([]byte, 16)
	_, _ = rand.Read(id) // crypto/rand never fails
	id[6], id[8] = (id[6]&0x0f)|0x40, (id[8]&0x3f)|0x80
	h := hex.EncodeToString(id)
	if _, err := fmt.Fprintf(w, `{"type":"bundle","id":"bundle--%s-%s-%s-%s-%s","objects":[`, h[0:8], h[8:12], h[12:16], h[16:20], h[20:]); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(taxii.NewIdentity()); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	err := each(func(ind *view.Indicator) error {
		for _, o := range conv.Objects(ind) {
			if _, err := io.WriteString(w, ","); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			if err := enc.Encode(o); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, "]}\n"); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// csvHeader are the CSV export's columns.
var csvHeader = []string{"ip", "type", "score", "severity", "confidence", "first_seen", "last_seen", "valid_until",
	"sightings", "tags", "validated_by", "country", "asn", "as_org", "stix_id"}

func exportCSV(w io.Writer, conv taxii.Convert, each func(func(*view.Indicator) error) error) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	err := each(func(ind *view.Indicator) error {
		typ := "ipv4-addr"
		if strings.Contains(ind.IP, ":") {
			typ = "ipv6-addr"
		}
		return cw.Write([]string{ind.IP, typ, strconv.Itoa(ind.Score), string(ind.Severity), strconv.Itoa(ind.Confidence),
			taxii.Timestamp(ind.FirstSeen), taxii.Timestamp(ind.LastSeen), taxii.Timestamp(ind.LastSeen.Add(conv.Retention)),
			strconv.FormatInt(ind.Sightings, 10), strings.Join(ind.Tags, ";"), strings.Join(ind.ValidatedBy, ";"),
			csvSafe(ind.Country), strconv.FormatInt(ind.ASN, 10), csvSafe(ind.ASOrg), taxii.IDsOf(ind.IP).Indicator})
	})
	cw.Flush()
	if err != nil {
		return err
	}
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// csvSafe defuses spreadsheet formulas in text that came from outside (a provider's AS name).
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// mountTAXII mounts the TAXII 2.1 server on the view's mux when THREATPIPE_VIEW_TAXII_ENABLED.
func mountTAXII(env *environment, store *view.Store, mux *http.ServeMux, log *zap.Logger) error {
	tc, err := view.LoadTAXIIConfig(env.environ)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if !tc.Enabled {
		return nil
	}
	auth, err := taxii.NewAuth(tc.UsersFile, tc.TokensFile, tc.AllowAnonymousLoopback)
	if err != nil {
		name := "TOKENS_FILE"
		var fe *taxii.FileError
		if errors.As(err, &fe) && fe.Users {
			name = "USERS_FILE"
		}
		return fmt.Errorf("configuration: %s%s: %w", view.TAXIIPrefix, name, err)
	}
	if tc.AllowAnonymousLoopback {
		log.Warn("TAXII SERVER ALLOWS ANONYMOUS ACCESS FROM LOOPBACK: any local process (or a proxy on this host) reads every collection without credentials",
			zap.String("setting", view.TAXIIPrefix+"ALLOW_ANONYMOUS_LOOPBACK"))
	}
	if auth.Empty() && !tc.AllowAnonymousLoopback {
		return fmt.Errorf("configuration: %sUSERS_FILE and %sTOKENS_FILE list nobody", view.TAXIIPrefix, view.TAXIIPrefix)
	}
	taxii.NewServer(store, auth, log.Named("taxii")).Register(mux)
	log.Info("taxii server mounted", zap.String("discovery", taxii.DiscoveryPath), zap.String("api_root", taxii.APIRootPath))
	return nil
}
