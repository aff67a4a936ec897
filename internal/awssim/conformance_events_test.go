package awssim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Conformance scenarios of SQS and of EventBridge's delivery to SQS, run
// against awssim and moto_server by TestConformanceWithMoto.

func urlPath(u *string) string {
	p, err := url.Parse(aws.ToString(u))
	if err != nil {
		return "bad URL " + aws.ToString(u)
	}
	return p.Path
}

func conformSQS(ctx context.Context, b backend) []fact {
	var facts []fact
	dlqOut, err := b.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("conf-dlq")})
	facts = append(facts, fact{"create dlq", errFact(err)})
	if err != nil {
		return facts
	}
	q, err := b.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("conf-q"), Attributes: map[string]string{
		"VisibilityTimeout": "40",
		"RedrivePolicy":     `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:conf-dlq","maxReceiveCount":1}`,
	}})
	facts = append(facts, fact{"create", errFact(err)})
	if err != nil {
		return facts
	}
	facts = append(facts, fact{"url path", urlPath(q.QueueUrl)})
	u, err := b.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("conf-q")})
	facts = append(facts, fact{"get url", errFact(err)}, fact{"get url path", urlPath(u.QueueUrl)})
	_, err = b.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("nope")})
	facts = append(facts, fact{"get url of a missing queue", errCode(err)})
	a, err := b.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{"VisibilityTimeout", "DelaySeconds", "QueueArn", "MaximumMessageSize", "MessageRetentionPeriod"}})
	facts = append(facts, fact{"attributes", errFact(err)})
	if err == nil {
		facts = append(facts, fact{"attribute values", a.Attributes})
	}
	attrs := map[string]sqstypes.MessageAttributeValue{
		"kind":  {DataType: aws.String("String"), StringValue: aws.String("test")},
		"n":     {DataType: aws.String("Number"), StringValue: aws.String("42")},
		"bytes": {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2, 255}},
	}
	sent, err := b.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("héllo"), MessageAttributes: attrs})
	facts = append(facts, fact{"send", errFact(err)})
	if err != nil {
		return facts
	}
	facts = append(facts, fact{"MD5OfMessageBody", aws.ToString(sent.MD5OfMessageBody)}, fact{"MD5OfMessageAttributes", aws.ToString(sent.MD5OfMessageAttributes)})
	r, err := b.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MessageAttributeNames: []string{"All"},
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"ApproximateReceiveCount"}})
	facts = append(facts, fact{"receive", errFact(err)})
	if err != nil || len(r.Messages) != 1 {
		return append(facts, fact{"received", len(r.Messages)})
	}
	m := r.Messages[0]
	facts = append(facts, fact{"body", aws.ToString(m.Body)}, fact{"MD5OfBody", aws.ToString(m.MD5OfBody)},
		fact{"received MD5OfMessageAttributes", aws.ToString(m.MD5OfMessageAttributes)},
		fact{"receive count", m.Attributes["ApproximateReceiveCount"]}, fact{"same id", aws.ToString(m.MessageId) == aws.ToString(sent.MessageId)})
	again, _ := b.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl})
	facts = append(facts, fact{"in flight", len(again.Messages)})
	_, err = b.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: q.QueueUrl, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0})
	facts = append(facts, fact{"visible again", errFact(err)})
	// maxReceiveCount 1: the next receive moves it to the DLQ.
	moved, _ := b.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl})
	facts = append(facts, fact{"after maxReceiveCount", len(moved.Messages)})
	d, _ := b.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: dlqOut.QueueUrl})
	facts = append(facts, fact{"in the DLQ", bodies(d.Messages)})
	if len(d.Messages) == 1 {
		_, err = b.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: dlqOut.QueueUrl, ReceiptHandle: d.Messages[0].ReceiptHandle})
		facts = append(facts, fact{"delete", errFact(err)})
	}
	_, err = b.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q.QueueUrl, ReceiptHandle: aws.String("not-a-handle")})
	facts = append(facts, fact{"delete with a bad handle", errCode(err)})
	batch, err := b.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: []sqstypes.SendMessageBatchRequestEntry{
		{Id: aws.String("a"), MessageBody: aws.String("1")}, {Id: aws.String("b"), MessageBody: aws.String("2")}}})
	facts = append(facts, fact{"send batch", errFact(err)})
	if err == nil {
		var md5s []string
		for _, s := range batch.Successful {
			md5s = append(md5s, aws.ToString(s.Id)+"="+aws.ToString(s.MD5OfMessageBody))
		}
		facts = append(facts, fact{"batch MD5s", sorted(md5s)})
	}
	_, err = b.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: []sqstypes.SendMessageBatchRequestEntry{
		{Id: aws.String("a"), MessageBody: aws.String("1")}, {Id: aws.String("a"), MessageBody: aws.String("2")}}})
	facts = append(facts, fact{"batch with repeated ids", errCode(err)})
	return facts
}

