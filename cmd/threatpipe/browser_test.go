package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// chromiumPath finds Debian's Chromium (scripts/install-chromium.sh installs it). Without it the
// browser test skips, unless THREATPIPE_TEST_REQUIRE_BROWSER=1 (make test sets it where the
// script could install), where it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("THREATPIPE_TEST_REQUIRE_BROWSER") == "1" {
		t.Fatal("chromium is not installed (scripts/install-chromium.sh) and THREATPIPE_TEST_REQUIRE_BROWSER=1")
	}
	t.Skip("chromium is not installed: run scripts/install-chromium.sh")
	return ""
}

// TestBrowserView drives the prioritised view in real headless Chromium, on the demo's live
// data: indicators are listed by score, a tag filter narrows the list to that tag, and an
// indicator's page shows why it scored. Screenshots go to the test artifacts.
func TestBrowserView(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole pipeline and a browser")
	}
	chromium := chromiumPath(t)
	viewAddr := freeAddr(t)
	out := &syncBuffer{}
	demo := exec.Command(binary, "demo", "--http", viewAddr, "--rate", "300")
	demo.Env = []string{"PATH=/usr/bin:/bin"}
	demo.Stdout, demo.Stderr = out, out
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- demo.Wait() }()
	t.Cleanup(func() {
		_ = demo.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = demo.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", out.String())
		}
	})
	base := "http://" + viewAddr

	// Wait for live data with a tag worth filtering on.
	var tag string
	pipelinetest.WaitFor(t, 60*time.Second, "the view to rank tagged indicators", func() bool {
		res, err := http.Get(base + "/api/v1/indicators?limit=100")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var page struct {
			Indicators []struct {
				Tags []string `json:"tags"`
			} `json:"indicators"`
		}
		if json.NewDecoder(res.Body).Decode(&page) != nil || len(page.Indicators) < 10 {
			return false
		}
		for _, ind := range page.Indicators {
			for _, tg := range ind.Tags {
				if tg == "tor" || tg == "scanner" {
					tag = tg
				}
			}
		}
		return tag != ""
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	strs := func(what, js string) []string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](js))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 is PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		saveScreenshot(t, name, png)
	}

	run("ranked page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#indicators tbody tr`)))
	scores := strs("scores", `Array.from(document.querySelectorAll('#indicators tbody td.score')).map(td => td.textContent.trim())`)
	shot("view-ranked.png")
	if len(scores) < 10 {
		t.Fatalf("%d rows on the ranked page", len(scores))
	}
	prev := 101
	for i, s := range scores {
		n, err := strconv.Atoi(s)
		if err != nil || n > prev {
			t.Fatalf("row %d: score %q after %d: not sorted by score (%v)", i+1, s, prev, scores)
		}
		prev = n
	}

	run("tag filter", chromedp.SetValue(chromedp.CSS(`input[name="tag"]`), tag), chromedp.Submit(chromedp.CSS(`form.filters`)))
	var location string
	pipelinetest.WaitFor(t, 15*time.Second, "the filtered page to load", func() bool {
		l, err := chromedp.Run(ctx, chromedp.Location())
		location = l
		return err == nil && strings.Contains(l, "tag=")
	})
	run("filtered rows", chromedp.WaitVisible(chromedp.CSS(`#indicators tbody tr`)))
	if u, err := url.Parse(location); err != nil || u.Query().Get("tag") != tag {
		t.Errorf("after filtering the page is %s, want tag=%s in the query", location, tag)
	}
	rowTags := strs("filtered tags", `Array.from(document.querySelectorAll('#indicators tbody td.tags')).map(td => td.textContent)`)
	if len(rowTags) == 0 {
		t.Fatalf("no rows tagged %q", tag)
	}
	for i, tags := range rowTags {
		if !strings.Contains(tags, tag) {
			t.Errorf("filtered row %d has tags %q, not %q", i+1, strings.TrimSpace(tags), tag)
		}
	}

	run("indicator page", chromedp.Click(chromedp.CSS(`#indicators tbody tr td.ip a`)), chromedp.WaitVisible(chromedp.CSS(`table.reasons`)))
	heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`h1 .ip`)))
	if err != nil {
		t.Fatal(err)
	}
	reasons, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`table.reasons`)))
	if err != nil {
		t.Fatal(err)
	}
	shot("view-indicator.png")
	if heading == "" || !strings.Contains(reasons, "criminalip") {
		t.Errorf("indicator page for %q lists reasons %q, want Criminal IP's", heading, reasons)
	}
	writeReport(t, "browser.txt", "browser test (headless Chromium): "+strconv.Itoa(len(scores))+" indicators ranked by score; tag filter "+
		strconv.Quote(tag)+" left "+strconv.Itoa(len(rowTags))+" rows, all tagged; indicator "+heading+" shows its reasons; screenshots "+
		filepath.Join(pipelinetest.ArtifactDir(t), "view-ranked.png")+" and view-indicator.png\n")
}

func saveScreenshot(t *testing.T, name string, png []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(pipelinetest.ArtifactDir(t), name), png, 0o644); err != nil {
		t.Errorf("screenshot: %v", err)
	}
}
