// Runs a command and prints its peak RSS (KiB) on stderr's last line. A small C parent keeps
// the figure honest: execve records the *forking* process's RSS high-water mark into the
// child's ru_maxrss, which would otherwise be the benchmark driver's (Python's) own.
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) return 2;
    fprintf(stderr, "\nmaxrss_kib=%ld\n", ru.ru_maxrss);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
