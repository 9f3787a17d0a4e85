package main

import (
	"bytes"
	"context"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/ingest"
	"github.com/threatpipe/threatpipe/pipeline/config"
)

// badValue is a value a variable rejects, with the other variables that must be set for the
// check to run.
type badValue struct {
	value string
	with  []string
}

// badByType covers every variable whose Go type rejects some text.
var badByType = map[reflect.Type]string{
	reflect.TypeFor[bool]():               "maybe",
	reflect.TypeFor[int]():                "abc",
	reflect.TypeFor[int64]():              "abc",
	reflect.TypeFor[float64]():            "abc",
	reflect.TypeFor[time.Duration]():      "5 parsecs",
	reflect.TypeFor[enrich.QuotaPeriod](): "nonsense",
}

// missingFile is a path that does not exist, for variables naming a file.
const missingFile = "/nonexistent/threatpipe-test/missing"

// badString covers the text and list variables that are validated.
var badString = map[string]badValue{
	"THREATPIPE_KAFKA_BROKERS":                     {value: "localhost"},
	"THREATPIPE_KAFKA_INPUT_TOPIC":                 {value: "bad topic"},
	"THREATPIPE_KAFKA_OUTPUT_TOPIC":                {value: "bad topic"},
	"THREATPIPE_KAFKA_DLQ_TOPIC":                   {value: "bad topic"},
	"THREATPIPE_KAFKA_OPS_TOPIC":                   {value: "bad topic"},
	"THREATPIPE_KAFKA_CHANGES_TOPIC":               {value: "bad topic"},
	"THREATPIPE_KAFKA_GROUP_ID":                    {value: " "},
	"THREATPIPE_KAFKA_TLS_CA_FILE":                 {value: missingFile, with: []string{"THREATPIPE_KAFKA_TLS_ENABLED=true"}},
	"THREATPIPE_KAFKA_TLS_CERT_FILE":               {value: missingFile},
	"THREATPIPE_KAFKA_TLS_KEY_FILE":                {value: missingFile},
	"THREATPIPE_KAFKA_TLS_SERVER_NAME":             {value: "kafka.internal"}, // set while TLS is off
	"THREATPIPE_KAFKA_SASL_MECHANISM":              {value: "nonsense"},
	"THREATPIPE_KAFKA_SASL_PASSWORD_FILE":          {value: missingFile},
	"THREATPIPE_REDIS_ADDR":                        {value: "redis"},
	"THREATPIPE_REDIS_PASSWORD_FILE":               {value: missingFile},
	"THREATPIPE_REDIS_TLS_CA_FILE":                 {value: missingFile, with: []string{"THREATPIPE_REDIS_TLS_ENABLED=true"}},
	"THREATPIPE_REDIS_TLS_CERT_FILE":               {value: missingFile},
	"THREATPIPE_REDIS_TLS_KEY_FILE":                {value: missingFile},
	"THREATPIPE_REDIS_TLS_SERVER_NAME":             {value: "redis.internal"}, // set while TLS is off
	"THREATPIPE_REDIS_KEY_PREFIX":                  {value: "has space"},
	"THREATPIPE_GATE_OWN_CIDRS":                    {value: "10.0.0.0/33"},
	"THREATPIPE_GATE_ALLOWLIST_CIDRS":              {value: "example.com"},
	"THREATPIPE_ENRICH_RULES_FILE":                 {value: missingFile},
	"THREATPIPE_GEOIP_CITY_DB":                     {value: missingFile},
	"THREATPIPE_GEOIP_ASN_DB":                      {value: missingFile},
	"THREATPIPE_ACT_KINDS":                         {value: "block,nonsense"},
	"THREATPIPE_ACT_GROUP_PREFIX":                  {value: " "},
	"THREATPIPE_ACT_RESULTS_TOPIC":                 {value: "bad topic"},
	"THREATPIPE_KAFKA_INPUT_FORMAT":                {value: "syslog"},
	"THREATPIPE_PIPELINE_SCORED_DETAIL":            {value: "verbose"},
	"THREATPIPE_ACT_DLQ_TOPIC":                     {value: "bad topic"},
	"THREATPIPE_ACT_NEVER_BLOCK_CIDRS":             {value: "10.0.0.0/33"},
	"THREATPIPE_ACT_REDIS_ADDR":                    {value: "redis"},
	"THREATPIPE_ACT_VIEW_URL":                      {value: "::"},
	"THREATPIPE_SIGNING_KEY":                       {value: "too-short"},
	"THREATPIPE_SIGNING_KEY_FILE":                  {value: missingFile},
	"THREATPIPE_SIGNING_PREVIOUS_KEY":              {value: "too-short", with: []string{"THREATPIPE_SIGNING_KEY=0123456789abcdef0123456789abcdef"}},
	"THREATPIPE_SIGNING_PREVIOUS_KEY_FILE":         {value: missingFile},
	"THREATPIPE_HTTP_ADDR":                         {value: "8080"},
	"THREATPIPE_LOG_LEVEL":                         {value: "nonsense"},
	"THREATPIPE_LOG_FORMAT":                        {value: "nonsense"},
	"THREATPIPE_SINK_EDL_PATH":                     {value: "nonsense"},
	"THREATPIPE_SINK_EDL_FORMAT":                   {value: "nonsense"},
	"THREATPIPE_SINK_EDL_USERNAME":                 {value: "a:b", with: []string{"THREATPIPE_SINK_EDL_PASSWORD=pw"}},
	"THREATPIPE_SINK_EDL_PASSWORD":                 {value: "p\x01w", with: []string{"THREATPIPE_SINK_EDL_USERNAME=fw"}},
	"THREATPIPE_SINK_EDL_PASSWORD_FILE":            {value: missingFile},
	"THREATPIPE_SINK_EDL_ADDR":                     {value: "8443"},
	"THREATPIPE_SINK_EDL_TLS_CERT_FILE":            {value: missingFile},
	"THREATPIPE_SINK_EDL_TLS_KEY_FILE":             {value: missingFile},
	"THREATPIPE_SINK_EDL_TLS_CLIENT_CA_FILE":       {value: missingFile},
	"THREATPIPE_SINK_EDL_TOKEN":                    {value: "too-short"},
	"THREATPIPE_SINK_EDL_TOKEN_FILE":               {value: missingFile},
	"THREATPIPE_SINK_NFTABLES_FAMILY":              {value: "nonsense"},
	"THREATPIPE_SINK_NFTABLES_TABLE":               {value: "bad table"},
	"THREATPIPE_SINK_NFTABLES_SET_V4":              {value: "bad set"},
	"THREATPIPE_SINK_NFTABLES_SET_V6":              {value: "bad set"},
	"THREATPIPE_SINK_WEBHOOK_URL":                  {value: "::"},
	"THREATPIPE_SINK_WEBHOOK_SECRET_FILE":          {value: missingFile},
	"THREATPIPE_SINK_WEBHOOK_KIND":                 {value: "nonsense"},
	"THREATPIPE_SINK_SLACK_WEBHOOK_URL":            {value: "::"},
	"THREATPIPE_SINK_SLACK_WEBHOOK_URL_FILE":       {value: missingFile},
	"THREATPIPE_SINK_PAGERDUTY_ROUTING_KEY_FILE":   {value: missingFile},
	"THREATPIPE_SINK_PAGERDUTY_URL":                {value: "::"},
	"THREATPIPE_SINK_KAFKA_TOPIC":                  {value: "bad topic"},
	"THREATPIPE_SINK_JIRA_BASE_URL":                {value: "::"},
	"THREATPIPE_SINK_JIRA_API_TOKEN_FILE":          {value: missingFile},
	"THREATPIPE_SINK_SERVICENOW_INSTANCE_URL":      {value: "::"},
	"THREATPIPE_SINK_SERVICENOW_PASSWORD_FILE":     {value: missingFile},
	"THREATPIPE_SINK_SERVICENOW_TOKEN_FILE":        {value: missingFile},
	"THREATPIPE_SINK_THEHIVE_BASE_URL":             {value: "::"},
	"THREATPIPE_SINK_THEHIVE_API_KEY_FILE":         {value: missingFile},
	"THREATPIPE_SINK_THREATQ_URL":                  {value: "::"},
	"THREATPIPE_SINK_THREATQ_CLIENT_SECRET_FILE":   {value: missingFile},
	"THREATPIPE_SINK_THREATQ_PASSWORD_FILE":        {value: missingFile},
	"THREATPIPE_SINK_MISP_URL":                     {value: "::"},
	"THREATPIPE_SINK_MISP_KEY_FILE":                {value: missingFile},
	"THREATPIPE_VIEW_TAXII_USERS_FILE":             {value: missingFile, with: []string{"THREATPIPE_VIEW_TAXII_ENABLED=true"}},
	"THREATPIPE_VIEW_TAXII_TOKENS_FILE":            {value: missingFile, with: []string{"THREATPIPE_VIEW_TAXII_ENABLED=true"}},
	"THREATPIPE_INGEST_SOURCES":                    {value: "nonsense"},
	"THREATPIPE_INGEST_TAXII_URL":                  {value: "::"},
	"THREATPIPE_INGEST_TAXII_PASSWORD_FILE":        {value: missingFile},
	"THREATPIPE_INGEST_TAXII_TOKEN_FILE":           {value: missingFile},
	"THREATPIPE_INGEST_TAXII_SINCE":                {value: "yesterday"},
	"THREATPIPE_INGEST_MISP_URL":                   {value: "::"},
	"THREATPIPE_INGEST_MISP_KEY_FILE":              {value: missingFile},
	"THREATPIPE_INGEST_THREATQ_URL":                {value: "::"},
	"THREATPIPE_INGEST_THREATQ_CLIENT_SECRET_FILE": {value: missingFile},
	"THREATPIPE_INGEST_THREATQ_PASSWORD_FILE":      {value: missingFile},
	"THREATPIPE_VIEW_GROUP_ID":                     {value: "has space"},
	"THREATPIPE_VIEW_GATED":                        {value: "drop"},

	// The view's sign-in: the OIDC variables are validated only with an issuer set.
	"THREATPIPE_VIEW_OIDC_ISSUER":                   {value: "http://idp.example.com"}, // plain http off loopback
	"THREATPIPE_VIEW_OIDC_CLIENT_SECRET_FILE":       {value: missingFile},
	"THREATPIPE_VIEW_OIDC_REDIRECT_URL":             {value: "https://view.example/callback", with: oidcWith("REDIRECT_URL")},
	"THREATPIPE_VIEW_OIDC_SCOPES":                   {value: "profile,email", with: oidcWith("SCOPES")},
	"THREATPIPE_VIEW_OIDC_GROUPS_CLAIM":             {value: " ", with: oidcWith("GROUPS_CLAIM")},
	"THREATPIPE_VIEW_OIDC_VIEWER_GROUPS":            {value: " , ", with: oidcWith("VIEWER_GROUPS")},
	"THREATPIPE_VIEW_OIDC_POST_LOGOUT_REDIRECT_URL": {value: "::", with: oidcWith("POST_LOGOUT_REDIRECT_URL")},
	"THREATPIPE_VIEW_API_TOKENS_FILE":               {value: missingFile},
	"THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS":          {value: "10.0.0.0/33"},
}

