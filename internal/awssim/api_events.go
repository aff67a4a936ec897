// The Go API of SQS and EventBridge; keep in step with routes in http.go.

package awssim

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// SQSAPI is the simulator's SQS for Go callers, with the SDK client's
// signatures. Queue URLs it returns have the endpoint
// https://sqs.<region>.amazonaws.com; any endpoint is accepted in requests.
type SQSAPI struct{ s *Sim }

// SQS returns the simulator's SQS API.
func (s *Sim) SQS() *SQSAPI { return &SQSAPI{s} }

// EventBridgeAPI is the simulator's EventBridge for Go callers.
type EventBridgeAPI struct{ s *Sim }

// EventBridge returns the simulator's EventBridge API.
func (s *Sim) EventBridge() *EventBridgeAPI { return &EventBridgeAPI{s} }

// CreateQueue serves SQS's CreateQueue.
func (c *SQSAPI) CreateQueue(ctx context.Context, in *sqs.CreateQueueInput, _ ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error) {
	return invokeOwn(ctx, c.s, "sqs", "CreateQueue", in, (*Sim).sqsCreateQueue, true)
}

// GetQueueUrl serves SQS's GetQueueUrl.
func (c *SQSAPI) GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, _ ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	return invokeOwn(ctx, c.s, "sqs", "GetQueueUrl", in, (*Sim).sqsGetQueueUrl, true)
}

// DeleteQueue serves SQS's DeleteQueue.
func (c *SQSAPI) DeleteQueue(ctx context.Context, in *sqs.DeleteQueueInput, _ ...func(*sqs.Options)) (*sqs.DeleteQueueOutput, error) {
	return invokeOwn(ctx, c.s, "sqs", "DeleteQueue", in, (*Sim).sqsDeleteQueue, true)
}

// ListQueues serves SQS's ListQueues.
func (c *SQSAPI) ListQueues(ctx context.Context, in *sqs.ListQueuesInput, _ ...func(*sqs.Options)) (*sqs.ListQueuesOutput, error) {
	return invokeOwn(ctx, c.s, "sqs", "ListQueues", in, (*Sim).sqsListQueues, true)
}

// GetQueueAttributes serves SQS's GetQueueAttributes.
func (c *SQSAPI) GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	return invokeOwn(ctx, c.s, "sqs", "GetQueueAttributes", in, (*Sim).sqsGetQueueAttributes, true)
}

// SetQueueAttributes serves SQS's SetQueueAttributes.
func (c *SQSAPI) SetQueueAttributes(ctx context.Context, in *sqs.SetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.SetQueueAttributesOutput, error) {
	return invokeOwn(ctx, c.s, "sqs", "SetQueueAttributes", in, (*Sim).sqsSetQueueAttributes, true)
}

// SendMessage serves SQS's SendMessage.
func (c *SQSAPI) SendMessage(ctx context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return invokeOwn(ctx, c.s, "sqs", "SendMessage", in, (*Sim).sqsSendMessage, true)
}

// SendMessageBatch serves SQS's SendMessageBatch.
func (c *SQSAPI) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return invokeOwn(ctx, c.s, "sqs", "SendMessageBatch", in, (*Sim).sqsSendMessageBatch, true)
}

// ReceiveMessage serves SQS's ReceiveMessage.
func (c *SQSAPI) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	return invokeOwn(ctx, c.s, "sqs", "ReceiveMessage", in, (*Sim).sqsReceiveMessage, true)
}

// DeleteMessage serves SQS's DeleteMessage.
func (c *SQSAPI) DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	return invokeOwn(ctx, c.s, "sqs", "DeleteMessage", in, (*Sim).sqsDeleteMessage, true)
}

// DeleteMessageBatch serves SQS's DeleteMessageBatch.
func (c *SQSAPI) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	return invokeOwn(ctx, c.s, "sqs", "DeleteMessageBatch", in, (*Sim).sqsDeleteMessageBatch, true)
}

// ChangeMessageVisibility serves SQS's ChangeMessageVisibility.
func (c *SQSAPI) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	return invokeOwn(ctx, c.s, "sqs", "ChangeMessageVisibility", in, (*Sim).sqsChangeMessageVisibility, true)
}

