// Package kubernetes is the Kubernetes backend of internal/sandbox: a sandbox is a
// hardened Pod (uid 1000, read-only root, no capabilities, no privilege
// escalation, seccomp RuntimeDefault, memory and CPU limits, a size-limited
// memory emptyDir for /tmp, no service-account token, no service links, an
// optional RuntimeClass) with a deny-all NetworkPolicy beside it, pinned to the
// node clawbox runs on, which reaches the door and the supervisor through a
// per-sandbox hostPath directory. It talks to the API server with client-go.
//
// What a Pod cannot express the way a Docker container does is documented in
// README ("Running on Kubernetes"): the pids and open-files limits are the
// kubelet's (podPidsLimit) and the supervisor's, /tmp is not noexec, stdout and
// stderr come back as one stream, an image's own entrypoint is not read, and
// there is no pause or warm pool.
package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/sandbox"
)

var _ sandbox.Backend = (*Backend)(nil)

// Options configure a Backend. A zero field takes the default in its comment.
type Options struct {
	// Client talks to the API server; nil: one from Kubeconfig.
	Client kubernetes.Interface
	// Kubeconfig is the kubeconfig file; "" means in-cluster configuration (the
	// service account of the Pod clawbox runs in).
	Kubeconfig string
	// Namespace holds the sandbox Pods. Default "clawbox". It must exist, and its
	// PodSecurity level must admit hostPath volumes (privileged, or no label).
	Namespace string
	// Node is the node clawbox runs on: every Pod is pinned to it, since the
	// hostPath socket directories live on this machine. Required.
	Node string
	// RuntimeClass is the Pods' runtimeClassName ("" for the cluster default;
	// "gvisor" for example).
	RuntimeClass string
	// PullPolicy is the containers' imagePullPolicy. Default IfNotPresent.
	PullPolicy corev1.PullPolicy
	// StopGrace is the Pods' terminationGracePeriodSeconds (SIGTERM to SIGKILL).
	// Default 5s.
	StopGrace time.Duration
	// DeadlineSlack is added to a sandbox's lifetime for the Pod's
	// activeDeadlineSeconds, the backstop that ends the Pod even when clawbox is
	// not there to (clawbox's own deadline, which extend moves, comes first).
	// Default 1h.
	DeadlineSlack time.Duration
	// StartTimeout bounds how long Start waits for the Pod to run. Default 2m.
	StartTimeout time.Duration
	// CallTimeout bounds each API call. Default 30s.
	CallTimeout time.Duration
	// Logger; nil: slog.Default().
	Logger *slog.Logger
}

// Backend runs sandboxes as Pods. Create it with New, then Connect.
type Backend struct {
	cs   kubernetes.Interface
	o    Options
	log  *slog.Logger
	host string // the API server, for messages
}

// New returns a Backend. It does not contact the API server: call Connect.
func New(o Options) (*Backend, error) {
	if o.Node == "" {
		return nil, errors.New("kubernetes: no node: set kubernetes.node to the node clawbox runs on")
	}
	if o.Namespace == "" {
		o.Namespace = "clawbox"
	}
	if o.PullPolicy == "" {
		o.PullPolicy = corev1.PullIfNotPresent
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 5 * time.Second
	}
	if o.DeadlineSlack <= 0 {
		o.DeadlineSlack = time.Hour
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 2 * time.Minute
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 30 * time.Second
	}
	b := &Backend{cs: o.Client, o: o, log: o.Logger, host: "the API server"}
	if b.log == nil {
		b.log = slog.Default()
	}
	if b.cs == nil {
		cfg, err := restConfig(o.Kubeconfig)
		if err != nil {
			return nil, err
		}
		b.host = cfg.Host
		if b.cs, err = kubernetes.NewForConfig(cfg); err != nil {
			return nil, fmt.Errorf("kubernetes client: %w", err)
		}
	}
	return b, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kubernetes: no kubeconfig set and not running in a cluster (%w): set kubernetes.kubeconfig", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg, nil
}

