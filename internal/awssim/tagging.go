package awssim

import (
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	rgtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"
)

// The Resource Groups Tagging API's GetResources, for ECS task definitions:
// the one bulk listing of tags the reconciler's family sweep reads.
//
// What the API reference documents, and the simulator does:
//   - ResourceTypeFilters are "service[:resourceType]" strings
//     (ecs:task-definition); TagFilters of several keys are ANDed, the
//     Values of one key ORed, a key without Values matches any value.
//   - ResourcesPerPage is 1-100 (default 100); PaginationToken continues;
//     "A PaginationToken ... is returned empty when there are no more
//     results" (an empty string, not absent).
//   - Only tagged resources are returned (a resource with no tags never is).
//
// What the simulator chooses where AWS does not say (UNVERIFIED):
//   - INACTIVE task definitions keep their tags and are listed; clients
//     must not take a listed revision for an ACTIVE one.
//   - Results are in family and revision order; the listing is consistent
//     at once (AWS's tagging index is eventually consistent: a change can
//     take a while to show, which a client must live with).
//   - Only ecs and ecs:task-definition filters list anything: the
//     simulator's other resources are not in the index.
func (s *Sim) getResources(in *resourcegroupstaggingapi.GetResourcesInput) (*resourcegroupstaggingapi.GetResourcesOutput, error) {
	n := 100
	if in.ResourcesPerPage != nil {
		n = int(*in.ResourcesPerPage)
		if n < 1 || n > 100 {
			return nil, errf(codeInvalidParameter, "ResourcesPerPage must be between 1 and 100.")
		}
	}
	taskDefs := len(in.ResourceTypeFilters) == 0
	for _, f := range in.ResourceTypeFilters {
		taskDefs = taskDefs || f == "ecs" || f == "ecs:task-definition"
	}
	after, err := decodeToken(in.PaginationToken, "tg")
	if err != nil {
		return nil, err
	}
	out := &resourcegroupstaggingapi.GetResourcesOutput{ResourceTagMappingList: []rgtypes.ResourceTagMapping{}, PaginationToken: aws.String("")}
	if !taskDefs {
		return out, nil
	}
	afterFam, afterRev := "", 0
	if after != "" {
		fam, rev, _ := strings.Cut(after, ":")
		afterFam = fam
		afterRev, _ = strconv.Atoi(rev)
	}
	i := 0
	if afterFam != "" {
		i, _ = searchStrings(s.familyNames, afterFam)
	}
	for ; i < len(s.familyNames); i++ {
		f := s.families[s.familyNames[i]]
		start := 0
		if f.name == afterFam {
			start = afterRev
		}
		for r := start; r < len(f.revs); r++ {
			rev := f.revs[r]
			if len(rev.tags) == 0 || !matchesTagFilters(rev.tags, in.TagFilters) {
				continue
			}
			if len(out.ResourceTagMappingList) == n {
				last := aws.ToString(out.ResourceTagMappingList[n-1].ResourceARN)
				out.PaginationToken = encodeToken("tg", last[strings.LastIndex(last, "/")+1:])
				return out, nil
			}
			m := rgtypes.ResourceTagMapping{ResourceARN: aws.String(aws.ToString(rev.td.TaskDefinitionArn))}
			for _, t := range rev.tags {
				m.Tags = append(m.Tags, rgtypes.Tag{Key: aws.String(aws.ToString(t.Key)), Value: aws.String(aws.ToString(t.Value))})
			}
			out.ResourceTagMappingList = append(out.ResourceTagMappingList, m)
		}
	}
	return out, nil
}

func matchesTagFilters(tags []ecstypes.Tag, filters []rgtypes.TagFilter) bool {
	for _, f := range filters {
		i := slices.IndexFunc(tags, func(t ecstypes.Tag) bool { return aws.ToString(t.Key) == aws.ToString(f.Key) })
		if i < 0 {
			return false
		}
		if len(f.Values) > 0 && !slices.Contains(f.Values, aws.ToString(tags[i].Value)) {
			return false
		}
	}
	return true
}