// ChangeMessageVisibilityBatch serves SQS's ChangeMessageVisibilityBatch.
func (c *SQSAPI) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	return invokeOwn(ctx, c.s, "sqs", "ChangeMessageVisibilityBatch", in, (*Sim).sqsChangeMessageVisibilityBatch, true)
}

// PurgeQueue serves SQS's PurgeQueue.
func (c *SQSAPI) PurgeQueue(ctx context.Context, in *sqs.PurgeQueueInput, _ ...func(*sqs.Options)) (*sqs.PurgeQueueOutput, error) {
	return invokeOwn(ctx, c.s, "sqs", "PurgeQueue", in, (*Sim).sqsPurgeQueue, true)
}

// CreateEventBus serves EventBridge's CreateEventBus.
func (c *EventBridgeAPI) CreateEventBus(ctx context.Context, in *eventbridge.CreateEventBusInput, _ ...func(*eventbridge.Options)) (*eventbridge.CreateEventBusOutput, error) {
	return invokeOwn(ctx, c.s, "events", "CreateEventBus", in, (*Sim).evCreateEventBus, true)
}

// PutRule serves EventBridge's PutRule.
func (c *EventBridgeAPI) PutRule(ctx context.Context, in *eventbridge.PutRuleInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutRuleOutput, error) {
	return invokeOwn(ctx, c.s, "events", "PutRule", in, (*Sim).evPutRule, true)
}

// DescribeRule serves EventBridge's DescribeRule.
func (c *EventBridgeAPI) DescribeRule(ctx context.Context, in *eventbridge.DescribeRuleInput, _ ...func(*eventbridge.Options)) (*eventbridge.DescribeRuleOutput, error) {
	return invokeOwn(ctx, c.s, "events", "DescribeRule", in, (*Sim).evDescribeRule, true)
}

// DeleteRule serves EventBridge's DeleteRule.
func (c *EventBridgeAPI) DeleteRule(ctx context.Context, in *eventbridge.DeleteRuleInput, _ ...func(*eventbridge.Options)) (*eventbridge.DeleteRuleOutput, error) {
	return invokeOwn(ctx, c.s, "events", "DeleteRule", in, (*Sim).evDeleteRule, true)
}

// ListRules serves EventBridge's ListRules.
func (c *EventBridgeAPI) ListRules(ctx context.Context, in *eventbridge.ListRulesInput, _ ...func(*eventbridge.Options)) (*eventbridge.ListRulesOutput, error) {
	return invokeOwn(ctx, c.s, "events", "ListRules", in, (*Sim).evListRules, true)
}

// ListRuleNamesByTarget serves EventBridge's ListRuleNamesByTarget.
func (c *EventBridgeAPI) ListRuleNamesByTarget(ctx context.Context, in *eventbridge.ListRuleNamesByTargetInput, _ ...func(*eventbridge.Options)) (*eventbridge.ListRuleNamesByTargetOutput, error) {
	return invokeOwn(ctx, c.s, "events", "ListRuleNamesByTarget", in, (*Sim).evListRuleNamesByTarget, true)
}

// PutTargets serves EventBridge's PutTargets.
func (c *EventBridgeAPI) PutTargets(ctx context.Context, in *eventbridge.PutTargetsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutTargetsOutput, error) {
	return invokeOwn(ctx, c.s, "events", "PutTargets", in, (*Sim).evPutTargets, true)
}

// RemoveTargets serves EventBridge's RemoveTargets.
func (c *EventBridgeAPI) RemoveTargets(ctx context.Context, in *eventbridge.RemoveTargetsInput, _ ...func(*eventbridge.Options)) (*eventbridge.RemoveTargetsOutput, error) {
	return invokeOwn(ctx, c.s, "events", "RemoveTargets", in, (*Sim).evRemoveTargets, true)
}

// ListTargetsByRule serves EventBridge's ListTargetsByRule.
func (c *EventBridgeAPI) ListTargetsByRule(ctx context.Context, in *eventbridge.ListTargetsByRuleInput, _ ...func(*eventbridge.Options)) (*eventbridge.ListTargetsByRuleOutput, error) {
	return invokeOwn(ctx, c.s, "events", "ListTargetsByRule", in, (*Sim).evListTargetsByRule, true)
}

// PutEvents serves EventBridge's PutEvents.
func (c *EventBridgeAPI) PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	return invokeOwn(ctx, c.s, "events", "PutEvents", in, (*Sim).evPutEvents, true)
}
