{{/*
A role's Deployment, Service and PodDisruptionBudget. Call with
(dict "ctx" $ "role" "enricher" "args" "enrich"). The ingest role is a singleton: one replica,
strategy Recreate, no PodDisruptionBudget.
*/}}
{{- define "threatpipe.workload" -}}
{{- $ := .ctx -}}
{{- $v := $.Values -}}
{{- $role := .role -}}
{{- $r := index $v $role -}}
{{- $fullname := include "threatpipe.fullname" $ -}}
{{- $name := printf "%s-%s" $fullname $role -}}
{{- $secrets := (include "threatpipe.roleSecretItems" (dict "ctx" $ "role" $role) | fromYaml).items -}}
{{- $keda := and $v.autoscaling.keda.enabled (has $role (list "enricher" "act")) -}}
{{- $sel := include "threatpipe.selectorLabels" (dict "ctx" $ "component" $role) -}}
{{- $singleton := eq $role "ingest" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "threatpipe.labels" (dict "ctx" $ "component" $role) | nindent 4 }}
spec:
  {{- if $singleton }}
  # One replica, always: the platforms' cursors are per platform, and a second replica would poll
  # and publish the same pages.
  replicas: 1
  {{- else if not $keda }}
  replicas: {{ $r.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- $sel | nindent 6 }}
  {{- if $singleton }}
  strategy:
    # The old pod finishes its page and stops before the new one starts polling: never two pollers.
    type: Recreate
  {{- else }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      # One pod at a time: each step is one consumer-group rebalance, and a new pod that does
      # not start never replaces a running one.
      maxSurge: 1
      maxUnavailable: 0
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "threatpipe.labels" (dict "ctx" $ "component" $role) | nindent 8 }}
        {{- with $r.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include (print $.Template.BasePath "/configmaps.yaml") $ | sha256sum }}
        {{- if $v.metrics.podAnnotations }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $v.httpPort | int | toString | quote }}
        prometheus.io/path: /metrics
        {{- end }}
        {{- with $r.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      # SIGTERM: finish in-flight work and commit within THREATPIPE_PIPELINE_SHUTDOWN_TIMEOUT, then
      # leave the consumer groups (up to 5s more); the kubelet waits this long before SIGKILL.
      terminationGracePeriodSeconds: {{ $r.terminationGracePeriodSeconds }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $r.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        runAsNonRoot: true
        # The distroless "nonroot" user.
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- $sel | nindent 14 }}
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- $sel | nindent 14 }}
      {{- with $r.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $r.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $r.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ $role }}
          image: {{ include "threatpipe.image" $ }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args: [{{ .args | quote }}]
          ports:
            - name: http
              containerPort: {{ $v.httpPort }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ $fullname }}-config
            - configMapRef:
                name: {{ $fullname }}-{{ $role }}-config
          env:
            {{- if eq $role "act" }}
            # The key playbooks.yaml of the ConfigMap {{ $fullname }}-act-playbooks.
            - name: THREATPIPE_ACT_PLAYBOOKS
              value: /etc/threatpipe/playbooks/playbooks.yaml
            {{- end }}
            {{- range $secrets }}
            - name: {{ .env }}
              value: /var/run/secrets/threatpipe/{{ .key }}
            {{- end }}
            # Soft memory limit for the Go runtime, below the container's memory limit.
            - name: GOMEMLIMIT
              value: {{ $r.goMemLimit | quote }}
          volumeMounts:
            {{- if $secrets }}
            - name: secrets
              mountPath: /var/run/secrets/threatpipe
              readOnly: true
            {{- end }}
            {{- if and $v.kafka.tls.enabled $v.kafka.tls.secretName }}
            - name: kafka-tls
              mountPath: /etc/threatpipe/kafka-tls
              readOnly: true
            {{- end }}
            {{- if and $v.redis.tls.enabled $v.redis.tls.secretName }}
            - name: redis-tls
              mountPath: /etc/threatpipe/redis-tls
              readOnly: true
            {{- end }}
            {{- if eq $role "act" }}
            - name: playbooks
              mountPath: /etc/threatpipe/playbooks
              readOnly: true
            {{- end }}
            - name: tmp
              mountPath: /tmp
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 2
            failureThreshold: 30
          # /healthz: the process is alive. It ignores Kafka and Redis on purpose, so an outage of
          # either does not restart every pod.
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          # /readyz fails while Kafka or Redis does not answer and from the start of a shutdown.
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          resources:
            {{- toYaml $r.resources | nindent 12 }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            privileged: false
            capabilities:
              drop: ["ALL"]
            seccompProfile:
              type: RuntimeDefault
      volumes:
        {{- if $secrets }}
        - name: secrets
          secret:
            secretName: {{ include "threatpipe.secretName" $ }}
            defaultMode: 0440
            items:
              {{- range $secrets }}
              - key: {{ .key }}
                path: {{ .key }}
              {{- end }}
        {{- end }}
        {{- if and $v.kafka.tls.enabled $v.kafka.tls.secretName }}
        - name: kafka-tls
          secret:
            secretName: {{ $v.kafka.tls.secretName }}
            defaultMode: 0440
        {{- end }}
        {{- if and $v.redis.tls.enabled $v.redis.tls.secretName }}
        - name: redis-tls
          secret:
            secretName: {{ $v.redis.tls.secretName }}
            defaultMode: 0440
        {{- end }}
        {{- if eq $role "act" }}
        - name: playbooks
          configMap:
            name: {{ $fullname }}-act-playbooks
            defaultMode: 0440
            items:
              - key: playbooks.yaml
                path: playbooks.yaml
        {{- end }}
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "threatpipe.labels" (dict "ctx" $ "component" $role) | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- $sel | nindent 4 }}
  {{- if eq $role "act" }}
  # Keeps each firewall polling the EDL on one replica (same list and ETag everywhere, but
  # Last-Modified differs slightly between replicas).
  sessionAffinity: ClientIP
  {{- end }}
  ports:
    - name: http
      port: {{ $v.httpPort }}
      targetPort: http
      protocol: TCP
{{- if not $singleton }}
---
# Voluntary disruptions (drains, upgrades) take one pod at a time. maxUnavailable, not
# minAvailable, keeps drains possible when KEDA has scaled down to one replica.
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels:
    {{- include "threatpipe.labels" (dict "ctx" $ "component" $role) | nindent 4 }}
spec:
  maxUnavailable: {{ $r.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- $sel | nindent 6 }}
{{- end }}
{{- end -}}