// Close releases nothing: client-go's connections belong to its transport.
// It exists for symmetry with the Docker backend. Idempotent.
func (b *Backend) Close() error { return nil }

func (b *Backend) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.o.CallTimeout)
}

// Connect checks, once at start, everything a spawn would otherwise fail on
// later: the API server answers, the namespace and the node exist, and the
// namespace admits a sandbox Pod (a server-side dry run, so PodSecurity and any
// other admission speak now, with their own words).
func (b *Backend) Connect(ctx context.Context) error {
	ctx, cancel := b.call(ctx)
	defer cancel()
	if _, err := b.cs.Discovery().ServerVersion(); err != nil {
		return fmt.Errorf("kubernetes API server %s is not reachable: %w", b.host, err)
	}
	ns, err := b.cs.CoreV1().Namespaces().Get(ctx, b.o.Namespace, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("kubernetes namespace %q does not exist: create it (kubectl create namespace %s) or set kubernetes.namespace", b.o.Namespace, b.o.Namespace)
		}
		return fmt.Errorf("kubernetes: read namespace %q: %w", b.o.Namespace, err)
	}
	if err := checkPodSecurity(ns); err != nil {
		return err
	}
	if _, err := b.cs.CoreV1().Nodes().Get(ctx, b.o.Node, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("kubernetes node %q does not exist: set kubernetes.node to the node clawbox runs on (kubectl get nodes)", b.o.Node)
		}
		return fmt.Errorf("kubernetes: read node %q: %w", b.o.Node, err)
	}
	probe := b.pod(sandbox.Spec{
		ID: "clawbox-admission-probe", Image: "clawbox/admission-probe:dry-run", Policy: sandbox.PolicyContainer,
		Instance: "dry-run", User: "1000:1000", MemoryBytes: 64 << 20, CPUShares: 1024, TmpfsMB: 1,
		SocketDir: "/nonexistent", Supervisor: "/nonexistent", Entrypoint: []string{"/bin/true"},
	})
	if _, err := b.cs.CoreV1().Pods(b.o.Namespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		return fmt.Errorf("kubernetes namespace %q does not admit sandbox Pods: %w", b.o.Namespace, admissionError(err))
	}
	return nil
}

// PodSecurity labels of a namespace (pod-security.kubernetes.io).
const labelPSAEnforce = "pod-security.kubernetes.io/enforce"

// checkPodSecurity refuses a namespace whose enforced PodSecurity level forbids
// hostPath volumes (baseline and restricted do): every sandbox Pod has them.
func checkPodSecurity(ns *corev1.Namespace) error {
	switch lvl := ns.Labels[labelPSAEnforce]; lvl {
	case "", "privileged":
		return nil
	default:
		return fmt.Errorf("kubernetes namespace %q enforces PodSecurity level %q, which forbids the hostPath volumes every sandbox Pod needs (its door and supervisor sockets): use a namespace of its own labelled %s=privileged (the Pods are hardened by clawbox itself; see docs/SECURITY.md)", ns.Name, lvl, labelPSAEnforce)
	}
}

// admissionError says in clawbox's words that admission refused a Pod.
func admissionError(err error) error {
	if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "PodSecurity") {
		return fmt.Errorf("the namespace's PodSecurity level rejects the sandbox Pod (hostPath volumes need level privileged): %w", err)
	}
	return err
}

// Ping checks that the API server answers.
func (b *Backend) Ping(ctx context.Context) error {
	ctx, cancel := b.call(ctx)
	defer cancel()
	if err := b.cs.CoreV1().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error(); err != nil {
		return fmt.Errorf("kubernetes API server %s does not answer: %w", b.host, err)
	}
	return nil
}

