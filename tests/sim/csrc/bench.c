/*
 * The C side of the micro-benchmarks (benches/ffi.rs): the physical floors that the
 * crate's Rust code is compared with, written directly against the same runtimes.
 */
#include <Block.h>
#include <stdint.h>

#include "sim.h"

typedef void *id;
typedef void *SEL;
id objc_msgSend(void);
SEL sel_registerName(const char *name);

/* n sends of -CPUCount through objc_msgSend, cast to the method's exact type. */
unsigned long sim_bench_msgsend_cpu_count(id object, long n)
{
    SEL sel = sel_registerName("CPUCount");
    unsigned long (*send)(id, SEL) = (unsigned long (*)(id, SEL))objc_msgSend;
    unsigned long sum = 0;
    for (long i = 0; i < n; i++) sum += send(object, sel);
    return sum;
}

static void invoke_and_release(void *block)
{
    ((void (^)(void *))block)(NULL);
    _Block_release(block);
}

/* Invokes a heap block `void (^)(id)` on the queue's thread, then releases it there. */
void sim_bench_invoke_on_queue(dispatch_queue_t queue, void *heap_block)
{
    dispatch_sync_f(queue, heap_block, invoke_and_release);
}

/* The floor of the block round trip: create, copy, invoke on the queue, release. */
void sim_bench_c_block_round_trip(dispatch_queue_t queue, long n, long *counter)
{
    for (long i = 0; i < n; i++) {
        void (^stack)(void *) = ^(void *error) {
            (void)error;
            (*counter)++;
        };
        sim_bench_invoke_on_queue(queue, _Block_copy((const void *)stack));
    }
}
