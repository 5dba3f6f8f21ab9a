{{/* Chart name, cut to 63 characters (label value limit). */}}
{{- define "dashboard.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of every resource of the release. */}}
{{- define "dashboard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels selecting the release's pods (immutable once installed). */}}
{{- define "dashboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dashboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every resource. */}}
{{- define "dashboard.labels" -}}
{{ include "dashboard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: platform
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/*
Checks the values contract; every template includes it first so that any
render fails with a message naming the offending value. values.schema.json
holds the same rules for `helm lint`.
*/}}
{{- define "dashboard.validate" -}}
{{- $v := .Values -}}
{{- $image := required "image is required (an internal reference pinned by digest)" $v.image -}}
{{- if not (kindIs "string" $image) -}}
{{- fail "image must be a string: a full reference pinned by digest (REGISTRY/REPOSITORY@sha256:DIGEST)" -}}
{{- end -}}
{{- if not (contains "@sha256:" $image) -}}
{{- fail (printf "image must be pinned by digest (REGISTRY/REPOSITORY@sha256:DIGEST), got %q" $image) -}}
{{- end -}}
{{- if regexMatch "\\s" $image -}}
{{- fail (printf "image must not contain white space, got %q" $image) -}}
{{- end -}}
{{- if not (or (kindIs "float64" $v.replicaCount) (kindIs "int" $v.replicaCount) (kindIs "int64" $v.replicaCount)) -}}
{{- fail (printf "replicaCount must be a number, got %q" (toString $v.replicaCount)) -}}
{{- end -}}
{{- if lt (int $v.replicaCount) 0 -}}
{{- fail "replicaCount must not be negative" -}}
{{- end -}}
{{- $port := $v.service.port -}}
{{- if not (or (kindIs "float64" $port) (kindIs "int" $port) (kindIs "int64" $port)) -}}
{{- fail (printf "service.port must be a port number, got %q" (toString $port)) -}}
{{- end -}}
{{- if or (ne (toString $port) (toString (int $port))) (lt (int $port) 1) (gt (int $port) 65535) -}}
{{- fail (printf "service.port must be an integer port between 1 and 65535, got %v" $port) -}}
{{- end -}}
{{- with $v.ingress.host -}}
{{- if not (regexMatch "^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" (toString .)) -}}
{{- fail (printf "ingress.host must be a lowercase DNS name, got %q" (toString .)) -}}
{{- end -}}
{{- end -}}
{{- with $v.caBundle -}}
{{- if not (contains "-----BEGIN CERTIFICATE-----" (toString .)) -}}
{{- fail "caBundle must be PEM text holding at least one -----BEGIN CERTIFICATE----- block" -}}
{{- end -}}
{{- end -}}
{{- $url := required "controlPlane.url is required" $v.controlPlane.url | toString -}}
{{- if not (regexMatch "^https?://" $url) -}}
{{- fail (printf "controlPlane.url must be an http:// or https:// URL, got %q" $url) -}}
{{- end -}}
{{- end -}}