// classify turns API errors into the errdefs sentinels the sandbox package checks
// with errors.Is.
func classify(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("kubernetes %s: %w: %w", op, errdefs.ErrNotFound, err)
	case apierrors.IsServiceUnavailable(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsTooManyRequests(err), isConnRefused(err):
		return fmt.Errorf("kubernetes %s: %w: %w", op, api.Errorf(api.CodeUnavailable, "the Kubernetes API server does not answer; try again when it is back"), err)
	}
	return fmt.Errorf("kubernetes %s: %w", op, err)
}

func isConnRefused(err error) bool {
	return strings.Contains(err.Error(), "connection refused")
}

// Start creates the sandbox's NetworkPolicy and Pod and waits until the Pod
// runs (or has already run to its end). An image that cannot be pulled is 400
// image_not_found, a Pod that cannot be placed on the node 429
// resource_exhausted; neither hangs. On error nothing is left behind.
func (b *Backend) Start(ctx context.Context, spec sandbox.Spec) (id string, err error) {
	pod := b.pod(spec)
	defer func() {
		if err != nil {
			if rerr := b.Remove(context.WithoutCancel(ctx), pod.Name); rerr != nil {
				b.log.Error("kubernetes: remove after failed start", "pod", pod.Name, "err", rerr)
			}
		}
	}()
	cctx, cancel := b.call(ctx)
	defer cancel()
	// The policy first: the Pod never runs a moment without it.
	if np := networkPolicy(spec); np != nil {
		if _, err := b.cs.NetworkingV1().NetworkPolicies(b.o.Namespace).Create(cctx, np, metav1.CreateOptions{}); err != nil {
			return "", classify("create network policy", err)
		}
	}
	created, err := b.cs.CoreV1().Pods(b.o.Namespace).Create(cctx, pod, metav1.CreateOptions{})
	if err != nil {
		if apierrors.IsAlreadyExists(err) {
			return "", api.Errorf(api.CodeConflict, "a Pod named %s already exists in namespace %s", pod.Name, b.o.Namespace)
		}
		return "", classify("create pod", admissionError(err))
	}
	if err := b.waitStarted(ctx, created); err != nil {
		return "", err
	}
	return created.Name, nil
}

// Image errors a container's waiting reason reports.
var imageErrors = map[string]bool{"ErrImagePull": true, "ImagePullBackOff": true, "ErrImageNeverPull": true, "InvalidImageName": true, "ImageInspectError": true}

// Waiting reasons after which the container will not start by itself.
var startErrors = map[string]bool{"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true, "PreCreateHookError": true, "PreStartHookError": true, "CrashLoopBackOff": true}

// waitStarted watches the Pod until its container runs or has ended.
func (b *Backend) waitStarted(ctx context.Context, pod *corev1.Pod) error {
	ctx, cancel := context.WithTimeout(ctx, b.o.StartTimeout)
	defer cancel()
	last := pod
	_, err := b.until(ctx, pod.Name, true, func(p *corev1.Pod) (bool, error) {
		last = p
		return started(p, b.o.Node)
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errdefs.ErrNotFound):
		return fmt.Errorf("kubernetes: pod %s was deleted while starting: %w", pod.Name, err)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return api.Errorf(api.CodeTimeout, "the sandbox Pod did not start within %s (%s)", b.o.StartTimeout, podState(last))
	}
	return err
}

// started reports whether p's sandbox container runs or has run, and an error
// once it is clear it never will.
func started(p *corev1.Pod, node string) (bool, error) {
	switch p.Status.Phase {
	case corev1.PodRunning, corev1.PodSucceeded:
		return true, nil
	case corev1.PodFailed:
		if cs := containerStatus(p); cs != nil && cs.State.Terminated != nil && cs.State.Terminated.StartedAt.After(time.Time{}) {
			return true, nil // it ran and failed: the exit is Wait's to report
		}
		return false, fmt.Errorf("kubernetes: the sandbox Pod failed before it ran: %s", podState(p))
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return false, api.Errorf(api.CodeResourceExhausted, "the sandbox Pod cannot be placed on node %s: %s", node, c.Message)
		}
	}
	if cs := containerStatus(p); cs != nil && cs.State.Waiting != nil {
		w := cs.State.Waiting
		switch {
		case imageErrors[w.Reason]:
			return false, api.Errorf(api.CodeImageNotFound, "image %q cannot be used on node %s: %s: %s", cs.Image, node, w.Reason, w.Message)
		case startErrors[w.Reason]:
			return false, fmt.Errorf("kubernetes: the sandbox container cannot start: %s: %s", w.Reason, w.Message)
		}
	}
	return false, nil
}

