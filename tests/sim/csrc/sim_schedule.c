/*
 * The seeded scheduler: every choice the fake framework makes where Apple leaves
 * things open (the order of a state change against its delegate call, how much later
 * a callback comes, on which thread a notification is posted, whether the framework
 * keeps an object alive across its own callback) is drawn from one pseudo-random
 * stream. ARCBOX_VZ_SIM_SEED=<u64> fixes the seed; without it a fresh one is chosen
 * and printed when a test fails (arcbox_vz_sim::scenario, sim_fatal). Every scenario
 * restarts the stream from the seed, so a seed replays a scenario's choices (thread
 * timing aside).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "sim.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t seed;
static uint64_t state;

static void choose_seed(void)
{
    const char *text = getenv("ARCBOX_VZ_SIM_SEED");
    if (text != NULL && *text != '\0') {
        char *end = NULL;
        unsigned long long value = strtoull(text, &end, 0);
        if (end == NULL || *end != '\0')
            sim_fatal("ARCBOX_VZ_SIM_SEED=%s: expected an unsigned 64-bit number", text);
        seed = value;
    } else {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        seed = ((uint64_t)now.tv_sec * 1000000007ull) ^ (uint64_t)now.tv_nsec ^ ((uint64_t)getpid() << 32);
    }
    state = seed;
}

uint64_t sim_seed(void)
{
    pthread_once(&once, choose_seed);
    return seed;
}

void sim_schedule_reset(void)
{
    pthread_once(&once, choose_seed);
    pthread_mutex_lock(&lock);
    state = seed;
    pthread_mutex_unlock(&lock);
}

/* splitmix64 */
static uint64_t next(void)
{
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t sim_choose(uint64_t n)
{
    pthread_once(&once, choose_seed);
    if (n <= 1) return 0;
    pthread_mutex_lock(&lock);
    uint64_t value = next() % n;
    pthread_mutex_unlock(&lock);
    return value;
}
