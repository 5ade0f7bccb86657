/* A lower bound for the fast path's training use, in C: n fused sweeps and W / sigma over a
 * weight of `rows` stored rows of `cols` f32, with AVX2 + FMA, W and the output on a cache
 * line, and threads that live for the whole run and meet at a spin barrier (no fork-join per
 * sweep). It mirrors `sweep_stored_rows` in crates/spectral-norm/src/flex/power.rs (four rows
 * at a time: their dots with x, then their sum into y) and `divide_into` below 32 MiB
 * (ordinary stores). For `dim = 0` the library makes n + 1 sweeps where this makes n, so
 * there it is a bound on a cheaper use than ours. It checks nothing: it only times.
 *
 *   gcc -O2 -mavx2 -mfma -o fused_use fused_use.c -lpthread -lm
 *   ./fused_use ROWS COLS THREADS N      # lin1024: 1024 1024; conv512 (dim 0): 512 4608
 *
 * Prints the median of 200 uses, timed on thread 0 from a barrier to a barrier. */
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define USES 200
#define MAX_THREADS 64

static int rows, cols, threads, steps;
static float *w, *out, *x, *partial[MAX_THREADS];
static double times[USES];
static atomic_int arrived, generation;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void barrier(void) {
    int g = atomic_load(&generation);
    if (atomic_fetch_add(&arrived, 1) == threads - 1) {
        atomic_store(&arrived, 0);
        atomic_fetch_add(&generation, 1);
    } else {
        while (atomic_load(&generation) == g) _mm_pause();
    }
}

static float hsum(__m256 v) {
    float t[8];
    _mm256_storeu_ps(t, v);
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}

/* y = sum over stored rows r in [r0, r1) of (r . x) r; rows taken four at a time. */
static void sweep(int r0, int r1, float *y) {
    memset(y, 0, sizeof(float) * cols);
    for (int r = r0; r + 4 <= r1; r += 4) {
        const float *a = w + (size_t)r * cols, *b = a + cols, *c = b + cols, *d = c + cols;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int j = 0; j < cols; j += 8) {
            __m256 xv = _mm256_load_ps(x + j);
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), xv, s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(b + j), xv, s1);
            s2 = _mm256_fmadd_ps(_mm256_loadu_ps(c + j), xv, s2);
            s3 = _mm256_fmadd_ps(_mm256_loadu_ps(d + j), xv, s3);
        }
        __m256 z0 = _mm256_set1_ps(hsum(s0)), z1 = _mm256_set1_ps(hsum(s1));
        __m256 z2 = _mm256_set1_ps(hsum(s2)), z3 = _mm256_set1_ps(hsum(s3));
        for (int j = 0; j < cols; j += 8) {
            __m256 yv = _mm256_load_ps(y + j);
            yv = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), z0, yv);
            yv = _mm256_fmadd_ps(_mm256_loadu_ps(b + j), z1, yv);
            yv = _mm256_fmadd_ps(_mm256_loadu_ps(c + j), z2, yv);
            yv = _mm256_fmadd_ps(_mm256_loadu_ps(d + j), z3, yv);
            _mm256_store_ps(y + j, yv);
        }
    }
}

static void divide(size_t from, size_t to, float sigma) {
    __m256 s = _mm256_set1_ps(sigma);
    for (size_t i = from; i < to; i += 8)
        _mm256_store_ps(out + i, _mm256_div_ps(_mm256_load_ps(w + i), s));
}

static void *worker(void *arg) {
    int id = (int)(size_t)arg;
    /* Whole groups of four rows per thread. */
    int groups = rows / 4, r0 = 4 * (groups * id / threads), r1 = 4 * (groups * (id + 1) / threads);
    for (int use = 0; use < USES; use++) {
        barrier();
        double start = now();
        for (int k = 0; k < steps; k++) {
            sweep(r0, r1, partial[id]);
            barrier();
            if (id == 0) { /* x = y / ||y|| */
                double norm = 0;
                for (int j = 0; j < cols; j++) {
                    float v = 0;
                    for (int t = 0; t < threads; t++) v += partial[t][j];
                    x[j] = v;
                    norm += (double)v * v;
                }
                float scale = norm > 0 ? (float)(1.0 / __builtin_sqrt(norm)) : 1.0f;
                for (int j = 0; j < cols; j++) x[j] *= scale;
            }
            barrier();
        }
        divide((size_t)r0 * cols, (size_t)r1 * cols, 1.5f);
        barrier();
        if (id == 0) times[use] = now() - start;
    }
    return NULL;
}

static float *aligned_floats(size_t n) {
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!p) { perror("aligned_alloc"); exit(1); }
    return p;
}

static int by_value(const void *a, const void *b) {
    double d = *(const double *)a - *(const double *)b;
    return (d > 0) - (d < 0);
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: %s ROWS COLS THREADS N\n", argv[0]); return 2; }
    rows = atoi(argv[1]), cols = atoi(argv[2]), threads = atoi(argv[3]), steps = atoi(argv[4]);
    if (rows < 4 || rows % 4 || cols < 8 || cols % 8 || threads < 1 || threads > MAX_THREADS || steps < 0) {
        fprintf(stderr, "ROWS a multiple of 4, COLS of 8, 1 <= THREADS <= %d, N >= 0\n", MAX_THREADS);
        return 2;
    }
    size_t len = (size_t)rows * cols;
    w = aligned_floats(len), out = aligned_floats(len), x = aligned_floats(cols);
    for (size_t i = 0; i < len; i++) w[i] = (float)(i % 7) * 1e-3f;
    memset(out, 0, len * sizeof(float));
    for (int j = 0; j < cols; j++) x[j] = 1.0f;
    for (int t = 0; t < threads; t++) partial[t] = aligned_floats(cols);
    pthread_t helpers[MAX_THREADS];
    for (int t = 1; t < threads; t++) pthread_create(&helpers[t], NULL, worker, (void *)(size_t)t);
    worker((void *)0);
    for (int t = 1; t < threads; t++) pthread_join(helpers[t], NULL);
    qsort(times, USES, sizeof(double), by_value);
    printf("%d x %d, %d thread(s), n = %d: median use %.1f us (fastest %.1f us)\n", rows, cols,
           threads, steps, times[USES / 2] * 1e6, times[0] * 1e6);
    return 0;
}