// conformEventBridgeToSQS: a rule per pattern feature on the default bus,
// each targeting its own queue; PutEvents; which events each queue got, and
// the delivered body.
func conformEventBridgeToSQS(ctx context.Context, b backend) []fact {
	var facts []fact
	patterns := []struct{ name, pattern string }{
		{"exact", `{"source":["app"],"detail":{"kind":["a"]}}`},
		{"prefix", `{"source":["app"],"detail":{"nested":{"x":[{"prefix":"ye"}]}}}`},
		{"numeric", `{"source":["app"],"detail":{"n":[{"numeric":[">",2]}]}}`},
		{"exists", `{"source":["app"],"detail":{"nested":{"x":[{"exists":true}]}}}`},
		{"anything-but", `{"source":["app"],"detail":{"kind":[{"anything-but":"a"}]}}`},
		{"detail-type", `{"detail-type":["second"]}`},
	}
	urls := map[string]*string{}
	for _, p := range patterns {
		q, err := b.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q-" + p.name)})
		if err != nil {
			return append(facts, fact{"create queue " + p.name, errFact(err)})
		}
		urls[p.name] = q.QueueUrl
		r, err := b.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r-" + p.name), EventPattern: aws.String(p.pattern)})
		facts = append(facts, fact{"put rule " + p.name, errFact(err)})
		if err != nil {
			continue
		}
		facts = append(facts, fact{"rule arn " + p.name, aws.ToString(r.RuleArn)})
		t, err := b.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r-" + p.name), Targets: []ebtypes.Target{
			{Id: aws.String("q"), Arn: aws.String("arn:aws:sqs:us-east-1:123456789012:q-" + p.name)}}})
		facts = append(facts, fact{"put targets " + p.name, errFact(err)})
		if err == nil {
			facts = append(facts, fact{"failed targets " + p.name, t.FailedEntryCount})
		}
	}
	byTarget, err := b.eb.ListRuleNamesByTarget(ctx, &eventbridge.ListRuleNamesByTargetInput{TargetArn: aws.String("arn:aws:sqs:us-east-1:123456789012:q-exact")})
	facts = append(facts, fact{"rules by target", errFact(err)})
	if err == nil {
		facts = append(facts, fact{"rule names by target", byTarget.RuleNames})
	}
	put, err := b.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{
		{Source: aws.String("app"), DetailType: aws.String("first"), Detail: aws.String(`{"kind":"a","n":3,"nested":{"x":"yes"}}`), Resources: []string{"arn:aws:ecs:us-east-1:123456789012:service/c/s"}},
		{Source: aws.String("app"), DetailType: aws.String("second"), Detail: aws.String(`{"kind":"b","n":1}`)},
	}})
	facts = append(facts, fact{"put events", errFact(err)})
	if err != nil {
		return facts
	}
	facts = append(facts, fact{"failed events", put.FailedEntryCount})
	ids := map[string]string{}
	for i, e := range put.Entries {
		ids[aws.ToString(e.EventId)] = fmt.Sprint("event ", i)
	}
	for _, p := range patterns {
		r, err := b.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: urls[p.name], MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			facts = append(facts, fact{"receive " + p.name, errFact(err)})
			continue
		}
		var got []string
		for _, m := range r.Messages {
			var ev map[string]any
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
				got = append(got, "not JSON")
				continue
			}
			got = append(got, fmt.Sprint(ev["detail-type"]))
			if p.name == "exact" {
				// The delivered body is the whole event.
				keys := make([]string, 0, len(ev))
				for k := range ev {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				facts = append(facts, fact{"event keys", keys},
					fact{"event fields", []any{ev["version"], ev["source"], ev["account"], ev["region"], ev["resources"], ev["detail"]}},
					fact{"event id is PutEvents' id", ids[fmt.Sprint(ev["id"])]})
			}
		}
		facts = append(facts, fact{"delivered to " + p.name, sorted(got)})
	}
	return facts
}
