{{/* Names. */}}
{{- define "threatpipe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "threatpipe.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "threatpipe.secretName" -}}
{{- default (printf "%s-secrets" (include "threatpipe.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* Labels. Call with (dict "ctx" $ "component" "enricher"). */}}
{{- define "threatpipe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "threatpipe.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{- define "threatpipe.labels" -}}
{{ include "threatpipe.selectorLabels" . }}
app.kubernetes.io/part-of: threatpipe
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{- if .ctx.Values.chartLabels }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}
{{- end -}}

{{- define "threatpipe.image" -}}
{{- $i := .Values.image -}}
{{- if $i.digest -}}
{{- printf "%s@%s" $i.repository $i.digest -}}
{{- else -}}
{{- printf "%s:%s" $i.repository (default .Chart.AppVersion $i.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The Secret's items, as YAML {items: [{key, env, roles, value}]}: one per credential of a feature
that is turned on. env is the THREATPIPE_*_FILE variable pointing at the mounted key; roles are
the Deployments that mount it. Without secrets.existingSecret a required value that is missing
fails the render; a provider without a key is left out (NOTES.txt warns).
*/}}
{{- define "threatpipe.secretItems" -}}
{{- $v := .Values -}}
{{- $ext := ne $v.secrets.existingSecret "" -}}
{{- $all := list "enricher" "act" "view" "ingest" -}}
{{- $items := list -}}
{{- if ne $v.kafka.sasl.mechanism "none" -}}
{{- $items = append $items (dict "key" "kafka-sasl-password" "env" "THREATPIPE_KAFKA_SASL_PASSWORD_FILE" "roles" $all "value" $v.kafka.sasl.password "what" "kafka.sasl.password") -}}
{{- end -}}
{{- if $v.redis.auth -}}
{{- $items = append $items (dict "key" "redis-password" "env" "THREATPIPE_REDIS_PASSWORD_FILE" "roles" $all "value" $v.redis.password "what" "redis.password") -}}
{{- end -}}
{{- if $v.signing.enabled -}}
{{- $items = append $items (dict "key" "signing-key" "env" "THREATPIPE_SIGNING_KEY_FILE" "roles" (list "enricher" "act") "value" $v.signing.key "what" "signing.key") -}}
{{- if $v.signing.rotation -}}
{{- $items = append $items (dict "key" "signing-previous-key" "env" "THREATPIPE_SIGNING_PREVIOUS_KEY_FILE" "roles" (list "enricher" "act") "value" $v.signing.previousKey "what" "signing.previousKey") -}}
{{- end -}}
{{- end -}}
{{- range $name := list "criminalip" "abuseipdb" "virustotal" "greynoise" "otx" -}}
{{- $p := index $v.providers $name -}}
{{- if and $p.enabled (or $ext $p.apiKey) -}}
{{- $items = append $items (dict "key" (printf "%s-api-key" $name) "env" (printf "THREATPIPE_%s_API_KEY_FILE" (upper $name)) "roles" (list "enricher") "value" $p.apiKey "what" (printf "providers.%s.apiKey" $name)) -}}
{{- end -}}
{{- end -}}
{{- $s := $v.sinks -}}
{{- if $v.act.enabled -}}
{{- if and $s.edl.enabled $s.edl.basicAuth.username -}}
{{- $items = append $items (dict "key" "sink-edl-password" "env" "THREATPIPE_SINK_EDL_PASSWORD_FILE" "roles" (list "act") "value" $s.edl.basicAuth.password "what" "sinks.edl.basicAuth.password") -}}
{{- end -}}
{{- if and $s.edl.enabled $s.edl.tokenAuth.enabled -}}
{{- $items = append $items (dict "key" "sink-edl-token" "env" "THREATPIPE_SINK_EDL_TOKEN_FILE" "roles" (list "act") "value" $s.edl.tokenAuth.token "what" "sinks.edl.tokenAuth.token") -}}
{{- end -}}
{{- if $s.webhook.enabled -}}
{{- $items = append $items (dict "key" "sink-webhook-secret" "env" "THREATPIPE_SINK_WEBHOOK_SECRET_FILE" "roles" (list "act") "value" $s.webhook.secret "what" "sinks.webhook.secret") -}}
{{- end -}}
{{- if $s.slack.enabled -}}
{{- $items = append $items (dict "key" "sink-slack-webhook-url" "env" "THREATPIPE_SINK_SLACK_WEBHOOK_URL_FILE" "roles" (list "act") "value" $s.slack.webhookUrl "what" "sinks.slack.webhookUrl") -}}
{{- end -}}
{{- if $s.pagerduty.enabled -}}
{{- $items = append $items (dict "key" "sink-pagerduty-routing-key" "env" "THREATPIPE_SINK_PAGERDUTY_ROUTING_KEY_FILE" "roles" (list "act") "value" $s.pagerduty.routingKey "what" "sinks.pagerduty.routingKey") -}}
{{- end -}}
{{- if $s.jira.enabled -}}
{{- $items = append $items (dict "key" "sink-jira-api-token" "env" "THREATPIPE_SINK_JIRA_API_TOKEN_FILE" "roles" (list "act") "value" $s.jira.apiToken "what" "sinks.jira.apiToken") -}}
{{- end -}}
{{- if $s.servicenow.enabled -}}
{{- if $s.servicenow.username -}}
{{- $items = append $items (dict "key" "sink-servicenow-password" "env" "THREATPIPE_SINK_SERVICENOW_PASSWORD_FILE" "roles" (list "act") "value" $s.servicenow.password "what" "sinks.servicenow.password") -}}
{{- else -}}
{{- $items = append $items (dict "key" "sink-servicenow-token" "env" "THREATPIPE_SINK_SERVICENOW_TOKEN_FILE" "roles" (list "act") "value" $s.servicenow.token "what" "sinks.servicenow.token") -}}
{{- end -}}
{{- end -}}
{{- if $s.thehive.enabled -}}
{{- $items = append $items (dict "key" "sink-thehive-api-key" "env" "THREATPIPE_SINK_THEHIVE_API_KEY_FILE" "roles" (list "act") "value" $s.thehive.apiKey "what" "sinks.thehive.apiKey") -}}
{{- end -}}
{{- if $s.threatq.enabled -}}
{{- if $s.threatq.username -}}
{{- $items = append $items (dict "key" "sink-threatq-password" "env" "THREATPIPE_SINK_THREATQ_PASSWORD_FILE" "roles" (list "act") "value" $s.threatq.password "what" "sinks.threatq.password") -}}
{{- else -}}
{{- $items = append $items (dict "key" "sink-threatq-client-secret" "env" "THREATPIPE_SINK_THREATQ_CLIENT_SECRET_FILE" "roles" (list "act") "value" $s.threatq.clientSecret "what" "sinks.threatq.clientSecret") -}}
{{- end -}}
{{- end -}}
{{- if $s.misp.enabled -}}
{{- $items = append $items (dict "key" "sink-misp-key" "env" "THREATPIPE_SINK_MISP_KEY_FILE" "roles" (list "act") "value" $s.misp.key "what" "sinks.misp.key") -}}
{{- end -}}
{{- end -}}
{{- if and $v.view.enabled $v.view.taxii.enabled -}}
{{- if $v.view.taxii.tokens.enabled -}}
{{- $items = append $items (dict "key" "view-taxii-tokens" "env" "THREATPIPE_VIEW_TAXII_TOKENS_FILE" "roles" (list "view") "value" $v.view.taxii.tokens.lines "what" "view.taxii.tokens.lines") -}}
{{- end -}}
{{- if $v.view.taxii.users.enabled -}}
{{- $items = append $items (dict "key" "view-taxii-users" "env" "THREATPIPE_VIEW_TAXII_USERS_FILE" "roles" (list "view") "value" $v.view.taxii.users.lines "what" "view.taxii.users.lines") -}}
{{- end -}}
{{- end -}}
{{- if $v.view.enabled -}}
{{- $a := $v.view.auth -}}
{{- if and $a.oidc.issuer (not $a.oidc.publicClient) -}}
{{- $items = append $items (dict "key" "view-oidc-client-secret" "env" "THREATPIPE_VIEW_OIDC_CLIENT_SECRET_FILE" "roles" (list "view") "value" $a.oidc.clientSecret "what" "view.auth.oidc.clientSecret") -}}
{{- end -}}
{{- if $a.apiTokens.enabled -}}
{{- $items = append $items (dict "key" "view-api-tokens" "env" "THREATPIPE_VIEW_API_TOKENS_FILE" "roles" (list "view") "value" (ternary (toYaml $a.apiTokens.tokens) "" (gt (len $a.apiTokens.tokens) 0)) "what" "view.auth.apiTokens.tokens") -}}
{{- end -}}
{{- end -}}
{{- $in := $v.ingest -}}
{{- if $in.enabled -}}
{{- if has "taxii" $in.sources -}}
{{- if eq $in.taxii.auth "basic" -}}
{{- $items = append $items (dict "key" "ingest-taxii-password" "env" "THREATPIPE_INGEST_TAXII_PASSWORD_FILE" "roles" (list "ingest") "value" $in.taxii.password "what" "ingest.taxii.password") -}}
{{- else if eq $in.taxii.auth "token" -}}
{{- $items = append $items (dict "key" "ingest-taxii-token" "env" "THREATPIPE_INGEST_TAXII_TOKEN_FILE" "roles" (list "ingest") "value" $in.taxii.token "what" "ingest.taxii.token") -}}
{{- end -}}
{{- end -}}
{{- if has "misp" $in.sources -}}
{{- $items = append $items (dict "key" "ingest-misp-key" "env" "THREATPIPE_INGEST_MISP_KEY_FILE" "roles" (list "ingest") "value" $in.misp.key "what" "ingest.misp.key") -}}
{{- end -}}
{{- if has "threatq" $in.sources -}}
{{- if $in.threatq.username -}}
{{- $items = append $items (dict "key" "ingest-threatq-password" "env" "THREATPIPE_INGEST_THREATQ_PASSWORD_FILE" "roles" (list "ingest") "value" $in.threatq.password "what" "ingest.threatq.password") -}}
{{- else -}}
{{- $items = append $items (dict "key" "ingest-threatq-client-secret" "env" "THREATPIPE_INGEST_THREATQ_CLIENT_SECRET_FILE" "roles" (list "ingest") "value" $in.threatq.clientSecret "what" "ingest.threatq.clientSecret") -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not $ext -}}
{{- range $items -}}
{{- if not .value -}}
{{- fail (printf "%s is empty: set it, or set secrets.existingSecret to a Secret holding the key %s" .what .key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "items" $items) -}}
{{- end -}}

{{/* The secret items a role mounts. Call with (dict "ctx" $ "role" "enricher"). */}}
{{- define "threatpipe.roleSecretItems" -}}
{{- $out := list -}}
{{- range (include "threatpipe.secretItems" .ctx | fromYaml).items -}}
{{- if has $.role .roles -}}
{{- $out = append $out . -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "items" $out) -}}
{{- end -}}

{{/* Validation that does not fit the schema. */}}
{{- define "threatpipe.validate" -}}
{{- $v := .Values -}}
{{- range $role := list "enricher" "act" "view" "ingest" -}}
{{- $r := index $v $role -}}
{{- $need := add (include "threatpipe.durationSeconds" $v.shutdownTimeout | int) 5 -}}
{{- if le (int $r.terminationGracePeriodSeconds) $need -}}
{{- fail (printf "%s.terminationGracePeriodSeconds (%d) must exceed shutdownTimeout (%s) + 5s: the kubelet would kill a replica mid-drain" $role (int $r.terminationGracePeriodSeconds) $v.shutdownTimeout) -}}
{{- end -}}
{{- end -}}
{{- if and (eq $v.redis.topology "sentinel") (not $v.redis.masterName) -}}
{{- fail "redis.topology sentinel needs redis.masterName" -}}
{{- end -}}
{{- if and (ne $v.redis.topology "sentinel") $v.redis.masterName -}}
{{- fail "redis.masterName is set but redis.topology is not sentinel" -}}
{{- end -}}
{{- if and (eq $v.redis.topology "single") (gt (len $v.redis.addrs) 1) -}}
{{- fail "redis.topology single takes one address in redis.addrs (several are cluster seeds or sentinels)" -}}
{{- end -}}
{{- if and (ne $v.kafka.sasl.mechanism "none") (not $v.kafka.sasl.username) -}}
{{- fail "kafka.sasl.mechanism is set but kafka.sasl.username is empty" -}}
{{- end -}}
{{- if gt (int $v.autoscaling.keda.enricher.maxReplicas) (int $v.kafka.topics.partitions) -}}
{{- fail "autoscaling.keda.enricher.maxReplicas exceeds kafka.topics.partitions: the extra replicas would sit idle" -}}
{{- end -}}
{{- if and $v.act.enabled (not (or $v.sinks.edl.enabled $v.sinks.kafka.enabled $v.sinks.webhook.enabled $v.sinks.slack.enabled $v.sinks.pagerduty.enabled $v.sinks.jira.enabled $v.sinks.servicenow.enabled $v.sinks.thehive.enabled $v.sinks.threatq.enabled $v.sinks.misp.enabled)) -}}
{{- fail "act is enabled but no sink is: its playbooks could do nothing" -}}
{{- end -}}
{{- $t := $v.view.taxii -}}
{{- if and $v.view.enabled $t.enabled (not (or $t.tokens.enabled $t.users.enabled $t.allowAnonymousLoopback)) -}}
{{- fail "view.taxii is enabled without tokens, users or allowAnonymousLoopback: nobody could read it" -}}
{{- end -}}
{{- $o := $v.view.auth.oidc -}}
{{- if $v.view.enabled -}}
{{- if $o.issuer -}}
{{- if not $o.clientId -}}
{{- fail "view.auth.oidc.issuer is set but view.auth.oidc.clientId is empty" -}}
{{- end -}}
{{- if not $o.redirectUrl -}}
{{- fail "view.auth.oidc.issuer is set but view.auth.oidc.redirectUrl is empty: set it to https://<view host>/auth/callback, as registered at the provider" -}}
{{- end -}}
{{- if not (or $o.adminGroups $o.analystGroups $o.viewerGroups) -}}
{{- fail "view.auth.oidc.issuer is set but none of view.auth.oidc.adminGroups, analystGroups, viewerGroups lists a group: nobody could sign in" -}}
{{- end -}}
{{- if $v.view.auth.anonymousReadCidrs -}}
{{- fail "view.auth.anonymousReadCidrs is set with view.auth.oidc.issuer: anonymous read exists only without sign-in (give unattended readers an API token with the viewer role)" -}}
{{- end -}}
{{- else if or $o.clientId $o.redirectUrl -}}
{{- fail "view.auth.oidc.clientId or redirectUrl is set but view.auth.oidc.issuer is empty" -}}
{{- end -}}
{{- end -}}
{{- if and $v.ingest.enabled (not $v.ingest.sources) -}}
{{- fail "ingest is enabled but ingest.sources is empty: name the platforms to poll (taxii, misp, threatq)" -}}
{{- end -}}
{{- end -}}

{{/* Seconds of a Go duration made of h, m and s parts (e.g. 30s, 1m30s). */}}
{{- define "threatpipe.durationSeconds" -}}
{{- $total := 0 -}}
{{- range $part := regexFindAll "[0-9]+[hms]" . -1 -}}
{{- $n := trimSuffix "h" (trimSuffix "m" (trimSuffix "s" $part)) | int -}}
{{- if hasSuffix "h" $part -}}{{- $total = add $total (mul $n 3600) -}}
{{- else if hasSuffix "m" $part -}}{{- $total = add $total (mul $n 60) -}}
{{- else -}}{{- $total = add $total $n -}}{{- end -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* A ConfigMap data entry: key: "value". */}}
{{- define "threatpipe.kv" -}}
{{ .k }}: {{ .v | toString | quote }}
{{- end -}}
