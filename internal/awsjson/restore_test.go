package awsjson

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
)

func TestRestorePresent(t *testing.T) {
	register := (*ecs.RegisterTaskDefinitionInput)(nil)
	tests := []struct {
		name        string
		shape       any
		source, out string
		want        string // "" when out must come back unchanged
	}{
		{
			name:   "ulimit limits of 0",
			source: `{"containerDefinitions":[{"name":"app","ulimits":[{"name":"core","softLimit":0,"hardLimit":0}]}]}`,
			out:    `{"containerDefinitions":[{"name":"app","ulimits":[{"name":"core"}]}]}`,
			want:   `{"containerDefinitions":[{"name":"app","ulimits":[{"hardLimit":0,"name":"core","softLimit":0}]}]}`,
		},
		{
			name:   "empty enums in the task's member order",
			source: `{"pidMode":"","family":"f","ipcMode":"","containerDefinitions":[]}`,
			out:    `{"containerDefinitions":[],"family":"f","networkMode":"awsvpc"}`,
			want:   `{"containerDefinitions":[],"family":"f","ipcMode":"","networkMode":"awsvpc","pidMode":""}`,
		},
		{
			name:   "appProtocol in port mappings matched by index",
			source: `{"containerDefinitions":[{"name":"app","portMappings":[{"containerPort":80,"appProtocol":""},{"containerPort":81,"protocol":""}]}]}`,
			out:    `{"containerDefinitions":[{"name":"app","portMappings":[{"containerPort":80},{"containerPort":81}]}]}`,
			want:   `{"containerDefinitions":[{"name":"app","portMappings":[{"appProtocol":"","containerPort":80},{"containerPort":81,"protocol":""}]}]}`,
		},
		{
			name:   "container cpu 0",
			source: `{"containerDefinitions":[{"name":"app","image":"x","cpu":0}]}`,
			out:    `{"containerDefinitions":[{"image":"x","name":"app"}]}`,
			want:   `{"containerDefinitions":[{"cpu":0,"image":"x","name":"app"}]}`,
		},
		{
			name:   "essential false and environment [] are kept by the codec",
			source: `{"containerDefinitions":[{"name":"app","essential":false,"environment":[]}]}`,
			out:    `{"containerDefinitions":[{"environment":[],"essential":false,"name":"app"}]}`,
		},
		{
			name: "read-only members of a described task definition are not restored",
			source: `{"taskDefinitionArn":"arn:aws:ecs:us-east-1:1:task-definition/web:3","revision":0,"status":"","compatibilities":[],` +
				`"registeredAt":0,"registeredBy":"","requiresAttributes":[],"deregisteredAt":null,"family":"web","containerDefinitions":[]}`,
			out: `{"containerDefinitions":[],"family":"web"}`,
		},
		{
			name:   "members out has are not overwritten",
			source: `{"cpu":"256","ipcMode":"","containerDefinitions":[{"name":"app","cpu":0,"ulimits":[{"name":"core","softLimit":0,"hardLimit":0}]}]}`,
			out:    `{"containerDefinitions":[{"cpu":10,"name":"app","ulimits":[{"hardLimit":5,"name":"nofile","softLimit":1}]}],"cpu":"512","ipcMode":"host"}`,
		},
		{
			name:   "a container only out has is left alone; containers match by name",
			source: `{"containerDefinitions":[{"name":"a","cpu":0},{"name":"b","cpu":0,"essential":true}]}`,
			out:    `{"containerDefinitions":[{"essential":false,"name":"sidecar"},{"essential":true,"name":"b"},{"name":"a"}]}`,
			want:   `{"containerDefinitions":[{"essential":false,"name":"sidecar"},{"cpu":0,"essential":true,"name":"b"},{"cpu":0,"name":"a"}]}`,
		},
		{
			name:   "unknown and misspelt members are not restored",
			source: `{"fooBar":"","IpcMode":"","containerDefinitions":[{"name":"app","Cpu":0,"cpuShares":0}]}`,
			out:    `{"containerDefinitions":[{"name":"app"}]}`,
		},
		{
			name:   "members removed on purpose stay removed",
			source: `{"memory":"512","containerDefinitions":[{"name":"app","command":["run"],"entryPoint":[],"linuxParameters":{"initProcessEnabled":false}}]}`,
			out:    `{"containerDefinitions":[{"name":"app"}]}`,
		},
		{
			// Terraform's jsonencode writes null for every unset member; the
			// aws CLI refuses null ("Invalid type for parameter ... value:
			// None"), and null is unset in JSON too.
			name:   "null is not restored",
			source: `{"proxyConfiguration":null,"containerDefinitions":[{"name":"app","memory":null}]}`,
			out:    `{"containerDefinitions":[{"name":"app"}]}`,
		},
		{
			name: "nested structures, and the source's text",
			// retries, swappiness and maxSwap are pointers: out lacks them on purpose.
			source: `{"containerDefinitions":[{"name":"app","linuxParameters":{"tmpfs":[{"containerPath":"/t","size":-0,"mountOptions":[]}],"swappiness":0,"maxSwap":0},"healthCheck":{"command":["x"],"retries":0}}]}`,
			out:    `{"containerDefinitions":[{"healthCheck":{"command":["x"]},"linuxParameters":{"tmpfs":[{"containerPath":"/t","mountOptions":[]}]},"name":"app"}]}`,
			want:   `{"containerDefinitions":[{"healthCheck":{"command":["x"]},"linuxParameters":{"tmpfs":[{"containerPath":"/t","size":-0,"mountOptions":[]}]},"name":"app"}]}`,
		},
		{
			name:   "environment matched by name after the patch appended to it",
			shape:  &ecstypes.ContainerDefinition{},
			source: `{"name":"app","environment":[{"name":"B","value":""},{"name":"A"}],"secrets":[{"name":"S","valueFrom":"x"}]}`,
			out:    `{"environment":[{"name":"X","value":"1"},{"name":"A"},{"name":"B","value":""}],"name":"app"}`,
		},
		{
			name:   "duplicate names: the last one counts",
			source: `{"containerDefinitions":[{"name":"app","cpu":5,"cpu":0}]}`,
			out:    `{"containerDefinitions":[{"name":"app"}]}`,
			want:   `{"containerDefinitions":[{"cpu":0,"name":"app"}]}`,
		},
		{
			name:   "escaped names and strings are kept as written",
			source: `{"family":"f","\u0069pcMode":"","containerDefinitions":[{"name":"app","user":"\u003cme\u003e"}]}`,
			out:    `{"containerDefinitions":[{"name":"app","user":"<me>"}],"family":"f"}`,
			want:   `{"containerDefinitions":[{"name":"app","user":"<me>"}],"family":"f","\u0069pcMode":""}`,
		},
		{
			name:   "white space around a compact out is kept",
			source: `{"ipcMode":"","containerDefinitions":[]}`,
			out:    "\n {\"containerDefinitions\":[]}\n\n",
			want:   "\n {\"containerDefinitions\":[],\"ipcMode\":\"\"}\n\n",
		},
		{
			name:   "a types shape newer than botocore",
			shape:  &ecstypes.DeploymentCircuitBreaker{},
			source: `{"enable":false,"rollback":false,"thresholdConfiguration":{"type":"","value":0}}`,
			out:    `{"enable":false,"rollback":false,"thresholdConfiguration":{"value":0}}`,
			want:   `{"enable":false,"rollback":false,"thresholdConfiguration":{"type":"","value":0}}`,
		},
	}
	codec := Codec{Service: ECS}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shape := tt.shape
			if shape == nil {
				shape = register
			}
			got, err := codec.RestorePresent(shape, []byte(tt.source), []byte(tt.out))
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				want = tt.out
			}
			if string(got) != want {
				t.Errorf("RestorePresent:\ngot  %s\nwant %s", got, want)
			}
		})
	}
}

