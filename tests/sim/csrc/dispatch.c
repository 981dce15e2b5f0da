/*
 * A small libdispatch: serial queues only, one pthread per queue.
 *
 * What it keeps from the real thing:
 * - FIFO execution of async work on the queue's own thread, dispatch_after_f timers;
 * - pending work retains the queue, so a released queue drains before it dies;
 * - dispatch_queue_set_specific / dispatch_get_specific;
 * - autorelease frequency WORK_ITEM wraps each async item in a pool, INHERIT does not;
 * - dispatch_sync_f onto the queue you are running on is a deadlock: here it aborts.
 *
 * Simulator additions: sim_assert_queue (VZ's dispatch_assert_queue trap),
 * sim_dispatch_quiesce, which joins finished queue threads so tests can count them,
 * and work counters (sim_dispatch_work, sim_dispatch_runs_of): every work item run,
 * by its queue's label and by its function, and which of them were timers
 * (dispatch_after_f), so a test can show that an idle process does no work.
 *
 * The main queue (`_dispatch_main_q`, what dispatch_get_main_queue() returns) has no
 * thread of its own: as on macOS, its work runs only when the main thread services
 * it, here the fake -[NSApplication run] (appkit.m) through sim_main_queue_run_one.
 * dispatch_after_f onto it is not modelled (aborts).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

struct item {
    dispatch_function_t fn;
    void *ctx;
    dispatch_time_t when;
    int timer; /* from dispatch_after_f */
    struct sync_wait *sync;
    struct item *next;
};

struct sync_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
};

struct specific {
    const void *key;
    void *ctx;
    dispatch_function_t destructor;
    struct specific *next;
};

struct queue_attr {
    unsigned long autorelease_frequency;
};

#define AUTORELEASE_INHERIT 0ul
#define AUTORELEASE_WORK_ITEM 1ul
#define AUTORELEASE_NEVER 2ul
static const struct queue_attr attrs[3] = { { 0 }, { 1 }, { 2 } };

struct dispatch_queue_s {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct item *head, *tail;  /* ready, FIFO */
    struct item *delayed;      /* sorted by `when` */
    long refs;                 /* external references + pending items */
    char *label;
    unsigned long autorelease_frequency;
    struct specific *specifics;
    struct label_work *work; /* its label's counters; set by its first item */
};

static __thread struct dispatch_queue_s *current_queue;

struct dispatch_queue_s _dispatch_main_q = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
    .refs = 1, /* never released */
    .label = "com.apple.main-thread",
};

/* sim_dispatch_hold: while held, no queue starts a new work item (tests use it to
 * line work up behind a busy queue deterministically). */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cond = PTHREAD_COND_INITIALIZER;
static int held;

void sim_dispatch_hold(int on)
{
    pthread_mutex_lock(&hold_lock);
    held = on;
    pthread_cond_broadcast(&hold_cond);
    pthread_mutex_unlock(&hold_lock);
}

static void wait_while_held(void)
{
    pthread_mutex_lock(&hold_lock);
    while (held) pthread_cond_wait(&hold_cond, &hold_lock);
    pthread_mutex_unlock(&hold_lock);
}

/* Queue threads that finished, waiting to be joined. */
static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t threads_cond = PTHREAD_COND_INITIALIZER;
static long live_queue_threads;
static pthread_t *finished;
static size_t finished_len, finished_cap;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

dispatch_time_t dispatch_time(dispatch_time_t when, int64_t delta)
{
    if (when == DISPATCH_TIME_FOREVER) return DISPATCH_TIME_FOREVER;
    uint64_t base = when == DISPATCH_TIME_NOW ? now_ns() : when;
    return delta < 0 ? base - (uint64_t)(-delta) : base + (uint64_t)delta;
}

const void *dispatch_queue_attr_make_with_autorelease_frequency(const void *attr,
                                                                unsigned long frequency)
{
    if (attr != NULL) sim_fatal("dispatch shim: only serial (NULL) base attributes exist");
    if (frequency > AUTORELEASE_NEVER) sim_fatal("bad autorelease frequency %lu", frequency);
    return &attrs[frequency];
}

/* Work counters. Items are counted as they start, so a timer counts when it fires.
 * Per label: a fixed table, looked up once per queue; per function: an open-addressing
 * table filled with compare-and-swap. Counting costs two atomic adds per item. */
struct label_work {
    char label[96];
    long items, timers;
};

#define LABEL_SLOTS 128
static struct label_work label_work[LABEL_SLOTS];
static size_t label_work_len;
static pthread_mutex_t label_work_lock = PTHREAD_MUTEX_INITIALIZER;

