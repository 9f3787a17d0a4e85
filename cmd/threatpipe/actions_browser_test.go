package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/view/auth"
	"github.com/threatpipe/threatpipe/view/auth/authtest"
	"github.com/threatpipe/threatpipe/view/steer"
)

// TestBrowserAnalystActions drives the console's actions in headless Chromium, signed in
// through the real OpenID provider's login form, against `threatpipe view`, `threatpipe
// enrich` and `threatpipe act` (EDL sink) as processes on the real broker and Redis: a viewer
// sees no action buttons and the API refuses her with 403; an analyst's click on "False
// positive" lifts the EDL block, gates the next sighting with reason allowlist, and the audit
// record names her. It reports click-to-lift and click-to-gate and saves screenshots.
func TestBrowserAnalystActions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the pipeline and a browser")
	}
	chromium := chromiumPath(t)
	r := startActionsRig(t)
	base := r.viewURL

	// The viewer: no buttons; her session's own API call (with its CSRF token) is refused.
	vctx := startChromium(t, chromium)
	browserSignIn(t, vctx, base+"/indicators/"+r.ip, "vic")
	forms := evalStrings(t, vctx, `Array.from(document.querySelectorAll('form.action button, #console')).map(e => e.textContent.trim())`)
	saveScreenshot(t, "actions-viewer.png", fullShot(t, vctx))
	if len(forms) != 0 {
		t.Errorf("the viewer's indicator page offers %v", forms)
	}
	status, err := chromedp.Run(vctx, chromedp.Evaluate[int](`fetch('/api/v1/indicators/`+r.ip+`/false-positive', {method: 'POST',
		headers: {'Content-Type': 'application/json', 'X-CSRF-Token': document.querySelector('input[name=csrf_token]').value},
		body: JSON.stringify({reason: 'not mine to say', expires_in: '1h'})}).then(res => res.status)`, chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusForbidden {
		t.Errorf("the viewer's API call from her session: %d, %v; want 403", status, err)
	}
	if !slices.Contains(edlList(t, r.actURL), r.ip) {
		t.Fatal("the viewer's refused call lifted the block")
	}

	// The analyst clicks "False positive".
	actx := startChromium(t, chromium)
	browserSignIn(t, actx, base+"/indicators/"+r.ip, "ana")
	if err := chromedp.Do(actx, chromedp.WaitVisible(chromedp.CSS(`#false-positive button`)),
		chromedp.SetValue(chromedp.CSS(`#false-positive input[name="reason"]`), "our own scanner"),
		chromedp.SetValue(chromedp.CSS(`#false-positive select[name="expires_in"]`), "1h")); err != nil {
		t.Fatalf("the analyst's false positive form: %v", err)
	}
	start := time.Now()
	if err := chromedp.Do(actx, chromedp.Click(chromedp.CSS(`#false-positive button`)), chromedp.WaitVisible(chromedp.CSS(`#flash`))); err != nil {
		t.Fatalf("clicking False positive: %v", err)
	}
	confirmed := time.Since(start)
	var toLift time.Duration
	pipelinetest.WaitFor(t, 30*time.Second, "the EDL to stop listing the address", func() bool {
		if slices.Contains(edlList(t, r.actURL), r.ip) {
			return false
		}
		toLift = time.Since(start)
		return true
	})
	toGate := r.waitGated(t, start)

	// The audit record names the analyst, on the topic and on the page.
	var own bool
	for _, rec := range readRecords(t, r.brokers, r.results) {
		own = own || (rec.Step == steer.StepFalsePositive && rec.Actor == "Ana Analyst" && rec.ActorRole == "analyst" && rec.Target == r.ip)
	}
	if !own {
		t.Error("no false positive record naming Ana Analyst on the results topic")
	}
	pipelinetest.WaitFor(t, 30*time.Second, "the indicator page to list the analyst's record", func() bool {
		if chromedp.Do(actx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`table.actions`))) != nil {
			return false
		}
		got := evalStrings(t, actx, `Array.from(document.querySelectorAll('table.actions td.actor')).map(td => td.textContent.trim())`)
		return slices.Contains(got, "Ana Analyst (analyst)")
	})
	saveScreenshot(t, "actions-analyst.png", fullShot(t, actx))
	writeReport(t, "browser-actions.txt", fmt.Sprintf(
		"analyst actions in headless Chromium (signed in through the OpenID provider's login form; view, enrich and act as processes on the real broker and Redis): "+
			"viewer: no action buttons, her session's API call 403; analyst clicked False positive: page confirmed after %s; click to EDL lift %s; "+
			"click to gate (first sighting gated with reason allowlist, THREATPIPE_GATE_SHARED_ALLOWLIST_REFRESH at its default 2s) %s; screenshots %s and actions-analyst.png\n",
		confirmed.Round(time.Millisecond), toLift.Round(time.Millisecond), toGate.Round(time.Millisecond),
		filepath.Join(pipelinetest.ArtifactDir(t), "actions-viewer.png")))
}

