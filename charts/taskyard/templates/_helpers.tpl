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
