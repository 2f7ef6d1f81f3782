/*
 * probe.c - a tiny, static, dependency-free program that runs inside a
 * container and reports facts about its environment as JSON on stdout.
 *
 * Build:  cc -static -O2 -Wall -Wextra -Werror -o probe probe.c
 *
 * Usage:  probe SUBCOMMAND [ARGS...]
 *         probe multi CMD1 ARGS... -- CMD2 ARGS... -- ...
 *
 * Every line printed (except the plain-text protocol of `echo`, `cat` and
 * `wait-signal`) is a single JSON value.  Usage errors go to stderr and exit
 * with status 2.
 *
 * Host side, for the conformance harness: `record` (a hook that appends what
 * it sees to a file), `console-recv` (a --console-socket) and `seccomp-agent`
 * (a seccomp listenerPath); the last two print "ready" once listening.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <linux/seccomp.h>

extern char **environ;

#define READ_LIMIT (64 * 1024)
#define BIG_LIMIT (64 * 1024 * 1024)
#define LINK_MAX_LEN 4096

/* ------------------------------------------------------------------------ */
/* small utilities                                                           */
/* ------------------------------------------------------------------------ */

static void die_oom(void)
{
    static const char msg[] = "probe: out of memory\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(3);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die_oom();
    return p;
}

static void *xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n ? n : 1);
    if (!p)
        die_oom();
    return p;
}

