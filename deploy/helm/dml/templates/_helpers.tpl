{{/* Names and labels. */}}
{{- define "dml.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dml.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "dml.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "dml.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "dml.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dml.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dml.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "dml.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* "https" when the pod serves TLS itself, else "http". */}}
{{- define "dml.scheme" -}}
{{- if .Values.tls.existingSecret }}https{{ else }}http{{ end }}
{{- end }}

{{/*
dml.stateless is "true" when /data holds nothing that must outlive the
pod: metadata in PostgreSQL, blobs in S3, keys from a Secret.
*/}}
{{- define "dml.stateless" -}}
{{- if and .Values.database.existingSecret .Values.s3.endpoint .Values.keys.existingSecret }}true{{ end }}
{{- end }}

{{/*
dml.validate fails the render on settings that cannot work. Replicas
share the metadata, the blobs and the keys: SQLite and the fs store live
in one pod's volume, and a replica with keys of its own is refused by the
others' pinned keys.
*/}}
{{- define "dml.validate" -}}
{{- if gt (int .Values.replicaCount) 1 }}
{{- if not .Values.database.existingSecret }}
{{- fail "replicaCount > 1 needs PostgreSQL: set database.existingSecret to a Secret holding the postgres:// URL (SQLite lives in one pod's volume)" }}
{{- end }}
{{- if not .Values.s3.endpoint }}
{{- fail "replicaCount > 1 needs S3: set s3.endpoint and s3.existingSecret (the file blob store lives in one pod's volume)" }}
{{- end }}
{{- if not .Values.keys.existingSecret }}
{{- fail "replicaCount > 1 needs one set of signing keys for every replica: set keys.existingSecret (docs/deploy.md)" }}
{{- end }}
{{- end }}
{{- if and .Values.s3.endpoint (not .Values.s3.existingSecret) }}
{{- fail "s3.endpoint needs s3.existingSecret: a Secret holding the S3 access key and secret key" }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.tlsSecretName) }}
{{- fail "ingress.enabled needs ingress.tlsSecretName: the ingress serves TLS only" }}
{{- end }}
{{- end }}
