/*
 * GPU busy time and kernel launches of a whole process, from CUPTI's activity records (kernel
 * start and end times as the GPU recorded them; nothing is synchronised or serialised, unlike
 * CubeCL's profiling logger). Loaded into any CUDA program through CUDA's injection hook:
 *
 *   gcc -shared -fPIC -O2 bench/cupti_busy.c -I$CUDA/include -I$CUDA/extras/CUPTI/include \
 *       -L<dir of libcupti> -lcupti -o /tmp/libbusy.so
 *   CUDA_INJECTION64_PATH=/tmp/libbusy.so CUPTI_BUSY_OUT=/tmp/busy.json prunelab bench train ...
 *
 * At exit it writes one JSON object to $CUPTI_BUSY_OUT (default stderr): kernels, memcpy and
 * memset operations, the summed kernel time, the busy time (the union of kernel, memcpy and
 * memset intervals: time the GPU had work), and the span from the first start to the last end.
 * Per-step figures come from two runs of different lengths (their difference cancels start-up,
 * warm-up and evaluation): bench/device.sh does that.
 *
 * Phases: a program may call `cupti_busy_phase(name)` (exported; prunelab does with
 * PRUNELAB_PHASES=1, bench/torch_bench.py too) after waiting for the device. Every record
 * completed since the previous call is then counted for the phase that call named, and the JSON
 * gains "phases": per name, how often it was entered and its kernels, memcpys, memsets and
 * kernel time. Records before the first call count for "start".
 *
 * Kernels by name: the JSON's "by_name" lists the TOP kernel names (by summed time) with their
 * launches and summed time, over the whole process (the difference of two runs gives them per
 * step, as above).
 */
#include <cupti.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { uint64_t start, end; } span;

static span *spans;
static size_t n_spans, cap_spans;
static uint64_t kernels, memcpys, memsets, kernel_ns;
/* The counters above are written by CUPTI's delivery thread and read by phase marks. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

#define MAX_PHASES 32
typedef struct { char name[32]; uint64_t entries, kernels, memcpys, memsets, kernel_ns; } phase;
static phase phases[MAX_PHASES] = {{"start", 1, 0, 0, 0, 0}};
static int n_phases = 1, current;
/* The counters when the current phase was entered. */
static uint64_t at_kernels, at_memcpys, at_memsets, at_kernel_ns;

/* Kernel time by name: an open-addressing table keyed by CUPTI's name pointer (shared by every
 * record of one kernel); equal names behind different pointers are merged in the report. */
#define NAME_SLOTS 8192
#define TOP 50
typedef struct { const char *name; uint64_t count, ns; } named;
static named by_name[NAME_SLOTS];

static void add_named(const char *name, uint64_t ns) {
  if (!name) return;
  size_t i = ((uintptr_t)name >> 3) % NAME_SLOTS;
  for (size_t probe = 0; probe < NAME_SLOTS; probe++, i = (i + 1) % NAME_SLOTS) {
    if (by_name[i].name == name || !by_name[i].name) {
      by_name[i].name = name;
      by_name[i].count++;
      by_name[i].ns += ns;
      return;
    }
  }
}

static void add(uint64_t start, uint64_t end) {
  if (end <= start) return;
  if (n_spans == cap_spans) {
    cap_spans = cap_spans ? 2 * cap_spans : 1 << 20;
    spans = realloc(spans, cap_spans * sizeof(span));
    if (!spans) { fprintf(stderr, "cupti_busy: out of memory\n"); exit(1); }
  }
  spans[n_spans++] = (span){start, end};
}

/* Every kernel, memcpy and memset record (every version of their structs since CUDA 9) starts
 * with the kind and 12 more bytes, then `uint64_t start, end`: read them at those offsets, so
 * this builds against any CUPTI whatever version of the structs its header names. */
static void times(const CUpti_Activity *record, uint64_t *start, uint64_t *end) {
  memcpy(start, (const uint8_t *)record + 16, 8);
  memcpy(end, (const uint8_t *)record + 24, 8);
}

/* The kernel's name: at byte 104 of every kernel record version since CUpti_ActivityKernel4
 * (after the grid, block, memory and correlation fields and the 8-byte grid id). */
static const char *kernel_name(const CUpti_Activity *record) {
  const char *name;
  memcpy(&name, (const uint8_t *)record + 104, sizeof name);
  return name;
}

static void CUPTIAPI requested(uint8_t **buffer, size_t *size, size_t *max_records) {
  *size = 8 << 20;
  *buffer = aligned_alloc(8, *size);
  *max_records = 0;
}

static void CUPTIAPI completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size, size_t valid) {
  (void)ctx; (void)stream; (void)size;
  CUpti_Activity *record = NULL;
  pthread_mutex_lock(&lock);
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    uint64_t start, end;
    switch (record->kind) {
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      case CUPTI_ACTIVITY_KIND_KERNEL:
        times(record, &start, &end);
        kernels++;
        kernel_ns += end - start;
        add(start, end);
        add_named(kernel_name(record), end > start ? end - start : 0);
        break;
      case CUPTI_ACTIVITY_KIND_MEMCPY:
        times(record, &start, &end);
        memcpys++;
        add(start, end);
        break;
      case CUPTI_ACTIVITY_KIND_MEMSET:
        times(record, &start, &end);
        memsets++;
        add(start, end);
        break;
      default:
        break;
    }
  }
  pthread_mutex_unlock(&lock);
  free(buffer);
}

