/*
 * Missing classes and members, as on an older macOS.
 *
 * On Apple, a class newer than the running macOS does not exist (objc_getClass
 * returns NULL), and a member newer than the running macOS does not exist either:
 * -respondsToSelector:, +respondsToSelector:, +instancesRespondToSelector: and
 * class_respondsToSelector() say NO, and sending it raises NSInvalidArgumentException
 * ("unrecognized selector"), which aborts a Rust process. This file gives the
 * simulator the same behaviour:
 *
 * - sim_hide_class(name): objc_getClass(name) returns Nil;
 * - sim_hide_member(class, selector, is_class_method): the member is missing in that
 *   class (or in every class conforming to that protocol) and its subclasses: the
 *   respondsToSelector: family says NO and a send through objc_msgSend raises;
 * - sim_hide_selector(name): the selector is missing in every class (tests).
 *
 * sim_versions.m hides, once and before the first class lookup, everything newer than
 * the release the simulator plays. Tests hide more only in a child process: hiding
 * cannot be undone.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include <objc/runtime.h>
#include "sim_objc.h"

void sim_versions_apply(void);

#define SIM_MAX_HIDDEN 512

struct hidden_member {
    const char *name;  /* the runtime's own copy of the selector name (sel_getName) */
    Class cls;         /* Nil with proto == NULL: every class */
    Protocol *proto;   /* the member belongs to a protocol: every conforming class */
    BOOL meta;         /* a class method */
};

static pthread_mutex_t hidden_lock = PTHREAD_MUTEX_INITIALIZER;
/* Append-only: an entry is written before the count that publishes it (release),
 * so readers need no lock (acquire). */
static struct hidden_member hidden[SIM_MAX_HIDDEN];
static int hidden_count;
static const char *hidden_classes[SIM_MAX_HIDDEN];
static int hidden_class_count;

static BOOL chain_matches(const struct hidden_member *h, Class k)
{
    if (h->cls == Nil && h->proto == NULL) return YES;
    for (Class c = k; c != Nil; c = class_getSuperclass(c)) {
        if (h->cls != Nil && c == h->cls) return YES;
        if (h->proto != NULL && class_conformsToProtocol(c, h->proto)) return YES;
    }
    return NO;
}

/* Whether `sel` is missing for instances of `k` (meta NO) or for the class `k` itself
 * (meta YES). `k` is never a metaclass. */
static BOOL sim_is_hidden(Class k, SEL sel, BOOL meta)
{
    int count = __atomic_load_n(&hidden_count, __ATOMIC_ACQUIRE);
    if (sel == NULL || count == 0) return NO;
    const char *name = sel_getName(sel);
    for (int i = 0; i < count; i++)
        if (hidden[i].name == name
            && (hidden[i].cls == Nil && hidden[i].proto == NULL ? YES : hidden[i].meta == meta)
            && chain_matches(&hidden[i], k))
            return YES;
    return NO;
}

/* What a send of a missing selector does on Apple. Never returns. */
static id sim_unrecognized(id self, SEL _cmd)
{
    BOOL is_class = class_isMetaClass(object_getClass(self));
    [NSException raise:NSInvalidArgumentException
                format:@"%c[%s %s]: unrecognized selector sent to %s %p",
                       is_class ? '+' : '-', class_getName(is_class ? (Class)self : [self class]),
                       sel_getName(_cmd), is_class ? "class" : "instance", (void *)self];
    return nil;
}

typedef BOOL (*responds_imp)(id, SEL, SEL);
static responds_imp original_instance_responds;
static responds_imp original_class_responds;
static responds_imp original_instances_respond;

static BOOL hooked_instance_responds(id self, SEL _cmd, SEL sel)
{
    if (class_isMetaClass(object_getClass(self)))
        return !sim_is_hidden((Class)self, sel, YES) && original_class_responds(self, _cmd, sel);
    return !sim_is_hidden(object_getClass(self), sel, NO) && original_instance_responds(self, _cmd, sel);
}

static BOOL hooked_class_responds(id self, SEL _cmd, SEL sel)
{
    return !sim_is_hidden((Class)self, sel, YES) && original_class_responds(self, _cmd, sel);
}

static BOOL hooked_instances_respond(id self, SEL _cmd, SEL sel)
{
    return !sim_is_hidden((Class)self, sel, NO) && original_instances_respond(self, _cmd, sel);
}

static Class (*real_get_class(void))(const char *)
{
    static Class (*real)(const char *);
    if (real == NULL) real = (Class (*)(const char *))dlsym(RTLD_NEXT, "objc_getClass");
    if (real == NULL) sim_fatal("objc_getClass not found in libobjc");
    return real;
}

/* class_respondsToSelector() and objc_getClass() are runtime functions, not messages:
 * interpose them. The archive is linked whole into the test binary, so these
 * definitions win over libobjc's, which they call for everything not hidden. */
BOOL class_respondsToSelector(Class cls, SEL sel)
{
    static BOOL (*real)(Class, SEL);
    if (real == NULL) real = (BOOL (*)(Class, SEL))dlsym(RTLD_NEXT, "class_respondsToSelector");
    sim_versions_apply();
    if (cls == Nil) return NO;
    BOOL meta = class_isMetaClass(cls);
    Class k = meta ? real_get_class()(class_getName(cls)) : cls;
    if (sim_is_hidden(k, sel, meta)) return NO;
    return real != NULL && real(cls, sel);
}

/* Whether the code at `address` is in the test binary (the crate, the tests, the
 * fakes), not in libobjc or GNUstep, which look classes up by name for themselves
 * (superclass links, class references) and must keep finding them. */
