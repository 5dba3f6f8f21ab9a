{{/* Chart name, cut to 63 characters (label value limit). */}}
{{- define "control-plane.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of every resource of the release. */}}
{{- define "control-plane.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels selecting the release's pods (immutable once installed). */}}
{{- define "control-plane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "control-plane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every resource. */}}
{{- define "control-plane.labels" -}}
{{ include "control-plane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: platform
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* Fails unless (list NAME VALUE) holds an integer port 1-65535. */}}
{{- define "control-plane.checkPort" -}}
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
{{- define "control-plane.validate" -}}
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
{{- include "control-plane.checkPort" (list "service.port" $v.service.port) -}}
{{- include "control-plane.checkPort" (list "monitoring.metricsPort" $v.monitoring.metricsPort) -}}
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
{{- $db := required "database is required" $v.database -}}
{{- if not (has $db.type (list "postgresql" "mysql")) -}}
{{- fail (printf "database.type must be postgresql or mysql, got %q" (toString $db.type)) -}}
{{- end -}}
{{- $_ := required "database.host is required" $db.host -}}
{{- include "control-plane.checkPort" (list "database.port" $db.port) -}}
{{- $_ := required "database.name is required" $db.name -}}
{{- $_ := required "database.user is required" $db.user -}}
{{- $idp := $v.identityProvider -}}
{{- if eq (toString $idp.type) "oidc" -}}
{{- $_ := required "identityProvider.oidc.issuerUrl is required when identityProvider.type is oidc" $idp.oidc.issuerUrl -}}
{{- $_ := required "identityProvider.oidc.clientId is required when identityProvider.type is oidc" $idp.oidc.clientId -}}
{{- $_ := required "identityProvider.oidc.clientSecret is required when identityProvider.type is oidc" $idp.oidc.clientSecret -}}
{{- else if eq (toString $idp.type) "ldap" -}}
{{- $_ := required "identityProvider.ldap.server is required when identityProvider.type is ldap" $idp.ldap.server -}}
{{- $_ := required "identityProvider.ldap.baseDn is required when identityProvider.type is ldap" $idp.ldap.baseDn -}}
{{- else if eq (toString $idp.type) "saml" -}}
{{- $_ := required "identityProvider.saml.metadataUrl is required when identityProvider.type is saml" $idp.saml.metadataUrl -}}
{{- else -}}
{{- fail (printf "identityProvider.type must be oidc, ldap or saml, got %q" (toString $idp.type)) -}}
{{- end -}}
{{- if not (kindIs "slice" ($v.workspaces | default list)) -}}
{{- fail "workspaces must be a list of workspace names" -}}
{{- end -}}
{{- range $i, $w := ($v.workspaces | default list) -}}
{{- if not (and (kindIs "string" $w) (le (len (toString $w)) 63) (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" (toString $w))) -}}
{{- fail (printf "workspaces[%d] must be a workspace name (a DNS label: lowercase letters, digits and '-', at most 63 characters), got %q" $i (toString $w)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Secret values of the release, as YAML (key: base64 of the value, encoded
here so that the text survives byte for byte). secret.yaml stores them;
deployment.yaml reads each present key with secretKeyRef. Only the chosen
identity provider's secret is kept.
*/}}
{{- define "control-plane.secretData" -}}
{{- $d := dict -}}
{{- with .Values.database.password -}}
{{- $_ := set $d "db-password" (toString . | b64enc) -}}
{{- end -}}
{{- $idp := .Values.identityProvider -}}
{{- if eq (toString $idp.type) "oidc" -}}
{{- with $idp.oidc.clientSecret -}}
{{- $_ := set $d "idp-oidc-client-secret" (toString . | b64enc) -}}
{{- end -}}
{{- else if eq (toString $idp.type) "ldap" -}}
{{- with $idp.ldap.bindPassword -}}
{{- $_ := set $d "idp-ldap-bind-password" (toString . | b64enc) -}}
{{- end -}}
{{- end -}}
{{- with .Values.license.data -}}
{{- $_ := set $d "license" (toString . | b64enc) -}}
{{- end -}}
{{- toYaml $d -}}
{{- end -}}
