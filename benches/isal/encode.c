/* Reference ceiling for the codec bench: Intel ISA-L encode throughput, single thread.
 * Same shapes as benches/codec.rs: k+m in {4+2, 6+3, 10+4, 17+3}, 1 MiB pieces.
 * Prints "k+m GB/s" (GB = 1e9 bytes of data in), the median of 7 timed runs.
 * Build and run: benches/isal/run.sh */
#include <isa-l/erasure_code.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    const int shapes[][2] = {{4, 2}, {6, 3}, {10, 4}, {17, 3}};
    const size_t len = 1 << 20;
    for (int s = 0; s < 4; s++) {
        int k = shapes[s][0], m = shapes[s][1];
        unsigned char *matrix = malloc((k + m) * k), *tables = malloc(32 * k * m);
        unsigned char *data[32], *parity[32];
        for (int i = 0; i < k; i++) {
            data[i] = malloc(len);
            for (size_t j = 0; j < len; j++) data[i][j] = (unsigned char)rand();
        }
        for (int i = 0; i < m; i++) parity[i] = malloc(len);
        gf_gen_cauchy1_matrix(matrix, k + m, k);
        ec_init_tables(k, m, &matrix[k * k], tables);
        double rates[7];
        for (int r = 0; r < 7; r++) {
            int iters = 0;
            double t0 = now(), t;
            do {
                ec_encode_data(len, k, m, tables, data, parity);
                iters++;
            } while ((t = now()) - t0 < 0.3);
            rates[r] = (double)iters * k * len / (t - t0) / 1e9;
        }
        qsort(rates, 7, sizeof(double), cmp);
        printf("%d+%d %.2f\n", k, m, rates[3]);
        for (int i = 0; i < k; i++) free(data[i]);
        for (int i = 0; i < m; i++) free(parity[i]);
        free(matrix);
        free(tables);
    }
    return 0;
}
