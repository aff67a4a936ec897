package awssim

import (
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"
)

// Error is an AWS API error as the simulator returns it: the wire `__type`
// (Code), the message and the HTTP status. It implements smithy.APIError, so
// callers of the Go API classify it exactly as they classify the SDK's errors.
type Error struct {
	Code    string
	Message string
	Status  int // HTTP status; 400 when zero

	// Shape is the wire __type when it differs from Code (SQS:
	// "com.amazonaws.sqs#QueueDoesNotExist" for the code
	// AWS.SimpleQueueService.NonExistentQueue).
	Shape string
	// QueryCompatible errors also carry Code in the X-Amzn-Query-Error
	// header, which clients of awsQueryCompatible services (SQS) read as the
	// error code.
	QueryCompatible bool
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// ErrorCode, ErrorMessage and ErrorFault implement smithy.APIError.
func (e *Error) ErrorCode() string    { return e.Code }
func (e *Error) ErrorMessage() string { return e.Message }
func (e *Error) ErrorFault() smithy.ErrorFault {
	if e.HTTPStatus() >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// HTTPStatus is the status the error is served with.
func (e *Error) HTTPStatus() int {
	if e.Status == 0 {
		return http.StatusBadRequest
	}
	return e.Status
}

var _ smithy.APIError = (*Error)(nil)

func errf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error codes. ECS's come from botocore's ecs/2014-11-13 model (the `errors`
// of each operation; none declares an httpStatusCode, so all are 400 except
// ServerException, a fault, 500). Messages are ECS's where known (documented
// at each use), otherwise moto's for the same mistake, otherwise ours and
// marked UNVERIFIED.
const (
	codeClient           = "ClientException"
	codeInvalidParameter = "InvalidParameterException"
	codeClusterNotFound  = "ClusterNotFoundException"
	codeServiceNotFound  = "ServiceNotFoundException"
	codeServiceNotActive = "ServiceNotActiveException"
	codeResourceNotFound = "ResourceNotFoundException"
	codeServer           = "ServerException"
	codeUnknownOperation = "UnknownOperationException"
	codeSerialization    = "SerializationException"
	codeResourceExists   = "ResourceExistsException"   // secretsmanager
	codeInvalidParamSM   = "InvalidParameterException" // secretsmanager
	codeInvalidRequestSM = "InvalidRequestException"   // secretsmanager
	codeSMNotFound       = "ResourceNotFoundException" // secretsmanager
)

// Common ECS errors. Messages as ECS (and moto) send them.
func errClusterNotFound() *Error { return errf(codeClusterNotFound, "Cluster not found.") }
func errServiceNotFound() *Error { return errf(codeServiceNotFound, "Service not found.") }
func errTaskDefNotFound() *Error {
	return errf(codeClient, "Unable to describe task definition.")
}
