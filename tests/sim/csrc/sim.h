/* Shared declarations of the Linux simulator (test equipment, never shipped). */
#ifndef ARCBOX_VZ_SIM_H
#define ARCBOX_VZ_SIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct dispatch_queue_s *dispatch_queue_t;
typedef void (*dispatch_function_t)(void *);
typedef uint64_t dispatch_time_t;
#define DISPATCH_TIME_NOW ((dispatch_time_t)0)
#define DISPATCH_TIME_FOREVER (~(dispatch_time_t)0)
#define NSEC_PER_MSEC 1000000ull

/* libdispatch subset (dispatch.c). */
dispatch_queue_t dispatch_queue_create(const char *label, const void *attr);
void dispatch_async_f(dispatch_queue_t q, void *ctx, dispatch_function_t fn);
void dispatch_sync_f(dispatch_queue_t q, void *ctx, dispatch_function_t fn);
void dispatch_after_f(dispatch_time_t when, dispatch_queue_t q, void *ctx, dispatch_function_t fn);
dispatch_time_t dispatch_time(dispatch_time_t when, int64_t delta);
void dispatch_retain(void *obj);
void dispatch_release(void *obj);

/* Simulator-only helpers (dispatch.c). */
int sim_on_queue(dispatch_queue_t q);
/* Aborts like VZ's dispatch_assert_queue when the caller is not on `q`. */
void sim_assert_queue(dispatch_queue_t q, const char *what);
/* Runs fn(ctx) on q after `ms` milliseconds. */
void sim_after_ms(dispatch_queue_t q, uint64_t ms, void *ctx, dispatch_function_t fn);
/* Work items run so far, on the queues labelled `label` (all when NULL), and of those
 * the timers; and on any queue, the items whose function is `fn`. */
void sim_dispatch_work(const char *label, long *items, long *timers);
long sim_dispatch_runs_of(dispatch_function_t fn);

/* The main queue (dispatch.c): serviced only by sim_main_queue_run_one, which the
 * fake -[NSApplication run] calls on the main thread. */
extern struct dispatch_queue_s _dispatch_main_q;
void sim_main_queue_run_one(void);

/* Autorelease pool entry points (runtime_shims.m). */
void *objc_autoreleasePoolPush(void);
void objc_autoreleasePoolPop(void *pool);

/* Aborts the process with a message prefixed by "arcbox-vz-sim". */
__attribute__((noreturn, format(printf, 1, 2))) void sim_fatal(const char *fmt, ...);

/* The seeded scheduler (sim_schedule.c): a value in [0, n), drawn from the stream
 * ARCBOX_VZ_SIM_SEED starts; the seed; restarting the stream (every scenario). */
uint64_t sim_choose(uint64_t n);
uint64_t sim_seed(void);
void sim_schedule_reset(void);

/* The macOS release the simulator plays, as major * 100 + minor (sim_macos.c). */
int sim_macos(void);
int sim_macos_at_least(int major, int minor);

#endif