// oidcWith is a valid sign-in configuration without the variable under test: the sign-in
// variables are validated only when THREATPIPE_VIEW_OIDC_ISSUER is set.
func oidcWith(omit string) []string {
	base := map[string]string{
		"ISSUER": "https://idp.example", "CLIENT_ID": "threatpipe-view",
		"REDIRECT_URL": "https://view.example/auth/callback", "VIEWER_GROUPS": "soc",
	}
	var with []string
	for k, v := range base {
		if k != omit {
			with = append(with, "THREATPIPE_VIEW_OIDC_"+k+"="+v)
		}
	}
	return with
}

// anyString lists the text variables that accept any value, each with the reason.
var anyString = map[string]string{
	"THREATPIPE_KAFKA_CLIENT_ID":                  "any client.id",
	"THREATPIPE_KAFKA_SASL_USERNAME":              "any user",
	"THREATPIPE_KAFKA_SASL_PASSWORD":              "any password",
	"THREATPIPE_REDIS_MASTER_NAME":                "any Sentinel master name",
	"THREATPIPE_REDIS_USERNAME":                   "any ACL user",
	"THREATPIPE_REDIS_PASSWORD":                   "any password",
	"THREATPIPE_ACT_PLAYBOOKS":                    "a file read by threatpipe act at start-up, not by config --check",
	"THREATPIPE_SINK_NFTABLES_NFT_PATH":           "a program looked up when the sink is built",
	"THREATPIPE_SINK_NFTABLES_NETNS":              "a network namespace entered when the sink is built",
	"THREATPIPE_SINK_WEBHOOK_SECRET":              "any signing secret",
	"THREATPIPE_SINK_PAGERDUTY_ROUTING_KEY":       "any routing key",
	"THREATPIPE_SINK_JIRA_EMAIL":                  "any account name",
	"THREATPIPE_SINK_JIRA_API_TOKEN":              "any token",
	"THREATPIPE_SINK_JIRA_PROJECT_KEY":            "any project key",
	"THREATPIPE_SINK_JIRA_ISSUE_TYPE":             "any issue type name",
	"THREATPIPE_SINK_JIRA_PRIORITY":               "any priority name",
	"THREATPIPE_SINK_SERVICENOW_USERNAME":         "any user",
	"THREATPIPE_SINK_SERVICENOW_PASSWORD":         "any password",
	"THREATPIPE_SINK_SERVICENOW_TOKEN":            "any token",
	"THREATPIPE_SINK_SERVICENOW_CATEGORY":         "any category",
	"THREATPIPE_SINK_SERVICENOW_ASSIGNMENT_GROUP": "any group",
	"THREATPIPE_SINK_SERVICENOW_CALLER_ID":        "any caller",
	"THREATPIPE_SINK_THEHIVE_API_KEY":             "any key",
	"THREATPIPE_SINK_THEHIVE_ORGANISATION":        "any organisation",
	"THREATPIPE_SINK_THREATQ_CLIENT_ID":           "any OAuth client id",
	"THREATPIPE_SINK_THREATQ_CLIENT_SECRET":       "any secret",
	"THREATPIPE_SINK_THREATQ_USERNAME":            "any user",
	"THREATPIPE_SINK_THREATQ_PASSWORD":            "any password",
	"THREATPIPE_SINK_THREATQ_STATUS":              "any indicator status name",
	"THREATPIPE_SINK_THREATQ_SOURCE":              "any source name",
	"THREATPIPE_SINK_MISP_KEY":                    "any auth key",
	"THREATPIPE_SINK_MISP_EVENT_ID":               "any event id, checked by MISP",
	"THREATPIPE_SINK_MISP_TAG_PREFIX":             "any tag namespace",
	"THREATPIPE_INGEST_TAXII_COLLECTION":          "any collection id, checked by the server",
	"THREATPIPE_INGEST_TAXII_USERNAME":            "any user",
	"THREATPIPE_INGEST_TAXII_PASSWORD":            "any password",
	"THREATPIPE_INGEST_TAXII_TOKEN":               "any token",
	"THREATPIPE_INGEST_MISP_KEY":                  "any auth key",
	"THREATPIPE_INGEST_MISP_TAGS":                 "any MISP tags",
	"THREATPIPE_INGEST_THREATQ_CLIENT_ID":         "any OAuth client id",
	"THREATPIPE_INGEST_THREATQ_CLIENT_SECRET":     "any secret",
	"THREATPIPE_INGEST_THREATQ_USERNAME":          "any user",
	"THREATPIPE_INGEST_THREATQ_PASSWORD":          "any password",
	"THREATPIPE_VIEW_OIDC_CLIENT_ID":              "any client id, checked by the provider",
	"THREATPIPE_VIEW_OIDC_CLIENT_SECRET":          "any secret",
	"THREATPIPE_VIEW_OIDC_ADMIN_GROUPS":           "any group names, as the provider spells them",
	"THREATPIPE_VIEW_OIDC_ANALYST_GROUPS":         "any group names, as the provider spells them",
}

