{{/* The release's name for the chart's objects, within the 63 characters of a DNS label. */}}
{{- define "bfbridge.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "bfbridge.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "bfbridge.labels" -}}
{{ include "bfbridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* redis: whether the store is Redis (a URL, or a Secret holding one). */}}
{{- define "bfbridge.redis" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret -}}true{{- end -}}
{{- end -}}

{{/*
validate refuses values the bridge cannot run with: several replicas on the SQLite store (one
file, one writer), and an admin Service without the admin token (the bridge refuses a
non-loopback admin listener without one).
*/}}
{{- define "bfbridge.validate" -}}
{{- if and (not (include "bfbridge.redis" .)) (gt (int .Values.replicaCount) 1) -}}
{{- fail "replicaCount > 1 needs the Redis store (redis.url or redis.existingSecret): the SQLite store is one file that one process writes" -}}
{{- end -}}
{{- if and .Values.admin.service.enabled (not (and .Values.secrets.existingSecret .Values.secrets.keys.adminToken)) -}}
{{- fail "admin.service.enabled needs the admin token: set secrets.existingSecret and secrets.keys.adminToken" -}}
{{- end -}}
{{- end -}}

{{/* secretEnv maps the secrets.keys names to the environment variables the bridge reads. */}}
{{- define "bfbridge.secretEnv" -}}
directlineSecret: BRIDGE_DIRECTLINE_SECRET
botAppPassword: BRIDGE_BOT_APP_PASSWORD
botDirectlineSecret: BRIDGE_BOT_DIRECTLINE_SECRET
omnichannelAppPassword: BRIDGE_OMNICHANNEL_APP_PASSWORD
dynamicsClientSecret: BRIDGE_DYNAMICS_CLIENT_SECRET
redisSentinelPassword: BRIDGE_REDIS_SENTINEL_PASSWORD
adminToken: BRIDGE_ADMIN_TOKEN
oauthTokenKey: BRIDGE_OAUTH_TOKEN_KEY
{{- end -}}
