package awssim

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// taggable is the tag list of a resource named by ARN.
type taggable struct {
	tags *[]types.Tag
}

// resolveResource finds the tags of a task definition revision, service or
// cluster ARN. missingCode is the error code for an ARN that names nothing
// (TagResource and UntagResource declare ResourceNotFoundException in the
// model, ListTagsForResource does not, so it answers ClientException).
func (s *Sim) resolveResource(arn, missingCode string) (taggable, *Error) {
	prefix := "arn:aws:ecs:" + s.region + ":" + s.account + ":"
	rest, ok := strings.CutPrefix(arn, prefix)
	if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":ecs:") {
		// moto: InvalidParameterException "The ARN provided is invalid."
		return taggable{}, errf(codeInvalidParameter, "The ARN provided is invalid.")
	}
	missing := errf(missingCode, "The specified resource wasn't found.") // model's ResourceNotFoundException documentation
	if !ok {
		return taggable{}, missing
	}
	kind, id, _ := strings.Cut(rest, "/")
	switch kind {
	case "task-definition":
		if !strings.Contains(id, ":") {
			return taggable{}, errf(codeInvalidParameter, "The ARN provided is invalid.")
		}
		_, r, err := s.lookupTaskDef(id)
		if err != nil {
			return taggable{}, missing
		}
		return taggable{&r.tags}, nil
	case "service":
		cl, name, ok := strings.Cut(id, "/")
		if !ok {
			return taggable{}, errf(codeInvalidParameter, "The ARN provided is invalid.")
		}
		c := s.clusters[cl]
		if c == nil {
			return taggable{}, errClusterNotFound()
		}
		sv := c.services[name]
		if sv == nil || sv.status != "ACTIVE" {
			return taggable{}, missing
		}
		return taggable{&sv.tags}, nil
	case "cluster":
		c := s.clusters[id]
		if c == nil {
			return taggable{}, errClusterNotFound()
		}
		return taggable{&c.tags}, nil
	}
	return taggable{}, errf(codeInvalidParameter, "The ARN provided is invalid.")
}

func (s *Sim) tagResource(in *ecs.TagResourceInput) (*ecs.TagResourceOutput, error) {
	res, err := s.resolveResource(aws.ToString(in.ResourceArn), codeResourceNotFound)
	if err != nil {
		return nil, err
	}
	if len(in.Tags) == 0 {
		return nil, errf(codeInvalidParameter, "Tags cannot be empty.") // UNVERIFIED
	}
	kept := 0 // existing tags that the new ones do not replace
	for _, t := range *res.tags {
		if !hasTagKey(in.Tags, aws.ToString(t.Key)) {
			kept++
		}
	}
	if err := validateTags(in.Tags, kept); err != nil {
		return nil, err
	}
	*res.tags = mergeTags(*res.tags, in.Tags)
	return &ecs.TagResourceOutput{}, nil
}

func hasTagKey(tags []types.Tag, key string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return true
		}
	}
	return false
}

func (s *Sim) untagResource(in *ecs.UntagResourceInput) (*ecs.UntagResourceOutput, error) {
	res, err := s.resolveResource(aws.ToString(in.ResourceArn), codeResourceNotFound)
	if err != nil {
		return nil, err
	}
	for _, k := range in.TagKeys {
		if hasPrefixFold(k, "aws:") {
			return nil, tagKeyError(k)
		}
	}
	drop := map[string]bool{}
	for _, k := range in.TagKeys {
		drop[k] = true
	}
	kept := (*res.tags)[:0]
	for _, t := range *res.tags {
		if !drop[aws.ToString(t.Key)] {
			kept = append(kept, t)
		}
	}
	*res.tags = kept
	return &ecs.UntagResourceOutput{}, nil
}

func (s *Sim) listTagsForResource(in *ecs.ListTagsForResourceInput) (*ecs.ListTagsForResourceOutput, error) {
	res, err := s.resolveResource(aws.ToString(in.ResourceArn), codeClient)
	if err != nil {
		return nil, err
	}
	tags := cloneTags(*res.tags)
	if tags == nil {
		tags = []types.Tag{}
	}
	return &ecs.ListTagsForResourceOutput{Tags: tags}, nil
}
