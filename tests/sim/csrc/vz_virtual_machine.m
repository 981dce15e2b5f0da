/* Fake VZVirtualMachine (minimal; grows with the runtime layer). */
#include "sim_vz.h"

@interface VZVirtualMachine : SimObject
{
    VZVirtualMachineConfiguration *_configuration;
    dispatch_queue_t _queue;
    NSInteger _state;
}
@end

@implementation VZVirtualMachine

+ (BOOL)isSupported { return YES; }

- (instancetype)initWithConfiguration:(VZVirtualMachineConfiguration *)configuration queue:(id)queue
{
    if ((self = [super init]) == nil) return nil;
    _configuration = [configuration copy];
    _queue = (dispatch_queue_t)queue;
    dispatch_retain(_queue);
    return self;
}

- (void)dealloc
{
    sim_assert_queue(_queue, "-[VZVirtualMachine dealloc]");
    [_configuration release];
    dispatch_release(_queue);
    [super dealloc];
}
@end