static int usage_error(const char *fmt, const char *arg)
{
    fflush(stdout);
    fputs("probe: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return 2;
}

/* Parse an integer with strtoull(base 0).  Accepts a leading '-' (which
 * strtoull wraps modulo 2^64, giving the two's complement representation). */
static int parse_u64(const char *s, unsigned long long *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_i64(const char *s, long long *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* Read a whole file (up to `max` bytes) into a NUL-terminated malloc'd
 * buffer.  Returns NULL and sets *errp on failure. */
static char *read_all(const char *path, size_t max, size_t *lenp, int *errp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        *errp = errno;
        return NULL;
    }
    size_t cap = max < 4096 ? max : 4096;
    size_t len = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap >= max)
                break;
            cap *= 2;
            if (cap > max)
                cap = max;
            buf = xrealloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            *errp = errno;
            close(fd);
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    if (lenp)
        *lenp = len;
    *errp = 0;
    return buf;
}

/* readlink into a malloc'd NUL-terminated string, or NULL. */
static char *read_link(const char *path)
{
    char *buf = xmalloc(LINK_MAX_LEN + 1);
    ssize_t n = readlink(path, buf, LINK_MAX_LEN);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Find "Name:" at the start of a line in a /proc status-style buffer and
 * return a pointer to the first non-blank character of its value. */
static const char *status_field(const char *buf, const char *name)
{
    size_t n = strlen(name);
    const char *p = buf;
    while (p && *p) {
        if (strncmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ' || *p == '\t')
                p++;
            return p;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* JSON writer                                                               */
/* ------------------------------------------------------------------------ */

#define J_MAX_DEPTH 32
static int j_depth;
static int j_count[J_MAX_DEPTH];
static int j_after_key;

static void j_sep(void)
{
    if (j_after_key) {
        j_after_key = 0;
        return;
    }
    if (j_depth > 0 && j_count[j_depth]++)
        putchar(',');
}

static void j_raw_string(const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            putchar('\\');
            putchar(c);
        } else if (c < 0x20 || c >= 0x7f) {
            putchar('\\');
            putchar('u');
            putchar('0');
            putchar('0');
            putchar(hex[c >> 4]);
            putchar(hex[c & 15]);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

static void j_null(void)
{
    j_sep();
    fputs("null", stdout);
}

static void j_strn(const char *s, size_t n)
{
    j_sep();
    j_raw_string(s, n);
}

static void j_str(const char *s)
{
    if (!s)
        j_null();
    else
        j_strn(s, strlen(s));
}

static void j_i64(long long v)
{
    j_sep();
    printf("%lld", v);
}

static void j_u64(unsigned long long v)
{
    j_sep();
    printf("%llu", v);
}

static void j_bool(int b)
{
    j_sep();
    fputs(b ? "true" : "false", stdout);
}

static void j_open(char c)
{
    j_sep();
    putchar(c);
    if (j_depth + 1 >= J_MAX_DEPTH) {
        fputs("probe: JSON nesting too deep\n", stderr);
        _exit(3);
    }
    j_depth++;
    j_count[j_depth] = 0;
}

static void j_close(char c)
{
    putchar(c);
    j_depth--;
}

static void j_obj(void) { j_open('{'); }
static void j_obj_end(void) { j_close('}'); }
static void j_arr(void) { j_open('['); }
static void j_arr_end(void) { j_close(']'); }

static void j_key(const char *k)
{
    j_sep();
    j_raw_string(k, strlen(k));
    putchar(':');
    j_after_key = 1;
}

static void jk_str(const char *k, const char *v) { j_key(k); j_str(v); }
static void jk_i64(const char *k, long long v) { j_key(k); j_i64(v); }
static void jk_u64(const char *k, unsigned long long v) { j_key(k); j_u64(v); }
static void jk_bool(const char *k, int v) { j_key(k); j_bool(v); }
static void jk_null(const char *k) { j_key(k); j_null(); }

static void j_line_end(void)
{
    putchar('\n');
    fflush(stdout);
    j_depth = 0;
    j_after_key = 0;
}

/* Emit a comma-separated list as a JSON array of strings. */
static void j_csv_array(const char *s)
{
    j_arr();
    if (s && *s) {
        const char *p = s;
        for (;;) {
            const char *c = strchr(p, ',');
            if (!c) {
                j_str(p);
                break;
            }
            j_strn(p, (size_t)(c - p));
            p = c + 1;
        }
    }
    j_arr_end();
}

/* ------------------------------------------------------------------------ */
/* facts                                                                     */
/* ------------------------------------------------------------------------ */

static const char *const cap_names[] = {
    "CAP_CHOWN",            /* 0 */
    "CAP_DAC_OVERRIDE",     /* 1 */
    "CAP_DAC_READ_SEARCH",  /* 2 */
    "CAP_FOWNER",           /* 3 */
    "CAP_FSETID",           /* 4 */
    "CAP_KILL",             /* 5 */
    "CAP_SETGID",           /* 6 */
    "CAP_SETUID",           /* 7 */
    "CAP_SETPCAP",          /* 8 */
    "CAP_LINUX_IMMUTABLE",  /* 9 */
    "CAP_NET_BIND_SERVICE", /* 10 */
    "CAP_NET_BROADCAST",    /* 11 */
    "CAP_NET_ADMIN",        /* 12 */
    "CAP_NET_RAW",          /* 13 */
    "CAP_IPC_LOCK",         /* 14 */
    "CAP_IPC_OWNER",        /* 15 */
    "CAP_SYS_MODULE",       /* 16 */
    "CAP_SYS_RAWIO",        /* 17 */
    "CAP_SYS_CHROOT",       /* 18 */
    "CAP_SYS_PTRACE",       /* 19 */
    "CAP_SYS_PACCT",        /* 20 */
    "CAP_SYS_ADMIN",        /* 21 */
    "CAP_SYS_BOOT",         /* 22 */
    "CAP_SYS_NICE",         /* 23 */
    "CAP_SYS_RESOURCE",     /* 24 */
    "CAP_SYS_TIME",         /* 25 */
    "CAP_SYS_TTY_CONFIG",   /* 26 */
    "CAP_MKNOD",            /* 27 */
    "CAP_LEASE",            /* 28 */
    "CAP_AUDIT_WRITE",      /* 29 */
    "CAP_AUDIT_CONTROL",    /* 30 */
    "CAP_SETFCAP",          /* 31 */
    "CAP_MAC_OVERRIDE",     /* 32 */
    "CAP_MAC_ADMIN",        /* 33 */
    "CAP_SYSLOG",           /* 34 */
    "CAP_WAKE_ALARM",       /* 35 */
    "CAP_BLOCK_SUSPEND",    /* 36 */
    "CAP_AUDIT_READ",       /* 37 */
    "CAP_PERFMON",          /* 38 */
    "CAP_BPF",              /* 39 */
    "CAP_CHECKPOINT_RESTORE", /* 40 */
};
#define N_CAP_NAMES ((int)(sizeof cap_names / sizeof cap_names[0]))

static void emit_caps(const char *status, const char *key, const char *field)
{
    j_key(key);
    const char *v = status ? status_field(status, field) : NULL;
    if (!v) {
        j_null();
        return;
    }
    unsigned long long mask = strtoull(v, NULL, 16);
    j_arr();
    for (int i = 0; i < 64; i++) {
        if (!(mask & (1ULL << i)))
            continue;
        if (i < N_CAP_NAMES) {
            j_str(cap_names[i]);
        } else {
            char tmp[32];
            snprintf(tmp, sizeof tmp, "CAP_%d", i);
            j_str(tmp);
        }
    }
    j_arr_end();
}

/* Emit the value of a status field up to end of line as a string. */
static void emit_status_string(const char *status, const char *key, const char *field)
{
    j_key(key);
    const char *v = status ? status_field(status, field) : NULL;
    if (!v) {
        j_null();
        return;
    }
    size_t n = strcspn(v, "\n");
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    j_strn(v, n);
}

static const struct {
    const char *name;
    int res;
} rlimit_table[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

static void emit_rlim_value(const char *key, rlim_t v)
{
    j_key(key);
    if (v == RLIM_INFINITY)
        j_i64(-1);
    else
        j_u64((unsigned long long)v);
}

static const char *const ns_names[] = {
    "cgroup", "ipc", "mnt", "net", "pid", "pid_for_children",
    "time", "time_for_children", "user", "uts",
};

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void emit_fds(void)
{
    j_key("fds");
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        j_null();
        return;
    }
    int self = dirfd(d);
    size_t n = 0, cap = 16;
    int *fds = xmalloc(cap * sizeof *fds);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        int fd = atoi(de->d_name);
        if (fd == self)
            continue;
        if (n == cap) {
            cap *= 2;
            fds = xrealloc(fds, cap * sizeof *fds);
        }
        fds[n++] = fd;
    }
    closedir(d);
    qsort(fds, n, sizeof *fds, cmp_int);
    j_arr();
    for (size_t i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
        char *t = read_link(path);
        j_obj();
        jk_i64("fd", fds[i]);
        jk_str("target", t);
        j_obj_end();
        free(t);
    }
    j_arr_end();
    free(fds);
}

static void emit_id_map(const char *key, const char *path)
{
    j_key(key);
    int err;
    char *buf = read_all(path, BIG_LIMIT, NULL, &err);
    if (!buf) {
        j_null();
        return;
    }
    j_arr();
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        unsigned long long a, b, c;
        if (sscanf(line, "%llu %llu %llu", &a, &b, &c) != 3)
            continue;
        j_arr();
        j_u64(a);
        j_u64(b);
        j_u64(c);
        j_arr_end();
    }
    j_arr_end();
    free(buf);
}

static void emit_lines(const char *key, const char *path)
{
    j_key(key);
    int err;
    char *buf = read_all(path, BIG_LIMIT, NULL, &err);
    if (!buf) {
        j_null();
        return;
    }
    j_arr();
    char *p = buf;
    while (*p) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        j_strn(p, n);
        if (!nl)
            break;
        p = nl + 1;
    }
    j_arr_end();
    free(buf);
}

/* The namespace inodes of a process, PROC being "/proc/self" or "/proc/PID". */
static void emit_namespaces(const char *key, const char *proc)
{
    j_key(key);
    j_obj();
    for (size_t i = 0; i < sizeof ns_names / sizeof ns_names[0]; i++) {
        char path[96];
        snprintf(path, sizeof path, "%s/ns/%s", proc, ns_names[i]);
        j_key(ns_names[i]);
        char *t = read_link(path);
        const char *br = t ? strchr(t, '[') : NULL;
        if (br)
            j_u64(strtoull(br + 1, NULL, 10));
        else
            j_null();
        free(t);
    }
    j_obj_end();
}

/* Scheduling facts: policy and priority (sched_getscheduler/sched_getparam),
 * nice value, I/O priority (class << 13 | data) and the CPUs allowed. */
static void emit_sched(const char *status)
{
    j_key("sched");
    j_obj();
    int pol = sched_getscheduler(0);
    struct sched_param sp;
    jk_i64("policy", pol & ~SCHED_RESET_ON_FORK);
    jk_bool("resetOnFork", pol >= 0 && (pol & SCHED_RESET_ON_FORK) != 0);
    if (sched_getparam(0, &sp) == 0)
        jk_i64("priority", sp.sched_priority);
    else
        jk_null("priority");
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    if (errno)
        jk_null("nice");
    else
        jk_i64("nice", nice);
    long io = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0);
    if (io < 0) {
        jk_null("ioprioClass");
        jk_null("ioprioLevel");
    } else {
        jk_i64("ioprioClass", io >> 13);
        jk_i64("ioprioLevel", io & 0x1fff);
    }
    j_obj_end();
    emit_status_string(status, "cpusAllowed", "Cpus_allowed_list");
}

static int cmd_facts(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    int err;
    char *status = read_all("/proc/self/status", BIG_LIMIT, NULL, &err);

    j_obj();
    jk_i64("pid", getpid());
    jk_i64("ppid", getppid());

    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (getresuid(&ruid, &euid, &suid) == 0) {
        jk_u64("uid", ruid);
        jk_u64("euid", euid);
        jk_u64("suid", suid);
    } else {
        jk_null("uid");
        jk_null("euid");
        jk_null("suid");
    }
    if (getresgid(&rgid, &egid, &sgid) == 0) {
        jk_u64("gid", rgid);
        jk_u64("egid", egid);
        jk_u64("sgid", sgid);
    } else {
        jk_null("gid");
        jk_null("egid");
        jk_null("sgid");
    }

    j_key("groups");
    int ng = getgroups(0, NULL);
    if (ng < 0) {
        j_null();
    } else {
        gid_t *gs = xmalloc(((size_t)ng + 1) * sizeof *gs);
        ng = getgroups(ng, gs);
        if (ng < 0) {
            j_null();
        } else {
            j_arr();
            for (int i = 0; i < ng; i++)
                j_u64(gs[i]);
            j_arr_end();
        }
        free(gs);
    }

    j_key("caps");
    j_obj();
    emit_caps(status, "bounding", "CapBnd");
    emit_caps(status, "effective", "CapEff");
    emit_caps(status, "inheritable", "CapInh");
    emit_caps(status, "permitted", "CapPrm");
    emit_caps(status, "ambient", "CapAmb");
    j_obj_end();

    struct utsname u;
    if (uname(&u) == 0) {
        jk_str("hostname", u.nodename);
        jk_str("domainname", u.domainname);
        jk_str("machine", u.machine);
    } else {
        jk_null("hostname");
        jk_null("domainname");
        jk_null("machine");
    }

    char *cwd = getcwd(NULL, 0);
    jk_str("cwd", cwd);
    free(cwd);

    j_key("umask");
    const char *um = status ? status_field(status, "Umask") : NULL;
    if (um) {
        j_u64(strtoull(um, NULL, 8));
    } else {
        mode_t m = umask(0);
        umask(m);
        j_u64(m);
    }

    j_key("env");
    j_arr();
    for (char **e = environ; e && *e; e++)
        j_str(*e);
    j_arr_end();

    int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    j_key("noNewPrivs");
    if (nnp < 0)
        j_null();
    else
        j_bool(nnp);

    j_key("seccomp");
    const char *sc = status ? status_field(status, "Seccomp") : NULL;
    if (sc)
        j_i64(strtoll(sc, NULL, 10));
    else
        j_null();

    int dump = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    j_key("dumpable");
    if (dump < 0)
        j_null();
    else
        j_i64(dump);

    j_key("oomScoreAdj");
    char *oom = read_all("/proc/self/oom_score_adj", 4096, NULL, &err);
    if (oom)
        j_i64(strtoll(oom, NULL, 10));
    else
        j_null();
    free(oom);

    jk_i64("personality", personality(0xffffffff));
    emit_sched(status);

    j_key("rlimits");
    j_obj();
    for (size_t i = 0; i < sizeof rlimit_table / sizeof rlimit_table[0]; i++) {
        struct rlimit rl;
        j_key(rlimit_table[i].name);
        if (getrlimit(rlimit_table[i].res, &rl) != 0) {
            j_null();
            continue;
        }
        j_obj();
        emit_rlim_value("soft", rl.rlim_cur);
        emit_rlim_value("hard", rl.rlim_max);
        j_obj_end();
    }
    j_obj_end();

    emit_namespaces("namespaces", "/proc/self");

    emit_fds();

    emit_status_string(status, "sigmask", "SigBlk");
    emit_status_string(status, "sigignored", "SigIgn");

    emit_lines("cgroup", "/proc/self/cgroup");
    emit_id_map("uidMap", "/proc/self/uid_map");
    emit_id_map("gidMap", "/proc/self/gid_map");

    j_key("stdio");
    j_arr();
    for (int fd = 0; fd <= 2; fd++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        char *t = read_link(path);
        j_obj();
        jk_i64("fd", fd);
        jk_bool("tty", isatty(fd));
        jk_str("target", t);
        j_obj_end();
        free(t);
    }
    j_arr_end();

    int tfd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
    int terr = tfd < 0 ? errno : 0;
    if (tfd >= 0)
        close(tfd);
    jk_bool("ctty", tfd >= 0);
    jk_i64("cttyErrno", terr);

    jk_i64("sid", getsid(0));
    jk_i64("pgid", getpgid(0));

    j_obj_end();
    j_line_end();
    free(status);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* mountinfo                                                                 */
/* ------------------------------------------------------------------------ */

/* Decode the kernel's \ooo octal escapes in place. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

static int cmd_mountinfo(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    int err;
    char *buf = read_all("/proc/self/mountinfo", BIG_LIMIT, NULL, &err);
    if (!buf) {
        fprintf(stderr, "probe: cannot read /proc/self/mountinfo: %s\n", strerror(err));
        j_null();
        j_line_end();
        return 1;
    }
    j_arr();
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[64];
        int n = 0;
        char *s2 = NULL;
        for (char *t = strtok_r(line, " ", &s2); t && n < 64; t = strtok_r(NULL, " ", &s2))
            f[n++] = t;
        int dash = -1;
        for (int i = 6; i < n; i++) {
            if (strcmp(f[i], "-") == 0) {
                dash = i;
                break;
            }
        }
        if (n < 6 || dash < 0)
            continue;
        unsigned int maj = 0, min = 0;
        sscanf(f[2], "%u:%u", &maj, &min);
        j_obj();
        jk_i64("id", strtoll(f[0], NULL, 10));
        jk_i64("parent", strtoll(f[1], NULL, 10));
        jk_u64("major", maj);
        jk_u64("minor", min);
        unescape_octal(f[3]);
        jk_str("root", f[3]);
        unescape_octal(f[4]);
        jk_str("mountPoint", f[4]);
        j_key("options");
        j_csv_array(f[5]);
        j_key("optional");
        j_arr();
        for (int i = 6; i < dash; i++)
            j_str(f[i]);
        j_arr_end();
        const char *fstype = dash + 1 < n ? f[dash + 1] : NULL;
        char *source = dash + 2 < n ? f[dash + 2] : NULL;
        char *sopts = dash + 3 < n ? f[dash + 3] : NULL;
        if (source)
            unescape_octal(source);
        if (sopts)
            unescape_octal(sopts);
        jk_str("fsType", fstype);
        jk_str("source", source);
        j_key("superOptions");
        j_csv_array(sopts);
        j_obj_end();
    }
    j_arr_end();
    j_line_end();
    free(buf);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* file system commands                                                      */
/* ------------------------------------------------------------------------ */

static const char *file_type(mode_t m)
{
    if (S_ISREG(m))
        return "file";
    if (S_ISDIR(m))
        return "dir";
    if (S_ISLNK(m))
        return "symlink";
    if (S_ISCHR(m))
        return "char";
    if (S_ISBLK(m))
        return "block";
    if (S_ISFIFO(m))
        return "fifo";
    if (S_ISSOCK(m))
        return "socket";
    return "unknown";
}

static int cmd_ls(int argc, char **argv)
{
    j_arr();
    for (int i = 0; i < argc; i++) {
        struct stat st;
        j_obj();
        jk_str("path", argv[i]);
        if (lstat(argv[i], &st) != 0) {
            int e = errno;
            jk_bool("exists", 0);
            jk_i64("errno", e);
            j_obj_end();
            continue;
        }
        jk_bool("exists", 1);
        jk_str("type", file_type(st.st_mode));
        jk_u64("mode", st.st_mode & 07777);
        jk_u64("uid", st.st_uid);
        jk_u64("gid", st.st_gid);
        jk_u64("major", major(st.st_rdev));
        jk_u64("minor", minor(st.st_rdev));
        jk_i64("size", (long long)st.st_size);
        if (S_ISLNK(st.st_mode)) {
            char *t = read_link(argv[i]);
            jk_str("target", t);
            free(t);
        } else {
            jk_null("target");
        }
        jk_i64("errno", 0);
        j_obj_end();
    }
    j_arr_end();
    j_line_end();
    return 0;
}

static int cmd_read(int argc, char **argv)
{
    (void)argc;
    int err;
    size_t len = 0;
    char *buf = read_all(argv[0], READ_LIMIT, &len, &err);
    j_obj();
    jk_str("path", argv[0]);
    jk_bool("ok", buf != NULL);
    jk_i64("errno", err);
    j_key("content");
    if (buf)
        j_strn(buf, len);
    else
        j_null();
    j_obj_end();
    j_line_end();
    free(buf);
    return 0;
}

static int cmd_write(int argc, char **argv)
{
    (void)argc;
    int e = 0;
    int fd = open(argv[0], O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0) {
        e = errno;
    } else {
        if (write_all(fd, argv[1], strlen(argv[1])) != 0)
            e = errno;
        if (close(fd) != 0 && e == 0 && errno != EINTR)
            e = errno;
    }
    j_obj();
    jk_str("path", argv[0]);
    jk_bool("ok", e == 0);
    jk_i64("errno", e);
    j_obj_end();
    j_line_end();
    return 0;
}

static int cmd_open(int argc, char **argv)
{
    (void)argc;
    const char *mode = argv[1];
    int flags;
    if (strcmp(mode, "r") == 0)
        flags = O_RDONLY;
    else if (strcmp(mode, "w") == 0)
        flags = O_WRONLY;
    else if (strcmp(mode, "rw") == 0)
        flags = O_RDWR;
    else
        return usage_error("open: MODE must be r, w or rw (got '%s')", mode);
    /* O_NONBLOCK so that ttys / fifos don't hang the probe. */
    int e = 0;
    int fd = open(argv[0], flags | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        e = errno;
    } else {
        if (flags == O_RDONLY) {
            char c;
            ssize_t r;
            do {
                r = read(fd, &c, 1);
            } while (r < 0 && errno == EINTR);
            /* EAGAIN means access was granted but no data is available. */
            if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                e = errno;
        }
        close(fd);
    }
    j_obj();
    jk_str("path", argv[0]);
    jk_bool("ok", e == 0);
    jk_i64("errno", e);
    j_obj_end();
    j_line_end();
    return 0;
}

static int cmd_sysctl(int argc, char **argv)
{
    (void)argc;
    const char *name = argv[0];
    size_t n = strlen(name);
    char *path = xmalloc(n + 16);
    strcpy(path, "/proc/sys/");
    char *p = path + strlen(path);
    for (size_t i = 0; i <= n; i++)
        p[i] = name[i] == '.' ? '/' : name[i];
    int err;
    size_t len = 0;
    char *buf = read_all(path, READ_LIMIT, &len, &err);
    j_obj();
    jk_str("name", name);
    j_key("value");
    if (buf) {
        size_t s = 0, e = len;
        while (s < e && (buf[s] == ' ' || buf[s] == '\t' || buf[s] == '\n' || buf[s] == '\r'))
            s++;
        while (e > s && (buf[e - 1] == ' ' || buf[e - 1] == '\t' || buf[e - 1] == '\n' ||
                         buf[e - 1] == '\r'))
            e--;
        j_strn(buf + s, e - s);
    } else {
        j_null();
    }
    jk_i64("errno", err);
    j_obj_end();
    j_line_end();
    free(buf);
    free(path);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* process control commands                                                  */
/* ------------------------------------------------------------------------ */

static int cmd_exit(int argc, char **argv)
{
    (void)argc;
    long long n;
    if (parse_i64(argv[0], &n) != 0)
        return usage_error("exit: bad exit code '%s'", argv[0]);
    fflush(stdout);
    fflush(stderr);
    _exit((int)(n & 0xff));
}

static const struct {
    const char *name;
    int sig;
} sig_table[] = {
    {"HUP", SIGHUP},     {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},   {"ABRT", SIGABRT},     {"BUS", SIGBUS},     {"FPE", SIGFPE},
    {"KILL", SIGKILL},   {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},     {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
    {"CONT", SIGCONT},   {"STOP", SIGSTOP},     {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},   {"URG", SIGURG},       {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},   {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"PWR", SIGPWR},     {"SYS", SIGSYS},
};

/* Accepts a number, "TERM" or "SIGTERM". Returns -1 if unknown. */
static int parse_signal(const char *s)
{
    long long n;
    if (parse_i64(s, &n) == 0)
        return (n > 0 && n < 65) ? (int)n : -1;
    if (strncmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof sig_table / sizeof sig_table[0]; i++)
        if (strcmp(s, sig_table[i].name) == 0)
            return sig_table[i].sig;
    return -1;
}

static int cmd_kill_self(int argc, char **argv)
{
    (void)argc;
    int sig = parse_signal(argv[0]);
    if (sig < 0)
        return usage_error("kill-self: bad signal '%s'", argv[0]);
    fflush(stdout);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL); /* fails harmlessly for KILL/STOP */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    /* Still alive: the default action was "ignore" (or "stop" + continue). */
    fprintf(stderr, "probe: survived signal %d\n", sig);
    return 0;
}

/* mempolicy: the calling thread's NUMA memory policy, from get_mempolicy(2): {"ok", "errno", "mode" (the
 * MPOL_* mode with its MPOL_F_* flags, as the kernel returns them), "nodes" (the nodemask's first 64 bits)} */
static int cmd_mempolicy(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    int mode = -1;
    unsigned long mask[16];
    memset(mask, 0, sizeof(mask));
    long r = syscall(SYS_get_mempolicy, &mode, mask, sizeof(mask) * 8, NULL, 0UL);
    j_obj();
    jk_bool("ok", r == 0);
    jk_i64("errno", r == 0 ? 0 : errno);
    jk_i64("mode", mode);
    jk_i64("nodes", (int64_t)mask[0]);
    j_obj_end();
    j_line_end();
    return 0;
}

static int cmd_sleep(int argc, char **argv)
{
    (void)argc;
    char *end;
    errno = 0;
    double secs = strtod(argv[0], &end);
    if (errno || *end || !(secs >= 0) || secs > 1e9)
        return usage_error("sleep: bad duration '%s'", argv[0]);
    fflush(stdout);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    long long whole = (long long)secs;
    long long nsec = (long long)((secs - (double)whole) * 1e9 + 0.5);
    deadline.tv_sec += (time_t)whole;
    deadline.tv_nsec += nsec;
    while (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    int r;
    do {
        r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
    } while (r == EINTR);
    return 0;
}

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    if (!got_signal)
        got_signal = sig;
}

static int cmd_wait_signal(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};
    const size_t nsigs = sizeof sigs / sizeof sigs[0];
    sigset_t block, old, waitmask;
    sigemptyset(&block);
    for (size_t i = 0; i < nsigs; i++)
        sigaddset(&block, sigs[i]);
    sigprocmask(SIG_BLOCK, &block, &old);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_mask = block;
    sa.sa_flags = 0;
    for (size_t i = 0; i < nsigs; i++)
        sigaction(sigs[i], &sa, NULL);
    waitmask = old;
    for (size_t i = 0; i < nsigs; i++)
        sigdelset(&waitmask, sigs[i]);
    fputs("ready\n", stdout);
    fflush(stdout);
    while (!got_signal)
        sigsuspend(&waitmask);
    printf("signal %d\n", (int)got_signal);
    fflush(stdout);
    _exit(100 + got_signal);
}

static int cmd_echo(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (i)
            putchar(' ');
        fputs(argv[i], stdout);
    }
    putchar('\n');
    fflush(stdout);
    return 0;
}

static int cmd_cat(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fflush(stdout);
    static char buf[65536];
    for (;;) {
        ssize_t r = read(0, buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "probe: cat: read: %s\n", strerror(errno));
            return 1;
        }
        if (r == 0)
            return 0;
        if (write_all(1, buf, (size_t)r) != 0) {
            fprintf(stderr, "probe: cat: write: %s\n", strerror(errno));
            return 1;
        }
    }
}

/* probe winsize [PATH]: the terminal size of fd 0, or of PATH (e.g. /dev/pts/0). */
static int cmd_winsize(int argc, char **argv)
{
    int fd = 0;
    if (argc > 0) {
        fd = open(argv[0], O_RDONLY | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
            j_obj();
            jk_i64("errno", errno);
            j_obj_end();
            j_line_end();
            return 1;
        }
    }
    struct winsize ws;
    int ok = ioctl(fd, TIOCGWINSZ, &ws) == 0;
    int err = ok ? 0 : errno;
    j_obj();
    jk_i64("rows", ok ? ws.ws_row : -1);
    jk_i64("cols", ok ? ws.ws_col : -1);
    jk_i64("errno", err);
    j_obj_end();
    j_line_end();
    if (fd > 0)
        close(fd);
    return ok ? 0 : 1;
}

static void sleep_seconds(double secs)
{
    struct timespec ts;
    ts.tv_sec = (time_t)secs;
    ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int cmd_fork_orphans(int argc, char **argv)
{
    (void)argc;
    unsigned long long n;
    if (parse_u64(argv[0], &n) != 0 || n > 4096)
        return usage_error("fork-orphans: bad count '%s' (0..4096)", argv[0]);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        perror("probe: pipe");
        return 1;
    }
    fflush(NULL);
    unsigned long long made = 0;
    for (unsigned long long i = 0; i < n; i++) {
        pid_t c = fork();
        if (c < 0) {
            perror("probe: fork");
            break;
        }
        if (c == 0) {
            close(p[0]);
            pid_t g = fork();
            if (g == 0) {
                close(p[1]);
                sleep_seconds(0.5);
                _exit(0);
            }
            if (g > 0) {
                int32_t v = (int32_t)g;
                ssize_t w = write(p[1], &v, sizeof v);
                (void)w;
            }
            _exit(g > 0 ? 0 : 1);
        }
        int st;
        while (waitpid(c, &st, 0) < 0 && errno == EINTR)
            ;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            made++;
    }
    close(p[1]);
    j_obj();
    j_key("orphans");
    j_arr();
    for (unsigned long long i = 0; i < made; i++) {
        int32_t v;
        ssize_t r;
        do {
            r = read(p[0], &v, sizeof v);
        } while (r < 0 && errno == EINTR);
        if (r != (ssize_t)sizeof v)
            break;
        j_i64(v);
    }
    j_arr_end();
    j_obj_end();
    j_line_end();
    close(p[0]);
    return made == n ? 0 : 1;
}

/* delay SECONDS: sleep, then let `multi` go on with the next subcommand (sleep ends a `multi`). Prints
 * nothing. */
static int cmd_delay(int argc, char **argv)
{
    (void)argc;
    double secs;
    char *end;
    secs = strtod(argv[0], &end);
    if (end == argv[0] || *end != '\0' || secs < 0)
        return usage_error("delay: bad duration '%s'", argv[0]);
    fflush(stdout);
    sleep_seconds(secs);
    return 0;
}

/* notify MESSAGE...: sd_notify by hand: one datagram, the MESSAGEs joined by newlines, to $NOTIFY_SOCKET (a
 * path, or "@name" for an abstract socket). Prints {"notify":SOCKET,"sent":BYTES}, or with "error" and exit
 * status 1. */
static int cmd_notify(int argc, char **argv)
{
    const char *target = getenv("NOTIFY_SOCKET");
    const char *err = NULL;
    int e = 0;
    ssize_t sent = -1;
    size_t len = 0;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *msg = xmalloc(len + 1);
    msg[0] = '\0';
    for (int i = 0; i < argc; i++) {
        if (i)
            strcat(msg, "\n");
        strcat(msg, argv[i]);
    }
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    socklen_t alen = sizeof addr;
    if (!target || !*target) {
        err = "NOTIFY_SOCKET is not set";
    } else if (strlen(target) >= sizeof addr.sun_path) {
        err = "NOTIFY_SOCKET too long";
    } else {
        memcpy(addr.sun_path, target, strlen(target));
        if (target[0] == '@') {
            addr.sun_path[0] = '\0';
            alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(target));
        }
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0) {
            err = "socket";
            e = errno;
        } else {
            sent = sendto(s, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&addr, alen);
            if (sent < 0) {
                err = "sendto";
                e = errno;
            }
            close(s);
        }
    }
    free(msg);
    j_obj();
    j_key("notify");
    if (target)
        j_str(target);
    else
        j_null();
    if (err) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s%s%s", err, e ? ": " : "", e ? strerror(e) : "");
        j_key("error");
        j_str(buf);
    } else {
        j_key("sent");
        j_i64((long long)sent);
    }
    j_obj_end();
    j_line_end();
    return err ? 1 : 0;
}

