package cloud

import (
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
)

// IsThrottled reports whether err is AWS refusing a call for its rate: a
// throttling error code, or the SDK's client-side retry quota running out
// (which, should a retryer with a quota be used, means the same thing).
func IsThrottled(err error) bool {
	if err == nil {
		return false
	}
	var qe ratelimit.QuotaExceededError
	if errors.As(err, &qe) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		_, ok := retry.DefaultThrottleErrorCodes[ae.ErrorCode()]
		return ok
	}
	return false
}

// notFoundCodes are the codes with which the services the reconciler calls
// say that a resource does not exist.
var notFoundCodes = map[string]bool{
	"ClusterNotFoundException":                true, // ECS
	"ServiceNotFoundException":                true, // ECS
	"ServiceNotActiveException":               true, // ECS: deleted, still describable
	"ResourceNotFoundException":               true, // ECS tags, Secrets Manager, EventBridge
	"AWS.SimpleQueueService.NonExistentQueue": true, // SQS (query-compatible code)
	"QueueDoesNotExist":                       true, // SQS (JSON protocol)
	"RepositoryNotFoundException":             true, // ECR
	"ImageNotFoundException":                  true, // ECR
}

// IsNotFound reports whether err says that the resource does not exist.
// ECS reports a missing task definition as a ClientException whose message
// says so; that case is recognised by its message.
func IsNotFound(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	if notFoundCodes[ae.ErrorCode()] {
		return true
	}
	if ae.ErrorCode() == "ClientException" {
		msg := strings.ToLower(ae.ErrorMessage())
		return strings.Contains(msg, "unable to describe task definition") ||
			strings.Contains(msg, "does not exist") || strings.Contains(msg, "not found")
	}
	return false
}

// IsAccessDenied reports whether IAM refused the call.
func IsAccessDenied(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation":
		return true
	}
	return false
}

// IsInvalidInput reports whether AWS rejected the request's content: retrying
// the same request cannot succeed.
func IsInvalidInput(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) || IsNotFound(err) {
		return false
	}
	switch ae.ErrorCode() {
	case "ClientException", "InvalidParameterException", "InvalidParameterValueException",
		"ValidationException", "UnsupportedFeatureException", "PlatformUnknownException",
		"PlatformTaskDefinitionIncompatibilityException":
		return true
	}
	return false
}

// IsInactive reports whether ECS refused a task definition it names for
// being INACTIVE (deregistered): an invalid-input error whose message says
// so ("ClientException: TaskDefinition is inactive"). Only the service's
// message is read, not the text that wraps it.
func IsInactive(err error) bool {
	var ae smithy.APIError
	return IsInvalidInput(err) && errors.As(err, &ae) &&
		strings.Contains(strings.ToLower(ae.ErrorMessage()), "inactive")
}

// IsNoCredentials reports whether the SDK found no credentials to sign a
// call with (it resolves them before it sends anything, so such an error
// carries no API error code): a signing error, or the SDK's text for a
// credential provider that failed.
func IsNoCredentials(err error) bool {
	if err == nil {
		return false
	}
	var se *v4.SigningError
	msg := err.Error()
	return errors.As(err, &se) || strings.Contains(msg, "get identity:") || strings.Contains(msg, "failed to retrieve credentials")
}
