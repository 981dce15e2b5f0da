/*
 * Objective-C exceptions the way Apple's libobjc throws them.
 *
 * Apple's objc_exception_throw (objc4, objc-exception.mm) passes the object through
 * the function installed with objc_setExceptionPreprocessor before it starts
 * unwinding, and throws whatever that returns. The default preprocessor returns its
 * argument, and Foundation replaces it at load time with one of its own. GCC's
 * libobjc has neither hook, so this file provides both:
 *
 * - objc_setExceptionPreprocessor, with an identity default (never NULL, as on Apple);
 * - objc_exception_throw, interposed: this archive is linked whole into the
 *   executable, so GNUstep's -[NSException raise] (through its PLT) and every @throw
 *   compiled here land in it. It runs the preprocessor, then calls libobjc's own
 *   objc_exception_throw (dlsym RTLD_NEXT), which unwinds.
 *
 * At start-up a "Foundation" preprocessor that only counts is installed, so tests
 * can tell whether a preprocessor installed later chains to the one it replaced.
 *
 * SimExceptionProbe raises the way Virtualization.framework does (SIM_RAISE), from an
 * instance method and a class method, and raises and catches inside one method.
 */
#include <dlfcn.h>
#include <stdlib.h>

#include "sim_objc.h"

typedef id (*objc_exception_preprocessor)(id exception);

static id identity_preprocessor(id exception) { return exception; }

static objc_exception_preprocessor preprocessor = identity_preprocessor;
static long foundation_preprocessed;

objc_exception_preprocessor objc_setExceptionPreprocessor(objc_exception_preprocessor fn)
{
    return __atomic_exchange_n(&preprocessor, fn, __ATOMIC_SEQ_CST);
}

static void (*real_exception_throw)(id);

void objc_exception_throw(id exception)
{
    if (real_exception_throw == NULL) {
        void (*real)(id) = (void (*)(id))dlsym(RTLD_NEXT, "objc_exception_throw");
        if (real == NULL)
            sim_fatal("cannot find libobjc's objc_exception_throw (link -lobjc)");
        __atomic_store_n(&real_exception_throw, real, __ATOMIC_SEQ_CST);
    }
    objc_exception_preprocessor fn = __atomic_load_n(&preprocessor, __ATOMIC_SEQ_CST);
    id thrown = fn(exception);
    __atomic_load_n(&real_exception_throw, __ATOMIC_SEQ_CST)(thrown);
    /* libobjc's throw never returns: no handler means the uncaught handler, then abort. */
    abort();
}

/* Stands in for Foundation's preprocessor: counts, and returns the exception. */
static id foundation_preprocessor(id exception)
{
    __atomic_fetch_add(&foundation_preprocessed, 1, __ATOMIC_SEQ_CST);
    return exception;
}

long sim_exceptions_preprocessed(void)
{
    return __atomic_load_n(&foundation_preprocessed, __ATOMIC_SEQ_CST);
}

__attribute__((constructor)) static void install_foundation_preprocessor(void)
{
    objc_setExceptionPreprocessor(foundation_preprocessor);
}

/* Raises and catches inside Objective-C; 1 when the exception was caught. */
int sim_raise_and_catch(void)
{
    @try {
        SIM_RAISE(@"raised and caught inside Objective-C");
    } @catch (NSException *e) {
        return [[e name] isEqual:NSInvalidArgumentException] ? 1 : 0;
    }
    return 0;
}

@interface SimExceptionProbe : SimObject
@end

@implementation SimExceptionProbe
- (void)raiseInvalidArgument
{
    SIM_RAISE(@"the probe was asked to raise (%d)", 42);
}
+ (void)raiseFromClass
{
    SIM_RAISE(@"the probe class was asked to raise");
}
- (BOOL)raiseAndCatch
{
    return sim_raise_and_catch() == 1;
}
@end

/* Raises from plain C code, uncaught here (called by tests from inside a callback). */
void sim_raise_uncaught(void)
{
    [NSException raise:NSInternalInconsistencyException format:@"raised by C code"];
}