// podState is a short account of where a Pod is, for errors.
func podState(p *corev1.Pod) string {
	s := "phase " + string(p.Status.Phase)
	if p.Status.Reason != "" {
		s += ", " + p.Status.Reason
	}
	if p.Status.Message != "" {
		s += ": " + p.Status.Message
	}
	if cs := containerStatus(p); cs != nil {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			s += "; container waiting: " + w.Reason
			if w.Message != "" {
				s += ": " + w.Message
			}
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Status == corev1.ConditionFalse && c.Message != "" {
			s += "; " + string(c.Type) + ": " + c.Message
		}
	}
	return s
}

func containerStatus(p *corev1.Pod) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == containerName {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// until watches Pod name until cond holds (or fails), re-listing when the watch
// expires. The Pod's deletion is an errdefs.ErrNotFound error: whoever deleted
// it, the sandbox is gone; with terminating, so is a Pod being deleted (its
// deletionTimestamp set), which is what a sandbox's watcher needs, not Remove.
func (b *Backend) until(ctx context.Context, name string, terminating bool, cond func(*corev1.Pod) (bool, error)) (*corev1.Pod, error) {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	pods := b.cs.CoreV1().Pods(b.o.Namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return pods.Watch(ctx, o)
		},
	}
	gone := fmt.Errorf("kubernetes: pod %s: %w", name, errdefs.ErrNotFound)
	pre := func(store cache.Store) (bool, error) {
		if _, ok, err := store.GetByKey(b.o.Namespace + "/" + name); err != nil || ok {
			return false, err
		}
		// The informer's first list may come from the API server's watch cache,
		// which can lag behind a Pod created a moment ago: only a direct read
		// says it is gone.
		cctx, cancel := b.call(ctx)
		defer cancel()
		if _, err := pods.Get(cctx, name, metav1.GetOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return false, gone
			}
			return false, classify("get pod", err)
		}
		return false, nil
	}
	ev, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, pre, func(e watch.Event) (bool, error) {
		switch e.Type {
		case watch.Deleted:
			return false, gone
		case watch.Added, watch.Modified:
			p, ok := e.Object.(*corev1.Pod)
			if !ok {
				return false, nil
			}
			if terminating && p.DeletionTimestamp != nil {
				return false, gone
			}
			return cond(p)
		}
		return false, nil
	})
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return nil, ctx.Err() // UntilWithSync says "timed out waiting" for any end of ctx
		}
		return nil, err
	}
	p, _ := ev.Object.(*corev1.Pod)
	return p, nil
}

// ended reports whether the sandbox container has stopped.
func ended(p *corev1.Pod) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return true
	}
	cs := containerStatus(p)
	return cs != nil && cs.State.Terminated != nil
}

// exitOf says how a stopped Pod's container ended. A Pod that failed without a
// container exit (evicted, or ended by its active deadline before the kubelet
// reported one) counts as killed: 137.
func exitOf(p *corev1.Pod) sandbox.Exit {
	if cs := containerStatus(p); cs != nil && cs.State.Terminated != nil {
		t := cs.State.Terminated
		return sandbox.Exit{Code: int(t.ExitCode), OOMKilled: t.Reason == "OOMKilled"}
	}
	if p.Status.Phase == corev1.PodSucceeded {
		return sandbox.Exit{}
	}
	return sandbox.Exit{Code: 137}
}