/* sleepers N SECONDS: fork N children that each sleep SECONDS, print {"children":[pids]}, then sleep
 * SECONDS too and reap them. Exits 0 when all children exited normally, 1 otherwise. */
static int cmd_sleepers(int argc, char **argv)
{
    (void)argc;
    unsigned long long n, secs;
    if (parse_u64(argv[0], &n) != 0 || n > 1024)
        return usage_error("sleepers: bad count '%s' (0..1024)", argv[0]);
    if (parse_u64(argv[1], &secs) != 0)
        return usage_error("sleepers: bad duration '%s' (seconds)", argv[1]);
    fflush(NULL);
    pid_t *kids = xmalloc((size_t)(n ? n : 1) * sizeof *kids);
    unsigned long long made = 0;
    for (; made < n; made++) {
        pid_t c = fork();
        if (c < 0) {
            perror("probe: fork");
            break;
        }
        if (c == 0) {
            sleep_seconds((double)secs);
            _exit(0);
        }
        kids[made] = c;
    }
    j_obj();
    j_key("children");
    j_arr();
    for (unsigned long long i = 0; i < made; i++)
        j_i64(kids[i]);
    j_arr_end();
    j_obj_end();
    j_line_end();
    fflush(stdout);
    sleep_seconds((double)secs);
    int rc = made == n ? 0 : 1;
    for (unsigned long long i = 0; i < made; i++) {
        int st;
        while (waitpid(kids[i], &st, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            rc = 1;
    }
    free(kids);
    return rc;
}

/* hog MB [DELAY]: after DELAY seconds (default 0), allocate MB megabytes one at a time, writing every
 * page so the memory is really charged, then print {"allocated_mb":N}. Under a memory limit the kernel's
 * OOM killer ends it first (SIGKILL), which is what tests look for. */
static int cmd_hog(int argc, char **argv)
{
    unsigned long long mb, delay = 0;
    if (parse_u64(argv[0], &mb) != 0 || mb > 1024 * 1024)
        return usage_error("hog: bad size '%s' (megabytes)", argv[0]);
    if (argc > 1 && parse_u64(argv[1], &delay) != 0)
        return usage_error("hog: bad delay '%s' (seconds)", argv[1]);
    fflush(stdout);
    if (delay)
        sleep_seconds((double)delay);
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long done = 0;
    for (; done < mb; done++) {
        volatile char *p = malloc(1 << 20);
        if (!p)
            break;
        for (long off = 0; off < (1 << 20); off += page)
            p[off] = (char)off;
    }
    j_obj();
    jk_u64("allocated_mb", done);
    j_obj_end();
    j_line_end();
    return done == mb ? 0 : 1;
}

/* ------------------------------------------------------------------------ */
/* syscall                                                                   */
/* ------------------------------------------------------------------------ */

enum sc_kind {
    SC_INTS,     /* all arguments are integers */
    SC_PATH,     /* arg0 is a path, rest integers */
    SC_UNAME,    /* pointer to struct utsname */
    SC_GETCWD,   /* buffer + size */
    SC_HOSTNAME, /* string + length */
    SC_RAW,      /* arg0 is the syscall number, rest integers */
};

static const struct {
    const char *name;
    long nr; /* -1: resolved specially (see below) */
    enum sc_kind kind;
    int minargs;
    int maxargs;
    unsigned long long def1; /* default for the integer after a path */
} sc_table[] = {
    {"getpid", SYS_getpid, SC_INTS, 0, 0, 0},
    {"getppid", SYS_getppid, SC_INTS, 0, 0, 0},
    {"getuid", SYS_getuid, SC_INTS, 0, 0, 0},
    {"geteuid", SYS_geteuid, SC_INTS, 0, 0, 0},
    {"getgid", SYS_getgid, SC_INTS, 0, 0, 0},
    {"setuid", SYS_setuid, SC_INTS, 1, 1, 0},
    {"setgid", SYS_setgid, SC_INTS, 1, 1, 0},
    {"personality", SYS_personality, SC_INTS, 1, 1, 0},
    {"uname", SYS_uname, SC_UNAME, 0, 0, 0},
#ifdef SYS_mkdir
    {"mkdir", SYS_mkdir, SC_PATH, 1, 2, 0755},
#else
    {"mkdir", -1, SC_PATH, 1, 2, 0755},
#endif
#ifdef SYS_chmod
    {"chmod", SYS_chmod, SC_PATH, 2, 2, 0},
#else
    {"chmod", -1, SC_PATH, 2, 2, 0},
#endif
#ifdef SYS_rmdir
    {"rmdir", SYS_rmdir, SC_PATH, 1, 1, 0},
#else
    {"rmdir", -1, SC_PATH, 1, 1, 0},
#endif
    {"chdir", SYS_chdir, SC_PATH, 1, 1, 0},
    {"getcwd", SYS_getcwd, SC_GETCWD, 0, 0, 0},
    {"sethostname", SYS_sethostname, SC_HOSTNAME, 1, 1, 0},
    {"unshare", SYS_unshare, SC_INTS, 1, 1, 0},
    {"keyctl", SYS_keyctl, SC_INTS, 0, 5, 0},
    {"kill", SYS_kill, SC_INTS, 2, 2, 0},
    {"raw", 0, SC_RAW, 1, 7, 0},
};

static int cmd_syscall(int argc, char **argv)
{
    const char *name = argv[0];
    int nargs = argc - 1;
    char **args = argv + 1;
    size_t idx;
    const size_t nsc = sizeof sc_table / sizeof sc_table[0];
    for (idx = 0; idx < nsc; idx++)
        if (strcmp(sc_table[idx].name, name) == 0)
            break;
    if (idx == nsc)
        return usage_error("syscall: unknown syscall '%s'", name);
    if (nargs < sc_table[idx].minargs || nargs > sc_table[idx].maxargs)
        return usage_error("syscall: wrong number of arguments for '%s'", name);

    unsigned long long a[7] = {0, 0, 0, 0, 0, 0, 0};
    int first_int = sc_table[idx].kind == SC_PATH || sc_table[idx].kind == SC_HOSTNAME ? 1 : 0;
    for (int i = first_int; i < nargs; i++)
        if (parse_u64(args[i], &a[i]) != 0)
            return usage_error("syscall: bad integer argument '%s'", args[i]);

    long nr = sc_table[idx].nr;
    long ret;
    struct utsname u;
    char cwdbuf[4096];
    fflush(stdout);
    errno = 0;
    switch (sc_table[idx].kind) {
    case SC_INTS:
        ret = syscall(nr, a[0], a[1], a[2], a[3], a[4]);
        break;
    case SC_RAW:
        ret = syscall((long)a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
        break;
    case SC_UNAME:
        ret = syscall(nr, &u);
        break;
    case SC_GETCWD:
        ret = syscall(nr, cwdbuf, sizeof cwdbuf);
        break;
    case SC_HOSTNAME:
        ret = syscall(nr, args[0], strlen(args[0]));
        break;
    case SC_PATH:
    default:
        if (nargs < 2)
            a[1] = sc_table[idx].def1;
        if (nr >= 0) {
            ret = syscall(nr, args[0], a[1], a[2], a[3]);
        } else if (strcmp(name, "mkdir") == 0) {
            ret = syscall(SYS_mkdirat, AT_FDCWD, args[0], a[1]);
        } else if (strcmp(name, "chmod") == 0) {
            ret = syscall(SYS_fchmodat, AT_FDCWD, args[0], a[1]);
        } else {
            ret = syscall(SYS_unlinkat, AT_FDCWD, args[0], AT_REMOVEDIR);
        }
        break;
    }
    int e = ret == -1 ? errno : 0;
    j_obj();
    jk_str("name", name);
    jk_i64("ret", ret);
    jk_i64("errno", e);
    j_obj_end();
    j_line_end();
    return 0;
}

/* sigsys NAME ARGS...: as `syscall`, with a SIGSYS handler installed first; a second line tells whether
 * SIGSYS arrived and, if so, what seccomp put in it (si_code 1 = SYS_SECCOMP, the syscall, the arch and
 * the filter's 16 bits of data in si_errno). */
static volatile sig_atomic_t sigsys_seen;
static volatile int sigsys_code, sigsys_syscall, sigsys_errno;
static volatile unsigned sigsys_arch;

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    sigsys_seen = 1;
    sigsys_code = si->si_code;
    sigsys_syscall = si->si_syscall;
    sigsys_arch = si->si_arch;
    sigsys_errno = si->si_errno;
}

static int cmd_sigsys(int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) != 0) {
        perror("probe: sigaction");
        return 1;
    }
    int rc = cmd_syscall(argc, argv);
    j_obj();
    j_key("sigsys");
    if (sigsys_seen) {
        j_obj();
        jk_i64("code", sigsys_code);
        jk_i64("syscall", sigsys_syscall);
        jk_u64("arch", sigsys_arch);
        jk_i64("data", sigsys_errno);
        j_obj_end();
    } else {
        j_null();
    }
    j_obj_end();
    j_line_end();
    return rc;
}

