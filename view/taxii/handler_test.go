package taxii

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

type testEnvelope struct {
	More    bool              `json:"more"`
	Next    string            `json:"next"`
	Objects []json.RawMessage `json:"objects"`
}

type testObject struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Labels   []string
	Modified string `json:"modified"`
}

// pageAll reads a collection's objects path with limit, following next, and returns the objects
// (by id, failing on a repeat) and the number of pages.
func pageAll(t *testing.T, base, query string, limit int) (ids []string, objs map[string]testObject, pages int) {
	t.Helper()
	objs = map[string]testObject{}
	next := ""
	lastAdded := ""
	for {
		u := fmt.Sprintf("%s?limit=%d%s", base, limit, query)
		if next != "" {
			u += "&next=" + url.QueryEscape(next)
		}
		var env testEnvelope
		resp := get(t, u, &env)
		pages++
		if len(env.Objects) > limit {
			t.Fatalf("page of %d objects over limit %d", len(env.Objects), limit)
		}
		if env.More && len(env.Objects) != limit {
			t.Fatalf("short page (%d of %d) before the last", len(env.Objects), limit)
		}
		if first := resp.Header.Get("X-TAXII-Date-Added-First"); len(env.Objects) > 0 && first < lastAdded {
			t.Fatalf("date added went back: %s after %s", first, lastAdded)
		}
		lastAdded = resp.Header.Get("X-TAXII-Date-Added-Last")
		for _, raw := range env.Objects {
			var o testObject
			if err := json.Unmarshal(raw, &o); err != nil {
				t.Fatal(err)
			}
			if _, dup := objs[o.ID]; dup {
				t.Fatalf("object %s repeated (page %d)", o.ID, pages)
			}
			objs[o.ID] = o
			ids = append(ids, o.ID)
		}
		if !env.More {
			return ids, objs, pages
		}
		next = env.Next
	}
}

func TestObjectsPagingEveryCollection(t *testing.T) {
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	s := testStore(t, time.Now)
	published := populate(t, s, base, 300)
	srv := testServer(t, s)
	total := 0
	for _, c := range Collections() {
		want := published[c.Severity]
		if c.Severity == "" {
			want = published[event.SeverityCritical] + published[event.SeverityHigh] + published[event.SeverityMedium] + published[event.SeverityLow]
			total = want
		}
		for _, key := range []string{c.ID, c.Alias} {
			_, objs, pages := pageAll(t, srv.URL+APIRootPath+"collections/"+key+"/objects/", "", 7)
			counts := map[string]int{}
			for _, o := range objs {
				counts[o.Type]++
				if o.Type == "indicator" && c.Severity != "" && o.Labels[0] != "severity:"+string(c.Severity) {
					t.Fatalf("%s: indicator labelled %v", c.Alias, o.Labels)
				}
			}
			if counts["indicator"] != want || counts["sighting"] != want || counts["note"] != want || counts["identity"] != 1 {
				t.Fatalf("%s (%s): %v, want %d of each and one identity", c.Alias, key, counts, want)
			}
			if pages < (3*want+1)/7 {
				t.Fatalf("%s: %d pages", c.Alias, pages)
			}
		}
	}
	if total != 240 {
		t.Fatalf("%d published", total)
	}
}

func TestAddedAfterAndManifest(t *testing.T) {
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	s := testStore(t, time.Now)
	populate(t, s, base, 50)
	srv := testServer(t, s)
	col := srv.URL + APIRootPath + "collections/all/"
	// Indicator i was stored at base+i ms: after base+39ms leaves 40-49, of which 8 are published.
	after := url.QueryEscape(Timestamp(base.Add(39 * time.Millisecond)))
	_, objs, _ := pageAll(t, col+"objects/", "&added_after="+after, 5)
	if len(objs) != 8*3 {
		t.Fatalf("added_after: %d objects, want 24", len(objs))
	}
	var m struct {
		More    bool `json:"more"`
		Objects []struct {
			ID, DateAdded, Version, MediaType string
		} `json:"objects"`
	}
	resp := get(t, col+"manifest/?added_after="+after+"&match[type]=indicator", &m)
	if len(m.Objects) != 8 || m.More {
		t.Fatalf("manifest: %d records, more %v", len(m.Objects), m.More)
	}
	if resp.Header.Get("X-TAXII-Date-Added-First") != Timestamp(base.Add(40*time.Millisecond)) {
		t.Fatalf("first added %s", resp.Header.Get("X-TAXII-Date-Added-First"))
	}
	ids := IDsOf("203.0.113.41") // i=40: IPv4, score 95
	var env testEnvelope
	get(t, col+"objects/?match[id]="+ids.Indicator+","+ids.Note, &env)
	if len(env.Objects) != 2 {
		t.Fatalf("match[id]: %d objects", len(env.Objects))
	}
	get(t, col+"objects/"+ids.Sighting+"/", &env)
	if len(env.Objects) != 1 {
		t.Fatalf("object by id: %d objects", len(env.Objects))
	}
}