// actionsRig is enrich, act and view as processes on fresh topics and a fresh key prefix, with
// one address blocked on act's EDL and ranked in the view.
type actionsRig struct {
	brokers         []string
	tp              e2eTopics
	results         string
	viewURL, actURL string
	ip              string
	probe           int
}

func startActionsRig(t *testing.T) *actionsRig {
	t.Helper()
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	r := &actionsRig{brokers: brokers, tp: newE2ETopics(t, brokers, 1), results: pipelinetest.Topic(t, brokers, "results", 1), ip: "45.33.32.202"}
	dlq, alerts := pipelinetest.Topic(t, brokers, "actdlq", 1), pipelinetest.Topic(t, brokers, "alerts", 1)
	prefix := pipelinetest.Name(t, "tp")
	_, fakeURL := serveSOCFakes(t, 0)
	_, simURL := simulator(t, sim.Options{})

	enrAddr, actAddr, viewAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	r.viewURL, r.actURL = "http://"+viewAddr, "http://"+actAddr
	op := authtest.Start(t, authtest.Options{
		Users: []authtest.User{
			{ID: "u-ana", Username: "ana", Password: "pw-ana", Name: "Ana Analyst", Groups: []string{"soc-analysts"}},
			{ID: "u-vic", Username: "vic", Password: "pw-vic", Name: "Vic Viewer", Groups: []string{"soc-viewers"}},
		},
		RedirectURIs: []string{r.viewURL + auth.CallbackPath},
	})
	enricher := startProc(t, enricherEnv(brokers, r.tp, enrAddr, "THREATPIPE_REDIS_ADDR="+redisAddr, "THREATPIPE_REDIS_KEY_PREFIX="+prefix,
		"THREATPIPE_CRIMINALIP_API_KEY=sim-key", "THREATPIPE_CRIMINALIP_BASE_URL="+simURL), enrAddr)
	worker := startCommand(t, "act", append(actEnv(brokers, redisAddr, prefix, r.tp.out, r.results, dlq, alerts, criticalPlaybook(t, 80), fakeURL,
		"THREATPIPE_KAFKA_CHANGES_TOPIC="+r.tp.changes), "THREATPIPE_HTTP_ADDR="+actAddr), actAddr)
	v := viewE2E{brokers: brokers, redisAddr: redisAddr, scored: r.tp.out, results: r.results, prefix: prefix}
	viewer := startCommand(t, "view", append(v.env(viewAddr, pipelinetest.Name(t, "view")),
		"THREATPIPE_KAFKA_INPUT_TOPIC="+r.tp.in, "THREATPIPE_KAFKA_CHANGES_TOPIC="+r.tp.changes,
		"THREATPIPE_VIEW_OIDC_ISSUER="+op.Issuer, "THREATPIPE_VIEW_OIDC_CLIENT_ID=threatpipe-view",
		"THREATPIPE_VIEW_OIDC_CLIENT_SECRET=secret", "THREATPIPE_VIEW_OIDC_REDIRECT_URL="+r.viewURL+auth.CallbackPath,
		"THREATPIPE_VIEW_OIDC_ANALYST_GROUPS=soc-analysts", "THREATPIPE_VIEW_OIDC_VIEWER_GROUPS=soc-viewers",
		"THREATPIPE_VIEW_API_TOKENS_FILE="+viewerTokenFile(t)), viewAddr)
	waitReady(t, []*proc{enricher, worker, viewer}, 60*time.Second)

	first := r.sighting(t)
	pipelinetest.WaitFor(t, 30*time.Second, "the first sighting scored", func() bool { return scoredByID(t, brokers, r.tp.out)[first] != nil })
	pipelinetest.Produce(t, brokers, r.tp.out, []kafka.Message{scoredMsg(t, r.ip, "ev-critical", 92)})
	pipelinetest.WaitFor(t, 30*time.Second, "the block on the EDL and the indicator in the view", func() bool {
		code, _ := e2eGet(t, &http.Client{Timeout: 5 * time.Second}, r.viewURL+"/api/v1/indicators/"+r.ip, map[string]string{"Authorization": "Bearer " + browserViewerToken})
		return code == 200 && slices.Contains(edlList(t, r.actURL), r.ip)
	})
	return r
}

