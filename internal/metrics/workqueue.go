package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
)

// queueProvider is a client-go workqueue.MetricsProvider with the metric
// names controller-runtime uses, under our namespace, labelled by queue
// name. client-go calls it when a queue is created, so the series of a
// queue exist from then on.
type queueProvider struct {
	depth                      *prometheus.GaugeVec
	addsC, retriesC            *prometheus.CounterVec
	latency, workDuration      *prometheus.HistogramVec
	unfinished, longestRunning *prometheus.GaugeVec
}

func newQueueProvider() *queueProvider {
	sub := "workqueue"
	buckets := prometheus.ExponentialBuckets(10e-9, 10, 12) // 10ns to 1000s, as client-go's own
	return &queueProvider{
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: sub, Name: "depth",
			Help: "Families waiting in the workqueue.",
		}, []string{"name"}),
		addsC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: sub, Name: "adds_total",
			Help: "Adds to the workqueue (a family already waiting is added again).",
		}, []string{"name"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: sub, Name: "queue_duration_seconds",
			Help: "Time a family waits in the workqueue before a worker takes it.", Buckets: buckets,
		}, []string{"name"}),
		workDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: sub, Name: "work_duration_seconds",
			Help: "Time a worker holds a family.", Buckets: buckets,
		}, []string{"name"}),
		unfinished: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: sub, Name: "unfinished_work_seconds",
			Help: "Seconds of work in progress not yet observed by work_duration; large values mean stuck workers.",
		}, []string{"name"}),
		longestRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: sub, Name: "longest_running_processor_seconds",
			Help: "Seconds the longest running worker has held its family.",
		}, []string{"name"}),
		retriesC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: sub, Name: "retries_total",
			Help: "Families put back in the workqueue with backoff after a failed reconcile.",
		}, []string{"name"}),
	}
}

func (p *queueProvider) register(reg prometheus.Registerer) {
	reg.MustRegister(p.depth, p.addsC, p.latency, p.workDuration, p.unfinished, p.longestRunning, p.retriesC)
}

// QueueMetrics returns the provider to give client-go's workqueue
// (TypedRateLimitingQueueConfig.MetricsProvider).
func (m *Metrics) QueueMetrics() workqueue.MetricsProvider { return m.queue }

func (p *queueProvider) NewDepthMetric(name string) workqueue.GaugeMetric {
	return p.depth.WithLabelValues(name)
}

func (p *queueProvider) NewAddsMetric(name string) workqueue.CounterMetric {
	return p.addsC.WithLabelValues(name)
}

func (p *queueProvider) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return p.latency.WithLabelValues(name)
}

func (p *queueProvider) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return p.workDuration.WithLabelValues(name)
}

func (p *queueProvider) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.unfinished.WithLabelValues(name)
}

func (p *queueProvider) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.longestRunning.WithLabelValues(name)
}

func (p *queueProvider) NewRetriesMetric(name string) workqueue.CounterMetric {
	return p.retriesC.WithLabelValues(name)
}