// Wait blocks until the Pod's container has stopped and says how it ended. A Pod
// deleted behind clawbox's back is a not-found error (the sandbox is lost).
func (b *Backend) Wait(ctx context.Context, id string) (sandbox.Exit, error) {
	p, err := b.until(ctx, id, true, func(p *corev1.Pod) (bool, error) { return ended(p), nil })
	if err != nil {
		return sandbox.Exit{}, err
	}
	return exitOf(p), nil
}

// Stop ends the container the way the kubelet ends a Pod past its deadline:
// activeDeadlineSeconds is lowered to the time the Pod has run, so the kubelet
// sends SIGTERM and, after the Pod's termination grace period, SIGKILL, and the
// Pod stays behind with its exit and logs for the caller to read before Remove.
// grace is the Pod's own (Options.StopGrace, fixed at create).
func (b *Backend) Stop(ctx context.Context, id string, grace time.Duration) error {
	cctx, cancel := b.call(ctx)
	defer cancel()
	pods := b.cs.CoreV1().Pods(b.o.Namespace)
	p, err := pods.Get(cctx, id, metav1.GetOptions{})
	if err != nil {
		return classify("get pod", err)
	}
	if ended(p) {
		return nil
	}
	if p.Status.StartTime == nil {
		// Not started on the node yet: nothing to signal; deleting it is the stop.
		return b.Remove(ctx, id)
	}
	// The time run so far, rounded down: the deadline is already past (the
	// kubelet checks it every second), and at least 1 (the API's minimum).
	secs := max(int64(time.Since(p.Status.StartTime.Time).Seconds()), 1)
	if d := p.Spec.ActiveDeadlineSeconds; d != nil && *d < secs {
		secs = *d // already past: the kubelet is at it
	}
	patch := fmt.Appendf(nil, `{"spec":{"activeDeadlineSeconds":%d}}`, secs)
	if _, err := pods.Patch(cctx, id, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return classify("stop pod", err)
	}
	podGrace := time.Duration(derefInt64(p.Spec.TerminationGracePeriodSeconds)) * time.Second
	wctx, wcancel := context.WithTimeout(ctx, b.o.CallTimeout+max(grace, podGrace)+time.Duration(secs)*time.Second)
	defer wcancel()
	if _, err := b.until(wctx, id, true, func(p *corev1.Pod) (bool, error) { return ended(p), nil }); err != nil {
		return classify("stop pod", err)
	}
	return nil
}

func derefInt64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// Logs copies the container's output to stdout (Kubernetes keeps one stream:
// stderr arrives interleaved on stdout). With follow it streams until the
// container stops or ctx ends.
func (b *Backend) Logs(ctx context.Context, id string, follow bool, stdout, _ io.Writer) error {
	if !follow {
		var cancel context.CancelFunc
		ctx, cancel = b.call(ctx)
		defer cancel()
	}
	rc, err := b.cs.CoreV1().Pods(b.o.Namespace).GetLogs(id, &corev1.PodLogOptions{Container: containerName, Follow: follow}).Stream(ctx)
	if err != nil {
		return classify("pod logs", err)
	}
	defer rc.Close()
	if _, err := io.Copy(stdout, rc); err != nil && ctx.Err() == nil {
		return classify("pod logs", err)
	}
	return nil
}

// removeGrace is the grace period of Remove's delete: the container has been
// stopped already (or is being removed by force).
const removeGrace = int64(1)

// Remove deletes the Pod and its NetworkPolicy and waits until the Pod is gone.
// A Pod that is already gone is not an error.
func (b *Backend) Remove(ctx context.Context, id string) error {
	cctx, cancel := b.call(ctx)
	defer cancel()
	grace := removeGrace
	bg := metav1.DeletePropagationBackground
	err := b.cs.CoreV1().Pods(b.o.Namespace).Delete(cctx, id, metav1.DeleteOptions{GracePeriodSeconds: &grace, PropagationPolicy: &bg})
	if err != nil && !apierrors.IsNotFound(err) {
		return classify("delete pod", err)
	}
	if err := b.cs.NetworkingV1().NetworkPolicies(b.o.Namespace).Delete(cctx, id, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return classify("delete network policy", err)
	}
	if err != nil {
		return nil // the Pod was gone already
	}
	// Wait for the kubelet to confirm the containers are gone: until then the
	// sandbox may still run, and its socket directory is still mounted.
	_, werr := b.until(cctx, id, false, func(*corev1.Pod) (bool, error) { return false, nil })
	switch {
	case errors.Is(werr, errdefs.ErrNotFound):
		return nil
	case werr == nil:
		return nil
	}
	return classify("delete pod", fmt.Errorf("pod %s is still terminating: %w", id, werr))
}