/* Count what was completed since the current phase was entered for it (under `lock`). */
static void settle(void) {
  phase *p = &phases[current];
  p->kernels += kernels - at_kernels;
  p->memcpys += memcpys - at_memcpys;
  p->memsets += memsets - at_memsets;
  p->kernel_ns += kernel_ns - at_kernel_ns;
  at_kernels = kernels, at_memcpys = memcpys, at_memsets = memsets, at_kernel_ns = kernel_ns;
}

/* Enter phase `name`: the caller has waited for the device, so every record of the phase it
 * leaves is complete; a forced flush delivers them before they are counted. */
__attribute__((visibility("default"))) void cupti_busy_phase(const char *name) {
  cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  pthread_mutex_lock(&lock);
  settle();
  int i = 0;
  while (i < n_phases && strncmp(phases[i].name, name, sizeof phases[i].name - 1) != 0) i++;
  if (i == n_phases && n_phases < MAX_PHASES) {
    snprintf(phases[i].name, sizeof phases[i].name, "%s", name);
    n_phases++;
  }
  if (i < n_phases) {
    current = i;
    phases[i].entries++;
  }
  pthread_mutex_unlock(&lock);
}

static int by_start(const void *a, const void *b) {
  const span *x = a, *y = b;
  return (x->start > y->start) - (x->start < y->start);
}

static int by_time(const void *a, const void *b) {
  const named *x = a, *y = b;
  return (x->ns < y->ns) - (x->ns > y->ns);
}

/* The TOP names by summed time, as a JSON list (equal names merged; quotes and backslashes in a
 * name dropped). */
static void report_names(FILE *out) {
  static named merged[NAME_SLOTS];
  size_t n = 0;
  for (size_t i = 0; i < NAME_SLOTS; i++) {
    if (!by_name[i].name) continue;
    size_t j = 0;
    while (j < n && strcmp(merged[j].name, by_name[i].name) != 0) j++;
    if (j == n) merged[n++] = (named){by_name[i].name, 0, 0};
    merged[j].count += by_name[i].count;
    merged[j].ns += by_name[i].ns;
  }
  qsort(merged, n, sizeof(named), by_time);
  fprintf(out, "[");
  for (size_t i = 0; i < n && i < TOP; i++) {
    fprintf(out, "%s{\"name\": \"", i ? ", " : "");
    for (const char *c = merged[i].name; *c && c - merged[i].name < 200; c++)
      if (*c != '"' && *c != '\\' && (unsigned char)*c >= 32) fputc(*c, out);
    fprintf(out, "\", \"count\": %llu, \"ms\": %.3f}", (unsigned long long)merged[i].count, merged[i].ns / 1e6);
  }
  fprintf(out, "]");
}

static void report(void) {
  cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  pthread_mutex_lock(&lock);
  settle();
  qsort(spans, n_spans, sizeof(span), by_start);
  uint64_t busy = 0, first = n_spans ? spans[0].start : 0, last = 0, open_start = 0, open_end = 0;
  for (size_t i = 0; i < n_spans; i++) {
    if (spans[i].end > last) last = spans[i].end;
    if (i == 0 || spans[i].start > open_end) {
      busy += open_end - open_start;
      open_start = spans[i].start;
      open_end = spans[i].end;
    } else if (spans[i].end > open_end) {
      open_end = spans[i].end;
    }
  }
  busy += open_end - open_start;
  const char *path = getenv("CUPTI_BUSY_OUT");
  FILE *out = path ? fopen(path, "w") : stderr;
  if (!out) out = stderr;
  fprintf(out,
          "{\"kernels\": %llu, \"memcpys\": %llu, \"memsets\": %llu, \"kernel_ms\": %.3f, \"busy_ms\": %.3f, "
          "\"span_ms\": %.3f, \"phases\": {",
          (unsigned long long)kernels, (unsigned long long)memcpys, (unsigned long long)memsets, kernel_ns / 1e6,
          busy / 1e6, n_spans ? (last - first) / 1e6 : 0.0);
  for (int i = 0; i < n_phases; i++) {
    const phase *p = &phases[i];
    fprintf(out, "%s\"%s\": {\"entries\": %llu, \"kernels\": %llu, \"memcpys\": %llu, \"memsets\": %llu, \"kernel_ms\": %.3f}",
            i ? ", " : "", p->name, (unsigned long long)p->entries, (unsigned long long)p->kernels,
            (unsigned long long)p->memcpys, (unsigned long long)p->memsets, p->kernel_ns / 1e6);
  }
  fprintf(out, "}, \"by_name\": ");
  report_names(out);
  fprintf(out, "}\n");
  if (out != stderr) fclose(out);
  pthread_mutex_unlock(&lock);
}

int InitializeInjection(void) {
  if (cuptiActivityRegisterCallbacks(requested, completed) != CUPTI_SUCCESS) return 0;
  cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY);
  cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET);
  atexit(report);
  return 1;
}
