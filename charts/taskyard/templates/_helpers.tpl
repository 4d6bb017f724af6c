{{- define "taskyard.labels" -}}
app.kubernetes.io/name: taskyard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "taskyard.selectorLabels" -}}
app.kubernetes.io/name: taskyard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "taskyard.fullname" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "taskyard.operatorImage" -}}
{{- .Values.image | default (printf "taskyard/taskyard-operator:%s" .Chart.AppVersion) -}}
{{- end -}}

{{- define "taskyard.runnerImage" -}}
{{- .Values.runner.image | default (printf "taskyard/job-runner:%s" .Chart.AppVersion) -}}
{{- end -}}

{{- define "taskyard.gatewayName" -}}
{{- printf "%s-gateway" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "taskyard.gatewaySelectorLabels" -}}
app.kubernetes.io/name: taskyard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "taskyard.gatewayImage" -}}
{{- .Values.gateway.image | default (printf "taskyard/taskyard-gateway:%s" .Chart.AppVersion) -}}
{{- end -}}

{{/* The namespace the anonymous legacy APIs create their tasks in. */}}
{{- define "taskyard.gatewayNamespace" -}}
{{- .Values.gateway.namespace | default .Release.Namespace -}}
{{- end -}}

{{- /* "true" when the store's keys come from a web-identity token (no credentials Secret). */ -}}
{{- define "taskyard.webIdentity" -}}
{{- $role := (.Values.store.webIdentity | default dict).roleArn | default "" -}}
{{- if and $role .Values.store.credentialsSecret -}}
{{- fail "store.credentialsSecret and store.webIdentity.roleArn are both set: keep one (the Secret's keys, or the role assumed with a ServiceAccount token)" -}}
{{- end -}}
{{- if $role }}true{{ end -}}
{{- end -}}

{{- define "taskyard.runnerServiceAccount" -}}
{{- printf "%s-runner" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
