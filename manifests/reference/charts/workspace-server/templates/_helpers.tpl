{{/* Chart name, cut to 63 characters (label value limit). */}}
{{- define "workspace-server.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Name of every resource of the release. It always holds the workspace name
(appended unless the release name already holds it as a '-'-separated
part), so several teams' releases coexist in one namespace. It is not cut:
a name over 63 characters (the Service name limit) fails instead, since
cutting could drop the workspace name and make two releases collide.
*/}}
{{- define "workspace-server.fullname" -}}
{{- $ws := required "workspace.name is required (a DNS label)" .Values.workspace.name | toString -}}
{{- $base := printf "%s-%s" .Release.Name .Chart.Name -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- $base = .Release.Name -}}
{{- end -}}
{{- $name := $base -}}
{{- if not (contains (printf "-%s-" $ws) (printf "-%s-" $base)) -}}
{{- $name = printf "%s-%s" $base $ws -}}
{{- end -}}
{{- if gt (len $name) 63 -}}
{{- fail (printf "resource name %q (release name, chart name and workspace.name) is longer than 63 characters; use a shorter release name" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* Labels selecting the release's pods (immutable once installed). */}}
{{- define "workspace-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "workspace-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every resource. */}}
{{- define "workspace-server.labels" -}}
{{ include "workspace-server.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: platform
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
platform/workspace: {{ .Values.workspace.name | toString | quote }}
{{- end -}}

{{/* Whether the pod needs its ServiceAccount token (Kubernetes API or Vault's kubernetes auth). */}}
{{- define "workspace-server.needsToken" -}}
{{- if has (toString .Values.secretsStore.type) (list "kubernetes" "vault") -}}true{{- end -}}
{{- end -}}

{{/* Fails unless (list NAME VALUE) holds an integer port 1-65535. */}}
{{- define "workspace-server.checkPort" -}}
{{- $name := index . 0 -}}
{{- $v := index . 1 -}}
{{- if not (or (kindIs "float64" $v) (kindIs "int" $v) (kindIs "int64" $v)) -}}
{{- fail (printf "%s must be a port number, got %q" $name (toString $v)) -}}
{{- end -}}
{{- if or (ne (toString $v) (toString (int $v))) (lt (int $v) 1) (gt (int $v) 65535) -}}
{{- fail (printf "%s must be an integer port between 1 and 65535, got %v" $name $v) -}}
{{- end -}}
{{- end -}}

{{/*
Checks the values contract; every template includes it first so that any
render fails with a message naming the offending value. values.schema.json
holds the same rules for `helm lint`.
*/}}
{{- define "workspace-server.validate" -}}
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
{{- $ws := required "workspace.name is required (a DNS label)" $v.workspace.name -}}
{{- if not (and (kindIs "string" $ws) (le (len (toString $ws)) 63) (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" (toString $ws))) -}}
{{- fail (printf "workspace.name must be a DNS label (lowercase letters, digits and '-', at most 63 characters), got %q" (toString $ws)) -}}
{{- end -}}
{{- $_ := include "workspace-server.fullname" . -}}
{{- if not (or (kindIs "float64" $v.replicaCount) (kindIs "int" $v.replicaCount) (kindIs "int64" $v.replicaCount)) -}}
{{- fail (printf "replicaCount must be a number, got %q" (toString $v.replicaCount)) -}}
{{- end -}}
{{- if lt (int $v.replicaCount) 0 -}}
{{- fail "replicaCount must not be negative" -}}
{{- end -}}
{{- include "workspace-server.checkPort" (list "service.port" $v.service.port) -}}
{{- include "workspace-server.checkPort" (list "monitoring.metricsPort" $v.monitoring.metricsPort) -}}
{{- if eq (int $v.service.port) (int $v.monitoring.metricsPort) -}}
{{- fail "monitoring.metricsPort must differ from service.port" -}}
{{- end -}}
{{- if not (hasPrefix "/" (toString $v.monitoring.metricsPath)) -}}
{{- fail (printf "monitoring.metricsPath must start with '/', got %q" (toString $v.monitoring.metricsPath)) -}}
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
{{- $url := required "controlPlane.url is required (https://...)" $v.controlPlane.url | toString -}}
{{- if not (hasPrefix "https://" $url) -}}
{{- fail (printf "controlPlane.url must be an https:// URL, got %q" $url) -}}
{{- end -}}
{{- $_ := required "controlPlane.enrollmentToken is required" $v.controlPlane.enrollmentToken -}}
{{- $db := required "database is required" $v.database -}}
{{- if not (has $db.type (list "postgresql" "mysql")) -}}
{{- fail (printf "database.type must be postgresql or mysql, got %q" (toString $db.type)) -}}
{{- end -}}
{{- $_ := required "database.host is required" $db.host -}}
{{- include "workspace-server.checkPort" (list "database.port" $db.port) -}}
{{- $_ := required "database.name is required" $db.name -}}
{{- $_ := required "database.user is required" $db.user -}}
{{- $ss := $v.secretsStore -}}
{{- if eq (toString $ss.type) "aws-secrets-manager" -}}
{{- $_ := required "secretsStore.aws.region is required when secretsStore.type is aws-secrets-manager" $ss.aws.region -}}
{{- else if eq (toString $ss.type) "vault" -}}
{{- $_ := required "secretsStore.vault.url is required when secretsStore.type is vault" $ss.vault.url -}}
{{- else if eq (toString $ss.type) "kubernetes" -}}
{{- $ns := required "secretsStore.kubernetes.namespace is required when secretsStore.type is kubernetes" $ss.kubernetes.namespace | toString -}}
{{- if not (and (le (len $ns) 63) (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $ns)) -}}
{{- fail (printf "secretsStore.kubernetes.namespace must be a namespace name (a DNS label), got %q" $ns) -}}
{{- end -}}
{{- else -}}
{{- fail (printf "secretsStore.type must be aws-secrets-manager, vault or kubernetes, got %q" (toString $ss.type)) -}}
{{- end -}}
{{- $as := $v.artifactStore -}}
{{- if eq (toString $as.type) "s3" -}}
{{- $_ := required "artifactStore.s3.endpoint is required when artifactStore.type is s3" $as.s3.endpoint -}}
{{- $_ := required "artifactStore.s3.bucket is required when artifactStore.type is s3" $as.s3.bucket -}}
{{- else if eq (toString $as.type) "nfs" -}}
{{- $_ := required "artifactStore.nfs.server is required when artifactStore.type is nfs" $as.nfs.server -}}
{{- $path := required "artifactStore.nfs.path is required when artifactStore.type is nfs" $as.nfs.path | toString -}}
{{- if not (hasPrefix "/" $path) -}}
{{- fail (printf "artifactStore.nfs.path must be an absolute path, got %q" $path) -}}
{{- end -}}
{{- else if eq (toString $as.type) "azure-blob" -}}
{{- $_ := required "artifactStore.azureBlob.account is required when artifactStore.type is azure-blob" $as.azureBlob.account -}}
{{- $_ := required "artifactStore.azureBlob.container is required when artifactStore.type is azure-blob" $as.azureBlob.container -}}
{{- else -}}
{{- fail (printf "artifactStore.type must be s3, nfs or azure-blob, got %q" (toString $as.type)) -}}
{{- end -}}
{{- end -}}

{{/*
Secret values of the release, as YAML (key: base64 of the value, encoded
here so that the text survives byte for byte). secret.yaml stores them;
deployment.yaml reads each present key with secretKeyRef.
*/}}
{{- define "workspace-server.secretData" -}}
{{- $d := dict -}}
{{- with .Values.controlPlane.enrollmentToken -}}
{{- $_ := set $d "enrollment-token" (toString . | b64enc) -}}
{{- end -}}
{{- with .Values.database.password -}}
{{- $_ := set $d "db-password" (toString . | b64enc) -}}
{{- end -}}
{{- toYaml $d -}}
{{- end -}}
