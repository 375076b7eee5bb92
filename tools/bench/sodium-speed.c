/* libsodium's raw Ed25519 rates on this machine, the reference for datanet's signature
 * targets (BENCHMARKS.md): sign and verify on one core, and verify on every core (one thread
 * per core, each on its own signatures). C, so the figure owes nothing to datanet's code.
 *   cc -O2 -o sodium-speed tools/bench/sodium-speed.c -lsodium -lpthread
 *   sodium-speed [SECONDS] [MESSAGE_BYTES]        (defaults 2 and 256)
 * Prints one line per rate: "<what> <count>/s". */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { BATCH = 1024 };
static double seconds = 2.0;
static size_t message_bytes = 256;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* BATCH messages of message_bytes, each signed by one key. */
struct work {
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    unsigned char *messages;
    unsigned char sigs[BATCH][crypto_sign_BYTES];
    double rate;
};

static void prepare(struct work *w) {
    crypto_sign_keypair(w->pk, w->sk);
    w->messages = malloc(BATCH * message_bytes);
    randombytes_buf(w->messages, BATCH * message_bytes);
    for (int i = 0; i < BATCH; i++) {
        crypto_sign_detached(w->sigs[i], NULL, w->messages + i * message_bytes, message_bytes, w->sk);
    }
}

static void *verify_loop(void *arg) {
    struct work *w = arg;
    long n = 0;
    double start = now(), end = start + seconds;
    while (now() < end) {
        for (int i = 0; i < BATCH; i++) {
            if (crypto_sign_verify_detached(w->sigs[i], w->messages + i * message_bytes, message_bytes, w->pk) != 0) {
                fprintf(stderr, "verification failed\n");
                exit(1);
            }
        }
        n += BATCH;
    }
    w->rate = (double)n / (now() - start);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) seconds = atof(argv[1]);
    if (argc > 2) message_bytes = (size_t)atol(argv[2]);
    if (sodium_init() < 0) return 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    struct work *w = calloc((size_t)cores, sizeof *w);
    for (long c = 0; c < cores; c++) prepare(&w[c]);

    unsigned char sig[crypto_sign_BYTES];
    long n = 0;
    double start = now(), end = start + seconds;
    while (now() < end) {
        for (int i = 0; i < BATCH; i++) crypto_sign_detached(sig, NULL, w[0].messages + i * message_bytes, message_bytes, w[0].sk);
        n += BATCH;
    }
    printf("libsodium sign, 1 core: %.0f/s\n", (double)n / (now() - start));

    verify_loop(&w[0]);
    printf("libsodium verify, 1 core: %.0f/s\n", w[0].rate);

    pthread_t *t = calloc((size_t)cores, sizeof *t);
    for (long c = 0; c < cores; c++) pthread_create(&t[c], NULL, verify_loop, &w[c]);
    double total = 0;
    for (long c = 0; c < cores; c++) { pthread_join(t[c], NULL); total += w[c].rate; }
    printf("libsodium verify, %ld cores: %.0f/s\n", cores, total);
    return 0;
}
