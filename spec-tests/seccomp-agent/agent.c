/*
 * agent.c - a minimal seccomp notify listener ("seccomp agent") for tsrun's tests.
 *
 * Build:  cc -O2 -Wall -Wextra -Werror -o agent agent.c
 * Usage:  agent SOCKET STATE_FILE LOG_FILE
 *
 * Listens on the unix stream socket SOCKET, accepts one connection and reads the runtime-spec "container
 * process state" from it until the runtime closes it, taking the notify fd from SCM_RIGHTS. Writes the
 * JSON it got to STATE_FILE (with the received fd's number appended as a second line, or -1), then answers
 * notifications until no task uses the filter any more:
 *   mkdir    -> not run; returns 4242 (so the caller sees a value only the agent could have produced)
 *   anything else -> SECCOMP_USER_NOTIF_FLAG_CONTINUE (run as if allowed)
 * One JSON line per notification goes to LOG_FILE: {"nr":N,"pid":P,"arch":A,"arg0":X}.
 * Gives up after 60 seconds whatever happens, so a broken test never hangs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "agent: %s: %s\n", what, strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: agent SOCKET STATE_FILE LOG_FILE\n");
        return 2;
    }
    alarm(60);
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0)
        die("socket");
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (strlen(argv[1]) >= sizeof addr.sun_path) {
        fprintf(stderr, "agent: socket path too long\n");
        return 2;
    }
    strcpy(addr.sun_path, argv[1]);
    unlink(argv[1]);
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("bind");
    if (listen(ls, 1) != 0)
        die("listen");
    int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        die("accept");

    /* The state, to the end of the connection; the fd comes with the first bytes. */
    static char buf[1 << 16];
    size_t got = 0;
    int notify = -1;
    for (;;) {
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        struct iovec iov = {buf + got, sizeof buf - 1 - got};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        char cbuf[CMSG_SPACE(4 * sizeof(int))];
        msg.msg_control = cbuf;
        msg.msg_controllen = sizeof cbuf;
        ssize_t n = recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("recvmsg");
        }
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h)) {
            if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS && notify < 0)
                memcpy(&notify, CMSG_DATA(h), sizeof(int));
        }
        if (n == 0 || got + (size_t)n >= sizeof buf - 1)
            break;
        got += (size_t)n;
    }
    close(c);
    buf[got] = 0;

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]);
    FILE *f = fopen(tmp, "w");
    if (!f)
        die("open state file");
    fprintf(f, "%s\n%d\n", buf, notify >= 0 ? 1 : -1);
    fclose(f);
    if (rename(tmp, argv[2]) != 0)
        die("rename state file");
    if (notify < 0)
        return 1;

    FILE *log = fopen(argv[3], "w");
    if (!log)
        die("open log file");
    setvbuf(log, NULL, _IOLBF, 0);
    struct seccomp_notif_sizes sizes;
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0)
        die("SECCOMP_GET_NOTIF_SIZES");
    struct seccomp_notif *req = calloc(1, sizes.seccomp_notif);
    struct seccomp_notif_resp *resp = calloc(1, sizes.seccomp_notif_resp);
    if (!req || !resp)
        die("calloc");
    for (;;) {
        struct pollfd p = {notify, POLLIN, 0};
        int r = poll(&p, 1, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (p.revents & POLLIN) {
            memset(req, 0, sizes.seccomp_notif);
            if (ioctl(notify, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) {
                if (errno == EINTR || errno == ENOENT)
                    continue;
                die("SECCOMP_IOCTL_NOTIF_RECV");
            }
            memset(resp, 0, sizes.seccomp_notif_resp);
            resp->id = req->id;
            if (req->data.nr == SYS_mkdir) {
                resp->val = 4242;
            } else {
                resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
            }
            fprintf(log, "{\"nr\":%d,\"pid\":%u,\"arch\":%u,\"arg0\":%llu}\n", req->data.nr, req->pid, req->data.arch,
                    (unsigned long long)req->data.args[0]);
            if (ioctl(notify, SECCOMP_IOCTL_NOTIF_SEND, resp) != 0 && errno != ENOENT)
                die("SECCOMP_IOCTL_NOTIF_SEND");
        } else if (p.revents & (POLLHUP | POLLERR)) {
            break; /* no task uses the filter any more */
        }
    }
    fclose(log);
    return 0;
}
