/* Power-cut journal shim for `polewatch bench powerloss` (LD_PRELOAD; built at run time with `cc`).
 *
 * Every change the process makes under $POWERCUT_ROOT (writes, truncations, creations, renames, unlinks,
 * fsync/fdatasync and sync_file_range) is performed as usual and also appended, in the order the calls
 * completed, to the journal $POWERCUT_LOG. One lock is held across each call and its record, so the
 * journal is a linear history of them. After the process is killed, the bench rebuilds from the journal
 * what a disk would hold had the power gone at that moment: each file as of its last fsync, plus any
 * subset (possibly torn) of the writes that followed it.
 *
 * Record: u8 kind, u32 path length, path, u64 a, u64 b, u32 data length, data. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { K_WRITE = 1, K_TRUNC = 2, K_FSYNC = 3, K_CREATE = 4, K_RENAME = 5, K_UNLINK = 6, K_MKDIR = 7, K_SRANGE = 8 };

#define MAXFD 65536
static char *fdpath[MAXFD];
static char root[PATH_MAX];
static size_t rootlen;
static int logfd = -1;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static int (*r_open)(const char *, int, ...);
static int (*r_open64)(const char *, int, ...);
static int (*r_openat)(int, const char *, int, ...);
static int (*r_openat64)(int, const char *, int, ...);
static int (*r_close)(int);
static ssize_t (*r_write)(int, const void *, size_t);
static ssize_t (*r_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*r_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*r_writev)(int, const struct iovec *, int);
static ssize_t (*r_pwritev)(int, const struct iovec *, int, off_t);
static int (*r_fsync)(int);
static int (*r_fdatasync)(int);
static int (*r_sync_file_range)(int, off_t, off_t, unsigned int);
static int (*r_ftruncate)(int, off_t);
static int (*r_ftruncate64)(int, off_t);
static int (*r_rename)(const char *, const char *);
static int (*r_renameat)(int, const char *, int, const char *);
static int (*r_unlink)(const char *);
static int (*r_unlinkat)(int, const char *, int);
static int (*r_mkdir)(const char *, mode_t);

__attribute__((constructor)) static void init(void) {
    r_open = dlsym(RTLD_NEXT, "open");
    r_open64 = dlsym(RTLD_NEXT, "open64");
    r_openat = dlsym(RTLD_NEXT, "openat");
    r_openat64 = dlsym(RTLD_NEXT, "openat64");
    r_close = dlsym(RTLD_NEXT, "close");
    r_write = dlsym(RTLD_NEXT, "write");
    r_pwrite = dlsym(RTLD_NEXT, "pwrite");
    r_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    r_writev = dlsym(RTLD_NEXT, "writev");
    r_pwritev = dlsym(RTLD_NEXT, "pwritev");
    r_fsync = dlsym(RTLD_NEXT, "fsync");
    r_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    r_sync_file_range = dlsym(RTLD_NEXT, "sync_file_range");
    r_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    r_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
    r_rename = dlsym(RTLD_NEXT, "rename");
    r_renameat = dlsym(RTLD_NEXT, "renameat");
    r_unlink = dlsym(RTLD_NEXT, "unlink");
    r_unlinkat = dlsym(RTLD_NEXT, "unlinkat");
    r_mkdir = dlsym(RTLD_NEXT, "mkdir");
    const char *r = getenv("POWERCUT_ROOT"), *l = getenv("POWERCUT_LOG");
    if (!r || !l || strlen(r) + 1 >= sizeof root) return;
    strcpy(root, r);
    rootlen = strlen(root);
    logfd = r_open(l, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

static void put_all(const void *b, size_t n) {
    const char *p = b;
    while (n > 0) {
        ssize_t w = r_write(logfd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) abort(); /* a journal that cannot be written would make the result meaningless */
        p += w;
        n -= (size_t)w;
    }
}

/* One record in one buffer, so a kill leaves at most a cut-off last record (the reader ignores it). */
static void record(uint8_t kind, const char *path, uint64_t a, uint64_t b, const void *data, uint32_t dlen) {
    uint32_t plen = (uint32_t)strlen(path);
    size_t n = 1 + 4 + plen + 8 + 8 + 4 + dlen;
    char *buf = malloc(n);
    if (!buf) abort();
    char *p = buf;
    *p++ = (char)kind;
    memcpy(p, &plen, 4); p += 4;
    memcpy(p, path, plen); p += plen;
    memcpy(p, &a, 8); p += 8;
    memcpy(p, &b, 8); p += 8;
    memcpy(p, &dlen, 4); p += 4;
    if (dlen) memcpy(p, data, dlen);
    put_all(buf, n);
    free(buf);
}