// ingestMinimal is, per platform, the least configuration its poller accepts: an ingest
// variable is checked only for the platforms THREATPIPE_INGEST_SOURCES names.
var ingestMinimal = map[string][]string{
	"taxii":   {"URL=https://taxii.example/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/", "TOKEN=token"},
	"misp":    {"URL=https://misp.example", "KEY=key"},
	"threatq": {"URL=https://threatq.example", "CLIENT_ID=threatpipe", "USERNAME=user", "PASSWORD=password"},
}

// ingestWith is what must be set beside an ingest variable for --check to look at it: the
// platform named in SOURCES (taxii for the role's own variables) and its least configuration,
// without the variable under test.
func ingestWith(name string) []string {
	rest, ok := strings.CutPrefix(name, ingest.ConfigPrefix)
	if !ok || rest == "SOURCES" {
		return nil
	}
	platform := "taxii"
	for p := range ingestMinimal {
		if strings.HasPrefix(rest, strings.ToUpper(p)+"_") {
			platform = p
		}
	}
	with := []string{ingest.ConfigPrefix + "SOURCES=" + platform}
	for _, kv := range ingestMinimal[platform] {
		if full := ingest.SourcePrefixVar(platform) + kv; !strings.HasPrefix(full, name+"=") {
			with = append(with, full)
		}
	}
	return with
}