static int cmd_getppid_loop(int argc, char **argv)
{
    (void)argc;
    unsigned long long n;
    if (parse_u64(argv[0], &n) != 0)
        return usage_error("getppid-loop: bad count '%s'", argv[0]);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned long long i = 0; i < n; i++)
        syscall(SYS_getppid);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    j_obj();
    jk_u64("n", n);
    jk_i64("ns", ns);
    j_obj_end();
    j_line_end();
    return 0;
}

static int cmd_exec(int argc, char **argv)
{
    char *fallback[2] = {argv[0], NULL};
    char **args = argc > 1 ? argv + 1 : fallback;
    fflush(NULL);
    execv(argv[0], args);
    int e = errno;
    j_obj();
    jk_i64("errno", e);
    j_obj_end();
    j_line_end();
    _exit(127);
}

/* ------------------------------------------------------------------------ */
/* host-side helpers: hook recorder, console socket, seccomp agent           */
/* ------------------------------------------------------------------------ */

static int g_argc;
static char **g_argv;

/* Reads all of fd (up to max bytes) into a NUL-terminated malloc'd buffer. */
static char *read_fd_all(int fd, size_t max, size_t *lenp)
{
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap >= max)
                break;
            cap = cap * 2 > max ? max : cap * 2;
            buf = xrealloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    *lenp = len;
    return buf;
}