/* The absolute path of `path` (relative to `dirfd`), or NULL when it is not under the root. */
static char *resolve(int dirfd, const char *path) {
    if (logfd < 0 || !path) return NULL;
    char buf[PATH_MAX * 2];
    if (path[0] == '/') {
        snprintf(buf, sizeof buf, "%s", path);
    } else if (dirfd == AT_FDCWD) {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) return NULL;
        snprintf(buf, sizeof buf, "%s/%s", cwd, path);
    } else if (dirfd >= 0 && dirfd < MAXFD && fdpath[dirfd]) {
        snprintf(buf, sizeof buf, "%s/%s", fdpath[dirfd], path);
    } else {
        return NULL;
    }
    if (strncmp(buf, root, rootlen) != 0 || (buf[rootlen] != '/' && buf[rootlen] != 0)) return NULL;
    return strdup(buf);
}

static const char *tracked(int fd) { return (logfd >= 0 && fd >= 0 && fd < MAXFD) ? fdpath[fd] : NULL; }

static int do_open(int dirfd, const char *path, int flags, mode_t mode, int at, int big) {
    char *abs = resolve(dirfd, path);
    if (!abs) {
        if (at) return big ? r_openat64(dirfd, path, flags, mode) : r_openat(dirfd, path, flags, mode);
        return big ? r_open64(path, flags, mode) : r_open(path, flags, mode);
    }
    pthread_mutex_lock(&mu);
    struct stat st;
    int existed = stat(abs, &st) == 0;
    int fd = at ? (big ? r_openat64(dirfd, path, flags, mode) : r_openat(dirfd, path, flags, mode))
                : (big ? r_open64(path, flags, mode) : r_open(path, flags, mode));
    if (fd >= 0 && fd < MAXFD) {
        if (!existed && (flags & O_CREAT)) record(K_CREATE, abs, 0, 0, NULL, 0);
        else if (existed && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) record(K_TRUNC, abs, 0, 0, NULL, 0);
        free(fdpath[fd]);
        fdpath[fd] = abs;
    } else {
        free(abs);
    }
    pthread_mutex_unlock(&mu);
    return fd;
}

#define MODE_ARG                                                                                                 \
    mode_t mode = 0;                                                                                             \
    if (flags & (O_CREAT | __O_TMPFILE)) {                                                                       \
        va_list ap;                                                                                              \
        va_start(ap, flags);                                                                                     \
        mode = va_arg(ap, mode_t);                                                                               \
        va_end(ap);                                                                                              \
    }

int open(const char *path, int flags, ...) { MODE_ARG return do_open(AT_FDCWD, path, flags, mode, 0, 0); }
int open64(const char *path, int flags, ...) { MODE_ARG return do_open(AT_FDCWD, path, flags, mode, 0, 1); }
int openat(int d, const char *path, int flags, ...) { MODE_ARG return do_open(d, path, flags, mode, 1, 0); }
int openat64(int d, const char *path, int flags, ...) { MODE_ARG return do_open(d, path, flags, mode, 1, 1); }

int close(int fd) {
    if (fd >= 0 && fd < MAXFD && fdpath[fd]) {
        pthread_mutex_lock(&mu);
        free(fdpath[fd]);
        fdpath[fd] = NULL;
        pthread_mutex_unlock(&mu);
    }
    return r_close(fd);
}

static ssize_t wrote(int fd, const char *p, off_t off, ssize_t n) {
    if (n > 0) record(K_WRITE, fdpath[fd], (uint64_t)off, 0, p, (uint32_t)n);
    return n;
}

ssize_t write(int fd, const void *b, size_t n) {
    if (!tracked(fd)) return r_write(fd, b, n);
    pthread_mutex_lock(&mu);
    off_t off = lseek(fd, 0, SEEK_CUR);
    if (fcntl(fd, F_GETFL) & O_APPEND) off = lseek(fd, 0, SEEK_END);
    ssize_t r = wrote(fd, b, off, r_write(fd, b, n));
    pthread_mutex_unlock(&mu);
    return r;
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t off) {
    if (!tracked(fd)) return r_pwrite(fd, b, n, off);
    pthread_mutex_lock(&mu);
    ssize_t r = wrote(fd, b, off, r_pwrite(fd, b, n, off));
    pthread_mutex_unlock(&mu);
    return r;
}

ssize_t pwrite64(int fd, const void *b, size_t n, off_t off) {
    if (!tracked(fd)) return r_pwrite64(fd, b, n, off);
    pthread_mutex_lock(&mu);
    ssize_t r = wrote(fd, b, off, r_pwrite64(fd, b, n, off));
    pthread_mutex_unlock(&mu);
    return r;
}

