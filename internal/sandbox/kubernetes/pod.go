package kubernetes

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clawbox/clawbox/internal/sandbox"
)

const (
	// containerName is the sandbox's one container in its Pod.
	containerName = "sandbox"
	// annotationLabels holds the caller's labels as JSON: Kubernetes label keys
	// and values are narrower than Docker's, annotations are not.
	annotationLabels = "clawbox.labels"
)

// Volume names in a sandbox Pod.
const (
	volRun        = "clawbox-run"
	volSupervisor = "clawbox-supervisor"
	volTmp        = "tmp"
	volWorkspace  = "workspace"
)

// ownLabels are clawbox's labels on everything it makes for a sandbox: what
// List, orphan removal and the NetworkPolicy's selector go by.
func ownLabels(spec sandbox.Spec) map[string]string {
	l := map[string]string{
		sandbox.LabelContainerID: spec.ID,
		sandbox.LabelInstance:    spec.Instance,
		sandbox.LabelPolicy:      string(spec.Policy),
	}
	if spec.Pool != "" {
		l[sandbox.LabelPool] = spec.Pool
	}
	return l
}

// cpuRequestPer1024Shares is the CPU request of 1024 cpu_shares, in millicores.
// A CPU request is what sets a container's CPU weight under Kubernetes; a tenth
// of a CPU per 1024 shares keeps the weights' ratios while ten default sandboxes
// fit in one CPU's worth of requests.
const cpuRequestPer1024Shares = 100

// pod is the hardened Pod of spec (SPEC 2.1 in Kubernetes terms).
func (b *Backend) pod(spec sandbox.Spec) *corev1.Pod {
	uid, gid := parseUser(spec.User)
	nonRoot := uid != 0
	no, yes := false, true
	grace := int64(math.Ceil(b.o.StopGrace.Seconds()))
	seccomp := &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}

	c := corev1.Container{
		Name:            containerName,
		Image:           spec.Image,
		ImagePullPolicy: b.o.PullPolicy,
		Env:             envVars(spec.Env),
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                &uid,
			RunAsGroup:               &gid,
			RunAsNonRoot:             &nonRoot,
			ReadOnlyRootFilesystem:   &yes,
			AllowPrivilegeEscalation: &no,
			Privileged:               &no,
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           seccomp,
		},
		Resources: resources(spec),
		VolumeMounts: []corev1.VolumeMount{
			{Name: volTmp, MountPath: "/tmp"},
		},
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}
	tmp := resource.NewQuantity(int64(spec.TmpfsMB)<<20, resource.BinarySI)
	vols := []corev1.Volume{{Name: volTmp, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: tmp}}}}
	dir, file := corev1.HostPathDirectory, corev1.HostPathFile
	if spec.SocketDir != "" {
		vols = append(vols, corev1.Volume{Name: volRun, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: spec.SocketDir, Type: &dir}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: volRun, MountPath: sandbox.ContainerSocketDir, ReadOnly: true})
	}
	if spec.Supervisor != "" {
		vols = append(vols, corev1.Volume{Name: volSupervisor, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: spec.Supervisor, Type: &file}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: volSupervisor, MountPath: sandbox.ContainerSupervisorPath, ReadOnly: true})
		// command replaces the image's entrypoint and args its command: the
		// supervisor runs the spawn's command (none: it idles, serving exec).
		c.Command = append([]string(nil), spec.Entrypoint...)
		if !spec.WaitMain {
			c.Args = append([]string(nil), spec.Command...)
		}
		if spec.WorkspaceDir != "" {
			vols = append(vols, corev1.Volume{Name: volWorkspace, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: spec.WorkspaceDir, Type: &dir}}})
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: volWorkspace, MountPath: sandbox.ContainerWorkspacePath})
		}
	} else if len(spec.Command) > 0 {
		c.Args = append([]string(nil), spec.Command...) // like Docker's Cmd: the image's entrypoint stays
	}

	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        spec.ID,
			Labels:      ownLabels(spec),
			Annotations: map[string]string{sandbox.LabelTask: sandbox.TaskLabel(spec.Task)},
		},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{c},
			Volumes:                       vols,
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  &no,
			EnableServiceLinks:            &no,
			HostNetwork:                   false,
			HostPID:                       false,
			HostIPC:                       false,
			DNSPolicy:                     corev1.DNSDefault,
			TerminationGracePeriodSeconds: &grace,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsUser:      &uid,
				RunAsGroup:     &gid,
				RunAsNonRoot:   &nonRoot,
				SeccompProfile: seccomp,
			},
			// Pinned to clawbox's node by name through the scheduler (not
			// spec.nodeName), so that a Pod that does not fit is reported
			// Unschedulable instead of being rejected by the kubelet.
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{b.o.Node}}},
				}}},
			}},
		},
	}
	if len(spec.Labels) > 0 {
		user := map[string]string{}
		for k, v := range spec.Labels {
			if !strings.HasPrefix(strings.ToLower(k), "clawbox.") {
				user[k] = v
			}
		}
		if js, err := json.Marshal(user); err == nil {
			p.Annotations[annotationLabels] = string(js)
		}
	}
	if spec.Lifetime > 0 {
		d := int64(math.Ceil((spec.Lifetime + b.o.DeadlineSlack).Seconds()))
		p.Spec.ActiveDeadlineSeconds = &d
	}
	if b.o.RuntimeClass != "" {
		rc := b.o.RuntimeClass
		p.Spec.RuntimeClassName = &rc
	}
	return p
}

// resources are the container's limits and requests: memory limited and
// requested alike (no swap under Kubernetes either), the CPU quota as the CPU
// limit, cpu_shares as the CPU request (cpuRequestPer1024Shares).
func resources(spec sandbox.Spec) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{Limits: corev1.ResourceList{}, Requests: corev1.ResourceList{}}
	if spec.MemoryBytes > 0 {
		r.Limits[corev1.ResourceMemory] = *resource.NewQuantity(spec.MemoryBytes, resource.BinarySI)
		r.Requests[corev1.ResourceMemory] = *resource.NewQuantity(spec.MemoryBytes, resource.BinarySI)
	}
	if spec.NanoCPUs > 0 {
		r.Limits[corev1.ResourceCPU] = *resource.NewMilliQuantity(max(spec.NanoCPUs/1e6, 1), resource.DecimalSI)
	}
	if spec.CPUShares > 0 {
		req := max(spec.CPUShares*cpuRequestPer1024Shares/1024, 1)
		if lim, ok := r.Limits[corev1.ResourceCPU]; ok && lim.MilliValue() < req {
			req = lim.MilliValue() // a request may not exceed its limit
		}
		r.Requests[corev1.ResourceCPU] = *resource.NewMilliQuantity(req, resource.DecimalSI)
	}
	return r
}

// envVars turns validated KEY=VALUE pairs into the container's environment.
func envVars(env []string) []corev1.EnvVar {
	out := make([]corev1.EnvVar, 0, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, corev1.EnvVar{Name: k, Value: v})
	}
	return out
}

// parseUser reads "uid:gid" (validated by the config); gid defaults to uid.
func parseUser(user string) (uid, gid int64) {
	u, g, hasG := strings.Cut(user, ":")
	uid, err := strconv.ParseInt(u, 10, 64)
	if err != nil {
		uid = 1000
	}
	gid = uid
	if hasG {
		if n, err := strconv.ParseInt(g, 10, 64); err == nil {
			gid = n
		}
	}
	return uid, gid
}
