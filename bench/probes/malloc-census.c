/*
 * LD_PRELOAD shim for bench/probes/malloc-census.mjs: counts glibc malloc calls by usable size
 * (16-byte bins), live and cumulative, and writes both tables to $MC_DIR/dump-PID-TIME.txt on SIGUSR2
 * ("size live total" per line). MC_TRACE=SIZE writes the native stack of up to six allocations of
 * that bin, made from the sixth second on, to $MC_DIR/bt-PID.txt (c++filt makes them readable).
 * Built by the probe: gcc -O2 -shared -fPIC -o malloc-census.so malloc-census.c
 */
#define _GNU_SOURCE
#include <execinfo.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define BINS (1 << 16)
static long live[BINS + 1], total[BINS + 1];
static const char *dir = "/tmp";
static long want;
static time_t t0;
static int shots;
static __thread int tracing;

static inline unsigned bin(void *p) {
  size_t u = malloc_usable_size(p) / 16;
  return u > BINS ? BINS : (unsigned)u;
}
static inline void add(void *p) {
  if (!p) return;
  unsigned b = bin(p);
  __atomic_add_fetch(&live[b], 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&total[b], 1, __ATOMIC_RELAXED);
}
static inline void del(void *p) {
  if (p) __atomic_sub_fetch(&live[bin(p)], 1, __ATOMIC_RELAXED);
}
static void trace(void *p) {
  if (!want || tracing || shots >= 6 || !p || (long)bin(p) * 16 != want || time(NULL) < t0 + 6) return;
  tracing = 1;
  shots++;
  char f[512];
  snprintf(f, sizeof f, "%s/bt-%d.txt", dir, getpid());
  int fd = open(f, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    void *frames[40];
    int n = backtrace(frames, 40);
    (void)!write(fd, "----\n", 5);
    backtrace_symbols_fd(frames, n, fd);
    close(fd);
  }
  tracing = 0;
}
static void dump(int sig) {
  (void)sig;
  char f[512];
  snprintf(f, sizeof f, "%s/dump-%d-%ld.txt", dir, getpid(), (long)time(NULL));
  FILE *o = fopen(f, "w");
  if (!o) return;
  for (unsigned i = 0; i <= BINS; i++)
    if (live[i] || total[i]) fprintf(o, "%u %ld %ld\n", i * 16, live[i], total[i]);
  fclose(o);
}
__attribute__((constructor)) static void init(void) {
  signal(SIGUSR2, dump);
  if (getenv("MC_DIR")) dir = getenv("MC_DIR");
  if (getenv("MC_TRACE")) want = atol(getenv("MC_TRACE"));
  t0 = time(NULL);
}

void *malloc(size_t s) { void *p = __libc_malloc(s); add(p); trace(p); return p; }
void *calloc(size_t a, size_t b) { void *p = __libc_calloc(a, b); add(p); trace(p); return p; }
void *realloc(void *q, size_t s) {
  del(q);
  void *p = __libc_realloc(q, s);
  if (!p && q && s) add(q); else add(p);
  return p;
}
void free(void *p) { del(p); __libc_free(p); }
void *memalign(size_t a, size_t s) { void *p = __libc_memalign(a, s); add(p); return p; }
int posix_memalign(void **r, size_t a, size_t s) {
  void *p = __libc_memalign(a, s);
  if (!p) return 12;
  add(p);
  *r = p;
  return 0;
}
void *aligned_alloc(size_t a, size_t s) { void *p = __libc_memalign(a, s); add(p); return p; }