static char *gather(const struct iovec *iov, int cnt, size_t *len) {
    size_t n = 0;
    for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
    char *b = malloc(n ? n : 1);
    if (!b) abort();
    size_t at = 0;
    for (int i = 0; i < cnt; i++) {
        memcpy(b + at, iov[i].iov_base, iov[i].iov_len);
        at += iov[i].iov_len;
    }
    *len = n;
    return b;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    if (!tracked(fd)) return r_writev(fd, iov, cnt);
    size_t n;
    char *b = gather(iov, cnt, &n);
    pthread_mutex_lock(&mu);
    off_t off = lseek(fd, 0, SEEK_CUR);
    if (fcntl(fd, F_GETFL) & O_APPEND) off = lseek(fd, 0, SEEK_END);
    ssize_t r = wrote(fd, b, off, r_write(fd, b, n));
    pthread_mutex_unlock(&mu);
    free(b);
    return r;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
    if (!tracked(fd)) return r_pwritev(fd, iov, cnt, off);
    size_t n;
    char *b = gather(iov, cnt, &n);
    pthread_mutex_lock(&mu);
    ssize_t r = wrote(fd, b, off, r_pwrite(fd, b, n, off));
    pthread_mutex_unlock(&mu);
    free(b);
    return r;
}

static int synced(int fd, int r) {
    if (r == 0) record(K_FSYNC, fdpath[fd], 0, 0, NULL, 0);
    return r;
}

int fsync(int fd) {
    if (!tracked(fd)) return r_fsync(fd);
    pthread_mutex_lock(&mu);
    int r = synced(fd, r_fsync(fd));
    pthread_mutex_unlock(&mu);
    return r;
}

int fdatasync(int fd) {
    if (!tracked(fd)) return r_fdatasync(fd);
    pthread_mutex_lock(&mu);
    int r = synced(fd, r_fdatasync(fd));
    pthread_mutex_unlock(&mu);
    return r;
}

int sync_file_range(int fd, off_t off, off_t n, unsigned int flags) {
    if (!tracked(fd)) return r_sync_file_range(fd, off, n, flags);
    pthread_mutex_lock(&mu);
    int r = r_sync_file_range(fd, off, n, flags);
    if (r == 0) record(K_SRANGE, fdpath[fd], (uint64_t)off, (uint64_t)n, NULL, 0);
    pthread_mutex_unlock(&mu);
    return r;
}

static int truncated(int fd, off_t len, int r) {
    if (r == 0) record(K_TRUNC, fdpath[fd], (uint64_t)len, 0, NULL, 0);
    return r;
}

int ftruncate(int fd, off_t len) {
    if (!tracked(fd)) return r_ftruncate(fd, len);
    pthread_mutex_lock(&mu);
    int r = truncated(fd, len, r_ftruncate(fd, len));
    pthread_mutex_unlock(&mu);
    return r;
}

int ftruncate64(int fd, off_t len) {
    if (!tracked(fd)) return r_ftruncate64(fd, len);
    pthread_mutex_lock(&mu);
    int r = truncated(fd, len, r_ftruncate64(fd, len));
    pthread_mutex_unlock(&mu);
    return r;
}

static int do_rename(int od, const char *from, int nd, const char *to) {
    char *a = resolve(od, from), *b = resolve(nd, to);
    if (!a && !b) return r_renameat(od, from, nd, to);
    pthread_mutex_lock(&mu);
    int r = r_renameat(od, from, nd, to);
    if (r == 0) {
        if (a && b) record(K_RENAME, a, 0, 0, b, (uint32_t)strlen(b));
        else if (a) record(K_UNLINK, a, 0, 0, NULL, 0);
        else record(K_CREATE, b, 1, 0, NULL, 0); /* moved in from outside: content unknown, flagged */
    }
    pthread_mutex_unlock(&mu);
    free(a);
    free(b);
    return r;
}

int rename(const char *from, const char *to) { return do_rename(AT_FDCWD, from, AT_FDCWD, to); }
int renameat(int od, const char *from, int nd, const char *to) { return do_rename(od, from, nd, to); }

static int do_unlink(int d, const char *path, int flags) {
    char *a = resolve(d, path);
    if (!a) return r_unlinkat(d, path, flags);
    pthread_mutex_lock(&mu);
    int r = r_unlinkat(d, path, flags);
    if (r == 0) record(K_UNLINK, a, 0, 0, NULL, 0);
    pthread_mutex_unlock(&mu);
    free(a);
    return r;
}

int unlink(const char *path) { return do_unlink(AT_FDCWD, path, 0); }
int unlinkat(int d, const char *path, int flags) { return do_unlink(d, path, flags); }
int rmdir(const char *path) { return do_unlink(AT_FDCWD, path, AT_REMOVEDIR); }

int mkdir(const char *path, mode_t mode) {
    char *a = resolve(AT_FDCWD, path);
    if (!a) return r_mkdir(path, mode);
    pthread_mutex_lock(&mu);
    int r = r_mkdir(path, mode);
    if (r == 0) record(K_MKDIR, a, 0, 0, NULL, 0);
    pthread_mutex_unlock(&mu);
    free(a);
    return r;
}