static long long monotonic_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The cmdline of /proc/PID as a JSON array (null when unreadable). */
static void emit_cmdline(const char *key, const char *proc)
{
    char path[96];
    snprintf(path, sizeof path, "%s/cmdline", proc);
    int err;
    size_t len = 0;
    char *buf = read_all(path, READ_LIMIT, &len, &err);
    j_key(key);
    if (!buf) {
        j_null();
        return;
    }
    j_arr();
    for (size_t i = 0; i < len;) {
        size_t n = strnlen(buf + i, len - i);
        j_strn(buf + i, n);
        i += n + 1;
    }
    j_arr_end();
    free(buf);
}

/* The mount points in /proc/PID/mountinfo, in order (null when unreadable). */
static void emit_mount_points(const char *key, const char *proc)
{
    char path[96];
    snprintf(path, sizeof path, "%s/mountinfo", proc);
    int err;
    char *buf = read_all(path, BIG_LIMIT, NULL, &err);
    j_key(key);
    if (!buf) {
        j_null();
        return;
    }
    j_arr();
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f = line;
        for (int i = 0; i < 4 && f; i++) {
            f = strchr(f, ' ');
            if (f)
                f++;
        }
        if (!f)
            continue;
        char *end = strchr(f, ' ');
        if (end)
            *end = '\0';
        unescape_octal(f);
        j_str(f);
    }
    j_arr_end();
    free(buf);
}

