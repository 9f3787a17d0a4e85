package sim

import (
	"fmt"
	"strings"
	"time"
)

// The types below spell Criminal IP's GET /v1/asset/ip/report body (shared reference
// providers.md §1.3): same field names, nesting and JSON types.

type section[T any] struct {
	Count int `json:"count"`
	Data  []T `json:"data"`
}

func list[T any](rows ...T) section[T] {
	if rows == nil {
		rows = []T{}
	}
	return section[T]{Count: len(rows), Data: rows}
}

type issues struct {
	IsVPN          bool `json:"is_vpn"`
	IsCloud        bool `json:"is_cloud"`
	IsTor          bool `json:"is_tor"`
	IsProxy        bool `json:"is_proxy"`
	IsHosting      bool `json:"is_hosting"`
	IsMobile       bool `json:"is_mobile"`
	IsDarkweb      bool `json:"is_darkweb"`
	IsScanner      bool `json:"is_scanner"`
	IsSnort        bool `json:"is_snort"`
	IsAnonymousVPN bool `json:"is_anonymous_vpn"`
}

type score struct {
	Inbound  string `json:"inbound"`
	Outbound string `json:"outbound"`
}

type whoisRow struct {
	ASName         string  `json:"as_name"`
	ASNo           int64   `json:"as_no"`
	City           string  `json:"city"`
	Region         string  `json:"region"`
	OrgName        string  `json:"org_name"`
	PostalCode     string  `json:"postal_code"`
	Longitude      float64 `json:"longitude"`
	Latitude       float64 `json:"latitude"`
	OrgCountryCode string  `json:"org_country_code"`
	ConfirmedTime  string  `json:"confirmed_time"`
}

type hostnameRow struct {
	DomainNameRep  string `json:"domain_name_rep"`
	DomainNameFull string `json:"domain_name_full"`
	ConfirmedTime  string `json:"confirmed_time"`
}

type idsRow struct {
	Classification string `json:"classification"`
	URL            string `json:"url"`
	Message        string `json:"message"`
	ConfirmedTime  string `json:"confirmed_time"`
	SourceSystem   string `json:"source_system"`
}

type categoryRow struct {
	DetectSource  string         `json:"detect_source"`
	Type          string         `json:"type"`
	DetectInfo    map[string]any `json:"detect_info"`
	ConfirmedTime string         `json:"confirmed_time"`
}

type portRow struct {
	AppName         string   `json:"app_name"`
	ConfirmedTime   string   `json:"confirmed_time"`
	Banner          string   `json:"banner"`
	AppVersion      string   `json:"app_version"`
	OpenPortNo      int      `json:"open_port_no"`
	PortStatus      string   `json:"port_status"`
	Protocol        string   `json:"protocol"`
	Socket          string   `json:"socket"`
	Tags            []string `json:"tags"`
	DNSNames        string   `json:"dns_names"`
	SDNCommonName   string   `json:"sdn_common_name"`
	JarmHash        string   `json:"jarm_hash"`
	SSLInfoRaw      string   `json:"ssl_info_raw"`
	Technologies    []any    `json:"technologies"`
	IsVulnerability bool     `json:"is_vulnerability"`
}

type portRef struct {
	Port   int    `json:"port"`
	Socket string `json:"socket"`
}

type vulnRow struct {
	CVEID          string           `json:"cve_id"`
	CVEDescription string           `json:"cve_description"`
	CVSSv2Vector   string           `json:"cvssv2_vector"`
	CVSSv2Score    float64          `json:"cvssv2_score"`
	CVSSv3Vector   string           `json:"cvssv3_vector"`
	CVSSv3Score    float64          `json:"cvssv3_score"`
	ListCWE        []any            `json:"list_cwe"`
	ListEDB        []any            `json:"list_edb"`
	AppName        string           `json:"app_name"`
	AppVersion     string           `json:"app_version"`
	OpenPortNoList map[string][]int `json:"open_port_no_list"`
	HaveMorePorts  bool             `json:"have_more_ports"`
	OpenPortNo     []portRef        `json:"open_port_no"`
	ListChild      []any            `json:"list_child"`
	Vendor         string           `json:"vendor"`
	Type           string           `json:"type"`
	IsVuln         string           `json:"is_vuln"`
	TargetHW       string           `json:"target_hw"`
	TargetSW       string           `json:"target_sw"`
	Update         string           `json:"update"`
	Edition        string           `json:"edition"`
}

type ipReport struct {
	IP              string               `json:"ip"`
	Issues          issues               `json:"issues"`
	Score           score                `json:"score"`
	UserSearchCount int64                `json:"user_search_count"`
	ProtectedIP     section[any]         `json:"protected_ip"`
	Domain          section[any]         `json:"domain"`
	Whois           section[whoisRow]    `json:"whois"`
	Hostname        section[hostnameRow] `json:"hostname"`
	IDS             section[idsRow]      `json:"ids"`
	VPN             section[any]         `json:"vpn"`
	AnonymousVPN    section[any]         `json:"anonymous_vpn"`
	Webcam          section[any]         `json:"webcam"`
	Honeypot        section[any]         `json:"honeypot"`
	IPCategory      section[categoryRow] `json:"ip_category"`
	Port            section[portRow]     `json:"port"`
	Vulnerability   section[vulnRow]     `json:"vulnerability"`
	Mobile          section[any]         `json:"mobile"`
	Status          int                  `json:"status"`
}

