/*
 * Zombies: a deallocated fake keeps its memory for a while, as an instance of
 * SimZombie_<Class>, and any message to it aborts with "message sent to deallocated
 * <Class>: <selector>". A use-after-free of a fake is then a loud, deterministic
 * failure, even without valgrind. The last SIM_ZOMBIES zombies are kept; older ones
 * are freed for real.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <objc/runtime.h>
#include "sim_objc.h"

#define SIM_ZOMBIES 4096
#define ZOMBIE_PREFIX "SimZombie_"

__attribute__((objc_root_class))
@interface SimZombie
{
    Class isa;
}
@end

static void zombie_message(Class zombie_class, SEL sel)
{
    const char *name = class_getName(zombie_class);
    if (strncmp(name, ZOMBIE_PREFIX, strlen(ZOMBIE_PREFIX)) == 0) name += strlen(ZOMBIE_PREFIX);
    sim_fatal("message sent to deallocated %s: %s", name, sel_getName(sel));
}

@implementation SimZombie
+ (void)initialize {}
/* The runtime asks here for every selector a zombie does not have: all of them. */
+ (BOOL)resolveInstanceMethod:(SEL)sel
{
    zombie_message(self, sel);
    return NO;
}
@end

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    id object;
    Class original;
} ring[SIM_ZOMBIES];
static size_t ring_next;

/* The zombie class for `original`, made once. Call with `lock` held. */
static Class zombie_class_for(Class original)
{
    char name[256];
    snprintf(name, sizeof name, ZOMBIE_PREFIX "%s", class_getName(original));
    Class zombie = objc_lookUpClass(name);
    if (zombie == Nil) {
        zombie = objc_allocateClassPair(objc_lookUpClass("SimZombie"), name, 0);
        if (zombie == Nil) sim_fatal("cannot make the zombie class %s", name);
        objc_registerClassPair(zombie);
    }
    return zombie;
}

/* Called by -[SimObject dealloc] instead of freeing: `object` becomes a zombie, and
 * the oldest zombie is freed. */
void sim_zombify(id object)
{
    Class original = [object class]; /* the class itself, not a KVO subclass */
    id evicted = nil;
    Class evicted_class = Nil;
    pthread_mutex_lock(&lock);
    Class zombie = zombie_class_for(original);
    evicted = ring[ring_next].object;
    evicted_class = ring[ring_next].original;
    ring[ring_next].object = object;
    ring[ring_next].original = original;
    ring_next = (ring_next + 1) % SIM_ZOMBIES;
    object_setClass(object, zombie);
    pthread_mutex_unlock(&lock);
    if (evicted != nil) {
        object_setClass(evicted, evicted_class);
        NSDeallocateObject(evicted);
    }
}

id objc_msgSend(id self, SEL op, ...);

/* Test hook: makes an instance of `class_name` with +new, releases it, then sends it
 * `selector` (no arguments), which must abort naming both. */
void sim_message_after_free(const char *class_name, const char *selector)
{
    id object = [objc_getClass(class_name) new];
    [object release];
    ((id (*)(id, SEL))objc_msgSend)(object, sel_registerName(selector));
}
