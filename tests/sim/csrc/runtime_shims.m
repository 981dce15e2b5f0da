/*
 * The Apple libobjc / libsystem_blocks entry points that GCC's runtime lacks,
 * the live-object and live-block counters, and the blocks-runtime self-check.
 */
#include <Foundation/Foundation.h>
#include <Block.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "sim.h"
#include "sim_objc.h"

void sim_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("arcbox-vz-sim: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fprintf(stderr, "arcbox-vz-sim: replay with ARCBOX_VZ_SIM_SEED=%llu ARCBOX_VZ_SIM_MACOS=%d.%d\n",
            (unsigned long long)sim_seed(), sim_macos() / 100, sim_macos() % 100);
    fflush(stderr);
    abort();
}

/* ---- Apple's ARC/MRR C entry points, over GNUstep's methods ---- */

id objc_retain(id obj) { return obj ? [obj retain] : nil; }
void objc_release(id obj) { if (obj) [obj release]; }
id objc_autorelease(id obj) { return obj ? [obj autorelease] : nil; }
id objc_retainAutoreleasedReturnValue(id obj) { return objc_retain(obj); }
void *objc_autoreleasePoolPush(void) { return [NSAutoreleasePool new]; }
void objc_autoreleasePoolPop(void *pool) { [(NSAutoreleasePool *)pool drain]; }
id objc_retainBlock(id block) { return (id)_Block_copy((const void *)block); }


/* ---- Live fake objects ---- */

static long live_objects; /* __atomic builtins: GCC's stdatomic.h is first on the path */

long sim_live_objects(void) { return __atomic_load_n(&live_objects, __ATOMIC_SEQ_CST); }

void sim_zombify(id object);

@implementation SimObject
+ (id)allocWithZone:(NSZone *)zone
{
    id obj = [super allocWithZone:zone];
    if (obj != nil) __atomic_fetch_add(&live_objects, 1, __ATOMIC_SEQ_CST);
    return obj;
}
/* The memory is not freed yet: the object becomes a zombie (sim_zombie.m), which is
 * why there is no [super dealloc] (NSObject's only frees the memory). */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wobjc-missing-super-calls"
- (void)dealloc
{
    __atomic_fetch_sub(&live_objects, 1, __ATOMIC_SEQ_CST);
    sim_zombify(self);
}
#pragma clang diagnostic pop
@end

/* ---- Blocks: interpose _Block_copy/_Block_release to count live heap blocks ----
 *
 * Every heap block made by _Block_copy of a stack block is recorded with a shadow
 * reference count that mirrors the runtime's; the final _Block_release removes it.
 * The calls are forwarded to the next definition in load order, which must be
 * compiler-rt's BlocksRuntime (see the self-check below).
 */

#define BLOCK_NEEDS_FREE (1 << 24)

struct block_header {
    void *isa;
    volatile int32_t flags;
    int32_t reserved;
    void (*invoke)(void);
    void *descriptor;
};

struct tracked { const void *block; long refs; };

static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tracked *tracked;
static size_t tracked_len, tracked_cap;
static void *(*real_block_copy)(const void *);
static void (*real_block_release)(const void *);

static void resolve_blocks_runtime(void)
{
    if (real_block_copy != NULL) return;
    real_block_copy = (void *(*)(const void *))dlsym(RTLD_NEXT, "_Block_copy");
    real_block_release = (void (*)(const void *))dlsym(RTLD_NEXT, "_Block_release");
    if (real_block_copy == NULL || real_block_release == NULL)
        sim_fatal("cannot find _Block_copy/_Block_release in the loaded libraries "
                  "(install libblocksruntime-dev and link -lBlocksRuntime)");
}

static struct tracked *find_tracked(const void *block)
{
    for (size_t i = 0; i < tracked_len; i++)
        if (tracked[i].block == block) return &tracked[i];
    return NULL;
}

void *_Block_copy(const void *block)
{
    resolve_blocks_runtime();
    if (block == NULL) return NULL;
    void *copy = real_block_copy(block);
    pthread_mutex_lock(&blocks_lock);
    struct tracked *t = find_tracked(copy);
    if (t != NULL) {
        t->refs++;
    } else if (copy != block) {
        if (tracked_len == tracked_cap) {
            tracked_cap = tracked_cap ? tracked_cap * 2 : 64;
            tracked = realloc(tracked, tracked_cap * sizeof *tracked);
            if (tracked == NULL) sim_fatal("out of memory");
        }
        tracked[tracked_len++] = (struct tracked){ copy, 1 };
    }
    pthread_mutex_unlock(&blocks_lock);
    return copy;
}

void _Block_release(const void *block)
{
    resolve_blocks_runtime();
    if (block == NULL) return;
    pthread_mutex_lock(&blocks_lock);
    struct tracked *t = find_tracked(block);
    if (t != NULL && --t->refs == 0) {
        *t = tracked[--tracked_len];
        if (tracked_len == 0) {
            free(tracked);
            tracked = NULL;
            tracked_cap = 0;
        }
    }
    pthread_mutex_unlock(&blocks_lock);
    real_block_release(block);
}

long sim_live_blocks(void)
{
    pthread_mutex_lock(&blocks_lock);
    long n = (long)tracked_len;
    pthread_mutex_unlock(&blocks_lock);
    return n;
}

/*
 * Start-up self-check. GNUstep Base exports its own _Block_copy, which returns a
 * stack block unchanged. If it is found before compiler-rt's, every block we hand
 * to the framework dangles, so refuse to run at all.
 */
__attribute__((constructor)) static void check_blocks_runtime(void)
{
    int captured = 42;
    int (^stack_block)(void) = ^{ return captured; };
    resolve_blocks_runtime();
    void *heap = real_block_copy((const void *)stack_block);
    int ok = heap != NULL && heap != (void *)stack_block
        && (((struct block_header *)heap)->flags & BLOCK_NEEDS_FREE) != 0
        && ((int (^)(void))heap)() == 42;
    if (!ok)
        sim_fatal("_Block_copy returned the stack block itself: the blocks runtime of "
                  "GNUstep Base was bound before compiler-rt's BlocksRuntime. Link "
                  "-lBlocksRuntime before -lgnustep-base.");
    real_block_release(heap);
}
