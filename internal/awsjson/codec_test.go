package awsjson

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
)

// TestDecodeCLIOutput reads what `aws ecs describe-task-definition` prints: ISO 8601
// timestamps, user-cased map keys, zero values.
func TestDecodeCLIOutput(t *testing.T) {
	data, err := os.ReadFile("testdata/describe-task-definition.json")
	if err != nil {
		t.Fatal(err)
	}
	var got ecs.DescribeTaskDefinitionOutput
	if err := (Codec{Service: ECS, Strict: true}).Unmarshal(data, &got); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	td := got.TaskDefinition
	if td == nil {
		t.Fatal("taskDefinition not decoded")
	}
	wantAt := time.Date(2021, 8, 25, 11, 20, 8, 202_000_000, time.UTC)
	if td.RegisteredAt == nil || !td.RegisteredAt.Equal(wantAt) || td.RegisteredAt.Location() != time.UTC {
		t.Errorf("registeredAt: got %v, want %v (UTC)", td.RegisteredAt, wantAt)
	}
	if got, want := td.ContainerDefinitions[0].DockerLabels, map[string]string{"Team-Name": "Payments", "ecs-sidecar/inject": "false"}; !cmp.Equal(got, want) {
		t.Errorf("dockerLabels: got %v, want %v", got, want)
	}
	if got, want := td.ContainerDefinitions[0].LogConfiguration.Options["awslogs-stream-prefix"], "ecs"; got != want {
		t.Errorf("options: got %q, want %q", got, want)
	}
	if got, want := td.Revision, int32(3); got != want {
		t.Errorf("revision: got %d, want %d", got, want)
	}
	if got, want := td.NetworkMode, ecstypes.NetworkModeAwsvpc; got != want {
		t.Errorf("networkMode: got %q, want %q", got, want)
	}
	if td.Volumes == nil || len(td.Volumes) != 0 {
		t.Errorf("volumes: got %#v, want an empty non-nil slice", td.Volumes)
	}
	if got.Tags[0].Key == nil || *got.Tags[0].Key != "ecs-sidecar/inject" {
		t.Errorf("tags: got %+v", got.Tags)
	}
}

