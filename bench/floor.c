// The syscall floor: the least a runtime must do to start /bin/true in a container —
// clone into new namespaces, pivot_root into the rootfs, mount /proc, exec, reap.
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char stack[64 * 1024];
static const char *rootfs;

static int child(void *arg) {
    (void)arg;
    if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0) return 10;
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) return 11;
    if (chdir(rootfs) < 0) return 12;
    if (syscall(SYS_pivot_root, ".", ".") < 0) return 13;
    if (umount2(".", MNT_DETACH) < 0) return 14;
    if (chdir("/") < 0) return 15;
    if (mount("proc", "/proc", "proc", 0, NULL) < 0) return 16;
    execl("/bin/true", "true", (char *)NULL);
    return 17;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: floor ROOTFS\n"); return 2; }
    rootfs = argv[1];
    int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD;
    pid_t pid = clone(child, stack + sizeof stack, flags, NULL);
    if (pid < 0) { perror("clone"); return 1; }
    int st;
    if (waitpid(pid, &st, 0) < 0) { perror("waitpid"); return 1; }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
