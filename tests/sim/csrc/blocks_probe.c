/*
 * Block callers compiled by clang -fblocks: the other side of the crate's hand-written
 * block ABI. Rust blocks are copied and invoked here, and clang blocks are made here
 * for Rust to invoke.
 */
#include <Block.h>
#include <pthread.h>
#include <string.h>

#include "sim.h"

typedef void (^block1_t)(void *);
typedef void (^block2_t)(void *, void *);

struct call_plan {
    void *block;   /* a heap copy owned by the plan */
    int arity;
    void *a, *b;
    int times;
};

static void *call_thread(void *arg)
{
    struct call_plan *plan = arg;
    for (int i = 0; i < plan->times; i++) {
        if (plan->arity == 1)
            ((block1_t)plan->block)(plan->a);
        else
            ((block2_t)plan->block)(plan->a, plan->b);
    }
    _Block_release(plan->block);
    return NULL;
}

/*
 * Takes `copies` references of its own to `block` with _Block_copy, invokes it `times`
 * times on a new thread (which then drops the first reference), drops the others here
 * and joins the thread.
 */
static void call_on_thread(void *block, int arity, void *a, void *b, int times, int copies)
{
    if (copies < 1) sim_fatal("call_on_thread needs at least one copy");
    void *refs[8];
    if (copies > 8) sim_fatal("too many copies");
    for (int i = 0; i < copies; i++) refs[i] = _Block_copy(block);
    for (int i = 1; i < copies; i++)
        if (refs[i] != refs[0]) sim_fatal("a copy of a heap block moved it");
    struct call_plan plan = { refs[0], arity, a, b, times };
    pthread_t thread;
    if (pthread_create(&thread, NULL, call_thread, &plan) != 0) sim_fatal("pthread_create");
    for (int i = 1; i < copies; i++) _Block_release(refs[i]);
    pthread_join(thread, NULL);
}

void sim_call_block1_on_thread(void (^block)(void *), void *a, int times, int copies)
{
    call_on_thread((void *)block, 1, a, NULL, times, copies);
}

void sim_call_block2_on_thread(void (^block)(void *, void *), void *a, void *b, int times,
                               int copies)
{
    call_on_thread((void *)block, 2, a, b, times, copies);
}

/* The signature string a block carries, or NULL (BLOCK_HAS_SIGNATURE). */
const char *sim_block_signature(const void *block)
{
    struct desc1 { unsigned long reserved, size; };
    struct header {
        void *isa;
        int flags;
        int reserved;
        void (*invoke)(void);
        struct desc1 *descriptor;
    };
    const struct header *h = block;
    if (!(h->flags & (1 << 30))) return NULL;
    const char *p = (const char *)(h->descriptor + 1);
    if (h->flags & (1 << 25)) p += 2 * sizeof(void *);
    return *(const char *const *)p;
}

/* The size a block's descriptor declares. */
unsigned long sim_block_descriptor_size(const void *block)
{
    const unsigned long *const *desc = (const unsigned long *const *)((const char *)block + 24);
    return (*desc)[1];
}

/* A heap clang block `long (^)(long)` that adds its argument and `addend` to *total. */
void *sim_make_adder_block(long *total, long addend)
{
    long (^adder)(long) = ^long(long x) {
        *total += x + addend;
        return *total;
    };
    return _Block_copy((const void *)adder);
}
