package eventbus

import "encoding/json"

// Target is a rule's target as PutTargets receives it and ListTargetsByRule
// returns it. Members keep AWS's names on the wire. Parameter groups for
// target kinds bridgeport does not deliver to are kept as raw JSON, so that
// they round-trip faithfully.
type Target struct {
	Id                          string            `json:"Id"`
	Arn                         string            `json:"Arn"`
	RoleArn                     *string           `json:"RoleArn,omitempty"`
	Input                       *string           `json:"Input,omitempty"`
	InputPath                   *string           `json:"InputPath,omitempty"`
	InputTransformer            *InputTransformer `json:"InputTransformer,omitempty"`
	HttpParameters              *HttpParameters   `json:"HttpParameters,omitempty"`
	RetryPolicy                 *RetryPolicy      `json:"RetryPolicy,omitempty"`
	DeadLetterConfig            *DeadLetterConfig `json:"DeadLetterConfig,omitempty"`
	SqsParameters               *SqsParameters    `json:"SqsParameters,omitempty"`
	KinesisParameters           json.RawMessage   `json:"KinesisParameters,omitempty"`
	RunCommandParameters        json.RawMessage   `json:"RunCommandParameters,omitempty"`
	EcsParameters               json.RawMessage   `json:"EcsParameters,omitempty"`
	BatchParameters             json.RawMessage   `json:"BatchParameters,omitempty"`
	RedshiftDataParameters      json.RawMessage   `json:"RedshiftDataParameters,omitempty"`
	SageMakerPipelineParameters json.RawMessage   `json:"SageMakerPipelineParameters,omitempty"`
	AppSyncParameters           json.RawMessage   `json:"AppSyncParameters,omitempty"`
}

// InputTransformer rewrites the event before delivery.
type InputTransformer struct {
	InputPathsMap map[string]string `json:"InputPathsMap,omitempty"`
	InputTemplate *string           `json:"InputTemplate"`
}

// HttpParameters adds path, header and query string values to an HTTP
// invocation.
type HttpParameters struct {
	PathParameterValues   []string          `json:"PathParameterValues,omitempty"`
	HeaderParameters      map[string]string `json:"HeaderParameters,omitempty"`
	QueryStringParameters map[string]string `json:"QueryStringParameters,omitempty"`
}

// RetryPolicy bounds the retries of a failed invocation.
type RetryPolicy struct {
	MaximumRetryAttempts     *int `json:"MaximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int `json:"MaximumEventAgeInSeconds,omitempty"`
}

// DeadLetterConfig names the queue that receives undeliverable events.
type DeadLetterConfig struct {
	Arn *string `json:"Arn,omitempty"`
}

// SqsParameters are the parameters of an SQS queue target.
type SqsParameters struct {
	MessageGroupId *string `json:"MessageGroupId,omitempty"`
}