// providerStrings are the text variables every HTTP provider has, by suffix.
var providerStrings = map[string]string{
	"_API_KEY":      "",
	"_API_KEY_FILE": missingFile,
	"_BASE_URL":     "::",
}

// documentedVars is every variable `threatpipe config` lists: core, providers, sinks, view,
// ingest.
func documentedVars() []config.Var { return allVars() }

// badFor returns the bad value of v, or ok false with the reason it accepts any text.
func badFor(v config.Var) (bad badValue, reason string, ok bool) {
	bad, reason, ok = badForAlone(v)
	bad.with = append(bad.with, ingestWith(v.Name)...)
	return bad, reason, ok
}

func badForAlone(v config.Var) (bad badValue, reason string, ok bool) {
	if b, found := badString[v.Name]; found {
		return b, "", true
	}
	if r, found := anyString[v.Name]; found {
		return badValue{}, r, false
	}
	if s, found := badByType[v.Type()]; found {
		return badValue{value: s}, "", true
	}
	for suffix, s := range providerStrings {
		if strings.HasSuffix(v.Name, suffix) && !strings.HasPrefix(v.Name, config.Prefix+"SINK_") {
			if s == "" {
				return badValue{}, "any API key", false
			}
			return badValue{value: s}, "", true
		}
	}
	return badValue{}, "", false
}

