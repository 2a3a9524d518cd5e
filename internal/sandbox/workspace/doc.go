// Package workspace provides sandbox workspaces: one directory per sandbox, which the
// sandbox sees read-write at /workspace, with a hard size quota, kept after the
// sandbox ends until it is removed (SPEC 2.7, issue 15).
//
// # Layout
//
// Under the workspace root (containers.workspace_root, a directory only root may
// write) a workspace is two names built from the root and the validated sandbox id
// ("clawbox-<uuid>", see [CheckID]) and nothing else:
//
//	<root>/<id>.img   a sparse ext4 image (no journal, no reserved blocks), mode 0600,
//	                  its apparent size is the quota; its root directory is owned by
//	                  the sandbox uid:gid, so the non-root sandbox user can write.
//	<root>/<id>       the mount point: the image loop-mounted nosuid,nodev (exec allowed: agents
//	                  build and run programs there).
//	                  The directory under the mount is root's with mode 0000: if a
//	                  bind ever got it instead of the mounted file system (say, the
//	                  Docker daemon in another mount namespace than the server), a
//	                  sandbox without capabilities could not write there, unbounded.
//
// Writing past the quota fails inside with ENOSPC; the image never grows past its
// apparent size, so the host's disk is never filled beyond the quota. The file system
// is mounted with discard: deleting files inside punches holes in the image, giving
// the host its disk back. The image is
// never visible inside the sandbox (only the mounted file system is), so the ext4
// the kernel mounts was only ever written by the kernel.
//
// # Lifecycle
//
//   - [Manager.Create] makes the image, formats it and mounts it. An existing id is a
//     conflict.
//   - [Manager.Open] mounts a kept workspace again, or adopts one that is still mounted
//     (after a server restart while its sandbox ran on): no second loop device.
//   - [Manager.Release] (at sandbox end) unmounts and keeps the image. A released
//     workspace holds no mount and no loop device, so a server that dies or restarts
//     leaks nothing; the mount point's mtime is set to the release time, the age
//     [Manager.List] reports for retention.
//   - [Manager.Remove] unmounts if mounted, detaches any loop device still backed by
//     the image, and deletes the image and the mount point. Idempotent.
//   - [Manager.Stat] and [Manager.List] report quota, host disk use and, when mounted,
//     the file system's used and total bytes (statfs).
//
// Each resource has one release path: the mount is removed only by unmount (Release
// and Remove share it; lazy, MNT_DETACH, so a host process inside cannot pin it); the
// loop device is attached with LO_FLAGS_AUTOCLEAR, so the kernel detaches it when its
// last user goes (the unmount, or our own descriptor when a mount fails), and Remove
// detaches a device a crash may have left; the files are deleted only by Remove.
// Operations on one id are serialized; different ids run concurrently.
//
// A server that shuts down while sandboxes run must not Release their workspaces:
// the containers still use them, and the restarted server adopts them with Open.
//
// # Host side never follows a symlink
//
// Everything inside a workspace is written by the workload and is hostile. The host
// side never walks a workspace's contents: usage comes from statfs, removal is an
// unmount plus deleting the image. The two names under the root are opened with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), checked with fstatat(AT_SYMLINK_NOFOLLOW)
// and unlinked with unlinkat (which never follows); if either is a symlink, or not a
// regular file / directory, the operation is refused. The image is formatted through
// /proc/self/fd of the descriptor opened that way, and the mount target is the
// /proc/self/fd of the mount point's O_PATH descriptor, so no path is resolved twice.
//
// # Availability
//
// Workspaces need root, loop devices (/dev/loop-control) and mkfs.ext4. The check
// runs once per Manager ([Manager.Check], nil means [DefaultCheck]); when it fails,
// every operation returns api.CodeUnavailable saying so.
//
// # Integration
//
// The daemon builds one *Manager{Root: cfg.Containers.WorkspaceRoot} and hands it to
// the sandbox manager, which declares what it uses (internal/sandbox does not import
// its subpackages); every method it needs takes and returns only built-in types, so
// *Manager satisfies such an interface directly:
//
//	type Workspaces interface {
//		Create(ctx context.Context, id string, quota int64, uid, gid int) (dir string, err error)
//		Open(ctx context.Context, id string) (dir string, err error)
//		Release(id string) error
//		Remove(id string) error
//		Usage(id string) (used, total int64, err error)
//	}
//
// Spawn with capabilities.workspace calls Create with containers.max_workspace_mb<<20
// and the sandbox user's uid:gid, and bind-mounts dir read-write at /workspace
// (default propagation; the bind inherits nosuid,nodev). A restarted server
// calls Open for each adopted sandbox that has a workspace. Sandbox end calls Release
// (never server shutdown). DELETE ?workspace=true and retention call Remove, after
// the container is gone: a container that still holds the bind keeps the file system
// alive until it exits; the kernel then detaches the loop device. ContainerInfo
// reports Usage. [Manager.List] gives every kept workspace with its age, for a sweep
// of workspaces whose sandbox record is gone.
package workspace
