{{/* Names, labels and derived values shared by the templates. */}}

{{- define "agent.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agent.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "agent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: livekit-platform
environment: {{ .Values.environment | quote }}
{{- end }}

{{/*
The pod must outlive the drain: livekit-agents finishes running sessions for drainTimeoutSeconds after
SIGTERM, then needs time to close connections and flush telemetry before the kubelet kills it.
*/}}
{{- define "agent.terminationGracePeriodSeconds" -}}
{{- if lt (int .Values.shutdownMarginSeconds) 90 }}
{{- fail "shutdownMarginSeconds must be at least 90: the worker needs it after the drain to close and flush" }}
{{- end }}
{{- add (int .Values.drainTimeoutSeconds) (int .Values.shutdownMarginSeconds) }}
{{- end }}

{{/*
The metrics port when metrics are on ("" when off); it must not be a probe port, which serve other routes.
*/}}
{{- define "agent.metricsPort" -}}
{{- $port := int .Values.metrics.port }}
{{- if $port }}
{{- if or (eq $port (int .Values.probes.liveness.port)) (eq $port (int .Values.probes.readiness.port)) }}
{{- fail (printf "metrics.port %d is a probe port: give livekit-agents' metrics endpoint a port of its own" $port) }}
{{- end }}
{{- $port }}
{{- end }}
{{- end }}

{{/*
The PromQL selector of this release's pods: their namespace and the Deployment's pod names.
*/}}
{{- define "agent.podSelector" -}}
namespace="{{ .Release.Namespace }}", pod=~"{{ include "agent.fullname" . }}-[a-z0-9]+-[a-z0-9]+"
{{- end }}

{{- define "agent.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "agent.otelResourceAttributes" -}}
{{- $attrs := list "k8s.pod.name=$(POD_NAME)" "k8s.namespace.name=$(POD_NAMESPACE)" "k8s.node.name=$(NODE_NAME)" (printf "deployment.environment=%s" .Values.environment) (printf "service.version=%s" (.Values.image.tag | default .Chart.AppVersion)) }}
{{- if .Values.telemetry.resourceAttributes }}
{{- $attrs = append $attrs .Values.telemetry.resourceAttributes }}
{{- end }}
{{- join "," $attrs }}
{{- end }}
