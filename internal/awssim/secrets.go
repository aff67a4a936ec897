package awssim

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// secret is a Secrets Manager secret with its current version only.
type secret struct {
	name, arn   string
	description *string
	kmsKeyID    *string
	str         *string
	bin         []byte
	versionID   string
	tags        []smtypes.Tag
	created     time.Time
}

// secretARN is Secrets Manager's ARN: the name and a 6-character suffix,
// here derived from the name and a counter instead of random.
func (s *Sim) secretARN(name string, n int64) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d", name, n)
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	v := h.Sum32()
	suffix := make([]byte, 6)
	for i := range suffix {
		suffix[i] = alphabet[v%uint32(len(alphabet))]
		v /= uint32(len(alphabet))
	}
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", s.region, s.account, name, suffix)
}

func versionID(n int64) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// lookupSecret resolves a SecretId: the name, the full ARN, or the ARN
// without its random suffix (partial ARN), as Secrets Manager does.
func (s *Sim) lookupSecret(id string) *secret {
	if sec := s.secrets[id]; sec != nil && !strings.HasPrefix(id, "arn:") {
		return sec
	}
	for _, name := range s.secretNames {
		sec := s.secrets[name]
		if sec.arn == id || (strings.HasPrefix(id, "arn:") && sec.arn[:len(sec.arn)-7] == id) {
			return sec
		}
	}
	return nil
}

// Secrets Manager messages as the service sends them.
func errSecretNotFound() *Error {
	return errf(codeSMNotFound, "Secrets Manager can't find the specified secret.")
}

func (s *Sim) createSecret(in *secretsmanager.CreateSecretInput) (*secretsmanager.CreateSecretOutput, error) {
	name := aws.ToString(in.Name)
	if name == "" || len(name) > 512 {
		return nil, errf(codeInvalidParamSM, "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
	}
	if s.secrets[name] != nil {
		return nil, errf(codeResourceExists, "The operation failed because the secret %s already exists.", name)
	}
	if in.SecretString != nil && in.SecretBinary != nil {
		return nil, errf(codeInvalidParamSM, "You can't specify both a binary secret value and a string secret value in the same secret.")
	}
	n := s.nextID()
	sec := &secret{
		name: name, arn: s.secretARN(name, n), description: in.Description, kmsKeyID: in.KmsKeyId,
		str: in.SecretString, bin: in.SecretBinary, tags: in.Tags, created: s.clock.Now(),
	}
	out := &secretsmanager.CreateSecretOutput{ARN: aws.String(sec.arn), Name: aws.String(name)}
	if sec.str != nil || sec.bin != nil {
		sec.versionID = aws.ToString(in.ClientRequestToken)
		if sec.versionID == "" {
			sec.versionID = versionID(n)
		}
		out.VersionId = aws.String(sec.versionID)
	}
	s.secrets[name] = sec
	s.secretNames = append(s.secretNames, name)
	return out, nil
}

func (s *Sim) describeSecret(in *secretsmanager.DescribeSecretInput) (*secretsmanager.DescribeSecretOutput, error) {
	sec := s.lookupSecret(aws.ToString(in.SecretId))
	if sec == nil {
		return nil, errSecretNotFound()
	}
	out := &secretsmanager.DescribeSecretOutput{
		ARN: aws.String(sec.arn), Name: aws.String(sec.name), Description: sec.description,
		KmsKeyId: sec.kmsKeyID, CreatedDate: aws.Time(sec.created), LastChangedDate: aws.Time(sec.created),
		Tags: append([]smtypes.Tag{}, sec.tags...),
	}
	if sec.versionID != "" {
		out.VersionIdsToStages = map[string][]string{sec.versionID: {"AWSCURRENT"}}
	}
	return out, nil
}

func (s *Sim) getSecretValue(in *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
	sec := s.lookupSecret(aws.ToString(in.SecretId))
	if sec == nil {
		return nil, errSecretNotFound()
	}
	stage := aws.ToString(in.VersionStage)
	if stage == "" {
		stage = "AWSCURRENT"
	}
	if sec.versionID == "" || stage != "AWSCURRENT" || (in.VersionId != nil && *in.VersionId != sec.versionID) {
		return nil, errf(codeSMNotFound, "Secrets Manager can't find the specified secret value for staging label: %s", stage)
	}
	return &secretsmanager.GetSecretValueOutput{
		ARN: aws.String(sec.arn), Name: aws.String(sec.name), VersionId: aws.String(sec.versionID),
		SecretString: sec.str, SecretBinary: sec.bin, VersionStages: []string{"AWSCURRENT"},
		CreatedDate: aws.Time(sec.created),
	}, nil
}

// getAuthorizationToken answers ECR's GetAuthorizationToken: base64
// "AWS:<password>", valid 12 hours, for the account's registry.
func (s *Sim) getAuthorizationToken(in *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
	tok := base64.StdEncoding.EncodeToString([]byte("AWS:" + s.ecrPassword))
	return &ecr.GetAuthorizationTokenOutput{AuthorizationData: []ecrtypes.AuthorizationData{{
		AuthorizationToken: aws.String(tok),
		ExpiresAt:          aws.Time(s.clock.Now().Add(12 * time.Hour)),
		ProxyEndpoint:      aws.String(fmt.Sprintf("https://%s.dkr.ecr.%s.amazonaws.com", s.account, s.region)),
	}}}, nil
}
