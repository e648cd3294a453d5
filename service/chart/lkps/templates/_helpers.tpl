{{/* Names, labels, derived values and checks shared by the templates. */}}

{{- define "lkps.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lkps.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The serving pods; the migration Job's pods carry another component, so no selector picks them up. */}}
{{- define "lkps.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lkps.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "lkps.migrationSelectorLabels" -}}
app.kubernetes.io/name: {{ include "lkps.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: migration
{{- end }}

{{- define "lkps.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: livekit-platform
environment: {{ .Values.environment | quote }}
{{- end }}

{{- define "lkps.labels" -}}
{{ include "lkps.commonLabels" . }}
{{ include "lkps.selectorLabels" . }}
{{- end }}

{{- define "lkps.migrationLabels" -}}
{{ include "lkps.commonLabels" . }}
{{ include "lkps.migrationSelectorLabels" . }}
{{- end }}

{{- define "lkps.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
SIGTERM comes after the preStop sleep; uvicorn then finishes in-flight requests and the lifespan flushes the
audit queue. The kubelet must not kill the pod before all three are done.
*/}}
{{- define "lkps.terminationGracePeriodSeconds" -}}
{{- $s := .Values.shutdown }}
{{- add (int $s.preStopSeconds) (int $s.requestDrainSeconds) (int $s.auditFlushSeconds) 5 }}
{{- end }}

{{- define "lkps.otelResourceAttributes" -}}
{{- $attrs := list "k8s.pod.name=$(POD_NAME)" "k8s.namespace.name=$(POD_NAMESPACE)" "k8s.node.name=$(NODE_NAME)" (printf "deployment.environment=%s" .Values.environment) (printf "service.version=%s" (.Values.image.tag | default .Chart.AppVersion)) }}
{{- if .Values.telemetry.resourceAttributes }}
{{- $attrs = append $attrs .Values.telemetry.resourceAttributes }}
{{- end }}
{{- join "," $attrs }}
{{- end }}

{{/* The Secret the containers read: the existing one, or the one the CSI driver syncs from Key Vault. */}}
{{- define "lkps.secretName" -}}
{{- if eq .Values.secrets.source "keyVault" }}
{{- printf "%s-secrets" (include "lkps.fullname" .) }}
{{- else }}
{{- .Values.secrets.existingSecret.name }}
{{- end }}
{{- end }}

{{/* The migration's own synced Secret (Key Vault): the database URL only. */}}
{{- define "lkps.migrationSecretName" -}}
{{- if eq .Values.secrets.source "keyVault" }}
{{- printf "%s-database" (include "lkps.fullname" .) }}
{{- else }}
{{- .Values.secrets.existingSecret.name }}
{{- end }}
{{- end }}

{{/*
The key of each secret inside the Secret the containers read. Synced from Key Vault, the keys are the
variable names; in an existing Secret, whatever secrets.existingSecret.keys says.
*/}}
{{- define "lkps.secretKey" -}}
{{- $root := index . 0 }}
{{- $what := index . 1 }}
{{- if eq $root.Values.secrets.source "keyVault" }}
{{- get (dict "livekitApiKey" "LIVEKIT_API_KEY" "livekitApiSecret" "LIVEKIT_API_SECRET" "databaseUrl" "LKPS_DATABASE_URL" "agentTokenSecret" "LKPS_AGENT_TOKEN_SECRET" "gatewaySharedSecret" "LKPS_GATEWAY_SHARED_SECRET") $what }}
{{- else }}
{{- get $root.Values.secrets.existingSecret.keys $what }}
{{- end }}
{{- end }}

{{/* Whether a gateway shared secret source is configured for the chosen secrets.source. */}}
{{- define "lkps.hasGatewaySecret" -}}
{{- if eq .Values.secrets.source "keyVault" }}
{{- if .Values.secrets.keyVault.objects.gatewaySharedSecret }}true{{ end }}
{{- else }}
{{- if .Values.secrets.existingSecret.keys.gatewaySharedSecret }}true{{ end }}
{{- end }}
{{- end }}

{{/*
Checks the schema cannot express, or expresses with a less helpful message. Included by every template
that depends on them, so `helm template` fails with one line naming the value and the fix.
*/}}
{{- define "lkps.validate" -}}
{{- if and (eq .Values.identity.mode "gateway") (not (include "lkps.hasGatewaySecret" .)) }}
{{- fail (printf "identity.mode=gateway needs the gateway's shared secret: set secrets.%s.%s.gatewaySharedSecret (a request without it is refused, and the service will not start without it)" .Values.secrets.source (ternary "objects" "keys" (eq .Values.secrets.source "keyVault"))) }}
{{- end }}
{{- if and (eq .Values.secrets.source "keyVault") (not .Values.secrets.keyVault.name) }}
{{- fail "secrets.source=keyVault needs secrets.keyVault.name: the name of the Key Vault holding the service's secrets" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- fail (printf "autoscaling.maxReplicas=%d is below autoscaling.minReplicas=%d: raise maxReplicas" (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- end }}
{{- if .Values.podDisruptionBudget.enabled }}
{{- $floor := ternary .Values.autoscaling.minReplicas .Values.replicaCount .Values.autoscaling.enabled }}
{{- if ge (int .Values.podDisruptionBudget.minAvailable) (int $floor) }}
{{- fail (printf "podDisruptionBudget.minAvailable=%d must be below the replica floor (%d): a node drain could never evict a pod; raise %s or lower minAvailable" (int .Values.podDisruptionBudget.minAvailable) (int $floor) (ternary "autoscaling.minReplicas" "replicaCount" .Values.autoscaling.enabled)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
NetworkPolicy peers (`from`/`to` entries) of one peer value: an ipBlock per CIDR, one entry per selector.
Renders nothing for an empty peer; the caller leaves such a rule out (a rule with no peers admits everyone).
*/}}
{{- define "lkps.peers" -}}
{{- $peers := list }}
{{- range .cidrs }}
{{- $peers = append $peers (dict "ipBlock" (dict "cidr" .)) }}
{{- end }}
{{- range .selectors }}
{{- $peer := dict }}
{{- if hasKey . "namespaceLabels" }}
{{- $_ := set $peer "namespaceSelector" (ternary (dict "matchLabels" .namespaceLabels) (dict) (not (empty .namespaceLabels))) }}
{{- end }}
{{- if hasKey . "podLabels" }}
{{- $_ := set $peer "podSelector" (ternary (dict "matchLabels" .podLabels) (dict) (not (empty .podLabels))) }}
{{- end }}
{{- $peers = append $peers $peer }}
{{- end }}
{{- toYaml $peers }}
{{- end }}

{{- define "lkps.hasPeers" -}}
{{- if or .cidrs .selectors }}true{{ end }}
{{- end }}

{{/* The port GET /metrics is served on: metrics.port, or the container's service port (8080). */}}
{{- define "lkps.metricsPort" -}}
{{- .Values.metrics.port | default 8080 }}
{{- end }}
