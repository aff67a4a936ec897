package metrics

import (
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// knownErrorCodes are the AWS error codes kept as label values of
// ecs_sidecar_aws_api_calls_total. aws-load-balancer-controller puts the code
// as is; codes come from the server, so here any other code is counted as
// "Other" to keep the cardinality bounded whatever an endpoint answers. The
// list holds the codes the services the reconciler calls (ECS, SQS,
// EventBridge, Secrets Manager, ECR, STS) document for its operations, the
// SDK's throttle codes, and the two codes cloud.ErrorCode makes up
// (Canceled, Transport).
var knownErrorCodes = func() map[string]bool {
	m := map[string]bool{}
	for c := range retry.DefaultThrottleErrorCodes {
		m[c] = true
	}
	for _, c := range []string{
		// cloud.ErrorCode
		"Canceled", "Transport",
		// common to every service
		"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
		"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
		"IncompleteSignature", "SignatureDoesNotMatch", "RequestExpired", "InvalidSignatureException",
		"InternalFailure", "InternalError", "InternalServerError", "ServiceUnavailable",
		"ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
		"ValidationException", "ValidationError", "MissingParameter", "InvalidAction",
		"OptInRequired", "NotAuthorized",
		// ECS
		"ServerException", "ClientException", "InvalidParameterException",
		"ClusterNotFoundException", "ServiceNotFoundException", "ServiceNotActiveException",
		"ResourceNotFoundException", "ResourceInUseException", "UpdateInProgressException",
		"UnsupportedFeatureException", "PlatformUnknownException",
		"PlatformTaskDefinitionIncompatibilityException", "TargetNotFoundException",
		"ConflictException",
		// SQS
		"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "ReceiptHandleIsInvalid",
		"InvalidParameterValue", "InvalidAddress", "InvalidSecurity", "KmsAccessDenied",
		"KmsDisabled", "KmsInvalidState", "KmsNotFound", "KmsThrottled", "OverLimit",
		"BatchEntryIdsNotDistinct", "EmptyBatchRequest", "TooManyEntriesInBatchRequest",
		"InvalidBatchEntryId", "MessageNotInflight", "QueueDeletedRecently",
		"UnsupportedOperation",
		// EventBridge
		"InternalException", "ConcurrentModificationException", "OperationDisabledException",
		// Secrets Manager
		"DecryptionFailure", "InvalidParameterValueException", "InvalidRequestException",
		"EncryptionFailure",
		// ECR
		"RepositoryNotFoundException", "ImageNotFoundException", "RegistryPolicyNotFoundException",
		"ServerException",
	} {
		m[c] = true
	}
	return m
}()

func knownErrorCode(code string) bool { return knownErrorCodes[code] }

// KnownErrorCodes lists, sorted, the AWS error codes kept as label values;
// any other code is counted as "Other".
func KnownErrorCodes() []string {
	out := make([]string, 0, len(knownErrorCodes))
	for c := range knownErrorCodes {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}
