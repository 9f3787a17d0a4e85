package deployments

import (
	"encoding/json"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/pipeline/config"
)

const dockerfilePath = "Dockerfile"

// instruction is one Dockerfile instruction with continuation lines joined.
type instruction struct {
	line int    // 1-based line of its first line
	cmd  string // upper-case keyword
	args string
}

// stage is one FROM ... [AS name] section.
type stage struct {
	image, name string
	platform    string
	ins         []instruction
}

func parseDockerfile(t *testing.T, data string) []stage {
	t.Helper()
	var ins []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(data, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		ins = append(ins, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile ends inside a continued instruction (line %d)", start)
	}
	var stages []stage
	for _, in := range ins {
		if in.cmd == "FROM" {
			st := stage{}
			for _, f := range strings.Fields(in.args) {
				switch {
				case strings.HasPrefix(f, "--platform="):
					st.platform = strings.TrimPrefix(f, "--platform=")
				case strings.EqualFold(f, "AS"):
				case st.image == "":
					st.image = f
				default:
					st.name = f
				}
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile line %d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	return stages
}

// known Dockerfile instructions; anything else is a typo.
var dockerInstructions = map[string]bool{
	"ADD": true, "ARG": true, "CMD": true, "COPY": true, "ENTRYPOINT": true, "ENV": true, "EXPOSE": true,
	"FROM": true, "HEALTHCHECK": true, "LABEL": true, "ONBUILD": true, "RUN": true, "SHELL": true,
	"STOPSIGNAL": true, "USER": true, "VOLUME": true, "WORKDIR": true,
}

func TestDockerfile(t *testing.T) {
	data := string(readFile(t, dockerfilePath))
	stages := parseDockerfile(t, data)
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages; want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	names := map[string]bool{}
	for _, s := range stages {
		if s.name != "" {
			names[s.name] = true
		}
	}

	t.Run("instructions are known", func(t *testing.T) {
		for _, s := range stages {
			for _, in := range s.ins {
				if !dockerInstructions[in.cmd] {
					t.Errorf("line %d: unknown instruction %s", in.line, in.cmd)
				}
			}
		}
	})
	t.Run("base images pinned", func(t *testing.T) {
		for _, s := range stages {
			if names[s.image] {
				continue // FROM an earlier stage
			}
			checkImageRef(t, "Dockerfile FROM", s.image)
		}
	})
	t.Run("build stage Go matches go.mod", func(t *testing.T) {
		m := regexp.MustCompile(`^golang:(\d+)\.(\d+)\.(\d+)(-[a-z0-9]+)?$`).FindStringSubmatch(build.image)
		if m == nil {
			t.Fatalf("build stage image %q: want golang:X.Y.Z[-variant] (a full version)", build.image)
		}
		gomod := string(readFile(t, filepath.Join(repoRoot, "go.mod")))
		g := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)(?:\.(\d+))?\s*$`).FindStringSubmatch(gomod)
		if g == nil {
			t.Fatal("go.mod has no go directive")
		}
		img := []int{atoi(m[1]), atoi(m[2]), atoi(m[3])}
		mod := []int{atoi(g[1]), atoi(g[2]), atoi(g[3])}
		if img[0] != mod[0] || img[1] != mod[1] || slices.Compare(img, mod) < 0 {
			t.Errorf("build image %s does not satisfy go.mod's go %s.%s.%s (same minor, patch at least as new)", build.image, g[1], g[2], or(g[3], "0"))
		}
	})
	t.Run("modules are a separate layer", func(t *testing.T) {
		copyMod, download, copyAll := -1, -1, -1
		for i, in := range build.ins {
			switch {
			case in.cmd == "COPY" && strings.Contains(in.args, "go.mod") && strings.Contains(in.args, "go.sum") && !strings.Contains(in.args, ". ."):
				copyMod = i
			case in.cmd == "RUN" && strings.Contains(in.args, "go mod download"):
				download = i
			case in.cmd == "COPY" && strings.HasPrefix(in.args, ". "):
				copyAll = i
			}
		}
		if copyMod < 0 || download < 0 || copyAll < 0 || !(copyMod < download && download < copyAll) {
			t.Errorf("want COPY go.mod go.sum, then RUN go mod download, then COPY . . (found at %d, %d, %d)", copyMod, download, copyAll)
		}
	})
	t.Run("static trimmed build of ./cmd/threatpipe", func(t *testing.T) {
		var run string
		for _, in := range build.ins {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				run = in.args
			}
		}
		if run == "" {
			t.Fatal("no RUN go build in the build stage")
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w"`, "-o /out/threatpipe", "./cmd/threatpipe"} {
			if !strings.Contains(run, want) {
				t.Errorf("go build %q lacks %s", run, want)
			}
		}
		if _, err := os.Stat(filepath.Join(repoRoot, "cmd", "threatpipe", "main.go")); err != nil {
			t.Errorf("./cmd/threatpipe: %v", err)
		}
	})
	t.Run("runtime stage", func(t *testing.T) {
		if !strings.HasPrefix(final.image, "gcr.io/distroless/static") || !strings.HasSuffix(final.image, ":nonroot") {
			t.Errorf("runtime image %q, want gcr.io/distroless/static-debian12:nonroot", final.image)
		}
		last := map[string]instruction{}
		for _, in := range final.ins {
			last[in.cmd] = in
		}
		if u := last["USER"].args; u != "nonroot" && u != "65532" && u != "nonroot:nonroot" && u != "65532:65532" {
			t.Errorf("final USER %q, want nonroot", u)
		}
		if got := execForm(t, last["ENTRYPOINT"]); !slices.Equal(got, []string{"/threatpipe"}) {
			t.Errorf("ENTRYPOINT %v, want [\"/threatpipe\"] (exec form, so the binary is PID 1 and gets SIGTERM)", got)
		}
		if got := execForm(t, last["CMD"]); !slices.Equal(got, []string{"enrich"}) {
			t.Errorf("CMD %v, want [\"enrich\"]", got)
		}
		copied := false
		for _, in := range final.ins {
			copied = copied || (in.cmd == "COPY" && strings.Contains(in.args, "--from="+build.name) && strings.HasSuffix(in.args, " /threatpipe"))
		}
		if !copied {
			t.Errorf("the runtime stage does not COPY --from=%s ... /threatpipe", build.name)
		}
		if _, ok := last["HEALTHCHECK"]; ok {
			t.Error("HEALTHCHECK cannot run in distroless (no shell, no curl); Kubernetes probes /healthz and /readyz")
		}
	})
	t.Run("exposes THREATPIPE_HTTP_ADDR's default port", func(t *testing.T) {
		var def string
		for _, v := range config.Vars() {
			if v.Name == config.Prefix+"HTTP_ADDR" {
				def = v.Default
			}
		}
		_, port, err := net.SplitHostPort(def)
		if err != nil {
			t.Fatalf("THREATPIPE_HTTP_ADDR default %q: %v", def, err)
		}
		exposed := false
		for _, in := range final.ins {
			if in.cmd == "EXPOSE" {
				for _, p := range strings.Fields(in.args) {
					exposed = exposed || strings.TrimSuffix(p, "/tcp") == port
				}
			}
		}
		if !exposed {
			t.Errorf("the runtime stage does not EXPOSE %s", port)
		}
	})
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// execForm decodes a JSON-array (exec form) ENTRYPOINT or CMD.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	if in.cmd == "" {
		return nil
	}
	var out []string
	if err := json.Unmarshal([]byte(in.args), &out); err != nil {
		t.Errorf("line %d: %s %s is not exec form (a JSON array): %v", in.line, in.cmd, in.args, err)
	}
	return out
}

func TestDockerignore(t *testing.T) {
	var patterns []string
	for _, line := range strings.Split(string(readFile(t, filepath.Join(repoRoot, ".dockerignore"))), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		patterns = append(patterns, line)
	}
	t.Run("excludes build outputs and history", func(t *testing.T) {
		for _, want := range []string{".git", "bin", "test-artifacts", "bench/results"} {
			if !ignored(patterns, want) {
				t.Errorf(".dockerignore does not exclude %s", want)
			}
		}
	})
	t.Run("keeps what the build needs", func(t *testing.T) {
		for _, keep := range []string{"go.mod", "go.sum", "cmd/threatpipe/main.go", "pipeline/config/config.go", "docs/schemas.go", "enrich", "sinks", "act/playbook.go"} {
			if ignored(patterns, keep) {
				t.Errorf(".dockerignore excludes %s, which go build ./cmd/threatpipe may need", keep)
			}
		}
	})
}

// ignored reports whether p or one of its parent directories matches a pattern (Docker's
// rules, without negation: a trailing / is dropped, **/ matches any depth).
func ignored(patterns []string, p string) bool {
	for _, pat := range patterns {
		if strings.HasPrefix(pat, "!") {
			continue
		}
		pat = strings.TrimSuffix(strings.TrimPrefix(pat, "/"), "/")
		for dir := p; dir != "." && dir != "/"; dir = path.Dir(dir) {
			if ok, _ := path.Match(pat, dir); ok {
				return true
			}
			if rest, ok := strings.CutPrefix(pat, "**/"); ok {
				if m, _ := path.Match(rest, path.Base(dir)); m {
					return true
				}
			}
		}
	}
	return false
}