// portApps is read-only: app, version, protocol per simulated open port.
var portApps = map[int][3]string{
	22:   {"OpenSSH", "8.9p1", "SSH"},
	80:   {"nginx", "1.24.0", "HTTP"},
	443:  {"nginx", "1.24.0", "HTTPS"},
	3389: {"Microsoft Terminal Services", "", "RDP"},
	8080: {"Apache Tomcat", "9.0.80", "HTTP"},
}

// buildReport renders p as a full report body. searches is user_search_count. Times
// ("YYYY-MM-DD HH:MM:SS", UTC): the whois, hostname and port rows were confirmed a day before
// now; the evidence rows (ip_category, ids), which threatpipe reads as the evidence's date,
// 0-179 minutes before now (from the address's hash), as Criminal IP's report reflects its
// latest scan: its evidence is always fresh, so its vote does not visibly decay and a
// Criminal IP-only deployment scores Criminal IP's own risk (the other dialects send old
// evidence for some hostile addresses).
func buildReport(p *Profile, searches int64, now time.Time) *ipReport {
	ts := now.UTC().Add(-24 * time.Hour).Format(time.DateTime)
	seen := now.UTC().Add(-time.Duration(mix(hashIP(p.IP)^0x5eed)%180) * time.Minute).Format(time.DateTime)
	has := func(f string) bool {
		for _, x := range p.Flags {
			if x == f {
				return true
			}
		}
		return false
	}
	r := &ipReport{
		IP: p.IP,
		Issues: issues{
			IsVPN: has("is_vpn"), IsCloud: has("is_cloud"), IsTor: has("is_tor"), IsProxy: has("is_proxy"),
			IsHosting: has("is_hosting"), IsMobile: has("is_mobile"), IsDarkweb: has("is_darkweb"),
			IsScanner: has("is_scanner"), IsSnort: has("is_snort"), IsAnonymousVPN: has("is_anonymous_vpn"),
		},
		Score:           score{Inbound: p.Inbound, Outbound: p.Outbound},
		UserSearchCount: searches,
		ProtectedIP:     list[any](),
		Domain:          list[any](),
		Whois: list(whoisRow{
			ASName: p.ASName, ASNo: p.ASNumber, City: p.City, Region: "", OrgName: p.OrgName, PostalCode: "",
			Longitude: p.Lon, Latitude: p.Lat, OrgCountryCode: p.Country, ConfirmedTime: ts,
		}),
		Hostname: list(hostnameRow{
			DomainNameRep:  "sim.example.test",
			DomainNameFull: "host-" + strings.NewReplacer(".", "-", ":", "-").Replace(p.IP) + ".sim.example.test",
			ConfirmedTime:  ts,
		}),
		IDS:          list[idsRow](),
		VPN:          list[any](),
		AnonymousVPN: list[any](),
		Webcam:       list[any](),
		Honeypot:     list[any](),
		Mobile:       list[any](),
		Status:       200,
	}
	if has("is_snort") {
		r.IDS = list(idsRow{Classification: "attempted-recon", URL: "doc.emergingthreats.net/2001219",
			Message: "ET SCAN Potential SSH Scan", ConfirmedTime: seen, SourceSystem: "./snort-2.9.0 9949"})
	}
	var cats []categoryRow
	for _, c := range p.Categories {
		cats = append(cats, categoryRow{DetectSource: "sim", Type: c, DetectInfo: map[string]any{}, ConfirmedTime: seen})
	}
	r.IPCategory = list(cats...)
	var ports []portRow
	for _, port := range p.Ports {
		app := portApps[port]
		ports = append(ports, portRow{
			AppName: app[0], ConfirmedTime: ts, Banner: app[2], AppVersion: app[1], OpenPortNo: port,
			PortStatus: "open", Protocol: app[2], Socket: "tcp", Tags: []string{}, Technologies: []any{},
			IsVulnerability: len(p.CVEs) > 0 && port == p.CVEs[0].Port,
		})
	}
	r.Port = list(ports...)
	var vulns []vulnRow
	for _, v := range p.CVEs {
		app := portApps[v.Port]
		vulns = append(vulns, vulnRow{
			CVEID: v.ID, CVEDescription: fmt.Sprintf("Simulated vulnerability %s.", v.ID),
			CVSSv2Vector: "NETWORK", CVSSv3Vector: "NETWORK", CVSSv3Score: v.CVSSv3,
			ListCWE: []any{}, ListEDB: []any{}, AppName: app[0], AppVersion: app[1],
			OpenPortNoList: map[string][]int{"TCP": {v.Port}, "UDP": {}},
			OpenPortNo:     []portRef{{Port: v.Port, Socket: "tcp"}}, ListChild: []any{},
			Vendor: "sim", Type: "a", IsVuln: "True",
		})
	}
	r.Vulnerability = list(vulns...)
	return r
}