// List returns every Pod labelled with instance, and each NetworkPolicy of
// instance whose Pod is gone (a start cut short), as a stopped container, so
// that orphan removal takes it too.
func (b *Backend) List(ctx context.Context, instance string) ([]sandbox.Container, error) {
	ctx, cancel := b.call(ctx)
	defer cancel()
	sel := sandbox.LabelInstance + "=" + instance
	pods, err := b.cs.CoreV1().Pods(b.o.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, classify("list pods", err)
	}
	out := make([]sandbox.Container, 0, len(pods.Items))
	seen := map[string]bool{}
	for i := range pods.Items {
		p := &pods.Items[i]
		seen[p.Name] = true
		out = append(out, containerOf(p))
	}
	nps, err := b.cs.NetworkingV1().NetworkPolicies(b.o.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, classify("list network policies", err)
	}
	for _, np := range nps.Items {
		if !seen[np.Name] {
			out = append(out, sandbox.Container{ID: np.Name, Labels: np.Labels})
		}
	}
	return out, nil
}

// Inspect returns one Pod's state. A Pod being deleted is gone.
func (b *Backend) Inspect(ctx context.Context, id string) (sandbox.Container, error) {
	ctx, cancel := b.call(ctx)
	defer cancel()
	p, err := b.cs.CoreV1().Pods(b.o.Namespace).Get(ctx, id, metav1.GetOptions{})
	if err != nil {
		return sandbox.Container{}, classify("get pod", err)
	}
	if p.DeletionTimestamp != nil {
		return sandbox.Container{}, fmt.Errorf("kubernetes get pod: %w: pod %s is being deleted", errdefs.ErrNotFound, id)
	}
	return containerOf(p), nil
}

func containerOf(p *corev1.Pod) sandbox.Container {
	c := sandbox.Container{ID: p.Name, Labels: podLabels(p), Running: !ended(p)}
	if !c.Running {
		c.Exit = exitOf(p)
	}
	return c
}

// podLabels are the caller's labels (kept in an annotation: Kubernetes label
// values cannot hold what Docker's can) and clawbox's own, as the Docker backend
// reports them.
func podLabels(p *corev1.Pod) map[string]string {
	out := map[string]string{}
	if s := p.Annotations[annotationLabels]; s != "" {
		var user map[string]string
		if json.Unmarshal([]byte(s), &user) == nil {
			for k, v := range user {
				if !strings.HasPrefix(strings.ToLower(k), "clawbox.") {
					out[k] = v
				}
			}
		}
	}
	for _, k := range []string{sandbox.LabelContainerID, sandbox.LabelInstance, sandbox.LabelPolicy, sandbox.LabelPool} {
		if v, ok := p.Labels[k]; ok {
			out[k] = v
		}
	}
	if t, ok := p.Annotations[sandbox.LabelTask]; ok {
		out[sandbox.LabelTask] = t
	}
	return out
}

// networkPolicy is the sandbox's deny-all NetworkPolicy (no ingress, no egress
// rule), or nil for a container_direct sandbox, which uses the cluster's network.
func networkPolicy(spec sandbox.Spec) *networkingv1.NetworkPolicy {
	if spec.Policy == sandbox.PolicyContainerDirect {
		return nil
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: spec.ID, Labels: ownLabels(spec)},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{sandbox.LabelContainerID: spec.ID}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
}
