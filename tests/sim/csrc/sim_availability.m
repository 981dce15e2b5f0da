/*
 * Test-only hook: make a selector missing, as on an older macOS.
 *
 * On Apple, a member newer than the running macOS does not exist: -respondsToSelector:,
 * +instancesRespondToSelector: and class_respondsToSelector() say NO, and sending it
 * raises NSInvalidArgumentException ("unrecognized selector"), which aborts a Rust
 * process. sim_hide_selector(name) gives the simulator the same behaviour for `name`
 * in every class that implements it (instance and class methods):
 *
 * - every implementation of the selector is replaced by one that raises;
 * - -[NSObject respondsToSelector:], +[NSObject respondsToSelector:],
 *   +[NSObject instancesRespondToSelector:] and class_respondsToSelector() answer NO.
 *
 * Hiding is for the whole process and cannot be undone: use it only in a test body
 * that runs alone in a child process (tests/common `isolated`).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include <objc/runtime.h>
#include "sim_objc.h"

#define SIM_MAX_HIDDEN 32

static pthread_mutex_t hidden_lock = PTHREAD_MUTEX_INITIALIZER;
static char *hidden[SIM_MAX_HIDDEN];
static int hidden_count;

static BOOL sim_is_hidden(SEL sel)
{
    if (sel == NULL) return NO;
    const char *name = sel_getName(sel);
    if (name == NULL) return NO;
    BOOL found = NO;
    pthread_mutex_lock(&hidden_lock);
    for (int i = 0; i < hidden_count && !found; i++)
        found = strcmp(hidden[i], name) == 0;
    pthread_mutex_unlock(&hidden_lock);
    return found;
}

/* What a send of a missing selector does on Apple. Never returns. */
static id sim_unrecognized(id self, SEL _cmd)
{
    BOOL is_class = class_isMetaClass(object_getClass(self));
    [NSException raise:NSInvalidArgumentException
                format:@"%c[%s %s]: unrecognized selector sent to %s %p",
                       is_class ? '+' : '-', class_getName(object_getClass(self)),
                       sel_getName(_cmd), is_class ? "class" : "instance", (void *)self];
    return nil;
}

typedef BOOL (*responds_imp)(id, SEL, SEL);
static responds_imp original_instance_responds;
static responds_imp original_class_responds;
static responds_imp original_instances_respond;

static BOOL hooked_instance_responds(id self, SEL _cmd, SEL sel)
{
    return !sim_is_hidden(sel) && original_instance_responds(self, _cmd, sel);
}

static BOOL hooked_class_responds(id self, SEL _cmd, SEL sel)
{
    return !sim_is_hidden(sel) && original_class_responds(self, _cmd, sel);
}

static BOOL hooked_instances_respond(id self, SEL _cmd, SEL sel)
{
    return !sim_is_hidden(sel) && original_instances_respond(self, _cmd, sel);
}

/* class_respondsToSelector() is a runtime function, not a message: interpose it.
 * The archive is linked whole into the test binary, so this definition wins over
 * libobjc's, which it calls for every selector that is not hidden. */
BOOL class_respondsToSelector(Class cls, SEL sel)
{
    static BOOL (*real)(Class, SEL);
    if (real == NULL) real = (BOOL (*)(Class, SEL))dlsym(RTLD_NEXT, "class_respondsToSelector");
    if (sim_is_hidden(sel)) return NO;
    return real != NULL && real(cls, sel);
}

static void install_responds_hooks(void)
{
    Class root = objc_getClass("NSObject");
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

/* Replaces every implementation of `sel` (instance or class method) with the
 * raising one. */
static void replace_implementations(SEL sel)
{
    int n = objc_getClassList(NULL, 0);
    Class *classes = malloc(sizeof(Class) * (size_t)n);
    n = objc_getClassList(classes, n);
    for (int i = 0; i < n; i++) {
        Method m = class_getInstanceMethod(classes[i], sel);
        if (m != NULL) method_setImplementation(m, (IMP)sim_unrecognized);
        m = class_getClassMethod(classes[i], sel);
        if (m != NULL) method_setImplementation(m, (IMP)sim_unrecognized);
    }
    free(classes);
}

void sim_hide_selector(const char *name)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_responds_hooks);
    pthread_mutex_lock(&hidden_lock);
    if (hidden_count == SIM_MAX_HIDDEN) {
        pthread_mutex_unlock(&hidden_lock);
        fprintf(stderr, "sim_hide_selector: more than %d hidden selectors\n", SIM_MAX_HIDDEN);
        abort();
    }
    hidden[hidden_count++] = strdup(name);
    pthread_mutex_unlock(&hidden_lock);
    replace_implementations(sel_registerName(name));
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

/* Sends `selector` with one nil object argument to a new instance of `class_name`:
 * the way to check that a hidden selector raises (it aborts the process). */
void sim_send_nil_argument(const char *class_name, const char *selector)
{
    @autoreleasepool {
        id object = [objc_getClass(class_name) new];
        [object performSelector:sel_registerName(selector) withObject:nil];
        [object release];
    }
}
