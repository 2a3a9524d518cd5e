package kubernetes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/sandbox"
)

// The cluster tests need the test cluster of scripts/k8s (scripts/test.sh starts
// it): CLAWBOX_TEST_KUBECONFIG names its admin kubeconfig,
// CLAWBOX_TEST_K8S_CONTAINERD its containerd's socket (test images are imported
// there: no registry), CLAWBOX_TEST_K8S_NODE its node. Without them the tests skip;
// with KUBERNETES_TESTS=require they fail instead. TestMain makes one namespace
// (deleted at the end) and imports the busybox test image of internal/dockertest,
// built with Docker and moved over with `docker save | ctr import`.

var (
	clusterErr error // why there is no cluster (tests skip)
	setupErr   error // why the cluster could not be prepared (tests fail)
	testImage  string
	testNS     string
	cs         kubernetes.Interface
	kubeconfig = os.Getenv("CLAWBOX_TEST_KUBECONFIG")
	containerd = os.Getenv("CLAWBOX_TEST_K8S_CONTAINERD")
	node       = os.Getenv("CLAWBOX_TEST_K8S_NODE")
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	if kubeconfig == "" || containerd == "" || node == "" {
		clusterErr = fmt.Errorf("no test cluster (CLAWBOX_TEST_KUBECONFIG, CLAWBOX_TEST_K8S_CONTAINERD, CLAWBOX_TEST_K8S_NODE unset): scripts/k8s/up.sh starts one")
		if os.Getenv("KUBERNETES_TESTS") == "require" {
			fmt.Fprintln(os.Stderr, "KUBERNETES_TESTS=require:", clusterErr)
			return 1
		}
		return m.Run()
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err == nil {
		cs, err = kubernetes.NewForConfig(cfg)
	}
	if err != nil {
		setupErr = err
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	testNS = "clawbox-test-" + randHex(4)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS}}, metav1.CreateOptions{}); err != nil {
		setupErr = fmt.Errorf("create namespace: %w", err)
		return m.Run()
	}
	testImage = dockertest.RandomTag()
	setupErr = importImage(ctx, testImage)
	code := m.Run()
	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer dcancel()
	removeNamespace(dctx, testNS)
	if out, err := exec.CommandContext(dctx, "ctr", "-a", containerd, "-n", "k8s.io", "images", "rm", "docker.io/"+testImage).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "remove test image from the cluster: %v: %s\n", err, out)
	}
	return code
}

// importImage builds the test image with Docker, moves it into the cluster's
// containerd and removes it from Docker.
func importImage(ctx context.Context, ref string) error {
	if err := dockertest.BuildImage(ctx, ref); err != nil {
		return err
	}
	defer dockertest.RemoveImage(ref)
	dir, err := os.MkdirTemp("", "clawbox-k8s-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tar := filepath.Join(dir, "image.tar")
	if out, err := exec.CommandContext(ctx, "docker", "save", "-o", tar, ref).CombinedOutput(); err != nil {
		return fmt.Errorf("docker save: %v: %s", err, out)
	}
	if out, err := exec.CommandContext(ctx, "ctr", "-a", containerd, "-n", "k8s.io", "images", "import", tar).CombinedOutput(); err != nil {
		return fmt.Errorf("ctr import: %v: %s", err, out)
	}
	return nil
}

// removeNamespace deletes ns with everything in it, Pods without grace, and
// waits until it is gone.
func removeNamespace(ctx context.Context, ns string) {
	zero := int64(0)
	_ = cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		fmt.Fprintln(os.Stderr, "delete namespace:", err)
		return
	}
	for ctx.Err() == nil {
		if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "namespace", ns, "still terminating")
}

// requireCluster skips without a test cluster and fails when it could not be
// prepared.
func requireCluster(t *testing.T) {
	t.Helper()
	if clusterErr != nil {
		t.Skip(clusterErr)
	}
	if setupErr != nil {
		t.Fatalf("test cluster: %v", setupErr)
	}
}

// newBackend returns a connected backend on the test namespace, closed at the
// end of the test.
func newBackend(t *testing.T, mod ...func(*Options)) *Backend {
	t.Helper()
	o := Options{Kubeconfig: kubeconfig, Namespace: testNS, Node: node, PullPolicy: corev1.PullNever, StopGrace: 2 * time.Second, Logger: testLogger()}
	for _, f := range mod {
		f(&o)
	}
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// removeInstance deletes every Pod and NetworkPolicy of a test instance, at once.
func removeInstance(t *testing.T, instance string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	zero := int64(0)
	sel := metav1.ListOptions{LabelSelector: sandbox.LabelInstance + "=" + instance}
	if err := cs.CoreV1().Pods(testNS).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, sel); err != nil {
		t.Errorf("cleanup pods: %v", err)
	}
	if err := cs.NetworkingV1().NetworkPolicies(testNS).DeleteCollection(ctx, metav1.DeleteOptions{}, sel); err != nil {
		t.Errorf("cleanup network policies: %v", err)
	}
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
