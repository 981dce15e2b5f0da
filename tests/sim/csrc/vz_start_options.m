/*
 * Fake VZMacOSVirtualMachineStartOptions (macOS 13, Apple silicon only on a Mac):
 * "Options controlling startup behavior of a virtual machine using
 * VZMacOSBootLoader", with one property, startUpFromMacOSRecovery (default NO)
 * (VZMacOSVirtualMachineStartOptions.h; vz-api.tsv).
 *
 * VZVirtualMachineStartOptions and -startWithOptions:completionHandler: live in
 * vz_virtual_machine.m. To let tests see which options reached the framework, this
 * file wraps that method's implementation once, at load time: the wrapper notes the
 * options' class and recovery flag (sim_last_start_options), then runs the original.
 * Apple does not document what macOS start options do for a guest that does not use
 * VZMacOSBootLoader, so the fake lets them through unchanged.
 */
#include <objc/runtime.h>
#include "sim_vz_arm64.h"

static long last_start_options;

long sim_last_start_options(void) { return __atomic_load_n(&last_start_options, __ATOMIC_SEQ_CST); }
void sim_reset_last_start_options(void) { __atomic_store_n(&last_start_options, 0, __ATOMIC_SEQ_CST); }

@implementation VZMacOSVirtualMachineStartOptions
@synthesize startUpFromMacOSRecovery = _startUpFromMacOSRecovery;

- (instancetype)init
{
    if ((self = [super init]) == nil) return nil;
    _startUpFromMacOSRecovery = NO;
    return self;
}
@end

typedef void (*start_with_options_imp)(id, SEL, id, id);
static start_with_options_imp original_start_with_options;

static void noting_start_with_options(id self, SEL _cmd, id options, id handler)
{
    long seen = 1;
    if ([options isKindOfClass:[VZMacOSVirtualMachineStartOptions class]])
        seen = [(VZMacOSVirtualMachineStartOptions *)options startUpFromMacOSRecovery] ? 3 : 2;
    if (options != nil) __atomic_store_n(&last_start_options, seen, __ATOMIC_SEQ_CST);
    original_start_with_options(self, _cmd, options, handler);
}

@interface VZVirtualMachine (SimStartOptions)
@end

@implementation VZVirtualMachine (SimStartOptions)
+ (void)load
{
    Method m = class_getInstanceMethod(self, @selector(startWithOptions:completionHandler:));
    if (m == NULL) sim_fatal("VZVirtualMachine has no -startWithOptions:completionHandler:");
    original_start_with_options =
        (start_with_options_imp)method_setImplementation(m, (IMP)noting_start_with_options);
}
@end