var varName = regexp.MustCompile(`THREATPIPE_[A-Z0-9_]+`)

// TestEveryVariableErrorNamesIt sets each documented variable, one at a time, to a value its type
// or its validation rejects and checks that `threatpipe config --check` fails naming that exact
// variable first (fields that share a Go name across prefixes, such as PIPELINE_WORKERS and
// ACT_WORKERS, were once reported under the wrong one).
func TestEveryVariableErrorNamesIt(t *testing.T) {
	vars := documentedVars()
	if len(vars) < 200 {
		t.Fatalf("only %d documented variables: the listing is broken", len(vars))
	}
	for _, v := range vars {
		bad, reason, ok := badFor(v)
		if !ok {
			if reason == "" {
				t.Errorf("%s (%s): add a rejected value to badString, or the reason it takes any text to anyString", v.Name, v.Type())
			}
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			environ := append([]string{v.Name + "=" + bad.value}, bad.with...)
			var out bytes.Buffer
			code := run(context.Background(), &environment{environ: environ, stdout: &out, stderr: &out}, []string{"config", "--check"})
			if code != 1 {
				t.Fatalf("%s=%q: exit %d, want 1; output:\n%s", v.Name, bad.value, code, out.String())
			}
			if first := varName.FindString(out.String()); first != v.Name {
				t.Errorf("%s=%q: the error names %s first, want %s:\n%s", v.Name, bad.value, first, v.Name, out.String())
			}
		})
	}
}