const browserViewerToken = "browser-viewer-0123456789abcdef0123456789abcdef"

func viewerTokenFile(t *testing.T) string {
	t.Helper()
	d := sha256.Sum256([]byte(browserViewerToken))
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte("- {name: dashboard, role: viewer, sha256: "+hex.EncodeToString(d[:])+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sighting produces one native event for the rig's address and returns its id.
func (r *actionsRig) sighting(t *testing.T) string {
	t.Helper()
	r.probe++
	id := fmt.Sprintf("sighting-%d", r.probe)
	pipelinetest.Produce(t, r.brokers, r.tp.in, []kafka.Message{{Key: []byte(r.ip), Value: []byte(fmt.Sprintf(
		`{"event_id":%q,"observed_at":%q,"source":"e2e","indicator":{"type":"ipv4-addr","value":%q}}`,
		id, time.Now().UTC().Format(time.RFC3339Nano), r.ip))}})
	return id
}

// waitGated sends sightings until one is scored gated with reason allowlist; the time since start.
func (r *actionsRig) waitGated(t *testing.T, start time.Time) time.Duration {
	t.Helper()
	var toGate time.Duration
	pipelinetest.WaitFor(t, 30*time.Second, "a sighting gated with reason allowlist", func() bool {
		id := r.sighting(t)
		var ev *event.Scored
		pipelinetest.WaitFor(t, 10*time.Second, "sighting "+id+" scored", func() bool { ev = scoredByID(t, r.brokers, r.tp.out)[id]; return ev != nil })
		if ev.Gate == nil || ev.Gate.Reason != gate.ReasonAllowlist {
			return false
		}
		toGate = time.Since(start)
		return true
	})
	return toGate
}

// startChromium starts a headless Chromium of its own (its own profile, so its own cookies).
func startChromium(t *testing.T, chromium string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// browserSignIn opens target, is sent to the provider's login form, signs in as user and
// waits to land back on target.
func browserSignIn(t *testing.T, ctx context.Context, target, user string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(target), chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
		chromedp.SetValue(chromedp.CSS(`input[name="username"]`), user), chromedp.SetValue(chromedp.CSS(`input[name="password"]`), "pw-"+user),
		chromedp.Submit(chromedp.CSS(`input[name="password"]`)), chromedp.WaitVisible(chromedp.CSS(`#who`))); err != nil {
		t.Fatalf("signing %s in: %v", user, err)
	}
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasPrefix(loc, target) {
		t.Fatalf("after signing %s in the browser is at %s (%v), want %s", user, loc, err, target)
	}
}

func evalStrings(t *testing.T, ctx context.Context, js string) []string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

func fullShot(t *testing.T, ctx context.Context) []byte {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 is PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return png
}
