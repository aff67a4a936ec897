package awssim

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Older clients (boto3, the aws CLI's --attribute-names) ask for a message's
// system attributes with ReceiveMessage's deprecated AttributeNames member,
// which SQS still honours; the request is sent raw so as not to need the
// deprecated Go field.
func TestReceiveMessageLegacyAttributeNames(t *testing.T) {
	for _, tc := range []struct {
		names string
		want  []string // attributes that must be there
		not   []string // and must not
	}{
		{`"AttributeNames":["All"]`, []string{"SenderId", "SentTimestamp", "ApproximateReceiveCount"}, nil},
		{`"AttributeNames":["SentTimestamp"]`, []string{"SentTimestamp"}, []string{"SenderId", "ApproximateReceiveCount"}},
		{`"AttributeNames":["SenderId"],"MessageSystemAttributeNames":["ApproximateReceiveCount"]`, []string{"SenderId", "ApproximateReceiveCount"}, []string{"SentTimestamp"}},
		{`"MaxNumberOfMessages":1`, nil, []string{"SenderId", "SentTimestamp", "ApproximateReceiveCount"}},
	} {
		t.Run(tc.names, func(t *testing.T) {
			e := newEnv(t, Options{})
			url := createQueue(t, e, "legacy", nil)
			if _, err := e.sqs.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")}); err != nil {
				t.Fatal(err)
			}
			body := fmt.Sprintf(`{"QueueUrl":%q,%s}`, url, tc.names)
			resp, b := post(t, e.url, "AmazonSQS.ReceiveMessage", body)
			if resp.StatusCode != 200 {
				t.Fatalf("ReceiveMessage %s: %d %s", body, resp.StatusCode, b)
			}
			var out struct {
				Messages []struct{ Attributes map[string]string }
			}
			if err := json.Unmarshal(b, &out); err != nil || len(out.Messages) != 1 {
				t.Fatalf("ReceiveMessage %s: got %s, %v; want one message", body, b, err)
			}
			got := out.Messages[0].Attributes
			for _, k := range tc.want {
				if got[k] == "" {
					t.Errorf("attribute %s missing: got %v", k, got)
				}
			}
			for _, k := range tc.not {
				if _, ok := got[k]; ok {
					t.Errorf("attribute %s not asked for: got %v", k, got)
				}
			}
		})
	}
}
