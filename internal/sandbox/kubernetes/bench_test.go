package kubernetes

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Kubernetes backend beside raw client-go on the test cluster, one run
// (docs/benchmarks.md, "Kubernetes backend"):
//
//	go test ./internal/sandbox/kubernetes -run '^$' -bench . -benchtime 10x
//
// start: Backend.Start (NetworkPolicy, Pod, watch until it runs) against a
// client-go create of the same Pod and a watch until Running. kill:
// Backend.Stop then Remove (the kubelet stops the container, the exit is
// read, the Pod and its policy are deleted) against a client-go delete of the
// same Pod with a 1 s grace, waiting until it is gone.
func BenchmarkStart(b *testing.B) {
	if clusterErr != nil || setupErr != nil {
		b.Skip("no test cluster:", clusterErr, setupErr)
	}
	be := benchBackend(b)
	instance := "clawbox-bench-" + randHex(4)
	defer benchCleanup(instance)
	b.Run("backend", func(b *testing.B) {
		for b.Loop() {
			spec := testSpec(instance)
			id, err := be.Start(context.Background(), spec)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := be.Remove(context.Background(), id); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("client-go", func(b *testing.B) {
		for b.Loop() {
			p := be.pod(testSpec(instance))
			if _, err := cs.CoreV1().Pods(testNS).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			if _, err := be.until(context.Background(), p.Name, true, func(p *corev1.Pod) (bool, error) { return p.Status.Phase == corev1.PodRunning, nil }); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := be.Remove(context.Background(), p.Name); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

func BenchmarkKill(b *testing.B) {
	if clusterErr != nil || setupErr != nil {
		b.Skip("no test cluster:", clusterErr, setupErr)
	}
	be := benchBackend(b)
	instance := "clawbox-bench-" + randHex(4)
	defer benchCleanup(instance)
	b.Run("backend", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			id, err := be.Start(context.Background(), testSpec(instance))
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := be.Stop(context.Background(), id, be.o.StopGrace); err != nil {
				b.Fatal(err)
			}
			if _, err := be.Inspect(context.Background(), id); err != nil {
				b.Fatal(err)
			}
			if err := be.Remove(context.Background(), id); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("client-go", func(b *testing.B) {
		grace := int64(1)
		for b.Loop() {
			b.StopTimer()
			id, err := be.Start(context.Background(), testSpec(instance))
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := cs.CoreV1().Pods(testNS).Delete(context.Background(), id, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
				b.Fatal(err)
			}
			if _, err := be.until(context.Background(), id, false, func(*corev1.Pod) (bool, error) { return false, nil }); !errors.Is(err, errdefs.ErrNotFound) {
				b.Fatal("the pod did not go")
			}
			b.StopTimer()
			be.Remove(context.Background(), id) // its NetworkPolicy
			b.StartTimer()
		}
	})
}

func benchBackend(b *testing.B) *Backend {
	be, err := New(Options{Kubeconfig: kubeconfig, Namespace: testNS, Node: node, PullPolicy: corev1.PullNever, StopGrace: time.Second, Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	return be
}

func benchCleanup(instance string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	zero := int64(0)
	sel := metav1.ListOptions{LabelSelector: "clawbox.instance=" + instance}
	cs.CoreV1().Pods(testNS).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, sel)
	cs.NetworkingV1().NetworkPolicies(testNS).DeleteCollection(ctx, metav1.DeleteOptions{}, sel)
}