static BOOL called_from_binary(void *address)
{
    static void *binary_base;
    Dl_info info;
    if (binary_base == NULL && dladdr((void *)sim_versions_apply, &info) != 0)
        binary_base = info.dli_fbase;
    return dladdr(address, &info) != 0 && info.dli_fbase == binary_base;
}

Class objc_getClass(const char *name)
{
    if (!called_from_binary(__builtin_return_address(0))) return real_get_class()(name);
    sim_versions_apply();
    if (name != NULL) {
        BOOL missing = NO;
        pthread_mutex_lock(&hidden_lock);
        for (int i = 0; i < hidden_class_count && !missing; i++)
            missing = strcmp(hidden_classes[i], name) == 0;
        pthread_mutex_unlock(&hidden_lock);
        if (missing) return Nil;
    }
    return real_get_class()(name);
}

/* Every send through objc_msgSend (msgsend_x86_64.S), which is how the crate sends,
 * looks its method up here: a hidden member raises "unrecognized selector", as on
 * Apple. The fakes' own sends (clang calls objc_msg_lookup directly) and GNUstep's are
 * not affected, like the framework's internal calls on a real Mac. */
IMP objc_msg_lookup(id receiver, SEL op);

IMP sim_msg_lookup(id receiver, SEL sel)
{
    if (receiver != nil && __atomic_load_n(&hidden_count, __ATOMIC_ACQUIRE) != 0) {
        Class cls = object_getClass(receiver);
        BOOL meta = class_isMetaClass(cls);
        if (sim_is_hidden(meta ? (Class)receiver : cls, sel, meta)) return (IMP)sim_unrecognized;
    }
    return objc_msg_lookup(receiver, sel);
}

static void install_responds_hooks(void)
{
    Class root = real_get_class()("NSObject");
    Method m = class_getInstanceMethod(root, @selector(respondsToSelector:));
    original_instance_responds =
        (responds_imp)method_setImplementation(m, (IMP)hooked_instance_responds);
    m = class_getClassMethod(root, @selector(respondsToSelector:));
    if (m != NULL && method_getImplementation(m) != (IMP)hooked_instance_responds)
        original_class_responds =
            (responds_imp)method_setImplementation(m, (IMP)hooked_class_responds);
    else
        original_class_responds = original_instance_responds;
    m = class_getClassMethod(root, @selector(instancesRespondToSelector:));
    original_instances_respond =
        (responds_imp)method_setImplementation(m, (IMP)hooked_instances_respond);
}

static void add_hidden(struct hidden_member h)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_responds_hooks);
    pthread_mutex_lock(&hidden_lock);
    if (hidden_count == SIM_MAX_HIDDEN) sim_fatal("more than %d hidden members", SIM_MAX_HIDDEN);
    hidden[hidden_count] = h;
    __atomic_store_n(&hidden_count, hidden_count + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&hidden_lock);
}

void sim_hide_member(const char *class_name, const char *selector, int is_class_method)
{
    struct hidden_member h = { sel_getName(sel_registerName(selector)), real_get_class()(class_name), NULL, is_class_method != 0 };
    if (h.cls == Nil) {
        h.proto = objc_getProtocol(class_name);
        /* Neither a fake class nor a protocol the fakes adopt: nothing to hide. */
        if (h.proto == NULL) return;
    }
    add_hidden(h);
}

void sim_hide_class(const char *name)
{
    pthread_mutex_lock(&hidden_lock);
    if (hidden_class_count == SIM_MAX_HIDDEN) sim_fatal("more than %d hidden classes", SIM_MAX_HIDDEN);
    hidden_classes[hidden_class_count++] = strdup(name);
    pthread_mutex_unlock(&hidden_lock);
}

void sim_hide_selector(const char *name)
{
    sim_versions_apply();
    struct hidden_member h = { sel_getName(sel_registerName(name)), Nil, NULL, NO };
    add_hidden(h);
}

/* -respondsToSelector: of an instance of `class_name` (made with +new), for tests of
 * the hook itself. -1 when the class does not exist. */
int sim_instance_responds(const char *class_name, const char *selector)
{
    Class cls = objc_getClass(class_name);
    if (cls == Nil) return -1;
    int answer;
    @autoreleasepool {
        id object = [cls new];
        answer = [object respondsToSelector:sel_registerName(selector)] ? 1 : 0;
        [object release];
    }
    return answer;
}

/* +instancesRespondToSelector: (is_class_method 0) or +respondsToSelector: (1) of
 * `class_name`, and class_respondsToSelector() must agree. -1 when the class does not
 * exist, -2 when the two disagree. */
int sim_class_responds(const char *class_name, const char *selector, int is_class_method)
{
    Class cls = objc_getClass(class_name);
    if (cls == Nil) return -1;
    SEL sel = sel_registerName(selector);
    BOOL message = is_class_method ? [cls respondsToSelector:sel] : [cls instancesRespondToSelector:sel];
    BOOL runtime = class_respondsToSelector(is_class_method ? object_getClass((id)cls) : cls, sel);
    return message != runtime ? -2 : message ? 1 : 0;
}

id objc_msgSend(id self, SEL op, ...);

/* Sends `selector` with one nil object argument to a new instance of `class_name`
 * through objc_msgSend, as the crate does: the way to check that a hidden selector
 * raises (it aborts the process). */
void sim_send_nil_argument(const char *class_name, const char *selector)
{
    @autoreleasepool {
        id object = [objc_getClass(class_name) new];
        ((id (*)(id, SEL, id))objc_msgSend)(object, sel_registerName(selector), nil);
        [object release];
    }
}
