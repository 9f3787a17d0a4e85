package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/view/auth/authtest"
)

// fakeClock is the Authenticator's clock in tests; the provider keeps real time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The test users and the groups their roles come from.
var testUsers = []authtest.User{
	{ID: "u-alice", Username: "alice", Password: "pw-alice", Name: "Alice Admin", Email: "alice@example.com", Groups: []string{"staff", "tp-admins"}},
	{ID: "u-bob", Username: "bob", Password: "pw-bob", Name: "Bob Analyst", Email: "bob@example.com", Groups: []string{"tp-analysts", "tp-viewers"}},
	{ID: "u-carol", Username: "carol", Password: "pw-carol", Name: "Carol Viewer", Email: "carol@example.com", Groups: []string{"tp-viewers"}},
	{ID: "u-dave", Username: "dave", Password: "pw-dave", Name: "Dave Nobody", Email: "dave@example.com", Groups: []string{"staff"}},
}

// world is a relying party (an app guarded by the Authenticator) and a real provider.
type world struct {
	t      *testing.T
	op     *authtest.Provider
	a      *Authenticator
	app    *httptest.Server
	url    string
	rdb    *redis.Client
	prefix string
	clock  *fakeClock
}

// newWorld starts the provider and the app; edit adjusts the Config and provider Options.
func newWorld(t *testing.T, edit func(*Config, *authtest.Options)) *world {
	t.Helper()
	w := &world{t: t, clock: newClock()}
	w.rdb = redis.NewClient(&redis.Options{Addr: pipelinetest.Redis(t)})
	t.Cleanup(func() { _ = w.rdb.Close() })
	w.prefix = "tptest:auth:" + randHex(6) + ":"
	t.Cleanup(w.cleanRedis)

	w.app = httptest.NewUnstartedServer(nil)
	w.url = "http://" + w.app.Listener.Addr().String()
	o := authtest.Options{Users: testUsers, RedirectURIs: []string{w.url + CallbackPath}, PostLogoutRedirectURIs: []string{w.url + "/bye"}}
	c := &Config{
		ClientID: "threatpipe-view", ClientSecret: "secret", RedirectURL: w.url + CallbackPath,
		Scopes: []string{"openid", "profile", "email", "groups"}, GroupsClaim: "groups",
		AdminGroups: []string{"tp-admins"}, AnalystGroups: []string{"tp-analysts"}, ViewerGroups: []string{"tp-viewers"},
		PostLogoutRedirect: w.url + "/bye", EndSession: true, SessionTTL: 8 * time.Hour, SessionIdle: time.Hour,
	}
	if edit != nil {
		edit(c, &o)
	}
	w.op = authtest.Start(t, o)
	c.Issuer = w.op.Issuer
	if err := c.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	a, err := New(c, Options{Redis: w.rdb, KeyPrefix: w.prefix, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.a = a
	w.app.Config.Handler = testMux(a)
	w.app.Start()
	t.Cleanup(w.app.Close)
	if err := a.Discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w
}

// testMux is an app with routes at every level.
func testMux(a *Authenticator) *http.ServeMux {
	mux := http.NewServeMux()
	a.Register(mux)
	who := func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		if !ok {
			_, _ = io.WriteString(w, "who=nobody")
			return
		}
		_, _ = fmt.Fprintf(w, "who=%s role=%s via=%s sub=%s email=%s csrf=%s", p.Name, p.Role, p.Via, p.Subject, p.Email, CSRFToken(r))
	}
	mux.Handle("GET /{$}", a.Require(RoleViewer)(http.HandlerFunc(who)))
	mux.Handle("GET /maybe", a.Optional(http.HandlerFunc(who)))
	mux.Handle("GET /api/v1/who", a.Require(RoleViewer)(http.HandlerFunc(who)))
	mux.Handle("POST /api/v1/ack", a.Require(RoleAnalyst)(http.HandlerFunc(who)))
	mux.Handle("POST /settings", a.Require(RoleAdmin)(http.HandlerFunc(who)))
	mux.HandleFunc("GET /bye", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "bye") })
	return mux
}

func (w *world) cleanRedis() {
	ctx := context.Background()
	keys, _ := w.rdb.Keys(ctx, w.prefix+"*").Result()
	if len(keys) > 0 {
		_ = w.rdb.Del(ctx, keys...).Err()
	}
}

// sessionKeys counts the sessions stored in Redis.
func (w *world) sessionKeys() int {
	keys, err := w.rdb.Keys(context.Background(), w.prefix+"session:*").Result()
	if err != nil {
		w.t.Fatal(err)
	}
	return len(keys)
}

// browser is a client with a cookie jar that follows redirects, as a browser does.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

// signIn signs user in with c and returns the page it lands on.
func (w *world) signIn(c *http.Client, user string) (int, string) {
	w.t.Helper()
	resp, err := w.op.SignIn(context.Background(), c, w.url+"/", user, "pw-"+user)
	if err != nil {
		w.t.Fatalf("signing in %s: %v", user, err)
	}
	return resp.StatusCode, readBody(w.t, resp)
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// do sends a request with c and returns the status and body.
func do(t *testing.T, c *http.Client, method, url string, body io.Reader, header map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readBody(t, resp), resp.Header
}

var csrfRE = regexp.MustCompile(`csrf=(\S+)`)

// csrfOf reads the CSRF token the test page shows.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on %q", page)
	}
	return m[1]
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func mustContain(t *testing.T, s, want string) {
	t.Helper()
	if !strings.Contains(s, want) {
		t.Fatalf("%q does not contain %q", s, want)
	}
}