func TestDiscoveryAndCollections(t *testing.T) {
	srv := testServer(t, testStore(t, time.Now))
	var d struct {
		Title    string   `json:"title"`
		APIRoots []string `json:"api_roots"`
	}
	get(t, srv.URL+DiscoveryPath, &d)
	if d.Title == "" || len(d.APIRoots) != 1 || d.APIRoots[0] != APIRootPath {
		t.Fatalf("discovery %+v", d)
	}
	var root struct {
		Versions []string `json:"versions"`
	}
	get(t, srv.URL+APIRootPath, &root)
	if len(root.Versions) != 1 || root.Versions[0] != MediaTAXII {
		t.Fatalf("api root %+v", root)
	}
	var cols struct {
		Collections []struct {
			ID, Alias         string
			CanRead, CanWrite bool `json:"-"`
			R                 bool `json:"can_read"`
			W                 bool `json:"can_write"`
		} `json:"collections"`
	}
	get(t, srv.URL+APIRootPath+"collections/", &cols)
	var aliases []string
	for _, c := range cols.Collections {
		if !c.R || c.W {
			t.Fatalf("collection %s: can_read %v can_write %v", c.Alias, c.R, c.W)
		}
		aliases = append(aliases, c.Alias)
	}
	if strings.Join(aliases, ",") != "all,critical,high,medium,low" {
		t.Fatalf("collections %v", aliases)
	}
}

func TestAuthAndNegotiation(t *testing.T) {
	srv := testServer(t, testStore(t, time.Now))
	col := srv.URL + APIRootPath + "collections/"
	for _, tc := range []struct {
		name, url, accept, method string
		auth                      func(*http.Request)
		want                      int
	}{
		{"no credentials", col, MediaTAXII, "GET", func(*http.Request) {}, 401},
		{"wrong password", col, MediaTAXII, "GET", func(r *http.Request) { r.SetBasicAuth("alice", "nope") }, 401},
		{"unknown user", col, MediaTAXII, "GET", func(r *http.Request) { r.SetBasicAuth("bob", "secret") }, 401},
		{"wrong token", col, MediaTAXII, "GET", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, 401},
		{"token", col + "critical/objects/", MediaTAXII, "GET", func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") }, 200},
		{"token elsewhere", col + "high/objects/", MediaTAXII, "GET", func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") }, 403},
		{"json only", col, "application/json", "GET", func(r *http.Request) { r.SetBasicAuth("alice", "secret") }, 406},
		{"taxii 2.0", col, "application/taxii+json;version=2.0", "GET", func(r *http.Request) { r.SetBasicAuth("alice", "secret") }, 406},
		{"any", col, "*/*", "GET", func(r *http.Request) { r.SetBasicAuth("alice", "secret") }, 200},
		{"post", col + "all/objects/", MediaTAXII, "POST", func(r *http.Request) { r.SetBasicAuth("alice", "secret") }, 405},
		{"no collection", col + "nope/objects/", MediaTAXII, "GET", func(r *http.Request) { r.SetBasicAuth("alice", "secret") }, 404},
		{"bad cursor", col + "all/objects/?next=zzz", MediaTAXII, "GET", func(r *http.Request) { r.SetBasicAuth("alice", "secret") }, 400},
		{"bad limit", col + "all/objects/?limit=-1", MediaTAXII, "GET", func(r *http.Request) { r.SetBasicAuth("alice", "secret") }, 400},
	} {
		req, _ := http.NewRequest(tc.method, tc.url, nil)
		req.Header.Set("Accept", tc.accept)
		tc.auth(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Title      string `json:"title"`
			HTTPStatus string `json:"http_status"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if tc.want != 200 && (body.Title == "" || body.HTTPStatus != fmt.Sprint(tc.want) || resp.Header.Get("Content-Type") != MediaTAXII) {
			t.Errorf("%s: error body %+v, content type %s", tc.name, body, resp.Header.Get("Content-Type"))
		}
		if tc.want == 401 && len(resp.Header.Values("WWW-Authenticate")) == 0 {
			t.Errorf("%s: no WWW-Authenticate", tc.name)
		}
	}
}

func TestAnonymousLoopbackOnlyWhenAllowed(t *testing.T) {
	a, _ := NewAuth("", "", true)
	r, _ := http.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:5000"
	if _, ok := a.Authenticate(r); !ok {
		t.Fatal("loopback refused")
	}
	r.RemoteAddr = "192.0.2.1:5000"
	if _, ok := a.Authenticate(r); ok {
		t.Fatal("remote allowed")
	}
	b, _ := NewAuth("", "", false)
	r.RemoteAddr = "[::1]:5000"
	if _, ok := b.Authenticate(r); ok {
		t.Fatal("loopback allowed without the setting")
	}
}
