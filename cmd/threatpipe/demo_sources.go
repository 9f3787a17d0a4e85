package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/threatpipe/threatpipe/enrich/rules"
	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline/config"
)

// demoProviders are the simulated HTTP providers the demo configures, each under its own path
// of the simulator.
var demoProviders = []string{"criminalip", "abuseipdb", "virustotal", "greynoise", "otx", "internetdb"}

// demoSources writes the demo's offline data into dir (GeoIP databases and IP lists made from the
// simulated reality of the demo's addresses, and a rules file declaring the lists) and returns the
// variables that configure every source. ciBase, when set, is Criminal IP's base URL (the
// simulator's otherwise); the other providers are always the simulator's.
func demoSources(dir, simBase, ciBase, ciKey string, addresses []string) ([]string, error) {
	city, asn, err := sim.GeoIPDatabases(addresses)
	if err != nil {
		return nil, fmt.Errorf("simulated GeoIP databases: %w", err)
	}
	cityPath, asnPath := filepath.Join(dir, "GeoLite2-City.mmdb"), filepath.Join(dir, "GeoLite2-ASN.mmdb")
	if err := os.WriteFile(cityPath, city, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(asnPath, asn, 0o600); err != nil {
		return nil, err
	}
	var lists strings.Builder
	lists.WriteString("version: 1\nlists:\n")
	for _, l := range sim.Lists(addresses) {
		path := filepath.Join(dir, l.File)
		if err := os.WriteFile(path, l.Data, 0o600); err != nil {
			return nil, err
		}
		fmt.Fprintf(&lists, "  - {name: %s, path: %q, kind: %s, format: %s}\n", l.Name, path, l.Kind, l.Format)
	}
	// The default rules, with the simulated lists declared.
	rulesYAML := strings.Replace(string(rules.DefaultYAML()), "version: 1\n", lists.String(), 1)
	rulesPath := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesPath, []byte(rulesYAML), 0o600); err != nil {
		return nil, err
	}
	vars := []string{
		config.Prefix + "ENRICH_RULES_FILE=" + rulesPath,
		config.Prefix + "GEOIP_CITY_DB=" + cityPath,
		config.Prefix + "GEOIP_ASN_DB=" + asnPath,
		config.Prefix + "INTERNETDB_ENABLED=true",
	}
	for _, name := range demoProviders {
		p := config.Prefix + strings.ToUpper(name) + "_"
		base, key := simBase+"/"+name, demoKey
		if name == "criminalip" && ciBase != "" {
			base, key = ciBase, ciKey
		}
		// The simulator answers in about 60-120 ms; the demo's traffic names many new
		// addresses, so the vendors' free-tier rates would hold most events back.
		vars = append(vars, p+"BASE_URL="+base, p+"RATE_LIMIT=50", p+"RATE_BURST=50", p+"QUOTA=20000", p+"QUOTA_PERIOD=day")
		if name != "internetdb" {
			vars = append(vars, p+"API_KEY="+key)
		}
	}
	return vars, nil
}

// demoKey is the key the demo's simulator accepts.
const demoKey = "demo-key"