/*
 * probe record FILE [PATH...]: for hooks.  Reads stdin (the container state),
 * then appends one JSON line to FILE: the full argv, env, stdin, own pid,
 * cwd, root, hostname, namespaces, mount points, open fds and seccomp mode; for the pid found in the state
 * ("target"), its root, exe, cmdline, namespaces and mount points as seen
 * from here; and
 * whether each PATH exists.  Prints nothing on stdout.
 */
static int cmd_record(int argc, char **argv)
{
    size_t len = 0;
    char *in = read_fd_all(0, BIG_LIMIT, &len);
    int fd = open(argv[0], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "probe: record: open %s: %s\n", argv[0], strerror(errno));
        free(in);
        return 1;
    }
    static char line_buf[1 << 20]; /* one write(2) per record: appends never interleave */
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    close(fd);
    setvbuf(stdout, line_buf, _IOFBF, sizeof line_buf);

    j_obj();
    jk_i64("time", monotonic_ns());
    j_key("argv");
    j_arr();
    for (int i = 0; i < g_argc; i++)
        j_str(g_argv[i]);
    j_arr_end();
    j_key("env");
    j_arr();
    for (char **e = environ; e && *e; e++)
        j_str(*e);
    j_arr_end();
    j_key("stdin");
    j_strn(in, len);
    jk_i64("pid", getpid());
    char *cwd = getcwd(NULL, 0);
    jk_str("cwd", cwd);
    free(cwd);
    char *root = read_link("/proc/self/root");
    jk_str("root", root);
    free(root);
    struct utsname u;
    jk_str("hostname", uname(&u) == 0 ? u.nodename : NULL);
    emit_namespaces("namespaces", "/proc/self");
    emit_mount_points("mountPoints", "/proc/self");
    /* the hook's own open fds and seccomp mode (the Seccomp line of its status: 2 under a filter) */
    emit_fds();
    {
        int serr;
        char *hst = read_all("/proc/self/status", BIG_LIMIT, NULL, &serr);
        emit_status_string(hst, "seccomp", "Seccomp");
        free(hst);
    }

    j_key("target");
    const char *pp = strstr(in, "\"pid\"");
    long long tpid = -1;
    if (pp) {
        pp = strchr(pp + 5, ':');
        if (pp)
            tpid = strtoll(pp + 1, NULL, 10);
    }
    if (tpid > 0) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/%lld", tpid);
        char path[96];
        j_obj();
        jk_i64("pid", tpid);
        snprintf(path, sizeof path, "%s/root", proc);
        char *t = read_link(path);
        jk_str("root", t);
        free(t);
        snprintf(path, sizeof path, "%s/exe", proc);
        t = read_link(path);
        jk_str("exe", t);
        free(t);
        emit_cmdline("cmdline", proc);
        emit_namespaces("namespaces", proc);
        emit_mount_points("mountPoints", proc);
        j_obj_end();
    } else {
        j_null();
    }

    j_key("exists");
    j_obj();
    for (int i = 1; i < argc; i++) {
        struct stat st;
        jk_bool(argv[i], lstat(argv[i], &st) == 0);
    }
    j_obj_end();
    j_obj_end();
    j_line_end();

    dup2(saved, 1);
    close(saved);
    setvbuf(stdout, NULL, _IOFBF, BUFSIZ);
    free(in);
    return 0;
}

