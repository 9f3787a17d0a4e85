package deployments

import (
	"net"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/pipeline/config"
)

// threatpipe listens on loopback unless THREATPIPE_HTTP_ADDR says otherwise, and loopback
// inside a container or pod is unreachable for the probes, Prometheus, the firewalls polling the
// EDL and the published ports. Every deployment must therefore widen it explicitly.
func checkListensBeyondLoopback(t *testing.T, where, addr string) {
	t.Helper()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("%s: THREATPIPE_HTTP_ADDR %q: %v", where, addr, err)
		return
	}
	if host != "0.0.0.0" && host != "::" {
		t.Errorf("%s: THREATPIPE_HTTP_ADDR %q: want 0.0.0.0:<port>, set explicitly (the default is loopback)", where, addr)
	}
}

func TestDefaultListenAddressIsLoopback(t *testing.T) {
	for _, v := range config.Vars() {
		if v.Name != config.Prefix+"HTTP_ADDR" {
			continue
		}
		host, _, err := net.SplitHostPort(v.Default)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			t.Errorf("THREATPIPE_HTTP_ADDR defaults to %q, want a loopback address", v.Default)
		}
		return
	}
	t.Fatal("THREATPIPE_HTTP_ADDR is not documented")
}

func TestDeploymentsListenBeyondLoopback(t *testing.T) {
	f := loadCompose(t)
	for _, name := range []string{"enricher", "act"} {
		s, ok := f.Services[name]
		if !ok {
			t.Fatalf("docker-compose.yml has no service %s", name)
		}
		checkListensBeyondLoopback(t, "docker-compose.yml "+name, s.Environment[config.Prefix+"HTTP_ADDR"])
	}
	enr := loadEnricher(t)
	checkListensBeyondLoopback(t, "kubernetes enricher", enr.cfg.HTTPAddr)
	act := loadAct(t)
	checkListensBeyondLoopback(t, "kubernetes act", act.cfg.HTTPAddr)

	stages := parseDockerfile(t, string(readFile(t, dockerfilePath)))
	var imageAddr string
	for _, in := range stages[len(stages)-1].ins {
		if in.cmd != "ENV" {
			continue
		}
		for _, kv := range strings.Fields(in.args) {
			if v, ok := strings.CutPrefix(kv, config.Prefix+"HTTP_ADDR="); ok {
				imageAddr = v
			}
		}
	}
	checkListensBeyondLoopback(t, "Dockerfile runtime stage ENV", imageAddr)
}