#define FUNCTION_SLOTS 1024
static uintptr_t function_keys[FUNCTION_SLOTS];
static long function_runs[FUNCTION_SLOTS];

static struct label_work *label_work_for(const char *label)
{
    pthread_mutex_lock(&label_work_lock);
    struct label_work *w = NULL;
    for (size_t i = 0; i < label_work_len && w == NULL; i++)
        if (strncmp(label_work[i].label, label, sizeof label_work[i].label - 1) == 0) w = &label_work[i];
    if (w == NULL) {
        if (label_work_len == LABEL_SLOTS) sim_fatal("dispatch shim: more than %d queue labels", LABEL_SLOTS);
        w = &label_work[label_work_len];
        snprintf(w->label, sizeof w->label, "%s", label);
        __atomic_store_n(&label_work_len, label_work_len + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&label_work_lock);
    return w;
}

static size_t function_slot(dispatch_function_t fn, int insert)
{
    uintptr_t key = (uintptr_t)fn;
    size_t i = (size_t)(key >> 4) % FUNCTION_SLOTS;
    for (size_t n = 0; n < FUNCTION_SLOTS; n++, i = (i + 1) % FUNCTION_SLOTS) {
        uintptr_t seen = __atomic_load_n(&function_keys[i], __ATOMIC_ACQUIRE);
        if (seen == 0) {
            if (!insert) return FUNCTION_SLOTS;
            if (__atomic_compare_exchange_n(&function_keys[i], &seen, key, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
                seen = key;
        }
        if (seen == key) return i;
    }
    if (insert) sim_fatal("dispatch shim: more than %d work functions", FUNCTION_SLOTS);
    return FUNCTION_SLOTS;
}

/* Runs on the queue's one thread (the main thread for the main queue), so `q->work`
 * needs no lock. */
static void count_item(struct dispatch_queue_s *q, const struct item *it)
{
    if (q->work == NULL) q->work = label_work_for(q->label);
    __atomic_add_fetch(&q->work->items, 1, __ATOMIC_RELAXED);
    if (it->timer) __atomic_add_fetch(&q->work->timers, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&function_runs[function_slot(it->fn, 1)], 1, __ATOMIC_RELAXED);
}

/* Work items run so far on the queues labelled `label` (every queue, the main queue
 * included, when NULL), and how many of them were timers. */
void sim_dispatch_work(const char *label, long *items, long *timers)
{
    *items = *timers = 0;
    size_t n = __atomic_load_n(&label_work_len, __ATOMIC_ACQUIRE);
    for (size_t i = 0; i < n; i++) {
        if (label != NULL && strncmp(label_work[i].label, label, sizeof label_work[i].label - 1) != 0)
            continue;
        *items += __atomic_load_n(&label_work[i].items, __ATOMIC_RELAXED);
        *timers += __atomic_load_n(&label_work[i].timers, __ATOMIC_RELAXED);
    }
}

/* Work items run so far, on any queue, whose function is `fn`. */
long sim_dispatch_runs_of(dispatch_function_t fn)
{
    size_t i = function_slot(fn, 0);
    return i == FUNCTION_SLOTS ? 0 : __atomic_load_n(&function_runs[i], __ATOMIC_RELAXED);
}

static void run_item(struct dispatch_queue_s *q, struct item *it)
{
    count_item(q, it);
    struct dispatch_queue_s *saved = current_queue;
    current_queue = q;
    int pool_per_item = it->sync == NULL && q->autorelease_frequency == AUTORELEASE_WORK_ITEM;
    void *pool = pool_per_item ? objc_autoreleasePoolPush() : NULL;
    it->fn(it->ctx);
    if (pool != NULL) objc_autoreleasePoolPop(pool);
    current_queue = saved;
    if (it->sync != NULL) {
        pthread_mutex_lock(&it->sync->lock);
        it->sync->done = 1;
        pthread_cond_signal(&it->sync->cond);
        pthread_mutex_unlock(&it->sync->lock);
    }
}

static void destroy_queue(struct dispatch_queue_s *q)
{
    struct specific *s = q->specifics;
    while (s != NULL) {
        struct specific *next = s->next;
        if (s->destructor != NULL) s->destructor(s->ctx);
        free(s);
        s = next;
    }
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
    free(q->label);
    free(q);
}

static void *queue_thread(void *arg)
{
    struct dispatch_queue_s *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        uint64_t now = now_ns();
        while (q->delayed != NULL && q->delayed->when <= now) {
            struct item *it = q->delayed;
            q->delayed = it->next;
            it->next = NULL;
            if (q->tail) q->tail->next = it; else q->head = it;
            q->tail = it;
        }
        if (q->head != NULL && q->head->sync == NULL && __atomic_load_n(&held, __ATOMIC_SEQ_CST)) {
            pthread_mutex_unlock(&q->lock);
            wait_while_held();
            pthread_mutex_lock(&q->lock);
            continue;
        }
        if (q->head != NULL) {
            struct item *it = q->head;
            q->head = it->next;
            if (q->head == NULL) q->tail = NULL;
            pthread_mutex_unlock(&q->lock);
            run_item(q, it);
            free(it);
            pthread_mutex_lock(&q->lock);
            q->refs--;
            continue;
        }
        if (q->refs == 0) break;
        if (q->delayed != NULL) {
            uint64_t when = q->delayed->when;
            struct timespec ts = { (time_t)(when / 1000000000ull), (long)(when % 1000000000ull) };
            pthread_cond_timedwait(&q->cond, &q->lock, &ts);
        } else {
            pthread_cond_wait(&q->cond, &q->lock);
        }
    }
    pthread_mutex_unlock(&q->lock);
    destroy_queue(q);

    pthread_mutex_lock(&threads_lock);
    if (finished_len == finished_cap) {
        finished_cap = finished_cap ? finished_cap * 2 : 16;
        finished = realloc(finished, finished_cap * sizeof *finished);
        if (finished == NULL) sim_fatal("out of memory");
    }
    finished[finished_len++] = pthread_self();
    live_queue_threads--;
    pthread_cond_broadcast(&threads_cond);
    pthread_mutex_unlock(&threads_lock);
    return NULL;
}

dispatch_queue_t dispatch_queue_create(const char *label, const void *attr)
{
    unsigned long frequency = AUTORELEASE_INHERIT;
    if (attr != NULL) {
        if ((const struct queue_attr *)attr < attrs || (const struct queue_attr *)attr > &attrs[2])
            sim_fatal("dispatch shim: unsupported queue attribute %p (serial queues only)", attr);
        frequency = ((const struct queue_attr *)attr)->autorelease_frequency;
    }
    struct dispatch_queue_s *q = calloc(1, sizeof *q);
    if (q == NULL) sim_fatal("out of memory");
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    q->refs = 1;
    q->label = strdup(label ? label : "");
    q->autorelease_frequency = frequency;

    pthread_mutex_lock(&threads_lock);
    live_queue_threads++;
    pthread_mutex_unlock(&threads_lock);
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, queue_thread, q);
    if (rc != 0) sim_fatal("pthread_create: %s", strerror(rc));
    return q;
}

const char *dispatch_queue_get_label(dispatch_queue_t q)
{
    if (q == NULL) q = current_queue;
    return q ? q->label : "";
}

void dispatch_retain(void *obj)
{
    struct dispatch_queue_s *q = obj;
    pthread_mutex_lock(&q->lock);
    if (q->refs <= 0) sim_fatal("dispatch_retain of a dead queue");
    q->refs++;
    pthread_mutex_unlock(&q->lock);
}

void dispatch_release(void *obj)
{
    struct dispatch_queue_s *q = obj;
    pthread_mutex_lock(&q->lock);
    if (q->refs <= 0) sim_fatal("dispatch_release of a dead queue (over-release)");
    q->refs--;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

static void enqueue(struct dispatch_queue_s *q, struct item *it)
{
    pthread_mutex_lock(&q->lock);
    if (q->refs <= 0) sim_fatal("work submitted to a released queue");
    q->refs++;
    if (it->when == DISPATCH_TIME_NOW) {
        if (q->tail) q->tail->next = it; else q->head = it;
        q->tail = it;
    } else {
        struct item **p = &q->delayed;
        while (*p != NULL && (*p)->when <= it->when) p = &(*p)->next;
        it->next = *p;
        *p = it;
    }
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

static struct item *new_item(dispatch_function_t fn, void *ctx, dispatch_time_t when)
{
    struct item *it = calloc(1, sizeof *it);
    if (it == NULL) sim_fatal("out of memory");
    it->fn = fn;
    it->ctx = ctx;
    it->when = when;
    return it;
}

void dispatch_async_f(dispatch_queue_t q, void *ctx, dispatch_function_t fn)
{
    enqueue(q, new_item(fn, ctx, DISPATCH_TIME_NOW));
}

void dispatch_after_f(dispatch_time_t when, dispatch_queue_t q, void *ctx, dispatch_function_t fn)
{
    if (q == &_dispatch_main_q) sim_fatal("dispatch shim: dispatch_after_f onto the main queue is not modelled");
    if (when == DISPATCH_TIME_FOREVER) return;
    struct item *it = new_item(fn, ctx, when == DISPATCH_TIME_NOW ? now_ns() : when);
    it->timer = 1;
    enqueue(q, it);
}

void sim_after_ms(dispatch_queue_t q, uint64_t ms, void *ctx, dispatch_function_t fn)
{
    dispatch_after_f(dispatch_time(DISPATCH_TIME_NOW, (int64_t)(ms * NSEC_PER_MSEC)), q, ctx, fn);
}

void dispatch_sync_f(dispatch_queue_t q, void *ctx, dispatch_function_t fn)
{
    if (current_queue == q)
        sim_fatal("dispatch_sync_f onto queue '%s' from that same queue: "
                  "real libdispatch deadlocks here", q->label);
    struct sync_wait wait = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
    struct item *it = new_item(fn, ctx, DISPATCH_TIME_NOW);
    it->sync = &wait;
    enqueue(q, it);
    pthread_mutex_lock(&wait.lock);
    while (!wait.done) pthread_cond_wait(&wait.cond, &wait.lock);
    pthread_mutex_unlock(&wait.lock);
}

void dispatch_queue_set_specific(dispatch_queue_t q, const void *key, void *ctx,
                                 dispatch_function_t destructor)
{
    pthread_mutex_lock(&q->lock);
    struct specific **p = &q->specifics;
    while (*p != NULL && (*p)->key != key) p = &(*p)->next;
    if (*p != NULL) {
        if ((*p)->destructor != NULL) (*p)->destructor((*p)->ctx);
        if (ctx == NULL) {
            struct specific *dead = *p;
            *p = dead->next;
            free(dead);
        } else {
            (*p)->ctx = ctx;
            (*p)->destructor = destructor;
        }
    } else if (ctx != NULL) {
        struct specific *s = calloc(1, sizeof *s);
        if (s == NULL) sim_fatal("out of memory");
        *s = (struct specific){ key, ctx, destructor, NULL };
        *p = s;
    }
    pthread_mutex_unlock(&q->lock);
}

void *dispatch_get_specific(const void *key)
{
    struct dispatch_queue_s *q = current_queue;
    if (q == NULL) return NULL;
    void *ctx = NULL;
    pthread_mutex_lock(&q->lock);
    for (struct specific *s = q->specifics; s != NULL; s = s->next)
        if (s->key == key) ctx = s->ctx;
    pthread_mutex_unlock(&q->lock);
    return ctx;
}

/* Waits for the next work item of the main queue and runs it, on the calling thread
 * (the fake NSApplication checks that it is the main thread). */
void sim_main_queue_run_one(void)
{
    struct dispatch_queue_s *q = &_dispatch_main_q;
    pthread_mutex_lock(&q->lock);
    while (q->head == NULL) pthread_cond_wait(&q->cond, &q->lock);
    struct item *it = q->head;
    q->head = it->next;
    if (q->head == NULL) q->tail = NULL;
    q->refs--;
    pthread_mutex_unlock(&q->lock);
    run_item(q, it);
    free(it);
}

int sim_on_queue(dispatch_queue_t q) { return q != NULL && current_queue == q; }

void sim_assert_queue(dispatch_queue_t q, const char *what)
{
    if (!sim_on_queue(q))
        sim_fatal("%s called off its virtual machine queue '%s' "
                  "(Virtualization.framework traps here: dispatch_assert_queue)",
                  what, q ? q->label : "(none)");
}

/*
 * Waits up to `timeout_ms` for every queue thread to finish and joins the finished
 * ones. Returns how many queue threads are still alive.
 */
long sim_dispatch_quiesce(long timeout_ms)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * NSEC_PER_MSEC;
    pthread_mutex_lock(&threads_lock);
    while (live_queue_threads > 0 && now_ns() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000;
        if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
        pthread_cond_timedwait(&threads_cond, &threads_lock, &ts);
    }
    long live = live_queue_threads;
    pthread_t *joinable = finished;
    size_t n = finished_len;
    finished = NULL;
    finished_len = finished_cap = 0;
    pthread_mutex_unlock(&threads_lock);
    for (size_t i = 0; i < n; i++) pthread_join(joinable[i], NULL);
    free(joinable);
    return live;
}

long sim_dispatch_live_queues(void)
{
    pthread_mutex_lock(&threads_lock);
    long live = live_queue_threads;
    pthread_mutex_unlock(&threads_lock);
    return live;
}