/* Binds and listens on a unix stream socket at PATH; prints "ready". */
static int listen_unix(const char *path)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "probe: socket path too long: %s\n", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s, 4) != 0) {
        fprintf(stderr, "probe: listen on %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs("ready\n", stdout);
    fflush(stdout);
    return s;
}

/* Accepts one connection within timeout_ms; -1 on timeout or error. */
static int accept_within(int s, int timeout_ms)
{
    struct pollfd p = {.fd = s, .events = POLLIN};
    int r;
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r <= 0)
        return -1;
    return accept4(s, NULL, NULL, SOCK_CLOEXEC);
}

/* recvmsg with room for up to 8 fds; returns bytes, fills fds/nfds. */
static ssize_t recv_with_fds(int c, char *buf, size_t cap, int *fds, int *nfds)
{
    union {
        char b[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.b;
    m.msg_controllen = sizeof u.b;
    ssize_t r;
    do {
        r = recvmsg(c, &m, MSG_CMSG_CLOEXEC);
    } while (r < 0 && errno == EINTR);
    *nfds = 0;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); r >= 0 && h; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        int n = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < n && *nfds < 8; i++)
            memcpy(&fds[(*nfds)++], CMSG_DATA(h) + i * sizeof(int), sizeof(int));
    }
    return r;
}

/*
 * probe console-recv SOCKET OUT: a --console-socket for runtimes.  Prints
 * "ready" once listening, receives the pty master over SCM_RIGHTS, then
 * copies everything the container writes to its terminal into OUT until the
 * terminal is closed (or 30 s pass).  Exit 0 if a master was received.
 */
static int cmd_console_recv(int argc, char **argv)
{
    (void)argc;
    int s = listen_unix(argv[0]);
    if (s < 0)
        return 1;
    int c = accept_within(s, 30000);
    if (c < 0) {
        fprintf(stderr, "probe: console-recv: no connection\n");
        return 1;
    }
    char b[4096];
    int fds[8], nfds = 0;
    recv_with_fds(c, b, sizeof b, fds, &nfds);
    close(c);
    close(s);
    int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (nfds < 1 || out < 0) {
        fprintf(stderr, "probe: console-recv: no fd received\n");
        return 1;
    }
    long long deadline = monotonic_ns() + 30000000000LL;
    for (;;) {
        long long left = (deadline - monotonic_ns()) / 1000000;
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        ssize_t n = read(fds[0], b, sizeof b);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EIO: every slave fd is closed */
        if (write_all(out, b, (size_t)n) != 0)
            break;
    }
    close(out);
    return 0;
}

/*
 * probe seccomp-agent SOCKET OUT ERRNO: a seccomp listener (listenerPath).
 * Prints "ready", accepts one connection, reads the container process state
 * until the runtime closes the connection, and appends to OUT a JSON line
 * {"payload": ..., "fds": N, "fdsInFirstMessage": N, "closed": bool}.  Then answers every
 * notification on the received fd with -ERRNO until no process uses the
 * filter (or 30 s pass), and appends {"notifications": N}.
 */
