package sqs

import (
	"fmt"

	"bridgeport/internal/awsapi"
)

// SQS is compatible with the Query protocol: besides the JSON error type,
// clients read the legacy code from the x-amzn-query-error header (the AWS
// CLI shows it). Each error here carries both.
func sqsError(code, queryCode, format string, args ...any) *awsapi.Error {
	return &awsapi.Error{Code: code, QueryCode: queryCode, Message: fmt.Sprintf(format, args...)}
}

func errNoQueue() *awsapi.Error {
	return sqsError("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
}

// errInvalidParameter is the error of a parameter out of its range. SQS
// sends it with the query code InvalidParameterValue; its JSON type is not
// in the model, so the same name is used (UNVERIFIED).
func errInvalidParameter(format string, args ...any) *awsapi.Error {
	return sqsError("InvalidParameterValue", "InvalidParameterValue", format, args...)
}

func errParameterValue(value any, name, reason string) *awsapi.Error {
	return errInvalidParameter("Value %v for parameter %s is invalid. Reason: %s", value, name, reason)
}

func errMissing(name string) *awsapi.Error {
	return sqsError("MissingParameter", "MissingParameter", "The request must contain the parameter %s.", name)
}

func errBadReceipt(handle string) *awsapi.Error {
	return sqsError("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", "The input receipt handle \"%s\" is not a valid receipt handle.", handle)
}

func errNotInflight() *awsapi.Error {
	return sqsError("MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight",
		"Message does not exist or is not available for visibility timeout change.")
}

func errAttributeName(name string) *awsapi.Error {
	return sqsError("InvalidAttributeName", "InvalidAttributeName", "Unknown Attribute %s.", name)
}

func errAttributeValue(name string) *awsapi.Error {
	return sqsError("InvalidAttributeValue", "InvalidAttributeValue", "Invalid value for the parameter %s.", name)
}

// Batch request errors.
func errEmptyBatch(entry string) *awsapi.Error {
	return sqsError("EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest",
		"There should be at least one %s in the request.", entry)
}

func errTooManyEntries(n int) *awsapi.Error {
	return sqsError("TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
		"Maximum number of entries per request are 10. You have sent %d.", n)
}

func errIDsNotDistinct(id string) *awsapi.Error {
	return sqsError("BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "Id %s repeated.", id)
}

func errBadEntryID() *awsapi.Error {
	return sqsError("InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId",
		"A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")
}