func TestMarshalRegisterTaskDefinition(t *testing.T) {
	in := &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("web"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name:         aws.String("web"),
			Essential:    aws.Bool(false),
			Cpu:          0, // zero non-pointer: omitted, as the SDK does
			Memory:       aws.Int32(0),
			DockerLabels: map[string]string{"Foo-Bar": "<x>"},
			VolumesFrom:  []ecstypes.VolumeFrom{},
		}},
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
	}
	got, err := Codec{Service: ECS}.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"containerDefinitions":[{"dockerLabels":{"Foo-Bar":"<x>"},"essential":false,"memory":0,"name":"web","volumesFrom":[]}],"family":"web","requiresCompatibilities":["FARGATE"]}`
	if string(got) != want {
		t.Errorf("Marshal:\ngot  %s\nwant %s", got, want)
	}
}

func TestPascalCaseServices(t *testing.T) {
	tests := []struct {
		codec Codec
		v     any
		want  string
	}{
		{Codec{Service: SQS}, &sqs.SendMessageInput{
			QueueUrl: aws.String("q"), MessageBody: aws.String("b"), DelaySeconds: 5,
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{"my-Attr": {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}}},
		}, `{"MessageBody":"b","QueueUrl":"q","DelaySeconds":5,"MessageAttributes":{"my-Attr":{"DataType":"Binary","BinaryValue":"AAEC"}}}`},
		{Codec{Service: SQS}, &sqs.CreateQueueInput{QueueName: aws.String("q"), Tags: map[string]string{"Team": "a"}},
			`{"QueueName":"q","tags":{"Team":"a"}}`},
		{Codec{Service: SQS}, &sqs.ListDeadLetterSourceQueuesOutput{QueueUrls: []string{"u"}}, `{"queueUrls":["u"]}`},
		{Codec{Service: SecretsManager}, &secretsmanager.GetSecretValueOutput{ARN: aws.String("a"), CreatedDate: aws.Time(time.UnixMilli(1629890408202))},
			`{"ARN":"a","CreatedDate":1629890408.202}`},
		{Codec{Service: EventBridge}, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{Source: aws.String("s"), Time: aws.Time(time.Unix(5, 0))}}},
			`{"Entries":[{"Source":"s","Time":5}]}`},
	}
	for _, tt := range tests {
		got, err := tt.codec.Marshal(tt.v)
		if err != nil {
			t.Errorf("Marshal(%T): %v", tt.v, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("Marshal(%T):\ngot  %s\nwant %s", tt.v, got, tt.want)
		}
	}
}

func TestUnknownMembers(t *testing.T) {
	data := []byte(`{"family":"f","containerDefinitions":[{"name":"a"},{"name":"b","Image":"x"}]}`)
	var in ecs.RegisterTaskDefinitionInput
	err := Codec{Service: ECS, Strict: true}.Unmarshal(data, &in)
	if !errors.Is(err, ErrUnknownMember) || !strings.Contains(err.Error(), "containerDefinitions[1].Image") {
		t.Errorf("Strict: got error %v, want ErrUnknownMember naming containerDefinitions[1].Image", err)
	}
	in = ecs.RegisterTaskDefinitionInput{}
	if err := (Codec{Service: ECS}).Unmarshal(data, &in); err != nil {
		t.Fatalf("lenient: %v", err)
	}
	if got, want := len(in.ContainerDefinitions), 2; got != want || in.ContainerDefinitions[1].Image != nil {
		t.Errorf("lenient: got %+v, want 2 containers and no image", in.ContainerDefinitions)
	}
}

func TestNullAndEmpty(t *testing.T) {
	codec := Codec{Service: ECS, Strict: true}
	in := ecs.RegisterTaskDefinitionInput{Family: aws.String("old"), Cpu: aws.String("1")}
	data := []byte(`{"family":null,"containerDefinitions":null,"proxyConfiguration":null,"cpu":"256","tags":[null]}`)
	if err := codec.Unmarshal(data, &in); err != nil {
		t.Fatal(err)
	}
	want := ecs.RegisterTaskDefinitionInput{Cpu: aws.String("256"), Tags: []ecstypes.Tag{{}}}
	if diff := cmp.Diff(in, want, cmpOpts(want)); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	var out ecs.ListClustersOutput
	if err := codec.Unmarshal(nil, &out); err != nil {
		t.Errorf("empty body: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	codec := Codec{Service: ECS}
	tests := []struct {
		data, wantErr string
	}{
		{`{"containerDefinitions":[{"cpu":"1"}]}`, "containerDefinitions[0].cpu: expected integer, got string"},
		{`{"containerDefinitions":[{"cpu":3000000000}]}`, "containerDefinitions[0].cpu: 3000000000 is not a 32-bit integer"},
		{`{"family":1}`, "family: expected string, got number"},
		{`{"family":"a"} {}`, "data after the top-level value"},
		{`{"family":"a"}A0`, "data after the top-level value"}, // not a token: once accepted
		{`[]`, "expected object, got array"},
		{`{"containerDefinitions":[{"resourceRequirements":[{"sharingStrategy":{"x":1}}]}]}`, "unions are not supported"},
	}
	for _, tt := range tests {
		var in ecs.RegisterTaskDefinitionInput
		err := codec.Unmarshal([]byte(tt.data), &in)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Unmarshal(%s): got error %v, want one containing %q", tt.data, err, tt.wantErr)
		}
	}
	var out ecs.DescribeTaskDefinitionOutput
	if err := codec.Unmarshal([]byte(`{"taskDefinition":{"registeredAt":"yesterday"}}`), &out); err == nil || !strings.Contains(err.Error(), "taskDefinition.registeredAt") {
		t.Errorf("bad timestamp: got %v, want an error naming taskDefinition.registeredAt", err)
	}
	if err := codec.Unmarshal([]byte(`{}`), out); err == nil {
		t.Error("Unmarshal into a non-pointer: got no error")
	}
	if _, err := codec.Marshal(&sqs.SendMessageInput{}); err == nil {
		t.Error("Marshal of an SQS type with the ECS codec: got no error")
	}
}

func TestUnionsExplicitlyUnsupported(t *testing.T) {
	in := ecs.RegisterTaskDefinitionInput{ContainerDefinitions: []ecstypes.ContainerDefinition{{
		ResourceRequirements: []ecstypes.ResourceRequirement{{SharingStrategy: &ecstypes.SharingStrategyMemberNvidiaMps{}}},
	}}}
	_, err := Codec{Service: ECS}.Marshal(in)
	if err == nil || !strings.Contains(err.Error(), "containerDefinitions[0].resourceRequirements[0].sharingStrategy") {
		t.Errorf("got error %v, want one naming the union's path", err)
	}
}

func TestTimestamps(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{`1629890408.202`, time.UnixMilli(1629890408202)},
		{`1629890408.2029`, time.UnixMilli(1629890408202)}, // beyond milliseconds: truncated
		{`1629890408`, time.Unix(1629890408, 0)},
		{`1.629890408202E9`, time.UnixMilli(1629890408202)},
		{`-1.5`, time.UnixMilli(-1500)},
		{`"2021-08-25T06:20:08.202000-05:00"`, time.UnixMilli(1629890408202)},
		{`"2021-08-25T11:20:08Z"`, time.Unix(1629890408, 0)},
		{`"1629890408.202"`, time.UnixMilli(1629890408202)},
	}
	codec := Codec{Service: ECS}
	for _, tt := range tests {
		var out ecs.DescribeTaskDefinitionOutput
		if err := codec.Unmarshal([]byte(`{"taskDefinition":{"registeredAt":`+tt.in+`}}`), &out); err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		got := *out.TaskDefinition.RegisteredAt
		if !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("%s: got %v, want %v in UTC", tt.in, got, tt.want.UTC())
		}
	}
	for _, ms := range []int64{1629890408202, 1629890408000, 1629890408010, -1500, 0, 1} {
		got := string(appendEpoch(nil, time.UnixMilli(ms)))
		var back ecs.DescribeTaskDefinitionOutput
		if err := codec.Unmarshal([]byte(`{"taskDefinition":{"registeredAt":`+got+`}}`), &back); err != nil {
			t.Fatal(err)
		}
		if back.TaskDefinition.RegisteredAt.UnixMilli() != ms {
			t.Errorf("epoch %d ms encodes as %s, which decodes to %d ms", ms, got, back.TaskDefinition.RegisteredAt.UnixMilli())
		}
	}
}
