package awssim

import (
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// State is a snapshot of the simulator, served on GET /_sim/state. Every
// list is sorted (clusters, families and services by name, revisions by
// number), so that two snapshots of the same state are equal.
type State struct {
	Time     time.Time      `json:"time"`
	Region   string         `json:"region"`
	Account  string         `json:"account"`
	Clusters []ClusterState `json:"clusters"`
	Families []FamilyState  `json:"families"`
	Secrets  []SecretState  `json:"secrets"`
	Pending  int            `json:"pendingRollouts"`
	Queues   []QueueState   `json:"queues"`
	Rules    []RuleState    `json:"rules"`
}

type ClusterState struct {
	Arn      string            `json:"arn"`
	Tags     map[string]string `json:"tags,omitempty"`
	Services []ServiceState    `json:"services"`
}

type ServiceState struct {
	Arn            string            `json:"arn"`
	Status         string            `json:"status"`
	Controller     string            `json:"deploymentController"`
	TaskDefinition string            `json:"taskDefinition,omitempty"`
	DesiredCount   int32             `json:"desiredCount"`
	CircuitBreaker bool              `json:"circuitBreaker"`
	Rollback       bool              `json:"rollback"`
	Deployments    []DeploymentState `json:"deployments"`
	// ServiceDeployments are ListServiceDeployments' view, oldest first.
	ServiceDeployments []ServiceDeploymentState `json:"serviceDeployments,omitempty"`
	Tags               map[string]string        `json:"tags,omitempty"`
}

// ServiceDeploymentState is one service deployment: its status, lifecycle
// stage, target task definition and, after a rollback started, the task
// definition it rolls back to.
type ServiceDeploymentState struct {
	Arn            string `json:"arn"`
	Status         string `json:"status"`
	Stage          string `json:"lifecycleStage,omitempty"`
	TaskDefinition string `json:"taskDefinition"`
	RollbackTo     string `json:"rollbackTo,omitempty"`
}

type DeploymentState struct {
	ID             string `json:"id"`
	Status         string `json:"status"` // PRIMARY or ACTIVE
	TaskDefinition string `json:"taskDefinition"`
	RolloutState   string `json:"rolloutState"`
	Reason         string `json:"rolloutStateReason"`
}

type FamilyState struct {
	Name      string          `json:"name"`
	Revisions []RevisionState `json:"revisions"`
}

type RevisionState struct {
	Arn    string            `json:"arn"`
	Status string            `json:"status"`
	Tags   map[string]string `json:"tags,omitempty"`
}

type SecretState struct {
	Arn  string `json:"arn"`
	Name string `json:"name"`
}

// State returns a snapshot of the simulator, rollouts brought up to now.
func (s *Sim) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.advanceLocked(now)
	st := State{Time: now, Region: s.region, Account: s.account, Pending: len(s.rollouts),
		Queues: s.queueStates(), Rules: s.ruleStates(),
		Clusters: []ClusterState{}, Families: []FamilyState{}, Secrets: []SecretState{}}
	for _, cn := range s.clusterNames {
		c := s.clusters[cn]
		cs := ClusterState{Arn: c.arn, Tags: tagMap(c.tags), Services: []ServiceState{}}
		for _, name := range slices.Sorted(maps.Keys(c.services)) {
			sv := c.services[name]
			ss := ServiceState{
				Arn: sv.arn, Status: sv.status, Controller: string(sv.controller),
				TaskDefinition: sv.currentTaskDef(), DesiredCount: sv.desired,
				Tags: tagMap(sv.tags), Deployments: []DeploymentState{},
			}
			if cb := sv.config.DeploymentCircuitBreaker; cb != nil {
				ss.CircuitBreaker, ss.Rollback = cb.Enable, cb.Rollback
			}
			for i, d := range sv.deployments {
				status := "ACTIVE"
				if i == 0 {
					status = "PRIMARY"
				}
				ss.Deployments = append(ss.Deployments, DeploymentState{ID: d.id, Status: status,
					TaskDefinition: d.taskDef, RolloutState: string(d.state), Reason: d.reason})
			}
			for _, sd := range sv.svcDeployments {
				sds := ServiceDeploymentState{Arn: sd.arn, Status: string(sd.status), Stage: string(sd.stage), TaskDefinition: sd.target.taskDef}
				if sd.rollbackTo != nil {
					sds.RollbackTo = sd.rollbackTo.taskDef
				}
				ss.ServiceDeployments = append(ss.ServiceDeployments, sds)
			}
			cs.Services = append(cs.Services, ss)
		}
		st.Clusters = append(st.Clusters, cs)
	}
	for _, fn := range s.familyNames {
		f := s.families[fn]
		fs := FamilyState{Name: fn, Revisions: make([]RevisionState, 0, len(f.revs))}
		for _, r := range f.revs {
			fs.Revisions = append(fs.Revisions, RevisionState{Arn: *r.td.TaskDefinitionArn,
				Status: string(r.td.Status), Tags: tagMap(r.tags)})
		}
		st.Families = append(st.Families, fs)
	}
	for _, name := range slices.Sorted(maps.Keys(s.secrets)) {
		st.Secrets = append(st.Secrets, SecretState{Arn: s.secrets[name].arn, Name: name})
	}
	return st
}

func tagMap(tags []types.Tag) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}
