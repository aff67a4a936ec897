package awsjson

import (
	"bytes"
	"os"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"
)

var fuzzTargets = []struct {
	service Service
	typ     reflect.Type
}{
	{ECS, reflect.TypeFor[ecs.RegisterTaskDefinitionInput]()},
	{ECS, reflect.TypeFor[ecs.DescribeTaskDefinitionOutput]()},
	{ECS, reflect.TypeFor[ecs.CreateServiceInput]()}, // has a document member (hookDetails)
	{SQS, reflect.TypeFor[sqs.ReceiveMessageOutput]()},
	{SecretsManager, reflect.TypeFor[secretsmanager.GetSecretValueOutput]()},
}

// FuzzUnmarshal decodes arbitrary bytes into SDK types: it must never panic, and a value
// it accepts must survive Marshal and a Strict Unmarshal unchanged.
func FuzzUnmarshal(f *testing.F) {
	if cli, err := os.ReadFile("testdata/describe-task-definition.json"); err == nil {
		f.Add(cli)
	} else {
		f.Fatal(err)
	}
	f.Add([]byte(`{"family":"web","containerDefinitions":[{"name":"a","cpu":10,"essential":false,"dockerLabels":{"Foo-Bar":"x"}}],"tags":[{"key":"k","value":"v"}]}`))
	f.Add([]byte(`{"Messages":[{"Body":"b","MD5OfBody":"x","MessageAttributes":{"a":{"DataType":"Binary","BinaryValue":"AAEC"}}}]}`))
	f.Add([]byte(`{"ARN":"a","SecretBinary":"AAEC","CreatedDate":1629890408.202,"VersionStages":["AWSCURRENT"]}`))
	f.Add([]byte(`{"deploymentConfiguration":{"lifecycleHooks":[{"hookDetails":{"a":[1,2.5e3,null,"x"]}}],"canaryConfiguration":{"canaryPercent":"NaN"}}}`))
	f.Add([]byte(`{"taskDefinition":{"registeredAt":"2021-08-25T06:20:08.202000-05:00","revision":-0}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, target := range fuzzTargets {
			first := reflect.New(target.typ).Interface()
			if err := (Codec{Service: target.service}).Unmarshal(data, first); err != nil {
				continue
			}
			strict := Codec{Service: target.service, Strict: true}
			encoded, err := strict.Marshal(first)
			if err != nil {
				t.Fatalf("%s: Marshal of a decoded value: %v", target.typ, err)
			}
			second := reflect.New(target.typ).Interface()
			if err := strict.Unmarshal(encoded, second); err != nil {
				t.Fatalf("%s: Unmarshal of %s: %v", target.typ, encoded, err)
			}
			if diff := cmp.Diff(second, first, cmpOpts(first)); diff != "" {
				t.Fatalf("%s: decode(encode(x)) != x (-second +first):\n%s", target.typ, diff)
			}
		}
	})
}

// FuzzRestorePresent restores into the encoding of whatever a source decodes to: it must
// never panic, and the result must decode (Strict) to the same value and stay the same
// when restored again.
func FuzzRestorePresent(f *testing.F) {
	f.Add([]byte(renderSource), false)
	f.Add([]byte(`{"ipcMode":"","containerDefinitions":[{"name":"a","cpu":0,"ulimits":[{"name":"core","softLimit":0}]},{"name":"a","essential":false}]}`), true)
	f.Add([]byte(`{"containerDefinitions":[{"portMappings":[{"appProtocol":"","name":"x"},{}]}],"proxyConfiguration":null,"x\u0041":""}`), false)
	f.Fuzz(func(t *testing.T, source []byte, indent bool) {
		codec := Codec{Service: ECS}
		var v ecs.RegisterTaskDefinitionInput
		if err := codec.Unmarshal(source, &v); err != nil {
			return
		}
		out, err := codec.Marshal(&v)
		if indent {
			out, err = codec.MarshalIndent(&v, "", "  ")
		}
		if err != nil {
			t.Fatalf("Marshal of a decoded value: %v", err)
		}
		got, err := codec.RestorePresent(&v, source, out)
		if err != nil {
			t.Fatalf("RestorePresent: %v", err)
		}
		var back ecs.RegisterTaskDefinitionInput
		if err := (Codec{Service: ECS, Strict: true}).Unmarshal(got, &back); err != nil {
			t.Fatalf("Strict Unmarshal of %s: %v", got, err)
		}
		if diff := cmp.Diff(&back, &v, cmpOpts(&v)); diff != "" {
			t.Fatalf("restored %s decodes to another value (-restored +decoded):\n%s", got, diff)
		}
		again, err := codec.RestorePresent(&v, source, got)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("RestorePresent again: %v\n%s\nthen\n%s", err, got, again)
		}
	})
}