func TestRestorePresentErrors(t *testing.T) {
	codec := Codec{Service: ECS}
	register := &ecs.RegisterTaskDefinitionInput{}
	tests := []struct {
		name        string
		shape       any
		source, out string
		wantErr     string
	}{
		{"source not JSON", register, `{"family":`, `{}`, "source"},
		{"out not JSON", register, `{}`, `{"family":"f"`, "out"},
		{"source an array", register, `[]`, `{}`, "must be JSON objects"},
		{"out an array", register, `{}`, `[]`, "must be JSON objects"},
		// Unmarshal decodes null to the zero value, so null is a source like {} (found by
		// FuzzRestorePresent in CI).
		{"source null", register, ` null `, `{"family":"f"}`, ""},
		{"source empty", register, ``, `{}`, ""},
		{"shape not a struct", "x", `{}`, `{}`, "not a struct"},
		{"shape not an SDK type", struct{ Family string }{}, `{"family":""}`, `{}`, "not a type of the ecs SDK"},
		{"lost member of the wrong type", register, `{"ipcMode":0}`, `{}`, "ipcMode: expected string, got number"},
		{"nested lost member of the wrong type", register, `{"containerDefinitions":[{"name":"a","cpu":""}]}`, `{"containerDefinitions":[{"name":"a"}]}`,
			"containerDefinitions[0].cpu: expected integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := codec.RestorePresent(tt.shape, []byte(tt.source), []byte(tt.out))
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("got error %v, want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	if _, err := (Codec{Service: SQS}).RestorePresent(register, []byte(`{"family":""}`), []byte(`{}`)); err == nil {
		t.Error("an ECS shape with the SQS codec: got no error")
	}
}

// renderSource is a described task definition with members whose values SDK types
// cannot tell from unset.
const renderSource = `{
  "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3",
  "family": "web",
  "revision": 3,
  "status": "ACTIVE",
  "compatibilities": ["EC2", "FARGATE"],
  "registeredAt": "2021-08-25T06:20:08.202000-05:00",
  "ipcMode": "",
  "pidMode": "",
  "networkMode": "awsvpc",
  "containerDefinitions": [
    {
      "name": "web",
      "image": "nginx:1.25",
      "cpu": 0,
      "essential": false,
      "environment": [],
      "portMappings": [{"containerPort": 80, "protocol": "tcp", "appProtocol": ""}],
      "ulimits": [{"name": "core", "softLimit": 0, "hardLimit": 0}]
    }
  ]
}`

// TestRestorePresentRender is render's path: decode the source, add a sidecar at index
// 0, MarshalIndent, restore. The result is indented like MarshalIndent's, decodes to the
// same value, has every member of the source the register input has, and passes the
// aws CLI's (botocore's) parameter validation.
func TestRestorePresentRender(t *testing.T) {
	codec := Codec{Service: ECS}
	var in ecs.RegisterTaskDefinitionInput
	if err := codec.Unmarshal([]byte(renderSource), &in); err != nil { // lenient: read-only members dropped
		t.Fatal(err)
	}
	sidecar := ecstypes.ContainerDefinition{Name: aws.String("sidecar"), Image: aws.String("agent:1"), Essential: aws.Bool(false)}
	in.ContainerDefinitions = append([]ecstypes.ContainerDefinition{sidecar}, in.ContainerDefinitions...)
	out, err := codec.MarshalIndent(&in, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, '\n')
	got, err := codec.RestorePresent(&in, []byte(renderSource), out)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "containerDefinitions": [
    {
      "essential": false,
      "image": "agent:1",
      "name": "sidecar"
    },
    {
      "cpu": 0,
      "environment": [],
      "essential": false,
      "image": "nginx:1.25",
      "name": "web",
      "portMappings": [
        {
          "appProtocol": "",
          "containerPort": 80,
          "protocol": "tcp"
        }
      ],
      "ulimits": [
        {
          "hardLimit": 0,
          "name": "core",
          "softLimit": 0
        }
      ]
    }
  ],
  "family": "web",
  "ipcMode": "",
  "networkMode": "awsvpc",
  "pidMode": ""
}
`
	if string(got) != want {
		t.Errorf("RestorePresent:\n%s\nwant:\n%s", got, want)
	}

	var back ecs.RegisterTaskDefinitionInput
	if err := (Codec{Service: ECS, Strict: true}).Unmarshal(got, &back); err != nil {
		t.Fatalf("Strict Unmarshal of the restored output: %v", err)
	}
	if diff := cmp.Diff(&back, &in, cmpOpts(&in)); diff != "" {
		t.Errorf("restored output decodes to another value (-restored +encoded):\n%s", diff)
	}

	// Restoring again changes nothing; nor does restoring from the result itself.
	for _, source := range [][]byte{[]byte(renderSource), got} {
		again, err := codec.RestorePresent(&in, source, got)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, got) {
			t.Errorf("RestorePresent is not idempotent:\n%s", again)
		}
	}

	// Compact and tab-indented outputs keep their layout.
	compact, err := codec.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	gotCompact, err := codec.RestorePresent(&in, []byte(renderSource), compact)
	if err != nil {
		t.Fatal(err)
	}
	var wantCompact bytes.Buffer
	if err := json.Compact(&wantCompact, []byte(want)); err != nil {
		t.Fatal(err)
	}
	if string(gotCompact) != wantCompact.String() {
		t.Errorf("compact:\ngot  %s\nwant %s", gotCompact, wantCompact.Bytes())
	}
	tabbed, err := codec.MarshalIndent(&in, "\t", "\t")
	if err != nil {
		t.Fatal(err)
	}
	gotTabbed, err := codec.RestorePresent(&in, []byte(renderSource), tabbed)
	if err != nil {
		t.Fatal(err)
	}
	var wantTabbed bytes.Buffer
	if err := json.Indent(&wantTabbed, wantCompact.Bytes(), "\t", "\t"); err != nil {
		t.Fatal(err)
	}
	if string(gotTabbed) != wantTabbed.String() {
		t.Errorf("tab-indented:\ngot  %s\nwant %s", gotTabbed, wantTabbed.Bytes())
	}

	validateWithBotocore(t, "RegisterTaskDefinition", got)
}
