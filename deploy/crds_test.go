package deploy_test

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The custom resources of the manifests, mirrored from their CRD schemas for
// exactly the fields the manifests use (the KEDA and NACK Go modules are far
// too large to import for this). Decoding is strict, so a field that is
// misspelt, misplaced, or simply not listed here fails the tests: add it here,
// checked against the CRD, before using it in a manifest.

// ScaledObject is KEDA's keda.sh/v1alpha1 ScaledObject.
type ScaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ScaledObjectSpec `json:"spec"`
}

// ScaledObjectSpec mirrors ScaledObject.spec.
type ScaledObjectSpec struct {
	ScaleTargetRef  ScaleTarget     `json:"scaleTargetRef"`
	PollingInterval *int32          `json:"pollingInterval,omitempty"`
	CooldownPeriod  *int32          `json:"cooldownPeriod,omitempty"`
	MinReplicaCount *int32          `json:"minReplicaCount,omitempty"`
	MaxReplicaCount *int32          `json:"maxReplicaCount,omitempty"`
	Advanced        *KEDAAdvanced   `json:"advanced,omitempty"`
	Triggers        []ScaleTriggers `json:"triggers"`
}

// ScaleTarget mirrors spec.scaleTargetRef.
type ScaleTarget struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Name       string `json:"name"`
}

// KEDAAdvanced mirrors spec.advanced.
type KEDAAdvanced struct {
	HorizontalPodAutoscalerConfig *HPAConfig `json:"horizontalPodAutoscalerConfig,omitempty"`
	RestoreToOriginalReplicaCount bool       `json:"restoreToOriginalReplicaCount,omitempty"`
}

// HPAConfig mirrors spec.advanced.horizontalPodAutoscalerConfig; its behavior
// is the autoscaling/v2 type the HPA takes.
type HPAConfig struct {
	Name     string                                         `json:"name,omitempty"`
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
}

// ScaleTriggers mirrors an entry of spec.triggers.
type ScaleTriggers struct {
	Type       string            `json:"type"`
	Name       string            `json:"name,omitempty"`
	MetricType string            `json:"metricType,omitempty"`
	Metadata   map[string]string `json:"metadata"`
}

// Stream is NACK's jetstream.nats.io/v1beta2 Stream.
type Stream struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              StreamSpec `json:"spec"`
}

// StreamSpec mirrors Stream.spec.
type StreamSpec struct {
	Name            string   `json:"name"`
	Description     string   `json:"description,omitempty"`
	Subjects        []string `json:"subjects"`
	Storage         string   `json:"storage,omitempty"`
	Retention       string   `json:"retention,omitempty"`
	Discard         string   `json:"discard,omitempty"`
	MaxAge          string   `json:"maxAge,omitempty"`
	MaxBytes        int64    `json:"maxBytes,omitempty"`
	DuplicateWindow string   `json:"duplicateWindow,omitempty"`
	Replicas        int      `json:"replicas,omitempty"`
	PreventDelete   bool     `json:"preventDelete,omitempty"`
	PreventUpdate   bool     `json:"preventUpdate,omitempty"`
}

// Consumer is NACK's jetstream.nats.io/v1beta2 Consumer.
type Consumer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ConsumerSpec `json:"spec"`
}

// ConsumerSpec mirrors Consumer.spec.
type ConsumerSpec struct {
	DurableName    string   `json:"durableName"`
	StreamName     string   `json:"streamName"`
	Description    string   `json:"description,omitempty"`
	DeliverSubject string   `json:"deliverSubject,omitempty"`
	FilterSubject  string   `json:"filterSubject,omitempty"`
	FilterSubjects []string `json:"filterSubjects,omitempty"`
	DeliverPolicy  string   `json:"deliverPolicy,omitempty"`
	AckPolicy      string   `json:"ackPolicy,omitempty"`
	AckWait        string   `json:"ackWait,omitempty"`
	MaxDeliver     int      `json:"maxDeliver,omitempty"`
	MaxAckPending  int      `json:"maxAckPending,omitempty"`
	ReplayPolicy   string   `json:"replayPolicy,omitempty"`
	PreventDelete  bool     `json:"preventDelete,omitempty"`
	PreventUpdate  bool     `json:"preventUpdate,omitempty"`
}