static int cmd_seccomp_agent(int argc, char **argv)
{
    (void)argc;
    unsigned long long eno;
    if (parse_u64(argv[2], &eno) != 0 || eno > 4095)
        return usage_error("seccomp-agent: bad errno '%s'", argv[2]);
    int s = listen_unix(argv[0]);
    if (s < 0)
        return 1;
    int c = accept_within(s, 30000);
    if (c < 0) {
        fprintf(stderr, "probe: seccomp-agent: no connection\n");
        return 1;
    }
    close(s);
    size_t cap = 65536, len = 0;
    char *payload = xmalloc(cap + 1);
    int fds[8], nfds = 0, closed = 0, first = -1;
    for (;;) {
        struct pollfd p = {.fd = c, .events = POLLIN};
        int r = poll(&p, 1, 5000);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* not closed by the runtime within 5 s */
        int more[8], nmore = 0;
        ssize_t n = recv_with_fds(c, payload + len, cap - len, more, &nmore);
        for (int i = 0; i < nmore && nfds < 8; i++)
            fds[nfds++] = more[i];
        if (first < 0 && n > 0)
            first = nmore;
        if (n == 0) {
            closed = 1;
            break;
        }
        if (n < 0)
            break;
        len += (size_t)n;
        if (len == cap)
            break;
    }
    close(c);
    payload[len] = '\0';
    int out = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (out < 0) {
        fprintf(stderr, "probe: seccomp-agent: open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    fflush(stdout);
    int saved = dup(1);
    dup2(out, 1);
    j_obj();
    j_key("payload");
    j_strn(payload, len);
    jk_i64("fds", nfds);
    jk_i64("fdsInFirstMessage", first < 0 ? 0 : first);
    jk_bool("closed", closed);
    j_obj_end();
    j_line_end();

    long long handled = 0;
    struct seccomp_notif_sizes sz;
    if (nfds > 0 && syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) == 0) {
        struct seccomp_notif *req = xmalloc(sz.seccomp_notif > sizeof *req ? sz.seccomp_notif : sizeof *req);
        struct seccomp_notif_resp *resp =
            xmalloc(sz.seccomp_notif_resp > sizeof *resp ? sz.seccomp_notif_resp : sizeof *resp);
        long long deadline = monotonic_ns() + 30000000000LL;
        for (;;) {
            long long left = (deadline - monotonic_ns()) / 1000000;
            if (left <= 0)
                break;
            struct pollfd p = {.fd = fds[0], .events = POLLIN};
            int r = poll(&p, 1, (int)left);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0 || (p.revents & (POLLHUP | POLLERR | POLLNVAL)))
                break; /* POLLHUP: no task uses the filter any more */
            memset(req, 0, sz.seccomp_notif);
            if (ioctl(fds[0], SECCOMP_IOCTL_NOTIF_RECV, req) != 0) {
                if (errno == EINTR || errno == ENOENT)
                    continue;
                break;
            }
            memset(resp, 0, sz.seccomp_notif_resp);
            resp->id = req->id;
            resp->error = -(int)eno;
            if (ioctl(fds[0], SECCOMP_IOCTL_NOTIF_SEND, resp) == 0)
                handled++;
        }
        free(req);
        free(resp);
    }
    j_obj();
    jk_i64("notifications", handled);
    j_obj_end();
    j_line_end();
    dup2(saved, 1);
    close(saved);
    close(out);
    free(payload);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* dispatch                                                                  */
/* ------------------------------------------------------------------------ */

struct command {
    const char *name;
    int minargs;
    int maxargs; /* -1: unlimited */
    int terminal; /* only allowed as the last command of `multi` */
    int (*fn)(int argc, char **argv);
};

static const struct command commands[] = {
    {"facts", 0, 0, 0, cmd_facts},
    {"mountinfo", 0, 0, 0, cmd_mountinfo},
    {"ls", 1, -1, 0, cmd_ls},
    {"read", 1, 1, 0, cmd_read},
    {"write", 2, 2, 0, cmd_write},
    {"open", 2, 2, 0, cmd_open},
    {"sysctl", 1, 1, 0, cmd_sysctl},
    {"exit", 1, 1, 1, cmd_exit},
    {"kill-self", 1, 1, 1, cmd_kill_self},
    {"sleep", 1, 1, 0, cmd_sleep},
    {"mempolicy", 0, 0, 0, cmd_mempolicy},
    {"wait-signal", 0, 0, 1, cmd_wait_signal},
    {"echo", 0, -1, 0, cmd_echo},
    {"cat", 0, 0, 0, cmd_cat},
    {"winsize", 0, 1, 0, cmd_winsize},
    {"fork-orphans", 1, 1, 0, cmd_fork_orphans},
    {"hog", 1, 2, 0, cmd_hog},
    {"sleepers", 2, 2, 0, cmd_sleepers},
    {"delay", 1, 1, 0, cmd_delay},
    {"notify", 0, -1, 0, cmd_notify},
    {"syscall", 1, -1, 0, cmd_syscall},
    {"sigsys", 1, -1, 0, cmd_sigsys},
    {"getppid-loop", 1, 1, 0, cmd_getppid_loop},
    {"exec", 1, -1, 1, cmd_exec},
    {"record", 1, -1, 0, cmd_record},
    {"console-recv", 2, 2, 1, cmd_console_recv},
    {"seccomp-agent", 3, 3, 1, cmd_seccomp_agent},
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Validate name and argument count; returns NULL (after printing to stderr)
 * on error. */
static const struct command *check_command(int argc, char **argv)
{
    const struct command *c = find_command(argv[0]);
    if (!c) {
        usage_error("unknown subcommand '%s'", argv[0]);
        return NULL;
    }
    int nargs = argc - 1;
    if (nargs < c->minargs || (c->maxargs >= 0 && nargs > c->maxargs)) {
        usage_error("wrong number of arguments for '%s'", argv[0]);
        return NULL;
    }
    return c;
}

static int cmd_multi(int argc, char **argv)
{
    if (argc == 0)
        return usage_error("%s", "multi: no subcommands given");
    /* Split into segments at "--". */
    int nseg = 0;
    int *start = xmalloc(((size_t)argc + 1) * sizeof *start);
    int *len = xmalloc(((size_t)argc + 1) * sizeof *len);
    const struct command **cmds = xmalloc(((size_t)argc + 1) * sizeof *cmds);
    int s = 0;
    for (int i = 0; i <= argc; i++) {
        if (i == argc || strcmp(argv[i], "--") == 0) {
            start[nseg] = s;
            len[nseg] = i - s;
            nseg++;
            s = i + 1;
        }
    }
    /* Validate everything before running anything. */
    int rc = 0;
    for (int k = 0; k < nseg && rc == 0; k++) {
        if (len[k] == 0) {
            rc = usage_error("%s", "multi: empty subcommand");
        } else if (strcmp(argv[start[k]], "multi") == 0) {
            rc = usage_error("%s", "multi: cannot nest multi");
        } else if (!(cmds[k] = check_command(len[k], argv + start[k]))) {
            rc = 2;
        } else if (cmds[k]->terminal && k != nseg - 1) {
            rc = usage_error("multi: '%s' is only allowed as the last subcommand",
                             argv[start[k]]);
        }
    }
    int valid = rc == 0;
    for (int k = 0; valid && k < nseg; k++) {
        /* Terminate this segment's argv so commands see a clean vector. */
        argv[start[k] + len[k]] = NULL;
        int r = cmds[k]->fn(len[k] - 1, argv + start[k] + 1);
        fflush(stdout);
        if (r == 2) {
            rc = 2; /* usage error detected at run time: stop */
            break;
        }
        if (rc == 0)
            rc = r; /* otherwise the first non-zero status wins */
    }
    free(cmds);
    free(start);
    free(len);
    return rc;
}

int main(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
    if (argc < 2) {
        fputs("usage: probe SUBCOMMAND [ARGS...]\n"
              "subcommands: facts mountinfo ls read write open sysctl exit kill-self sleep\n"
              "             wait-signal echo cat fork-orphans hog sleepers delay syscall sigsys\n"
              "             getppid-loop winsize notify exec multi\n"
              "host side:   record console-recv seccomp-agent\n",
              stderr);
        return 2;
    }
    int rc;
    if (strcmp(argv[1], "multi") == 0) {
        rc = cmd_multi(argc - 2, argv + 2);
    } else {
        const struct command *c = check_command(argc - 1, argv + 1);
        if (!c)
            return 2;
        rc = c->fn(argc - 2, argv + 2);
    }
    fflush(stdout);
    return rc;
}
